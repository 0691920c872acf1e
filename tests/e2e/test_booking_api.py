"""Booking end to end: places, availability, reservations paid through localstripe with
the real Stripe SDK, refunds, reschedules, webhooks, and every way a request can be wrong."""
import hashlib
import hmac
import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import requests

from tests.e2e.conftest import WEBHOOK_SECRET


def at(days, hour, minute=0):
    """A moment `days` from today at `hour` UTC: far enough ahead to book and refund."""
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return today + timedelta(days=days, hours=hour, minutes=minute)


def _error(response, status, code):
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code, response.text
    return response.json()["error"]


def _free(api, token, place_id, start, end):
    response = api.get(f"/v1/places/{place_id}/availability", token=token,
                       params={"from": start.isoformat(), "to": end.isoformat()})
    assert response.status_code == 200, response.text
    return response.json()


def test_book_and_pay(api):
    place = api.place(unit="hour", unit_price=2500, slot_minutes=30)
    _, tokens = api.customer()
    response = api.book(tokens["access_token"], place["id"], at(3, 10), at(3, 12, 30))
    assert response.status_code == 201, response.text
    reservation = response.json()
    assert reservation["status"] == "confirmed"
    assert (reservation["amount"], reservation["currency"]) == (3 * 2500, "usd")  # 2.5 h: 3 hours started
    payment = api.get(f"/v1/payments/{reservation['payment_id']}", token=tokens["access_token"]).json()
    assert (payment["status"], payment["amount"], payment["reservation_id"]) == (
        "succeeded", 7500, reservation["id"])
    assert api.get(f"/v1/reservations/{reservation['id']}", token=tokens["access_token"]).json() == reservation


def test_overlap_is_409_and_adjacent_is_fine(api):
    place = api.place(slot_minutes=1)
    _, first = api.customer()
    _, second = api.customer()
    assert api.book(first["access_token"], place["id"], at(4, 10), at(4, 12)).status_code == 201
    _error(api.book(second["access_token"], place["id"], at(4, 11, 59), at(4, 13)), 409, "slot_unavailable")
    _error(api.book(second["access_token"], place["id"], at(4, 9), at(4, 10, 1)), 409, "slot_unavailable")
    assert api.book(second["access_token"], place["id"], at(4, 12), at(4, 13)).status_code == 201
    assert api.book(second["access_token"], place["id"], at(4, 9), at(4, 10)).status_code == 201


def test_availability_lists_booked_and_free(api):
    place = api.place()
    _, tokens = api.customer()
    api.book(tokens["access_token"], place["id"], at(5, 10), at(5, 12))
    api.book(tokens["access_token"], place["id"], at(5, 12), at(5, 13))
    result = _free(api, tokens["access_token"], place["id"], at(5, 8), at(5, 18))
    parse = datetime.fromisoformat
    assert [(parse(i["start"]), parse(i["end"])) for i in result["booked"]] == [(at(5, 10), at(5, 13))]
    assert [(parse(i["start"]), parse(i["end"])) for i in result["free"]] == [
        (at(5, 8), at(5, 10)), (at(5, 13), at(5, 18))]


def test_declined_card_is_402_and_the_window_stays_free(api):
    place = api.place()
    _, tokens = api.customer()
    declined = api.book(tokens["access_token"], place["id"], at(6, 10), at(6, 11),
                        payment_method="pm_card_chargeCustomerFail")
    _error(declined, 402, "payment_declined")
    assert _free(api, tokens["access_token"], place["id"], at(6, 10), at(6, 11))["booked"] == []
    assert api.book(tokens["access_token"], place["id"], at(6, 10), at(6, 11)).status_code == 201


def test_idempotent_retry_charges_once(api):
    place = api.place()
    user, tokens = api.customer()
    key = f"key-{uuid.uuid4()}"
    first = api.book(tokens["access_token"], place["id"], at(7, 10), at(7, 11), key=key)
    again = api.book(tokens["access_token"], place["id"], at(7, 10), at(7, 11), key=key)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    mine = api.get("/v1/reservations", token=tokens["access_token"]).json()
    assert mine["total"] == 1
    # The same key with another body is refused, and books nothing.
    _error(api.book(tokens["access_token"], place["id"], at(7, 12), at(7, 13), key=key), 409, "conflict")
    assert api.get("/v1/reservations", token=tokens["access_token"]).json()["total"] == 1


def test_someone_elses_reservation_is_404_to_read_and_cancel(api):
    place = api.place()
    _, owner = api.customer()
    _, other = api.customer()
    reservation = api.book(owner["access_token"], place["id"], at(8, 10), at(8, 11)).json()
    _error(api.get(f"/v1/reservations/{reservation['id']}", token=other["access_token"]), 404, "not_found")
    _error(api.post(f"/v1/reservations/{reservation['id']}/cancel", token=other["access_token"], json={}),
           404, "not_found")
    _error(api.get(f"/v1/payments/{reservation['payment_id']}", token=other["access_token"]), 404, "not_found")
    assert api.get("/v1/reservations", token=other["access_token"]).json()["total"] == 0
    # An admin with reservations:read_any sees it.
    admin = api.admin_token()
    assert api.get(f"/v1/reservations/{reservation['id']}", token=admin).status_code == 200
    assert api.get(f"/v1/payments/{reservation['payment_id']}", token=admin).status_code == 200


