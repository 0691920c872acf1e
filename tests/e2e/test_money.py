"""Money adds up, end to end over HTTP (and AMQP / the operators' RPC where that is the
door): every payment of a booking is refunded on a full cancellation, a dearer move is paid
by the card that paid the booking, bookings keep the price they were booked at, late ones
stay put, what cannot be charged is refused before any hold, free places book free, partner
bookings cancel without a refund, and a move racing a cancel ends in 409, never 500."""
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import kombu
from nameko.standalone.rpc import ClusterRpcClient

import common.runtime.rpc  # noqa: F401  (registers our errors so they arrive typed)
from common.contracts.payments import MAX_AMOUNT
from tests.e2e.test_booking_api import _error, at  # noqa: E402  (the booking journeys' helpers)


def _move(api, token, reservation_id, start, end, **extra):
    return api.request("PATCH", f"/v1/reservations/{reservation_id}", token=token,
                       json={"start": start.isoformat(), "end": end.isoformat(), **extra})


def _cancel(api, token, reservation_id, **body):
    return api.post(f"/v1/reservations/{reservation_id}/cancel", token=token, json=body)


def _payments(api, token, reservation):
    return [api.get(f"/v1/payments/{pid}", token=token).json() for pid in reservation["payment_ids"]]


def _operators(api):
    return ClusterRpcClient(timeout=30, uri=api.stack.env["AMQP_URI"])


def test_a_dearer_move_is_paid_by_the_saved_card_and_a_full_cancel_refunds_every_payment(api):
    place = api.place(unit_price=2500)
    _, tokens = api.customer()
    token = tokens["access_token"]
    booked = api.book(token, place["id"], at(5, 10), at(5, 11)).json()
    assert (booked["paid"], booked["refunded"], booked["payment_ids"], booked["quantity"]) == (
        2500, 0, [booked["payment_id"]], 1)
    moved = _move(api, token, booked["id"], at(5, 10), at(5, 13))  # no card: the one that paid
    assert moved.status_code == 200, moved.text
    moved = moved.json()
    assert (moved["amount"], moved["paid"], len(moved["payment_ids"])) == (7500, 7500, 2)
    extra = _payments(api, token, moved)[1]
    assert (extra["amount"], extra["status"]) == (5000, "succeeded")

    cancelled = _cancel(api, token, booked["id"])
    assert cancelled.status_code == 200, cancelled.text
    cancelled = cancelled.json()
    assert (cancelled["refund_amount"], cancelled["paid"], cancelled["refunded"]) == (7500, 7500, 7500)
    assert [(p["status"], p["refunded_amount"]) for p in _payments(api, token, cancelled)] == [
        ("refunded", 2500), ("refunded", 5000)]


def test_a_card_given_to_a_move_pays_it(api):
    place = api.place(unit_price=1000)
    _, tokens = api.customer()
    token = tokens["access_token"]
    booked = api.book(token, place["id"], at(5, 14), at(5, 15)).json()
    declined = _move(api, token, booked["id"], at(5, 14), at(5, 16), payment_method="pm_card_chargeCustomerFail")
    _error(declined, 402, "payment_declined")  # the card given is the one charged
    kept = api.get(f"/v1/reservations/{booked['id']}", token=token).json()
    assert (kept["end"], kept["paid"]) == (booked["end"], 1000)


def test_a_booking_keeps_the_price_it_was_booked_at(api):
    place = api.place(unit_price=3000)
    _, tokens = api.customer()
    token = tokens["access_token"]
    admin = api.admin_token()
    booked = api.book(token, place["id"], at(6, 10), at(6, 12)).json()
    changed = api.request("PATCH", f"/v1/places/{place['id']}", token=admin,
                          json={"unit_price": 1800, "currency": "eur"})
    assert changed.status_code == 200, changed.text
    moved = _move(api, token, booked["id"], at(7, 10), at(7, 12)).json()  # same length: same price
    assert (moved["amount"], moved["currency"], moved["unit_price"], moved["paid"], moved["refunded"]) == (
        6000, "usd", 3000, 6000, 0)
    assert moved["payment_ids"] == booked["payment_ids"]


