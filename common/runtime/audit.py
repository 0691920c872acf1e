"""Operator audit for nameko services: recognises console calls and records each in
the service's operator_audit table (common.storage.audit)."""
import logging
import re
import time

from nameko.extensions import DependencyProvider
from nameko.rpc import Rpc

from common.clock import utcnow
from common.runtime.database import Database
from common.runtime.rpc import rpc
from common.schemas import query_or_empty
from common.storage.audit import AuditQuerySchema, AuditTrail, describe_arguments

log = logging.getLogger(__name__)

CONSOLE_CALL_PREFIX = "standalone_rpc_client."

UNNAMED = "unnamed"

# Liveness probes and reading the trail itself would drown the actions worth reading.
NOT_AUDITED = frozenset({"ping", "audit_log"})

MAX_ERROR_CHARS = 1000

OPERATOR_NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,120}$")


def is_console_call(worker_ctx):
    stack = worker_ctx.call_id_stack or []
    # [the client's call id, this call's id]: the console called this method itself.
    return (isinstance(worker_ctx.entrypoint, Rpc)
            and worker_ctx.entrypoint.method_name not in NOT_AUDITED
            and len(stack) == 2 and stack[0].startswith(CONSOLE_CALL_PREFIX))


def operator_name(context_data):
    name = context_data.get("operator")
    if isinstance(name, str) and OPERATOR_NAME.match(name.strip() or "\x00"):
        return name.strip()
    return UNNAMED


class OperatorAudit(DependencyProvider):
    """Records every console RPC call of its service in the service's operator_audit table."""

    def __init__(self, model):
        self.model = model
        self._open = {}

    def setup(self):
        database = next(d for d in self.container.dependencies if isinstance(d, Database))
        self.trail = AuditTrail(database.sessions, self.model)

    def get_dependency(self, worker_ctx):
        return self.trail

    def worker_setup(self, worker_ctx):
        if not is_console_call(worker_ctx):
            return
        begun = {"called_at": utcnow(), "operator": operator_name(worker_ctx.context_data),
                 "method": worker_ctx.entrypoint.method_name,
                 "arguments": describe_arguments(worker_ctx.args, worker_ctx.kwargs),
                 "call_id": worker_ctx.call_id}
        try:
            entry_id = self.trail.begin(begun["operator"], begun["method"], begun["arguments"],
                                        begun["call_id"])
        except Exception:  # raising here would kill the container, not just refuse the call
            log.exception("could not open the operator audit entry of %s", begun["call_id"])
            entry_id = None
        self._open[worker_ctx] = (entry_id, begun, time.perf_counter())

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        opened = self._open.pop(worker_ctx, None)
        if opened is None:
            return
        entry_id, begun, started = opened
        error = exc_info[1] if exc_info else None
        try:
            self.trail.finish(
                entry_id,
                "ok" if error is None else type(error).__name__,
                None if error is None else str(error)[:MAX_ERROR_CHARS],
                round((time.perf_counter() - started) * 1000),
                **begun)
        except Exception:  # the answer has been sent; say loudly that the trail has a gap
            log.exception("could not complete the operator audit entry of %s (%s by %s)",
                          begun["call_id"], begun["method"], begun["operator"])

    def worker_teardown(self, worker_ctx):
        self._open.pop(worker_ctx, None)


class AuditedService:
    """Adds `audit_log` to a service that declares `operator_audit = OperatorAudit(<its model>)`."""

    @rpc
    def audit_log(self, query=None):
        """Operator calls to this service, newest first; filter by operator, method, since, until.
        Example: n.rpc.reservations.audit_log({"operator": "alice", "limit": 10})"""
        return self.operator_audit.search(AuditQuerySchema().load_or_raise(query_or_empty(query)))