def test_cancel_refunds_and_frees_the_window(api):
    place = api.place()
    _, tokens = api.customer()
    reservation = api.book(tokens["access_token"], place["id"], at(9, 10), at(9, 12)).json()
    response = api.post(f"/v1/reservations/{reservation['id']}/cancel", token=tokens["access_token"],
                        json={"reason": "plans changed"})
    assert response.status_code == 200, response.text
    cancelled = response.json()
    assert (cancelled["status"], cancelled["refund_amount"]) == ("cancelled", reservation["amount"])
    payment = api.get(f"/v1/payments/{reservation['payment_id']}", token=tokens["access_token"]).json()
    assert payment["status"] == "refunded" and payment["refunded_amount"] == reservation["amount"]
    assert _free(api, tokens["access_token"], place["id"], at(9, 10), at(9, 12))["booked"] == []
    assert api.book(tokens["access_token"], place["id"], at(9, 10), at(9, 12)).status_code == 201
    # Cancelling twice is a conflict, not a second refund.
    _error(api.post(f"/v1/reservations/{reservation['id']}/cancel", token=tokens["access_token"], json={}),
           409, "conflict")


def test_late_cancel_refunds_the_configured_share(api):
    place = api.place(unit_price=1000)
    _, tokens = api.customer()
    soon = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) + timedelta(hours=2)
    reservation = api.book(tokens["access_token"], place["id"], soon, soon + timedelta(hours=2)).json()
    cancelled = api.post(f"/v1/reservations/{reservation['id']}/cancel", token=tokens["access_token"],
                         json={}).json()
    assert cancelled["refund_amount"] == reservation["amount"] // 2  # REFUND_LATE_PERCENT 50
    payment = api.get(f"/v1/payments/{reservation['payment_id']}", token=tokens["access_token"]).json()
    assert payment["status"] == "partially_refunded"


def test_reschedule_reprices(api):
    place = api.place(unit_price=2000)
    _, tokens = api.customer()
    reservation = api.book(tokens["access_token"], place["id"], at(10, 10), at(10, 12)).json()
    assert reservation["amount"] == 4000
    longer = api.request("PATCH", f"/v1/reservations/{reservation['id']}", token=tokens["access_token"],
                         json={"start": at(10, 14).isoformat(), "end": at(10, 17).isoformat(),
                               "payment_method": "pm_card_visa"})
    assert longer.status_code == 200, longer.text
    assert (longer.json()["amount"], longer.json()["start"]) == (6000, at(10, 14).isoformat())
    assert _free(api, tokens["access_token"], place["id"], at(10, 10), at(10, 12))["booked"] == []
    shorter = api.request("PATCH", f"/v1/reservations/{reservation['id']}", token=tokens["access_token"],
                          json={"start": at(10, 14).isoformat(), "end": at(10, 15).isoformat()})
    assert shorter.status_code == 200 and shorter.json()["amount"] == 2000
    # 6000 paid in all (two payments), 2000 kept: the refund drew on the newest payment first.
    moved = shorter.json()
    assert (moved["paid"], moved["refunded"], len(moved["payment_ids"])) == (6000, 4000, 2)
    payments = [api.get(f"/v1/payments/{pid}", token=tokens["access_token"]).json() for pid in moved["payment_ids"]]
    assert [(p["amount"], p["refunded_amount"]) for p in payments] == [(4000, 2000), (2000, 2000)]


def test_reschedule_onto_a_taken_window_is_409(api):
    place = api.place()
    _, tokens = api.customer()
    first = api.book(tokens["access_token"], place["id"], at(11, 10), at(11, 11)).json()
    api.book(tokens["access_token"], place["id"], at(11, 12), at(11, 13))
    _error(api.request("PATCH", f"/v1/reservations/{first['id']}", token=tokens["access_token"],
                       json={"start": at(11, 12).isoformat(), "end": at(11, 13).isoformat()}),
           409, "slot_unavailable")


def test_place_with_upcoming_reservations_cannot_be_deleted(api):
    place = api.place()
    _, tokens = api.customer()
    admin = api.admin_token()
    reservation = api.book(tokens["access_token"], place["id"], at(12, 10), at(12, 11)).json()
    _error(api.request("DELETE", f"/v1/places/{place['id']}", token=admin), 409, "conflict")
    api.post(f"/v1/reservations/{reservation['id']}/cancel", token=tokens["access_token"], json={})
    assert api.request("DELETE", f"/v1/places/{place['id']}", token=admin).status_code == 204
    _error(api.get(f"/v1/places/{place['id']}", token=admin), 404, "not_found")


def test_customers_cannot_manage_places(api):
    _, tokens = api.customer()
    _error(api.post("/v1/places", token=tokens["access_token"], json={
        "name": "Mine", "unit": "hour", "unit_price": 1, "currency": "usd"}), 403, "forbidden")


