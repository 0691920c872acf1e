"""Events: the envelope every event carries, and the transactional outbox.

A state change and the event it causes are written in one database transaction
(`EventRecorder.record`); `OutboxRelay` publishes committed events to the service's
`<service>.events` topic exchange with publisher confirms and marks them sent. If the
broker is down, events wait in the table and go out when it is back: none is lost.
Delivery is at least once; consumers deduplicate by `event_id`.

The correlation id of the request that caused an event is stored with it (under the
payload's reserved `_headers` key, so the table needs no column of its own) and published
as an AMQP header, where nameko's consumers read it back into their worker's context.
"""
import json
import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from common.clock import utcnow
from common.contracts.events import UnknownEvent, schema_of
from common.errors import ValidationError
from common.logs import correlation_headers
from common.storage.base import UtcDateTimeColumn

# Key of a stored payload that holds the AMQP headers to publish it with; never published itself.
HEADERS_KEY = "_headers"


def envelope(fields):
    """An event body: a fresh `event_id` and `occurred_at` (UTC) plus the event's fields."""
    return {
        "event_id": str(uuid.uuid4()),
        "occurred_at": utcnow().isoformat(),
        **fields,
    }


class OutboxMixin:
    """Columns of a service's `outbox` table; each service declares
    `class OutboxMessage(OutboxMixin, Base)` so the table lives in its own database."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(sa.String(36), unique=True)
    event_type: Mapped[str] = mapped_column(sa.String(64))
    payload: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTimeColumn)
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTimeColumn, index=True, default=None)


class ProcessedEventMixin:
    """Columns of a consuming service's `processed_events` table: each event_id it has
    applied, claimed in the same transaction as the effect (at-least-once in, once in effect)."""

    __tablename__ = "processed_events"

    event_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(UtcDateTimeColumn)


class ProcessedEvents:
    """Consumer-side deduplication over a service's ProcessedEventMixin model."""

    def __init__(self, session, model):
        self.session = session
        self.model = model

    def seen(self, event_id):
        return self.session.get(self.model, event_id) is not None

    def claim(self, event_id, now):
        """True for the first claim of `event_id`; False when it was (or is being) handled.

        One INSERT that skips a duplicate key (MariaDB/MySQL, SQLite); elsewhere an INSERT
        in a savepoint, which costs two more round trips."""
        prefix = _INSERT_SKIPPING_DUPLICATES.get(self.session.get_bind().dialect.name)
        if prefix is None:
            try:
                with self.session.begin_nested():
                    self.session.add(self.model(event_id=event_id, processed_at=now))
            except IntegrityError:
                return False
            return True
        claim = _claims.get((self.model, prefix))
        if claim is None:  # built once per table and database kind
            claim = _claims[self.model, prefix] = sa.insert(self.model.__table__).prefix_with(prefix)
        return self.session.execute(claim, {"event_id": event_id, "processed_at": now}).rowcount == 1


# The INSERT prefix that makes a duplicate key skip the row (rowcount 0) instead of failing;
# it waits for a concurrent insert of the same key to commit or roll back, as a plain INSERT.
_INSERT_SKIPPING_DUPLICATES = {"mysql": "IGNORE", "mariadb": "IGNORE", "sqlite": "OR IGNORE"}

_claims = {}


class InvalidEvent(ValueError):
    """A producer tried to record an event its own contract does not allow."""


class EventRecorder:
    """Records events in the caller's transaction, each checked against the schema its
    producer owns (common.contracts.events) first: an event no consumer could load is a bug
    in the producer, refused here with the transaction rather than parked downstream.
    Plain Python: domain code gets one."""

    def __init__(self, model, source=None):
        self.model = model
        # The producing service: `auth` for auth_service.models.OutboxMessage.
        self.source = source or model.__module__.split(".")[0].removesuffix("_service")

    def record(self, session, event_type, **fields):
        body = envelope(fields)
        self._check(event_type, body)
        stored = {**body, HEADERS_KEY: headers} if (headers := correlation_headers()) else body
        session.add(self.model(
            event_id=body["event_id"], event_type=event_type,
            payload=json.dumps(stored, default=str),
            created_at=utcnow(),
        ))
        session.info["outbox_dirty"] = True
        return body


    def _check(self, event_type, body):
        try:
            schema = schema_of(self.source, event_type)
            schema().load_or_raise(json.loads(json.dumps(body, default=str)))
        except (UnknownEvent, ValidationError) as error:
            raise InvalidEvent(f"{self.source}.{event_type}: {getattr(error, 'details', error)}") from None
