"""The transactional outbox: an event recorded with its state change is published after
commit, survives a broker outage, and goes out exactly once."""
import eventlet
import pytest
from nameko.testing.services import entrypoint_hook

from auth_service.models import OutboxMessage
from auth_service.service import AuthService
from common.runtime.outbox_relay import OutboxRelay
from common.storage.outbox import EventRecorder
from tests.conftest import first_words
from tests.fakes.tcp_proxy import TcpProxy
from tests.service.amqp_probe import EventProbe

UNREACHABLE = "amqp://guest:guest@127.0.0.1:1//"


@pytest.fixture
def probe(service_config):
    probe = EventProbe(service_config["AMQP_URI"], "auth")
    yield probe
    probe.close()


def _record(auth_db, **fields):
    with auth_db.transaction() as session:
        return EventRecorder(OutboxMessage).record(session, "user_registered", **fields)


def test_relay_keeps_events_while_the_broker_is_down_and_sends_them_once_later(
        auth_db, service_config, probe):
    body = _record(auth_db, user_id=7, email="e@example.com", name=None, phone=None)

    down = OutboxRelay(auth_db, OutboxMessage, UNREACHABLE, "auth")
    with pytest.raises((OSError, ConnectionError)):
        down.relay_pending()
    assert down.pending_count() == 1

    up = OutboxRelay(auth_db, OutboxMessage, service_config["AMQP_URI"], "auth")
    assert up.relay_pending() == 1
    assert up.relay_pending() == 0
    up.close()
    assert probe.drain(timeout=5) == [("user_registered", body)]
    assert probe.drain(timeout=0.5) == []  # and never twice


def test_nothing_is_published_for_a_rolled_back_transaction(auth_db, service_config, probe):
    with pytest.raises(RuntimeError):
        with auth_db.transaction() as session:
            EventRecorder(OutboxMessage).record(session, "user_registered", user_id=1)
            raise RuntimeError("state change failed")
    relay = OutboxRelay(auth_db, OutboxMessage, service_config["AMQP_URI"], "auth")
    assert relay.relay_pending() == 0
    assert probe.drain(timeout=0.5) == []


def test_a_relay_woken_by_a_commit_skips_the_pending_count(auth_db, service_config, probe, sent_statements):
    body = _record(auth_db, user_id=8)
    statements = sent_statements(auth_db)
    relay = OutboxRelay(auth_db, OutboxMessage, service_config["AMQP_URI"], "auth")
    assert relay.relay_pending(known_pending=True) == 1
    relay.close()
    assert not [statement for statement in statements if "count(" in statement.lower()]
    assert probe.drain(timeout=5) == [("user_registered", body)]


def test_a_relay_pass_marks_its_whole_batch_in_one_update(auth_db, service_config, probe, sent_statements):
    bodies = [_record(auth_db, user_id=user_id) for user_id in (11, 12, 13)]
    statements = sent_statements(auth_db)
    relay = OutboxRelay(auth_db, OutboxMessage, service_config["AMQP_URI"], "auth")
    assert relay.relay_pending(known_pending=True) == 3
    relay.close()
    # (SQLite also sends its BEGIN IMMEDIATE.)
    assert [word for word in first_words(statements) if word != "BEGIN"] == ["SELECT", "UPDATE"]
    assert " IN (" in statements[-1]  # one statement for the three rows, not one per row
    assert relay.pending_count() == 0
    assert probe.drain(want=3, timeout=5) == [("user_registered", body) for body in bodies]


class _BrokerLostAfter(OutboxRelay):
    """A relay whose connection breaks after `sends` publishes."""

    def __init__(self, *args, sends):
        super().__init__(*args)
        self.sends = sends

    def _producer(self):
        producer = super()._producer()
        publish = producer.publish

        def failing_publish(*args, **kwargs):
            if self.sends == 0:
                raise ConnectionError("connection lost")
            self.sends -= 1
            return publish(*args, **kwargs)

        producer.publish = failing_publish
        return producer


def test_events_sent_before_the_broker_failed_mid_batch_are_never_sent_again(auth_db, service_config, probe):
    bodies = [_record(auth_db, user_id=user_id) for user_id in (21, 22, 23)]
    broken = _BrokerLostAfter(auth_db, OutboxMessage, service_config["AMQP_URI"], "auth", sends=2)
    with pytest.raises(ConnectionError):
        broken.relay_pending(known_pending=True)
    assert broken.pending_count() == 1

    relay = OutboxRelay(auth_db, OutboxMessage, service_config["AMQP_URI"], "auth")
    assert relay.relay_pending() == 1
    relay.close()
    assert probe.drain(want=4, timeout=3) == [("user_registered", body) for body in bodies]


def test_registration_during_a_broker_outage_is_announced_once_the_broker_is_back(
        auth_db, service_config, container_factory, probe):
    host, port = "127.0.0.1", 5672
    proxy = TcpProxy(host, port)
    vhost = service_config["AMQP_URI"].rsplit("/", 1)[1]
    proxied = dict(service_config, AMQP_URI=f"amqp://guest:guest@127.0.0.1:{proxy.port}/{vhost}")
    container = container_factory(AuthService, proxied)
    container.start()
    try:
        proxy.cut()
        with entrypoint_hook(container, "register") as register:
            user = register({"email": "outage@example.com", "password": "password-123"})
        eventlet.sleep(1.0)  # several relay attempts fail meanwhile
        assert OutboxRelay(auth_db, OutboxMessage, UNREACHABLE, "auth").pending_count() == 1
        assert probe.drain(timeout=0.3) == []

        proxy.restore()
        received = probe.drain(timeout=8)
        assert [(kind, body["user_id"]) for kind, body in received] == [("user_registered", user["id"])]
        eventlet.sleep(1.0)  # several more relay rounds: the event must not go out again
        assert probe.drain(timeout=0.3) == []
    finally:
        proxy.close()
