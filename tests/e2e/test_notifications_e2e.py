"""Notifications end to end: a booking through the HTTP API reaches the customer as one
email (SendGrid SDK → local fake) and one SMS (Twilio SDK → local fake); users who opted
out get none; the delivery log is readable over HTTP. A partner's booking, published over
AMQP as docs/partners.md shows, reaches its guest, and the admin finds it by reservation."""
import json
import time
import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import eventlet
import kombu
import pytest

from tests.conftest import BACKENDS
from tests.e2e.conftest import running_stack
from tests.fakes.sendgrid_fake import SendGridFake
from tests.fakes.twilio_fake import TwilioFake


@pytest.fixture(params=BACKENDS)
def notifying_api(request, tmp_path):
    sendgrid, twilio = SendGridFake(), TwilioFake()
    with running_stack(request.param, tmp_path, SENDGRID_API_KEY=sendgrid.api_key, SENDGRID_API_BASE=sendgrid.url,
                       TWILIO_ACCOUNT_SID=twilio.account_sid, TWILIO_AUTH_TOKEN=twilio.auth_token,
                       TWILIO_API_BASE=twilio.url, TWILIO_FROM_NUMBER="+15005550006",
                       NOTIFY_RETRY_BASE_DELAY="0.2") as api:
        yield api, sendgrid, twilio
    sendgrid.close()
    twilio.close()


def _to(messages, address):
    return [message for message in messages if message["to"] == address]


def test_a_booking_sends_one_email_and_one_sms_and_opted_out_users_get_none(notifying_api):
    api, sendgrid, twilio = notifying_api
    place = api.place(timezone="Europe/Paris")
    start = datetime.now(timezone.utc).replace(microsecond=0, second=0, minute=0) + timedelta(days=2)

    user = api.register(phone="+14155550123")
    token = api.login(user["email"], user["password"])["access_token"]
    assert api.book(token, place["id"], start, start + timedelta(hours=1)).status_code == 201

    quiet = api.register(phone="+14155550124")
    quiet_token = api.login(quiet["email"], quiet["password"])["access_token"]
    api.request("PATCH", "/v1/users/me", token=quiet_token, json={"notify_email": False, "notify_sms": False})
    assert api.book(quiet_token, place["id"], start + timedelta(hours=2), start + timedelta(hours=3)).status_code == 201

    def confirmed():
        return ([m for m in _to(sendgrid.messages, user["email"]) if "confirmed" in m["subject"].lower()],
                [m for m in _to(twilio.messages, "+14155550123") if "confirmed" in m["body"].lower()])

    deadline = time.monotonic() + 20
    while not all(confirmed()) and time.monotonic() < deadline:
        eventlet.sleep(0.1)
    eventlet.sleep(2)  # anything extra (a duplicate, a message to the opted-out user) would arrive by now
    confirmations, texts = confirmed()
    assert len(confirmations) == 1 and len(texts) == 1, (twilio.messages, twilio.errors, twilio.refused)
    assert "25.00 USD" in confirmations[0]["text"] and "25.00 USD" in texts[0]["body"]
    # The place by its name, the time as read in Paris, with the zone's name.
    local = start.astimezone(ZoneInfo("Europe/Paris"))
    shown = f"{local:%a %d %b %Y %H:%M} {local.tzname()} (Europe/Paris)"
    assert place["name"] in confirmations[0]["text"] and shown in confirmations[0]["text"], confirmations[0]["text"]
    assert shown in texts[0]["body"]
    # The opted-out user: the welcome went out before opting out; nothing about the booking.
    assert not [m for m in _to(sendgrid.messages, quiet["email"]) if "confirmed" in m["subject"].lower()]
    assert not [m for m in _to(twilio.messages, "+14155550124") if "confirmed" in m["body"].lower()]
    assert sendgrid.errors == [] and twilio.errors == []

    log = api.get("/v1/notifications", token=token).json()
    sent = {(item["channel"], item["template"]) for item in log["items"] if item["status"] == "sent"}
    assert {("email", "reservation_confirmed"), ("sms", "reservation_confirmed")} <= sent
    assert all(item["user_id"] == user["id"] for item in log["items"])
    everyone = api.get("/v1/notifications", token=api.admin_token()).json()
    assert everyone["total"] > log["total"]


