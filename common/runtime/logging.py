"""Per-call logging for nameko services: a correlation id for every worker and one
line per call answered."""
import logging
import time

from nameko.events import EventHandler
from nameko.extensions import DependencyProvider
from nameko.timer import Timer
from nameko.web.handlers import HttpRequestHandler

from common.logs import (
    CONTEXT_KEY,
    GRPC_CREDENTIALS,
    GRPC_REQUEST_ID,
    bound,
    new_correlation_id,
    set_process_service,
    valid_correlation_id,
)

log = logging.getLogger(__name__)

QUIET_METHODS = {"ping"}  # logged at DEBUG


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
        set_process_service(self.container.service_name)
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