def test_bad_booking_input_is_4xx_and_books_nothing(api):
    place = api.place()
    _, tokens = api.customer()
    token = tokens["access_token"]
    body = {"place_id": place["id"], "start": at(13, 10).isoformat(), "end": at(13, 11).isoformat(),
            "payment_method": "pm_card_visa"}
    cases = [
        (api.post("/v1/reservations", token=token, data="{oops"), 400, "body"),
        (api.post("/v1/reservations", token=token, json=dict(body, place_id="1")), 400, "place_id"),
        (api.post("/v1/reservations", token=token, json=dict(body, start=at(13, 12).isoformat())), 400, "end"),
        (api.post("/v1/reservations", token=token, json=dict(
            body, start=at(-2, 10).isoformat(), end=at(-2, 11).isoformat())), 400, "start"),
        (api.post("/v1/reservations", token=token, json=dict(body, start="2030-01-01T10:00:00")), 400, "start"),
        (api.post("/v1/reservations", token=token, json=dict(
            body, start=at(800, 10).isoformat(), end=at(800, 11).isoformat())), 400, "end"),
        (api.post("/v1/reservations", token=token, json={k: v for k, v in body.items() if k != "end"}),
         400, "end"),
    ]
    for response, status, field in cases:
        error = _error(response, status, "validation_error")
        assert field in error["details"], error
    _error(api.post("/v1/reservations", token=token, json=dict(body, place_id=999999)), 404, "not_found")
    assert api.get("/v1/reservations", token=token).json()["total"] == 0
    assert _free(api, token, place["id"], at(13, 0), at(14, 0))["booked"] == []


def _signed(payload, secret, timestamp=None):
    timestamp = timestamp or int(time.time())
    signature = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={signature}"


def test_webhook_signature_refused_when_wrong_and_applied_once_when_right(api):
    event = {"id": f"evt_{uuid.uuid4().hex}", "object": "event", "type": "customer.created",
             "data": {"object": {"id": "cus_x", "object": "customer"}}, "api_version": "2020-08-27",
             "created": int(time.time()), "livemode": False}
    payload = json.dumps(event)
    url = api.base_url + "/v1/webhooks/stripe"
    wrong = requests.post(url, data=payload, headers={"Stripe-Signature": _signed(payload, "whsec_wrong")})
    _error(wrong, 400, "validation_error")
    unsigned = requests.post(url, data=payload)
    _error(unsigned, 400, "validation_error")
    right = requests.post(url, data=payload, headers={"Stripe-Signature": _signed(payload, WEBHOOK_SECRET)})
    assert right.status_code == 200 and right.json() == {"received": True, "duplicate": False}
    again = requests.post(url, data=payload, headers={"Stripe-Signature": _signed(payload, WEBHOOK_SECRET)})
    assert again.status_code == 200 and again.json()["duplicate"] is True


def test_signed_but_malformed_webhooks_and_stale_or_future_ones_are_400_never_500(api):
    """Stripe's signature proves who sent a body, not that it is an event we can read: each of
    these used to be a 500 (or, an hour ahead, accepted)."""
    url = api.base_url + "/v1/webhooks/stripe"
    intent = {"id": "pi_x", "object": "payment_intent", "status": "succeeded", "amount": 100, "currency": "usd",
              "metadata": {"payment_id": "1", "payment_ref": "x"}}

    def event(**data_object):
        return {"id": f"evt_{uuid.uuid4().hex}", "object": "event", "type": "payment_intent.succeeded",
                "data": {"object": dict(intent, **data_object)}}

    malformed = ["[1,2]", '"evt"', "{}", json.dumps({"id": "evt_1", "type": "payment_intent.succeeded",
                                                      "data": {"object": "pi_x"}}),
                 json.dumps(event(metadata=["payment_id", "1"])),
                 json.dumps(event(metadata={"payment_id": "1" * 23, "payment_ref": "x"})),
                 json.dumps(event(amount="100")), json.dumps(event(status=None)),
                 json.dumps({"id": "evt_1", "type": "payment_intent.succeeded"})]
    for payload in malformed:
        response = requests.post(url, data=payload, headers={"Stripe-Signature": _signed(payload, WEBHOOK_SECRET)})
        error = _error(response, 400, "validation_error")
        assert (error["message"], list(error["details"])) == ("Invalid Stripe event", ["payload"]), payload

    payload = json.dumps(event())
    for skew in (-3600, 3600):  # replayed an hour late, or signed an hour ahead
        signature = _signed(payload, WEBHOOK_SECRET, timestamp=int(time.time()) + skew)
        error = _error(requests.post(url, data=payload, headers={"Stripe-Signature": signature}),
                       400, "validation_error")
        assert (error["message"], list(error["details"])) == ("Invalid Stripe signature", ["signature"])
    # The same event signed now is read, and is about no payment of ours: recorded, nothing else.
    right = requests.post(url, data=payload, headers={"Stripe-Signature": _signed(payload, WEBHOOK_SECRET)})
    assert right.status_code == 200 and right.json() == {"received": True, "duplicate": False}
