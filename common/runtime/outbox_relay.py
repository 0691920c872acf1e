"""The outbox relay: publishes committed outbox rows (common.storage.outbox) to the
service's `<service>.events` exchange with publisher confirms, then marks them."""
import json
import logging

import eventlet
import kombu
import nameko
import sqlalchemy as sa
from eventlet.queue import Empty, LightQueue
from nameko.extensions import DependencyProvider
from nameko.standalone.events import get_event_exchange

from common.clock import utcnow
from common.errors import ServiceUnavailable
from common.runtime.database import Database
from common.storage.outbox import HEADERS_KEY, EventRecorder

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT = 5  # seconds to wait for the broker's confirm before calling it a failure


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
        except (ServiceUnavailable, sa.exc.DBAPIError) as error:  # the rows could not be read or marked
            log.warning("outbox: database unavailable (%s); events wait for the next attempt", error)
        except Exception as error:
            log.warning("outbox: broker unavailable (%s); events wait for the next attempt", error)
