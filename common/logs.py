"""Correlation ids and log formatting: the id a request carries through every service,
bound to each log line, and the one-line JSON format every process writes."""
import contextvars
import json
import logging
import re
import uuid
from datetime import UTC, datetime

CONTEXT_KEY = "correlation_id"

# nameko's prefix for context data in AMQP headers (nameko.messaging.encode_to_headers).
HEADER = f"nameko.{CONTEXT_KEY}"

# Incoming HTTP headers that may carry a caller's id, in order of preference.
REQUEST_HEADERS = ("X-Request-ID", "X-Correlation-ID")

RESPONSE_HEADER = "X-Request-ID"

# gRPC metadata names (lower case), as nameko-grpc puts them in the context data.
GRPC_REQUEST_ID = "x-request-id"

GRPC_CREDENTIALS = "authorization"

MAX_LENGTH = 128

# Safe to echo in a header and to grep for: no spaces, quotes or control characters.
_VALID = re.compile(rf"^[A-Za-z0-9._:@/+=-]{{1,{MAX_LENGTH}}}$")

# Greenlets each get their own contextvars, so under eventlet this is per worker greenthread.
_correlation_id = contextvars.ContextVar("correlation_id", default=None)

_service = contextvars.ContextVar("service", default=None)

_process_service = None  # one service per `nameko run` process: its name for non-worker lines


def set_process_service(name):
    """Name this process's service for the lines it logs outside any worker (the first wins)."""
    global _process_service
    _process_service = _process_service or name


def valid_correlation_id(value):
    """`value` when it is an id we can carry and echo safely, else None."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if isinstance(value, str) and _VALID.match(value):
        return value
    return None


def new_correlation_id():
    return uuid.uuid4().hex


def correlation_id_from(headers):
    """The caller's id from HTTP headers when valid, else a fresh one (a bad one is replaced,
    not refused: tracing must never fail a request)."""
    for name in REQUEST_HEADERS:
        if value := valid_correlation_id(headers.get(name)):
            return value
    return new_correlation_id()


def current_correlation_id():
    """The id of the request this greenthread works for, or None outside a worker."""
    return _correlation_id.get()


def correlation_headers():
    """AMQP headers that carry the current id to the consumer of a message we publish."""
    value = current_correlation_id()
    return {HEADER: value} if value else {}


class bound:
    """`with bound(correlation_id, service):` makes log lines in the block carry them."""

    def __init__(self, correlation_id, service=None):
        self.values = correlation_id, service

    def __enter__(self):
        self.tokens = _correlation_id.set(self.values[0]), _service.set(self.values[1])
        return self

    def __exit__(self, *exc_info):
        _correlation_id.reset(self.tokens[0])
        _service.reset(self.tokens[1])


class ContextFilter(logging.Filter):
    """Adds `service` and `correlation_id` to every record (a value passed in `extra` wins)."""

    def filter(self, record):
        if getattr(record, "service", None) is None:
            record.service = _service.get() or _process_service
        if getattr(record, "correlation_id", None) is None:
            record.correlation_id = _correlation_id.get()
        return True


class ExpectedErrorFilter(logging.Filter):
    """An expected error (a typed error a caller caused: NotFound, a wrong password, bad input)
    is one WARNING line: nameko logs each with its whole traceback (about 950 bytes), which
    says nothing a caller's mistake needs and drowns the tracebacks of real bugs."""

    def filter(self, record):
        if record.name == "nameko.containers" and str(record.msg).startswith("(expected)"):
            record.exc_info = record.exc_text = None
        return True


_RECORD_FIELDS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "service", "correlation_id"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, service, correlation_id, logger, message, then
    any `extra={...}` fields, and the traceback as `exception`."""

    _context = ContextFilter()

    def format(self, record):
        self._context.filter(record)
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": record.service,
            "correlation_id": record.correlation_id,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)
