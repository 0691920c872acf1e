"""The error model every service shares: typed exceptions with a stable code, and the one
table (ANSWERS) of what each is at every door: the HTTP status, the gRPC status code, and in
the metrics and logs an expected outcome (a designed answer: one WARNING line, no traceback,
`expected_error`). Constructor arguments are JSON-safe so the exception survives nameko's RPC
serialisation unchanged.
"""
import json
from dataclasses import dataclass


class BookifyError(Exception):
    """Something went wrong."""

    code = "error"

    def __init__(self, message=None, details=None):
        if isinstance(details, str):  # arrived over RPC (see below)
            details = json.loads(details)
        self.message = message or self.__class__.__doc__
        self.details = details or {}
        # nameko stringifies every scalar in exception args; details travel as one JSON
        # string so numbers stay numbers on the other side.
        super().__init__(self.message, json.dumps(self.details, default=str))

    def __str__(self):
        return self.message


class ValidationError(BookifyError):
    """The request is malformed or some fields are invalid."""

    code = "validation_error"


class Unauthenticated(BookifyError):
    """Authentication is required or the credentials are invalid."""

    code = "unauthenticated"


class Forbidden(BookifyError):
    """You do not have permission to do this."""

    code = "forbidden"


class NotFound(BookifyError):
    """The resource does not exist."""

    code = "not_found"


class Conflict(BookifyError):
    """The request conflicts with the current state."""

    code = "conflict"


class SlotUnavailable(Conflict):
    """The requested time slot is not available."""

    code = "slot_unavailable"


class PaymentDeclined(BookifyError):
    """The payment was declined."""

    code = "payment_declined"


class PayloadTooLarge(BookifyError):
    """The request body is too large."""

    code = "payload_too_large"


class MethodNotAllowed(BookifyError):
    """The path exists but does not accept this method; `Allow` lists those it does."""

    code = "method_not_allowed"


class RateLimited(BookifyError):
    """Too many requests; try again later."""

    code = "rate_limited"


class ServiceUnavailable(BookifyError):
    """A service needed for this request is unavailable."""

    code = "service_unavailable"


class ServiceTimeout(BookifyError):
    """A service needed for this request did not answer in time."""

    code = "service_timeout"


@dataclass(frozen=True)
class Answer:
    http: int
    grpc: str  # the name of a grpc.StatusCode (this module stays free of grpc)


ANSWERS = {
    ValidationError: Answer(400, "INVALID_ARGUMENT"),
    Unauthenticated: Answer(401, "UNAUTHENTICATED"),
    PaymentDeclined: Answer(402, "FAILED_PRECONDITION"),
    Forbidden: Answer(403, "PERMISSION_DENIED"),
    NotFound: Answer(404, "NOT_FOUND"),
    MethodNotAllowed: Answer(405, "UNIMPLEMENTED"),
    Conflict: Answer(409, "FAILED_PRECONDITION"),
    SlotUnavailable: Answer(409, "FAILED_PRECONDITION"),
    PayloadTooLarge: Answer(413, "INVALID_ARGUMENT"),
    RateLimited: Answer(429, "RESOURCE_EXHAUSTED"),
    ServiceUnavailable: Answer(503, "UNAVAILABLE"),
    ServiceTimeout: Answer(504, "DEADLINE_EXCEEDED"),
}

# Every type a service may raise across RPC, each a designed answer: services list it in
# expected_exceptions, so none is logged with a traceback or counted as an `error`.
EXPECTED_ERRORS = tuple(ANSWERS)


def answer_of(error):
    """The Answer for `error` (its own class first, then its bases), or None when it is not ours."""
    return next((ANSWERS[kind] for kind in type(error).__mro__ if kind in ANSWERS), None)
