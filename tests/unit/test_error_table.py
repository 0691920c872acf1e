"""One table (common/errors.py ANSWERS) says what every error is at every door: the HTTP
gateway, the gRPC gateway and the metrics read it and nothing else."""
import pytest
from grpc import StatusCode

from common import errors
from common.runtime.http_errors import error_response
from gateway.grpc_server import grpc_error

KINDS = [kind for kind in vars(errors).values()
         if isinstance(kind, type) and issubclass(kind, errors.BookifyError) and kind is not errors.BookifyError]


def test_every_error_type_has_an_answer_and_is_a_designed_outcome():
    assert set(KINDS) == set(errors.ANSWERS) == set(errors.EXPECTED_ERRORS)


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.__name__)
def test_http_and_grpc_answer_what_the_table_says(kind):
    error = kind("why", {"allowed": ["GET"]} if kind is errors.MethodNotAllowed else {"field": ["bad"]})
    answer = errors.ANSWERS[kind]
    response = error_response(error)
    assert response.status_code == answer.http
    status = grpc_error(error)
    assert status.code == StatusCode[answer.grpc]
    assert status.message.startswith(f"{kind.code}: why")


def test_a_subclass_answers_as_itself_before_its_base():
    assert errors.answer_of(errors.SlotUnavailable()).http == 409
    assert errors.answer_of(ValueError()) is None


def test_a_designed_503_is_an_expected_outcome_everywhere():
    assert errors.ServiceUnavailable in errors.EXPECTED_ERRORS
    assert errors.ServiceTimeout in errors.EXPECTED_ERRORS