def test_a_booking_within_the_full_refund_window_cannot_be_moved(api):
    place = api.place()
    _, tokens = api.customer()
    token = tokens["access_token"]
    # On the place's hourly grid (an off-grid window is refused before anything is booked), two
    # to three hours ahead: well inside the full-refund window.
    soon = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) + timedelta(hours=3)
    booked = api.book(token, place["id"], soon, soon + timedelta(hours=1))
    assert booked.status_code == 201, booked.text
    booked = booked.json()
    error = _error(_move(api, token, booked["id"], at(20, 10), at(20, 11)), 409, "conflict")
    assert "start" in error["details"]
    assert api.get(f"/v1/reservations/{booked['id']}", token=token).json()["start"] == booked["start"]
    late = _cancel(api, token, booked["id"]).json()  # still a late cancellation: half back
    assert (late["refund_amount"], late["refunded"], late["paid"]) == (1250, 1250, 2500)


def test_a_price_that_cannot_be_charged_is_refused_before_any_hold(api):
    place = api.place(unit_price=2_000_000)
    _, tokens = api.customer()
    token = tokens["access_token"]
    start = at(2, 0)
    error = _error(api.book(token, place["id"], start, start + timedelta(days=300)), 400, "validation_error")
    assert list(error["details"]) == ["end"] and str(MAX_AMOUNT) in error["details"]["end"][0]
    free = api.get(f"/v1/places/{place['id']}/availability", token=token, params={
        "from": start.isoformat(), "to": (start + timedelta(days=30)).isoformat()}).json()
    assert free["booked"] == []  # no pending hold
    _, other = api.customer()
    assert api.book(other["access_token"], place["id"], at(3, 10), at(3, 11)).status_code == 201


def test_a_free_place_books_without_a_card_and_a_priced_one_needs_one(api):
    free = api.place(unit_price=0)
    priced = api.place(unit_price=100)
    _, tokens = api.customer()
    token = tokens["access_token"]
    body = {"place_id": free["id"], "start": at(8, 10).isoformat(), "end": at(8, 12).isoformat()}
    booked = api.post("/v1/reservations", token=token, json=body)
    assert booked.status_code == 201, booked.text
    booked = booked.json()
    assert (booked["status"], booked["amount"], booked["paid"], booked["payment_id"], booked["payment_ids"]) == (
        "confirmed", 0, 0, None, [])
    error = _error(api.post("/v1/reservations", token=token, json=dict(body, place_id=priced["id"])),
                   400, "validation_error")
    assert list(error["details"]) == ["payment_method"]
    assert api.get("/v1/reservations", token=token, params={"place_id": priced["id"]}).json()["total"] == 0


def test_an_operator_refund_is_followed_and_a_cancel_refunds_only_what_is_left(api):
    place = api.place(unit_price=5000)
    _, tokens = api.customer()
    token = tokens["access_token"]
    booked = api.book(token, place["id"], at(9, 10), at(9, 11)).json()
    with _operators(api) as n:
        n.payments.refund(booked["payment_id"], 1000, "goodwill", f"operator-{uuid.uuid4().hex}")
    deadline = time.monotonic() + 15  # payment_refunded reaches reservations
    while api.get(f"/v1/reservations/{booked['id']}", token=token).json()["refunded"] != 1000:
        assert time.monotonic() < deadline, "the operator's refund never reached the reservation"
        time.sleep(0.2)
    cancelled = _cancel(api, token, booked["id"]).json()
    assert (cancelled["refund_amount"], cancelled["refunded"], cancelled["paid"]) == (4000, 5000, 5000)


