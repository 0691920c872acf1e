"""Consumers fed what no one should send them: random bytes, a 5 MB body, wrong JSON types,
and a handler that fails on every delivery. Each message ends in a dead-letter queue with
the reason (never dropped, never redelivered forever), and the consumer goes on consuming."""
import json
import os
import time
import uuid
from unittest import mock

import kombu
import pytest
from nameko.standalone.rpc import ServiceRpcClient

from common.errors import ServiceUnavailable
from common.runtime.dead_letters import DeadLetterQueue
from notifications_service.notifier import Notifier
from reservations_service.partners import PartnerDesk
from tests.service.notifications_fixtures import (  # noqa: F401  (fixtures)
    notifications,
    notifications_config,
    notifications_db,
    reservation_event,
    sendgrid,
    settled,
    start_notifications,
    twilio,
    user_registered,
)
from tests.service.test_partners import desk, request  # noqa: F401  (fixture)

EVENT_DEAD_LETTERS = "notifications.event_dead_letter"
RETRY_BASE = 0.2  # INBOX.base_delay_seconds in the tests' service_config
FIVE_MB = 5 * 1024 * 1024
SCHEMA = "reservations.reservation_confirmed fails its schema"
POISON = {  # body, content type, the reason it is parked with
    "random bytes": (os.urandom(4096), "application/json", "body is not JSON"),
    "not JSON at all": (b"<xml/>", "application/xml", "content type 'application/xml' is not JSON"),
    "5 MB of JSON": (json.dumps({"event_id": "x" * FIVE_MB}).encode(), "application/json", SCHEMA),
    "a JSON list": (b"[1, 2, 3]", "application/json", "body is a JSON list, not an object"),
    "a JSON string": (b'"reservation_confirmed"', "application/json", "body is a JSON str, not an object"),
    "wrong field types": (json.dumps({
        "event_id": 42, "occurred_at": "yesterday", "reservation_id": "twelve", "user_id": [1],
        "place_id": {"id": 3}, "start": None, "end": 1.5, "amount": "lots", "currency": 840}).encode(),
        "application/json", SCHEMA),
    "a partner booking without its guest's email": (json.dumps(dict(
        reservation_event(9, reservation_id=9), user_id=None, partner="acme", partner_ref="A-1",
        guest={"name": "Gus"})).encode(), "application/json", SCHEMA),
}


@pytest.fixture
def db_template(tmp_path):
    """These consumers' behaviour does not depend on the database: SQLite only."""
    return f"sqlite:///{tmp_path}/bookify_<service>.db"


def publish(amqp_uri, exchange, routing_key, body, content_type):
    """A raw publish, as any AMQP client can do."""
    with kombu.Connection(amqp_uri) as connection:
        kombu.Producer(connection).publish(
            body, exchange=kombu.Exchange(exchange, type="topic", durable=True), routing_key=routing_key,
            content_type=content_type, content_encoding="binary" if isinstance(body, bytes) else "utf-8",
            declare=[kombu.Exchange(exchange, type="topic", durable=True)])


def _raise(error):
    raise error


def dead_letters_of(queue, want, timeout=20):
    deadline = time.monotonic() + timeout
    while len(letters := queue.peek(100)) < want and time.monotonic() < deadline:
        time.sleep(0.1)
    return letters


def event_queue_depth(amqp_uri, name):
    with kombu.Connection(amqp_uri) as connection:
        _, messages, _ = kombu.Queue(name, durable=True)(connection.channel()).queue_declare(passive=True)
        return messages


# -- notifications: events from the other services ---------------------------------------

def _notified(notifications_db, notifications_config, user_id):  # noqa: F811
    """A good event is still handled: a registered user's confirmation is emailed."""
    uri = notifications_config["AMQP_URI"]
    publish(uri, "auth.events", "user_registered", json.dumps(user_registered(user_id, phone=None)).encode(),
            "application/json")
    settled(notifications_db, 1, user_id=user_id, template="welcome")
    publish(uri, "reservations.events", "reservation_confirmed",
            json.dumps(reservation_event(user_id, reservation_id=user_id)).encode(), "application/json")
    return settled(notifications_db, 1, user_id=user_id, template="reservation_confirmed")


@pytest.mark.parametrize("poison", list(POISON))
def test_a_poison_event_is_dead_lettered_with_the_reason_and_the_consumer_carries_on(
        poison, notifications, notifications_db, notifications_config):  # noqa: F811
    body, content_type, expected = POISON[poison]
    uri = notifications_config["AMQP_URI"]
    publish(uri, "reservations.events", "reservation_confirmed", body, content_type)
    [letter] = dead_letters_of(DeadLetterQueue(uri, EVENT_DEAD_LETTERS), 1)
    assert letter["routing_key"] == "reservation_confirmed"
    assert letter["reason"].startswith(expected), letter["reason"]
    assert not notifications._died.ready()
    assert _notified(notifications_db, notifications_config, 77)
    queue = "evt-reservations-reservation_confirmed--notifications.on_reservation_confirmed"
    assert event_queue_depth(uri, queue) == 0  # nothing left behind, nothing looping


