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
import logging
import uuid
from datetime import datetime

import eventlet
import kombu
import nameko
import sqlalchemy as sa
from eventlet.queue import Empty, LightQueue
from nameko.extensions import DependencyProvider
from nameko.standalone.events import get_event_exchange
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from common.contracts.events import UnknownEvent, schema_of
from common.db import Database, UtcDateTime, utcnow
from common.errors import ValidationError
from common.logging import correlation_headers

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT = 5  # seconds to wait for the broker's confirm before calling it a failure
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
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True, default=None)


class ProcessedEventMixin:
    """Columns of a consuming service's `processed_events` table: each event_id it has
    applied, claimed in the same transaction as the effect (at-least-once in, once in effect)."""

    __tablename__ = "processed_events"

    event_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(UtcDateTime)


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


class OutboxRelay:
    """Publishes committed outbox rows in order, with publisher confirms, then marks them."""

    def __init__(self, sessions, model, amqp_uri, service_name, batch_size=100):
        self.sessions = sessions
        self.model = model
        self.amqp_uri = amqp_uri
        self.exchange = get_event_exchange(service_name)
        self.batch_size = batch_size
        self._connection = None
        # Built once: a relay runs after every commit that records events.
        table = model.__table__
        self._waiting = (
            sa.select(table.c.id, table.c.event_type, table.c.payload)
            .where(table.c.published_at.is_(None))
            .order_by(table.c.id)
            .limit(batch_size)
            .with_for_update(skip_locked=True))  # several instances relay side by side, never twice
        self._mark = (sa.update(table).where(table.c.id.in_(sa.bindparam("ids", expanding=True)))
                      .values(published_at=sa.bindparam("now")))

    def relay_pending(self, known_pending=False):
        """Publish what is waiting; returns how many went out. Raises if the broker fails,
        after keeping every row that did go out marked as sent. `known_pending`: a commit
        just recorded events, so the count that saves a poll from connecting is skipped
        (two round trips per event)."""
        if not known_pending and not self.pending_count():
            return 0
        # Connect before locking rows: an unreachable broker must not hold the database.
        producer = self._producer()
        sent = []
        with self.sessions.transaction() as session:
            # Plain rows, not ORM objects, and one UPDATE for the whole batch at the end:
            # a relay pass is three round trips to the database however many events it sends.
            rows = session.execute(self._waiting).all()
            try:
                for row in rows:
                    body = json.loads(row.payload)
                    headers = body.pop(HEADERS_KEY, None) or {}
                    producer.publish(
                        body, headers=headers,
                        exchange=self.exchange, routing_key=row.event_type,
                        serializer="json", delivery_mode=2, declare=[self.exchange],
                        retry=False, timeout=PUBLISH_TIMEOUT,
                    )
                    sent.append(row.id)
            except Exception:
                self.close()
                if sent:  # what did go out is marked, so it never goes out twice
                    self._mark_published(session, sent)
                    session.commit()
                raise
            if sent:
                self._mark_published(session, sent)
        return len(sent)

    def _mark_published(self, session, ids):
        session.execute(self._mark, {"ids": ids, "now": utcnow()})

    def _producer(self):
        if self._connection is None:
            self._connection = kombu.Connection(
                self.amqp_uri, transport_options={"confirm_publish": True},
                connect_timeout=5,
            )
            self._connection.connect()  # fail fast: the next poll is the retry
        return kombu.Producer(self._connection)

    def close(self):
        if self._connection is not None:
            try:
                self._connection.release()
            except Exception:  # the connection is already broken; nothing to release
                log.debug("closing broken outbox connection", exc_info=True)
            self._connection = None

    def pending_count(self):
        with self.sessions.transaction() as session:
            return session.scalar(
                sa.select(sa.func.count()).select_from(self.model).where(
                    self.model.published_at.is_(None)))


class Outbox(DependencyProvider):
    """Gives workers an `EventRecorder`, and runs the relay in the background: right
    after each commit that recorded events, and every OUTBOX.poll_interval_seconds."""

    def __init__(self, model):
        self.model = model

    def setup(self):
        config = nameko.config
        outbox_config = config.get("OUTBOX") or {}
        self.poll_interval = float(outbox_config.get("poll_interval_seconds", 2))
        database = next(d for d in self.container.dependencies if isinstance(d, Database))
        self.relay = OutboxRelay(
            database.sessions, self.model, config["AMQP_URI"], self.container.service_name,
            batch_size=int(outbox_config.get("batch_size", 100)),
        )
        self.recorder = EventRecorder(self.model, self.container.service_name)
        self._wakeups = LightQueue()
        sa.event.listen(database.sessions.factory, "after_commit", self._after_commit)
        self._running = False

    def start(self):
        self._running = True
        self.container.spawn_managed_thread(self._run)

    def stop(self):
        self._running = False
        self._wakeups.put(None)
        self.relay.close()

    def kill(self):
        self.stop()

    def get_dependency(self, worker_ctx):
        return self.recorder

    def _after_commit(self, session):
        if session.info.pop("outbox_dirty", False):
            self._wakeups.put(None)

    def _run(self):
        while self._running:
            try:
                self._wakeups.get(timeout=self.poll_interval)
                woken = True  # by a commit that recorded events (or by stop)
            except Empty:
                woken = False
            while self._wakeups.qsize():
                self._wakeups.get_nowait()
            if not self._running:
                break
            self._relay_all(known_pending=woken)

    def _relay_all(self, known_pending=False):
        try:
            while self.relay.relay_pending(known_pending) == self.relay.batch_size:
                known_pending = True  # a full batch: more may wait
                eventlet.sleep(0)
        except Exception as error:
            log.warning("outbox: broker unavailable (%s); events wait for the next attempt", error)