def test_cancelling_a_partner_booking_refunds_nothing_and_tells_the_partner(api):
    place = api.place(unit_price=5000)
    uri = api.stack.env["AMQP_URI"]
    ref = f"P-{uuid.uuid4().hex[:8]}"
    with kombu.Connection(uri) as connection:
        partners = kombu.Exchange("partners.events", type="topic", durable=True)
        ours = kombu.Exchange("reservations.events", type="topic", durable=True)
        queue = kombu.Queue(f"e2e-partner-{ref}", exchange=ours, routing_key="#", auto_delete=True)
        queue(connection).declare()
        body = {"event_id": str(uuid.uuid4()), "partner": "acme-travel", "partner_ref": ref, "place_id": place["id"],
                "start": at(10, 10).isoformat(), "end": at(10, 12).isoformat(),
                "guest": {"name": "Grace Guest", "email": "grace@example.com", "phone": "+15550100"}}
        kombu.Producer(connection).publish(json.dumps(body).encode(), exchange=partners,
                                           routing_key="reservation_requested", declare=[partners],
                                           content_type="application/json", content_encoding="utf-8")
        seen = _receive(connection, queue, {"partner_reservation_confirmed", "reservation_confirmed"})
        confirmed = seen["reservation_confirmed"]
        assert confirmed["user_id"] is None and confirmed["guest"]["email"] == "grace@example.com"
        reservation_id = seen["partner_reservation_confirmed"]["reservation_id"]

        cancelled = _cancel(api, api.admin_token(), reservation_id, reason="venue closed")
        assert cancelled.status_code == 200, cancelled.text
        cancelled = cancelled.json()
        assert (cancelled["status"], cancelled["refund_amount"], cancelled["paid"], cancelled["refunded"]) == (
            "cancelled", 0, 0, 0)
        seen = _receive(connection, queue, {"partner_reservation_cancelled", "reservation_cancelled"})
        told = seen["partner_reservation_cancelled"]
        assert (told["partner"], told["partner_ref"], told["reservation_id"], told["reason"]) == (
            "acme-travel", ref, reservation_id, "venue closed")
        assert seen["reservation_cancelled"]["refund_amount"] == 0
    time.sleep(1)  # the sweep runs on its own timer; the row is no trouble to it
    again = api.get(f"/v1/reservations/{reservation_id}", token=api.admin_token()).json()
    assert (again["refund_amount"], again["refunded"]) == (0, 0)


def _receive(connection, queue, kinds, timeout=15):
    seen = {}
    deadline = time.monotonic() + timeout
    while not kinds <= set(seen):
        assert time.monotonic() < deadline, f"only {sorted(seen)} of {sorted(kinds)}"
        message = queue(connection).get(no_ack=True)
        if message is None:
            time.sleep(0.1)
            continue
        seen.setdefault(message.delivery_info["routing_key"], json.loads(message.body))
    return seen


def test_a_move_racing_a_cancel_ends_in_409_never_500(api):
    place = api.place(unit_price=1000)
    _, tokens = api.customer()
    token = tokens["access_token"]
    outcomes = []
    for round_ in range(6):
        booked = api.book(token, place["id"], at(12 + round_, 10), at(12 + round_, 11)).json()

        def act(what, booked=booked, round_=round_):
            if what == "move":
                return _move(api, token, booked["id"], at(12 + round_, 14), at(12 + round_, 16))
            return _cancel(api, token, booked["id"])

        with ThreadPoolExecutor(max_workers=2) as pool:
            move, cancel = pool.map(act, ["move", "cancel"])
        outcomes.append((move.status_code, cancel.status_code))
        assert move.status_code in (200, 409) and cancel.status_code in (200, 409), (move.text, cancel.text)
        final = api.get(f"/v1/reservations/{booked['id']}", token=token).json()
        if final["status"] == "cancelled":
            assert final["refunded"] == final["paid"], final  # a full refund of whatever was paid
        else:
            assert cancel.status_code == 409 and final["paid"] == final["amount"]
    assert all(200 in pair for pair in outcomes), outcomes  # one of the two always went through
