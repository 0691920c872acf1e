"""The error model every service shares: typed exceptions with a stable code.

Services raise these; the gateway maps each type to an HTTP status in one table
(gateway/errors.py) and gRPC maps them to status codes. Constructor arguments are
JSON-safe so the exception survives nameko's RPC serialisation unchanged.
"""
import json


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


# Every type a service may raise across RPC; services list it in expected_exceptions.
EXPECTED_ERRORS = (
    ValidationError,
    Unauthenticated,
    Forbidden,
    NotFound,
    Conflict,
    SlotUnavailable,
    PaymentDeclined,
    RateLimited,
)
