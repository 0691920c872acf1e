"""The gRPC gateway's one table from our error types to gRPC status codes."""
import logging

import pytest
from grpc import StatusCode
from nameko_grpc.errors import GrpcError

from common import errors
from common.runtime.grpc_transport import Refused
from gateway.grpc_server import grpc_error, translating_errors


@pytest.mark.parametrize("error,code", [
    (errors.ValidationError("Invalid input", {"start": ["Missing."]}), StatusCode.INVALID_ARGUMENT),
    (errors.PayloadTooLarge(), StatusCode.INVALID_ARGUMENT),
    (errors.Unauthenticated("Token expired"), StatusCode.UNAUTHENTICATED),
    (errors.Forbidden("Missing permission"), StatusCode.PERMISSION_DENIED),
    (errors.NotFound("No such reservation"), StatusCode.NOT_FOUND),
    (errors.SlotUnavailable("Taken"), StatusCode.FAILED_PRECONDITION),
    (errors.Conflict("Already cancelled"), StatusCode.FAILED_PRECONDITION),
    (errors.PaymentDeclined("Card declined"), StatusCode.FAILED_PRECONDITION),
    (errors.RateLimited("Slow down"), StatusCode.RESOURCE_EXHAUSTED),
    (errors.ServiceUnavailable("Down"), StatusCode.UNAVAILABLE),
    (errors.ServiceTimeout("Slow"), StatusCode.DEADLINE_EXCEEDED),
])
def test_each_error_type_has_its_status_code(error, code):
    translated = grpc_error(error)
    assert translated.code == code
    assert translated.message.startswith(f"{error.code}: {error.message}")


def test_details_travel_as_json_after_the_message():
    translated = grpc_error(errors.ValidationError("Invalid input", {"start": ["Missing."]}))
    assert translated.message == 'validation_error: Invalid input {"start": ["Missing."]}'


def test_an_unexpected_error_is_internal_and_says_nothing_of_itself():
    translated = grpc_error(KeyError("database password is hunter2"))
    assert translated.code == StatusCode.INTERNAL
    assert "hunter2" not in translated.message


def test_a_grpc_error_passes_unchanged():
    original = GrpcError(StatusCode.CANCELLED, "client went away")
    assert grpc_error(original) is original


def test_a_callers_mistake_is_refused_with_its_status_and_one_warning_without_traceback(caplog):
    """Returned, not raised: nameko would log a raised one with its traceback (common/runtime/grpc_transport.py)."""
    @translating_errors
    def login(request, context):
        raise errors.Unauthenticated("Wrong email or password")

    with caplog.at_level(logging.DEBUG, logger="gateway.grpc_server"):
        refused = login(None, None)
    assert isinstance(refused, Refused)
    assert refused.status.code == StatusCode.UNAUTHENTICATED
    assert isinstance(refused.error, errors.Unauthenticated)
    [record] = caplog.records
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert record.getMessage() == "grpc login refused: unauthenticated: Wrong email or password"


def test_our_own_failure_is_raised_as_internal():
    @translating_errors
    def unary(request, context):
        raise KeyError("bug")

    with pytest.raises(GrpcError) as raised:
        unary(None, None)
    assert raised.value.code == StatusCode.INTERNAL


def test_streaming_handlers_raise_translated_errors():
    @translating_errors
    def stream(request, context):
        yield 1
        raise errors.Forbidden("Not yours")

    items = stream(None, None)
    assert next(items) == 1
    with pytest.raises(GrpcError) as raised:
        next(items)
    assert raised.value.code == StatusCode.PERMISSION_DENIED
