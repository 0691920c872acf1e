"""Partner systems book over AMQP: raw publishes to `partners.events`, answers on
`reservations.events`, and anything malformed kept in a dead-letter queue with the reason."""
import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import kombu
import pytest

from common.runtime.dead_letters import DeadLetterQueue
from reservations_service.places import Places
from reservations_service.service import PARTNER_DEAD_LETTERS, ReservationsService
from tests.service.amqp_probe import EventProbe

START = (datetime.now(timezone.utc) + timedelta(days=3)).replace(hour=10, minute=0, second=0, microsecond=0)


@pytest.fixture
def desk(reservations_db, service_config, container_factory):
    """The reservations service, a place to book, a partner's connection and our ears."""
    place = Places(reservations_db).create(
        {"name": "Dock", "unit": "hour", "unit_price": 1500, "currency": "usd", "timezone": "UTC"})
    container = container_factory(ReservationsService, service_config)
    container.start()
    probe = EventProbe(service_config["AMQP_URI"], "reservations")
    connection = kombu.Connection(service_config["AMQP_URI"])
    exchange = kombu.Exchange("partners.events", type="topic", durable=True)

    def publish(routing_key, body, content_type="application/json"):
        """What any partner's AMQP client does: a raw body on the partners exchange."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        kombu.Producer(connection).publish(raw, exchange=exchange, routing_key=routing_key, declare=[exchange],
                                           content_type=content_type, content_encoding="utf-8")

    yield place, publish, probe, DeadLetterQueue(service_config["AMQP_URI"], PARTNER_DEAD_LETTERS)
    probe.close()
    connection.release()


def request(place_id, ref=None, start=START, hours=2, **extra):
    return {"event_id": str(uuid.uuid4()), "partner": "acme-travel", "partner_ref": ref or uuid.uuid4().hex,
            "place_id": place_id, "start": start.isoformat(), "end": (start + timedelta(hours=hours)).isoformat(),
            "guest": {"name": "Grace Guest", "email": "grace@example.com"}, **extra}


def answers(probe, want=1, timeout=10):
    return [(kind, body) for kind, body in probe.drain(want=want, timeout=timeout) if kind.startswith("partner_")]



def test_a_valid_request_books_and_is_confirmed(desk, reservations_db):
    place, publish, probe, _ = desk
    publish("reservation_requested", request(place.id, ref="R-1"))
    received = probe.drain(want=2, timeout=10)
    kinds = [kind for kind, _ in received]
    assert sorted(kinds) == ["partner_reservation_confirmed", "reservation_confirmed"]
    confirmed = dict(received)["partner_reservation_confirmed"]
    assert (confirmed["partner"], confirmed["partner_ref"]) == ("acme-travel", "R-1")
    assert {"event_id", "occurred_at", "reservation_id"} <= set(confirmed)


def test_a_duplicate_is_not_booked_twice(desk, reservations_db):
    place, publish, probe, _ = desk
    first = request(place.id, ref="R-2")
    publish("reservation_requested", first)
    publish("reservation_requested", first)  # the very same event delivered twice
    publish("reservation_requested", dict(first, event_id=str(uuid.uuid4())))  # the partner retried
    received = probe.drain(want=4, timeout=6)
    confirmations = [body for kind, body in received if kind == "partner_reservation_confirmed"]
    assert len(confirmations) == 2 and len({c["reservation_id"] for c in confirmations}) == 1
    assert [kind for kind, _ in received].count("reservation_confirmed") == 1


def test_a_conflicting_request_is_rejected_with_a_reason(desk):
    place, publish, probe, _ = desk
    publish("reservation_requested", request(place.id, ref="R-3"))
    assert "partner_reservation_confirmed" in [kind for kind, _ in probe.drain(want=2, timeout=10)]
    publish("reservation_requested", request(place.id, ref="R-4", start=START + timedelta(hours=1)))
    [(kind, reply)] = answers(probe)
    assert (kind, reply["partner_ref"], reply["reason"]) == ("partner_reservation_rejected", "R-4", "slot_unavailable")


def test_requests_against_the_place_rules_are_rejected_with_what_to_change(desk, reservations_db):
    place, publish, probe, _ = desk
    Places(reservations_db).update(place.id, {"capacity": 3, "slot_minutes": 30})
    publish("reservation_requested", request(place.id, ref="Q-1", quantity=2))
    assert "partner_reservation_confirmed" in [kind for kind, _ in probe.drain(want=2, timeout=10)]
    publish("reservation_requested", request(place.id, ref="Q-2", quantity=2))
    [(_, reply)] = answers(probe)
    assert reply["reason"] == 'slot_unavailable: {"quantity": 2, "remaining": 1}'
    publish("reservation_requested", request(place.id, ref="Q-3", quantity=4))
    [(_, reply)] = answers(probe)
    assert reply["reason"].startswith('invalid_quantity: {"quantity": ')
    publish("reservation_requested", request(place.id, ref="Q-4", start=START + timedelta(minutes=10)))
    [(_, reply)] = answers(probe)
    assert reply["reason"].startswith('invalid_window: {"end": ') and '"start": ' in reply["reason"]


def test_racing_requests_for_one_slot_book_one(desk):
    place, publish, probe, _ = desk
    for ref in ("R-7", "R-8", "R-9"):
        publish("reservation_requested", request(place.id, ref=ref))
    replies = answers(probe, want=6, timeout=10)
    assert sorted(kind for kind, _ in replies) == ["partner_reservation_confirmed"] + [
        "partner_reservation_rejected"] * 2


def test_cancel_requested_frees_the_slot(desk):
    place, publish, probe, _ = desk
    publish("reservation_requested", request(place.id, ref="R-5"))
    probe.drain(want=2, timeout=10)
    publish("reservation_cancel_requested", {"event_id": str(uuid.uuid4()), "partner": "acme-travel",
                                             "partner_ref": "R-5"})
    received = dict(probe.drain(want=2, timeout=10))
    assert sorted(received) == ["partner_reservation_cancelled", "reservation_cancelled"]
    told = received["partner_reservation_cancelled"]
    assert (told["partner"], told["partner_ref"], told["reason"]) == ("acme-travel", "R-5", "cancelled by acme-travel")
    assert told["reservation_id"] == received["reservation_cancelled"]["reservation_id"]
    cancelled = received["reservation_cancelled"]
    assert (cancelled["user_id"], cancelled["refund_amount"], cancelled["guest"]) == (
        None, 0, {"name": "Grace Guest", "email": "grace@example.com", "phone": None})
    publish("reservation_requested", request(place.id, ref="R-6"))
    assert "partner_reservation_confirmed" in [kind for kind, _ in probe.drain(want=2, timeout=10)]


@pytest.mark.parametrize("body,reason", [
    (b"this is { not json", "body is not JSON"),
    ({"event_id": "e1", "partner": "acme-travel"}, "reservation_requested fails its schema"),
])
def test_malformed_messages_end_in_the_dead_letter_queue_with_the_reason(desk, body, reason):
    place, publish, probe, dead_letters = desk
    publish("reservation_requested", body)
    deadline = time.monotonic() + 10
    while not (letters := dead_letters.peek()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(letters) == 1 and letters[0]["reason"].startswith(reason)
    assert letters[0]["routing_key"] == "reservation_requested"
    assert dead_letters.peek() == letters  # peeking leaves them there
    # The consumer is alive and well: the next good request books.
    publish("reservation_requested", request(place.id))
    assert "partner_reservation_confirmed" in [kind for kind, _ in probe.drain(want=2, timeout=10)]


def test_operators_list_and_replay_partner_dead_letters(desk, service_config):
    from nameko.standalone.rpc import ServiceRpcClient

    place, publish, _, dead_letters = desk
    publish("reservation_requested", b"\xff\xfe not even text")
    with ServiceRpcClient("reservations", timeout=10) as reservations:
        deadline = time.monotonic() + 10
        while not (letters := reservations.list_partner_dead_letters(10)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(letters) == 1 and "not JSON" in letters[0]["reason"]
        # Replayed to partners.events, it is judged again (and, still broken, kept again).
        assert reservations.replay_partner_dead_letters() == 1
        deadline = time.monotonic() + 10
        while not dead_letters.peek() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(dead_letters.peek()) == 1
