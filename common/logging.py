"""Structured logs and the correlation id: one JSON line per log event, each naming its
service and the id of the request (or message) that caused it, across every hop.

The id lives in nameko's worker context data under `correlation_id`, which nameko copies
into the headers of every RPC call and event a worker makes; `RequestContext` makes sure
each worker has one and exposes it to log records (and to the outbox) through a contextvar.
"""
import contextvars
import json
import logging
import re
import time
import uuid
from datetime import UTC, datetime

from nameko.events import EventHandler
from nameko.extensions import DependencyProvider
from nameko.timer import Timer
from nameko.web.handlers import HttpRequestHandler

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
QUIET_METHODS = {"ping"}  # logged at DEBUG
# Safe to echo in a header and to grep for: no spaces, quotes or control characters.
_VALID = re.compile(rf"^[A-Za-z0-9._:@/+=-]{{1,{MAX_LENGTH}}}$")

# Greenlets each get their own contextvars, so under eventlet this is per worker greenthread.
_correlation_id = contextvars.ContextVar("correlation_id", default=None)
_service = contextvars.ContextVar("service", default=None)
_process_service = None  # one service per `nameko run` process: its name for non-worker lines

log = logging.getLogger(__name__)


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


def entrypoint_kind(entrypoint):
    """rpc, event, http, timer or consume: what kind of call a worker answers."""
    if isinstance(entrypoint, HttpRequestHandler):
        return "http"
    if isinstance(entrypoint, EventHandler):
        return "event"
    if isinstance(entrypoint, Timer):
        return "timer"
    name = type(entrypoint).__name__.lower()
    if "grpc" in name:
        return "grpc"
    if "rpc" in name:
        return "rpc"
    return "consume"


class RequestContext(DependencyProvider):
    """Gives every worker a correlation id (the caller's, carried in the context data, or a
    new one), binds it to the worker's log lines, and logs one line per call it answers.

    Declared once per service: `request_context = RequestContext()`. HTTP calls are logged by
    the gateway's own access line, which knows the status; timer ticks and pings only at DEBUG."""

    def setup(self):
        global _process_service
        _process_service = _process_service or self.container.service_name
        self._started = {}

    def worker_setup(self, worker_ctx):
        # nameko-grpc turns a gRPC call's metadata into context data, which nameko copies into
        # the headers of every onward call: the caller's credentials must not ride along, and
        # its x-request-id is its correlation id.
        worker_ctx.data.pop(GRPC_CREDENTIALS, None)
        correlation_id = (valid_correlation_id(worker_ctx.data.get(CONTEXT_KEY))
                          or valid_correlation_id(worker_ctx.data.pop(GRPC_REQUEST_ID, None))
                          or new_correlation_id())
        # In the context data, nameko passes it on with every RPC call and event this worker makes.
        worker_ctx.data[CONTEXT_KEY] = correlation_id
        binding = bound(correlation_id, worker_ctx.service_name)
        binding.__enter__()
        self._started[worker_ctx] = binding, time.perf_counter()

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        started = self._started.get(worker_ctx)
        kind = entrypoint_kind(worker_ctx.entrypoint)
        if started is None or kind == "http":
            return
        error = exc_info[1] if exc_info else None
        outcome = ("ok" if error is None else
                   "expected_error" if isinstance(error, worker_ctx.entrypoint.expected_exceptions) else "error")
        # Timer ticks and health probes come every few seconds: at INFO they would drown the rest.
        quiet = kind == "timer" or worker_ctx.entrypoint.method_name in QUIET_METHODS
        log.log(logging.DEBUG if quiet else logging.INFO,
                "%s %s.%s %s", kind, worker_ctx.service_name, worker_ctx.entrypoint.method_name, outcome,
                extra={"entrypoint": worker_ctx.entrypoint.method_name, "kind": kind, "outcome": outcome,
                       "duration_ms": round((time.perf_counter() - started[1]) * 1000, 1)})

    def worker_teardown(self, worker_ctx):
        started = self._started.pop(worker_ctx, None)
        if started is not None:
            started[0].__exit__(None, None, None)
