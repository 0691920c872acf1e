"""The operator audit trail: who called which RPC method from the console, with what, when,
and how it ended. Each service keeps its own `operator_audit` table and answers `audit_log`.

A call is an operator call when it comes straight from a standalone RPC client (`nameko
shell`, a script). Calls through the gateway carry their own actor and are not console work;
what a console call makes other services do is recorded by the call itself, once.
The operator names themself once per console session:

    >>> n.rpc.context_data["operator"] = "alice"

The name is declared, not proven: whoever holds broker credentials holds the console.
The row is written before the method runs, so even a crash mid-call leaves a trace, and is
completed after it. If the database refuses the first write, the call still runs (failing it
from here would stop the whole service) and the row is written complete afterwards."""
import json
import re
from datetime import datetime

import sqlalchemy as sa
from marshmallow import fields, validate
from sqlalchemy.orm import Mapped, mapped_column

from common.clock import utcnow
from common.schemas import LenientSchema, PageQuery, PrintableText
from common.schemas import UtcDateTime as UtcDateTimeField
from common.storage.base import UtcDateTimeColumn

SECRET_KEY = re.compile(r"password|secret|token|api_key|card|payment_method", re.IGNORECASE)

REDACTED = "[redacted]"

MAX_ARGUMENTS_CHARS = 4000


class OperatorAuditMixin:
    """Columns of a service's `operator_audit` table; each service declares
    `class OperatorCall(OperatorAuditMixin, Base)` so the trail lives in its own database."""

    __tablename__ = "operator_audit"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    called_at: Mapped[datetime] = mapped_column(UtcDateTimeColumn, index=True)
    operator: Mapped[str] = mapped_column(sa.String(120), index=True)
    method: Mapped[str] = mapped_column(sa.String(80))
    arguments: Mapped[str] = mapped_column(sa.Text)
    # "running" until the call returns; then "ok" or the error's class name.
    outcome: Mapped[str] = mapped_column(sa.String(64))
    error: Mapped[str | None] = mapped_column(sa.Text)
    duration_ms: Mapped[int | None] = mapped_column(sa.Integer)
    call_id: Mapped[str] = mapped_column(sa.String(200))


def redact(value):
    """`value` with every secret-looking field replaced, however deeply it is nested."""
    if isinstance(value, dict):
        return {key: REDACTED if SECRET_KEY.search(str(key)) else redact(item)
                for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return value


def describe_arguments(args, kwargs):
    text = json.dumps({"args": redact(list(args)), "kwargs": redact(kwargs)}, default=str,
                      ensure_ascii=False)
    return text if len(text) <= MAX_ARGUMENTS_CHARS else text[:MAX_ARGUMENTS_CHARS - 1] + "…"


class AuditQuerySchema(PageQuery):
    operator = fields.String(validate=[validate.Length(max=120), PrintableText])
    method = fields.String(validate=[validate.Length(max=80), PrintableText])
    since = UtcDateTimeField()
    until = UtcDateTimeField()


class AuditEntrySchema(LenientSchema):
    id = fields.Integer()
    called_at = UtcDateTimeField()
    operator = fields.String()
    method = fields.String()
    arguments = fields.Method("_arguments")
    outcome = fields.String()
    error = fields.String(allow_none=True)
    duration_ms = fields.Integer(allow_none=True)
    call_id = fields.String()

    def _arguments(self, entry):
        return json.loads(entry.arguments)


class AuditTrail:
    """Writes and reads one service's operator_audit table."""

    def __init__(self, sessions, model):
        self.sessions = sessions
        self.model = model

    def begin(self, operator, method, arguments, call_id):
        with self.sessions.transaction() as session:
            entry = self.model(called_at=utcnow(), operator=operator, method=method,
                               arguments=arguments, outcome="running", call_id=call_id)
            session.add(entry)
            session.flush()
            return entry.id

    def finish(self, entry_id, outcome, error, duration_ms, **begun):
        """Complete entry `entry_id`, or write the whole row from `begun` if it has none."""
        with self.sessions.transaction() as session:
            if entry_id is None:
                session.add(self.model(**begun, outcome=outcome, error=error,
                                       duration_ms=duration_ms))
            else:
                session.execute(sa.update(self.model).where(self.model.id == entry_id).values(
                    outcome=outcome, error=error, duration_ms=duration_ms))

    def search(self, query):
        model = self.model
        where = []
        if "operator" in query:
            where.append(model.operator == query["operator"])
        if "method" in query:
            where.append(model.method == query["method"])
        if "since" in query:
            where.append(model.called_at >= query["since"])
        if "until" in query:
            where.append(model.called_at < query["until"])
        with self.sessions.transaction() as session:
            total = session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))
            items = session.scalars(sa.select(model).where(*where)
                                    .order_by(model.called_at.desc(), model.id.desc())
                                    .limit(query["limit"]).offset(query["offset"])).all()
        return {"items": AuditEntrySchema(many=True).dump(items), "total": total}