def _partner_booking(amqp_uri, place_id, start):
    """Publish reservation_requested as docs/partners.md shows; the reservation id Bookify answers."""
    body = {"event_id": str(uuid.uuid4()), "partner": "acme-travel", "partner_ref": f"ACME-{uuid.uuid4().hex[:6]}",
            "place_id": place_id, "start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat(),
            "guest": {"name": "Grace Hopper", "email": "grace@example.com", "phone": "+14155550100"}}
    with kombu.Connection(amqp_uri) as connection:
        answers = kombu.Queue(exclusive=True, exchange=kombu.Exchange("reservations.events", type="topic",
                                                                      durable=True),
                              routing_key="partner_reservation_confirmed")(connection.default_channel)
        answers.declare()
        exchange = kombu.Exchange("partners.events", type="topic", durable=True)
        kombu.Producer(connection).publish(json.dumps(body), exchange=exchange, routing_key="reservation_requested",
                                           declare=[exchange], content_type="application/json", delivery_mode=2)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if (message := answers.get(no_ack=True)) is not None:
                answer = json.loads(message.body)
                assert answer["partner_ref"] == body["partner_ref"], answer
                return answer["reservation_id"]
            time.sleep(0.1)
    raise AssertionError("no partner_reservation_confirmed within 20 s")


def test_a_partner_bookings_guest_is_emailed_and_texted_and_the_admin_finds_it_by_reservation(notifying_api):
    api, sendgrid, twilio = notifying_api
    place = api.place()
    start = (datetime.now(timezone(timedelta(hours=1))) + timedelta(days=3)).replace(
        hour=10, minute=0, second=0, microsecond=0)
    reservation_id = _partner_booking(api.stack.env["AMQP_URI"], place["id"], start)
    admin = api.admin_token()

    def told():
        log = api.get(f"/v1/notifications?reservation_id={reservation_id}", token=admin).json()
        return log if log["total"] == 2 and all(item["status"] == "sent" for item in log["items"]) else None

    deadline = time.monotonic() + 20
    while not (log := told()) and time.monotonic() < deadline:
        eventlet.sleep(0.2)
    assert log, api.get(f"/v1/notifications?reservation_id={reservation_id}", token=admin).json()
    assert sorted((item["channel"], item["recipient"], item["template"], item["reservation_id"], item["user_id"])
                  for item in log["items"]) == [
        ("email", "grace@example.com", "reservation_confirmed", reservation_id, None),
        ("sms", "+14155550100", "reservation_confirmed", reservation_id, None)]
    [mail] = _to(sendgrid.messages, "grace@example.com")
    assert mail["subject"] == f"Reservation #{reservation_id} is confirmed"
    assert mail["text"].startswith("Hello Grace Hopper,") and "Booked through acme-travel" in mail["text"]
    [text] = _to(twilio.messages, "+14155550100")
    assert f"reservation #{reservation_id} confirmed" in text["body"]
    assert sendgrid.errors == [] and twilio.errors == []

    # A customer sees only their own: the guest's messages are not theirs.
    _, tokens = api.customer()
    mine = api.get(f"/v1/notifications?reservation_id={reservation_id}", token=tokens["access_token"])
    assert mine.status_code == 200 and mine.json() == {"items": [], "total": 0}
    for query in ("reservation_id=twelve", "reservation_id=0", "reservation=1"):
        refused = api.get(f"/v1/notifications?{query}", token=admin)
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "validation_error", query
    parameters = api.get("/openapi.json").json()["paths"]["/v1/notifications"]["get"]["parameters"]
    assert "reservation_id" in {parameter["name"] for parameter in parameters}
