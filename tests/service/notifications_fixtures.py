"""Fixtures for the notifications service: its migrated database, the SendGrid and Twilio
fakes, a config pointing the real SDKs at them with short retry delays, and helpers that
publish the events auth, reservations and payments publish."""
import time
import uuid
from datetime import UTC, datetime

import eventlet
import pytest
import sqlalchemy as sa
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ServiceRpcClient

import common.runtime.rpc  # noqa: F401  (registers our errors so they arrive typed)
from notifications_service.models import Notification
from notifications_service.service import NotificationsService
from tests.conftest import drop_databases, migrated
from tests.fakes.sendgrid_fake import SendGridFake
from tests.fakes.twilio_fake import TwilioFake
from tests.service.amqp_probe import EventProbe

MAX_ATTEMPTS = 4
BASE_DELAY = 0.2  # retries after 0.2, 0.4, 0.8 s


@pytest.fixture
def notifications_db(db_template):
    sessions = migrated(db_template, "notifications", "notifications_service")
    yield sessions
    sessions.dispose()
    drop_databases(db_template, ["notifications"])


@pytest.fixture
def sendgrid():
    fake = SendGridFake()
    yield fake
    fake.close()


@pytest.fixture
def twilio():
    fake = TwilioFake()
    yield fake
    fake.close()


@pytest.fixture
def notifications_config(service_config, sendgrid, twilio):
    return dict(service_config, NOTIFICATIONS={
        "sendgrid_api_key": sendgrid.api_key, "sendgrid_api_base": sendgrid.url,
        "twilio_account_sid": twilio.account_sid, "twilio_auth_token": twilio.auth_token,
        "twilio_api_base": twilio.url, "twilio_from_number": "+15005550006",
        "email_from": "Bookify <no-reply@bookify.test>",
        "provider_timeout_seconds": 2, "max_attempts": MAX_ATTEMPTS, "retry_base_delay_seconds": BASE_DELAY,
    })


@pytest.fixture
def start_notifications(notifications_db, notifications_config, container_factory):
    """Start a notifications container (a new one each call, as after a restart)."""

    def start():
        container = container_factory(NotificationsService, notifications_config)
        container.start()
        return container

    return start


@pytest.fixture
def notifications(start_notifications):
    return start_notifications()


@pytest.fixture
def rpc(notifications_config):
    with ServiceRpcClient("notifications", timeout=30) as client:
        yield client


@pytest.fixture
def dispatch(notifications_config):
    return event_dispatcher()


@pytest.fixture
def probe(notifications_config):
    probe = EventProbe(notifications_config["AMQP_URI"], "notifications")
    yield probe
    probe.close()


def envelope(**fields):
    return {"event_id": str(uuid.uuid4()), "occurred_at": datetime.now(UTC).isoformat(), **fields}


def user_registered(user_id, email="ann@example.com", phone="+14155550100", name="Ann",
                    notify_email=True, notify_sms=True):
    return envelope(user_id=user_id, email=email, name=name, phone=phone, source="self",
                    notify_email=notify_email, notify_sms=notify_sms)


def reservation_event(user_id, reservation_id=12, amount=7500, currency="usd", **extra):
    return envelope(reservation_id=reservation_id, user_id=user_id, place_id=3,
                    start="2027-01-01T10:00:00+00:00", end="2027-01-01T13:00:00+00:00",
                    amount=amount, currency=currency, **extra)


def payment_event(user_id, amount=7500, currency="usd", reason=None):
    return envelope(payment_id=42, reservation_id=12, user_id=user_id, amount=amount, currency=currency,
                    reason=reason)


def stored(sessions, **where):
    """Notification rows, oldest first, filtered by column values."""
    with sessions.transaction() as session:
        query = sa.select(Notification).filter_by(**where).order_by(Notification.id)
        return session.scalars(query).all()


def wait_until(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        eventlet.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def settled(sessions, count, **where):
    """Wait until `count` notifications matching `where` are sent or failed; returns them."""
    def done():
        rows = stored(sessions, **where)
        return rows if len(rows) >= count and all(r.status in ("sent", "failed") for r in rows) else None

    return wait_until(done, what=f"{count} settled notifications {where}")
