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


def _rpc_entrypoints():
    from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR

    from auth_service.service import AuthService
    from common.runtime.rpc import Rpc
    from notifications_service.service import NotificationsService
    from payments_service.service import PaymentsService
    from reservations_service.service import ReservationsService

    for service in (AuthService, PaymentsService, ReservationsService, NotificationsService):
        for name in dir(service):
            for entrypoint in getattr(getattr(service, name), ENTRYPOINT_EXTENSIONS_ATTR, ()):
                if isinstance(entrypoint, Rpc):
                    yield f"{service.name}.{name}", entrypoint


def test_every_rpc_method_expects_the_table_s_errors_without_naming_them():
    entrypoints = dict(_rpc_entrypoints())
    assert len(entrypoints) > 40  # every service's methods, the shared ones too
    assert {name for name, entrypoint in entrypoints.items()
            if entrypoint.expected_exceptions != errors.EXPECTED_ERRORS} == set()