def test_an_event_whose_handler_always_fails_is_retried_with_backoff_then_dead_lettered(
        notifications, notifications_db, notifications_config):  # noqa: F811
    uri = notifications_config["AMQP_URI"]
    event = reservation_event(5, reservation_id=501)
    calls = []
    with mock.patch.object(Notifier, "notify", side_effect=lambda *a: calls.append(time.monotonic()) or
                           _raise(RuntimeError("renderer exploded"))):
        publish(uri, "reservations.events", "reservation_confirmed", json.dumps(event).encode(), "application/json")
        [letter] = dead_letters_of(DeadLetterQueue(uri, EVENT_DEAD_LETTERS), 1)
        time.sleep(1)  # a looping redelivery would keep calling it meanwhile
    attempts = notifications_config["INBOX"]["max_attempts"]
    assert len(calls) == attempts  # then no more
    gaps = [later - earlier for earlier, later in zip(calls, calls[1:], strict=False)]
    assert all(gap >= 0.8 * RETRY_BASE * 2 ** i for i, gap in enumerate(gaps)), gaps  # each wait doubles
    assert letter["reason"] == f"failed {attempts} times: RuntimeError: renderer exploded"
    assert json.loads(letter["body"])["event_id"] == event["event_id"]  # kept whole, for a replay
    assert _notified(notifications_db, notifications_config, 78)
    # Once the fault is fixed, operators replay it and it is handled.
    with ServiceRpcClient("notifications", timeout=10) as rpc:
        assert [d["reason"] for d in rpc.list_event_dead_letters(10)] == [letter["reason"]]
        publish(uri, "auth.events", "user_registered", json.dumps(user_registered(5, phone=None)).encode(),
                "application/json")
        settled(notifications_db, 1, user_id=5, template="welcome")
        assert rpc.replay_event_dead_letters() == 1
    settled(notifications_db, 1, user_id=5, template="reservation_confirmed")


# -- reservations: partner messages -------------------------------------------------------

PARTNER_POISON = {
    "random bytes": (os.urandom(4096), "body is not JSON"),
    "5 MB of JSON": (json.dumps({"event_id": str(uuid.uuid4()), "partner": "acme-travel",
                                 "partner_ref": "x" * FIVE_MB}).encode(), "reservation_requested fails its schema"),
    "a JSON list": (b"[1, 2, 3]", "body is a JSON list, not an object"),
    "wrong field types": (json.dumps({
        "event_id": 7, "partner": ["acme"], "partner_ref": {"ref": 1}, "place_id": "one", "start": 5,
        "end": None, "guest": "Grace"}).encode(), "reservation_requested fails its schema"),
}


@pytest.mark.parametrize("poison", list(PARTNER_POISON))
def test_a_poison_partner_message_is_dead_lettered_and_the_consumer_carries_on(poison, desk):  # noqa: F811
    place, publish_partner, probe, dead_letters = desk
    body, reason = PARTNER_POISON[poison]
    publish_partner("reservation_requested", body)
    [letter] = dead_letters_of(dead_letters, 1)
    assert letter["reason"].startswith(reason), letter["reason"][:300]
    publish_partner("reservation_requested", request(place.id))
    assert "partner_reservation_confirmed" in [kind for kind, _ in probe.drain(want=2, timeout=10)]


def test_a_partner_message_whose_handling_always_fails_is_retried_then_dead_lettered(desk):  # noqa: F811
    place, publish_partner, probe, dead_letters = desk
    with mock.patch.object(PartnerDesk, "book", side_effect=RuntimeError("database melted")) as book:
        publish_partner("reservation_requested", request(place.id))
        [letter] = dead_letters_of(dead_letters, 1)
        time.sleep(1)
        assert book.call_count == 5
    assert letter["reason"] == "failed 5 times: RuntimeError: database melted"
    publish_partner("reservation_requested", request(place.id))
    assert "partner_reservation_confirmed" in [kind for kind, _ in probe.drain(want=2, timeout=10)]


def test_an_event_arriving_while_the_database_is_away_waits_for_it_and_is_not_dead_lettered(
        notifications, notifications_db, notifications_config):  # noqa: F811
    uri = notifications_config["AMQP_URI"]
    publish(uri, "auth.events", "user_registered", json.dumps(user_registered(6, phone=None)).encode(),
            "application/json")
    settled(notifications_db, 1, user_id=6, template="welcome")
    real_notify, failures = Notifier.notify, []

    def database_away_three_times(self, *args):
        if len(failures) < 3:
            failures.append(1)
            raise ServiceUnavailable("The database is unavailable; try again shortly", {"service": "database"})
        return real_notify(self, *args)

    with mock.patch.object(Notifier, "notify", database_away_three_times):
        publish(uri, "reservations.events", "reservation_confirmed",
                json.dumps(reservation_event(6, reservation_id=601)).encode(), "application/json")
        settled(notifications_db, 1, user_id=6, template="reservation_confirmed")
    assert len(failures) == 3
    assert DeadLetterQueue(uri, EVENT_DEAD_LETTERS).peek(10) == []
