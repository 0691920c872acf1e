"""What every Bookify service behind the gateways is built from. Import the module, not the
class (`from common.runtime import service`): `nameko run <module>` runs every class with
entrypoints it finds in the module it is given."""
from nameko.extensions import DependencyProvider

from common.errors import EXPECTED_ERRORS
from common.runtime.audit import AuditedService
from common.runtime.database import Database
from common.runtime.heartbeat import Heartbeat
from common.runtime.logging import RequestContext
from common.runtime.metrics import Metrics
from common.runtime.rpc import rpc
from common.schemas import PingSchema, argument


class BookifyService(AuditedService):
    """The base of auth, reservations, payments and notifications: each one's own database,
    a correlation id and one log line per call, metrics, the process's liveness heartbeat,
    `ping` and `audit_log`. Each service adds `operator_audit` and `events` on its own tables."""

    db = Database()
    request_context = RequestContext()
    metrics = Metrics()
    heartbeat = Heartbeat()  # this process's liveness (scripts/probe.py --liveness)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def ping(self, deep=False):
        """Liveness over RPC; with deep=True, readiness: this service and its database
        (the gateway's /ready). Example: n.rpc.reservations.ping(deep=True)"""
        return self.db.health() if argument(PingSchema, deep=deep) else "pong"


class Components(DependencyProvider):
    """A service's own long-lived objects (codecs, gateways, policies), built from its config
    once in `setup` when the service starts; every worker gets this same object."""

    def get_dependency(self, worker_ctx):
        return self
