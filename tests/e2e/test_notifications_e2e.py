"""Notifications end to end: a booking through the HTTP API reaches the customer as one
email (SendGrid SDK → local fake) and one SMS (Twilio SDK → local fake); users who opted
out get none; the delivery log is readable over HTTP."""
import time
from datetime import datetime, timedelta, timezone

import eventlet
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
    place = api.place()
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
