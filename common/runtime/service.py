"""What every Bookify service behind the gateways is built from. Import the module, not the
class (`from common.runtime import service`): `nameko run <module>` runs every class with
entrypoints it finds in the module it is given.

Operators call any service's RPC methods from `make shell` (`nameko shell`) as
`n.rpc.<service>.<method>(...)`; each method's docstring has an example. A method's `actor`
argument is who acts: None from the console (full trust); the gateways pass their caller."""
from nameko.extensions import DependencyProvider

from common.runtime.audit import AuditedService, OperatorAudit
from common.runtime.database import Database
from common.runtime.heartbeat import Heartbeat
from common.runtime.logging import RequestContext
from common.runtime.metrics import Metrics
from common.runtime.outbox_relay import Outbox
from common.runtime.rpc import rpc
from common.schemas import PingSchema, argument


class BookifyService(AuditedService):
    """The base of auth, reservations, payments and notifications: each one's own database,
    a correlation id and one log line per call, metrics, the process's liveness heartbeat,
    `ping` and `audit_log`; and, on the service's own tables, the console's audit trail and
    the outbox its events leave by:

        class PaymentsService(service.BookifyService, audit_table=OperatorCall, outbox_table=OutboxMessage):
    """

    db = Database()
    request_context = RequestContext()
    metrics = Metrics()
    heartbeat = Heartbeat()  # this process's liveness (scripts/probe.py --liveness)

    def __init_subclass__(cls, audit_table, outbox_table, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.operator_audit = OperatorAudit(audit_table)
        cls.events = Outbox(outbox_table)

    @rpc
    def ping(self, deep=False):
        """Liveness over RPC; with deep=True, readiness: this service and its database
        (the gateway's /ready). Example: n.rpc.reservations.ping(deep=True)"""
        return self.db.health() if argument(PingSchema, deep=deep) else "pong"


class Components(DependencyProvider):
    """A service's own long-lived objects (codecs, gateways, policies), built from its config
    once in `setup` when the service starts; every worker gets this same object."""

    def get_dependency(self, worker_ctx):
        return self
