"""Delivering one notification against a real database and scripted providers: sent once,
temporary failures retried with exponential delays then given up, permanent ones given up
at once, a second delivery of the same notification ignored or made to wait, and replay."""
import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from common.storage.outbox import EventRecorder
from notifications_service.delivery import (
    DEAD,
    DEFER,
    DONE,
    KEEP_PARKED,
    RETRY,
    RETRY_AFTER_STEPS,
    Deliveries,
    RetryPolicy,
)
from notifications_service.models import Notification, OutboxMessage
from notifications_service.providers import (
    ProviderOutcomeUnknown,
    ProviderPermanentError,
    ProviderTemporaryError,
)
from tests.conftest import first_words
from tests.service.notifications_fixtures import notifications_db  # noqa: F401  (fixture)

T0 = datetime(2027, 1, 1, 9, tzinfo=UTC)


class ScriptedProvider:
    """Answers each send with the next scripted result: an id, or an exception to raise."""

    def __init__(self, *script):
        self.script = list(script)
        self.sent = []

    def send(self, message):
        result = self.script.pop(0) if self.script else "msg-default"
        if isinstance(result, Exception):
            raise result
        self.sent.append(message)
        return result

    def for_channel(self, channel):
        return self


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def notification(notifications_db):  # noqa: F811
    def create(channel="email", status="queued", attempts=0):
        with notifications_db.transaction() as session:
            row = Notification(user_id=7, channel=channel, template="reservation_confirmed",
                               recipient="ann@example.com" if channel == "email" else "+14155550100",
                               subject="Reservation #12 is confirmed" if channel == "email" else None,
                               body="Paid 75.00 USD", html="<p>Paid</p>" if channel == "email" else None,
                               status=status, attempts=attempts, event_id=f"evt-{channel}-{status}-{attempts}",
                               created_at=T0, updated_at=T0)
            session.add(row)
            session.flush()
            return row.id
    return create


def _deliveries(db, provider, clock, max_attempts=3):
    return Deliveries(db, EventRecorder(OutboxMessage), provider, RetryPolicy(max_attempts, 0.5),
                      lease_seconds=15, clock=clock)


def _row(db, notification_id):
    with db.transaction() as session:
        return session.get(Notification, notification_id)


def _events(db):
    with db.transaction() as session:
        return [(m.event_type, json.loads(m.payload)) for m in session.scalars(
            sa.select(OutboxMessage).order_by(OutboxMessage.id))]


def test_retry_delays_double_from_the_base():
    policy = RetryPolicy(max_attempts=5, base_delay_seconds=30)
    assert [policy.delay(attempt) for attempt in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert policy.delays() == [30, 60, 120, 240]
    assert not policy.exhausted(4) and policy.exhausted(5)


def test_a_sent_notification_records_the_provider_id_and_is_announced(notifications_db, notification, clock):  # noqa: F811
    notification_id = notification()
    provider = ScriptedProvider("sg-123")
    outcome = _deliveries(notifications_db, provider, clock).deliver(notification_id)

    assert (outcome.action, outcome.notification_id) == (DONE, notification_id)
    row = _row(notifications_db, notification_id)
    assert (row.status, row.attempts, row.provider_message_id, row.sending_until) == ("sent", 1, "sg-123", None)
    [message] = provider.sent
    assert (message.to, message.subject, message.text, message.html) == (
        "ann@example.com", "Reservation #12 is confirmed", "Paid 75.00 USD", "<p>Paid</p>")
    [(kind, body)] = _events(notifications_db)
    assert kind == "notification_sent"
    assert {k: body[k] for k in ("notification_id", "user_id", "channel", "template", "attempts")} == {
        "notification_id": notification_id, "user_id": 7, "channel": "email",
        "template": "reservation_confirmed", "attempts": 1}

    # Its message delivered again: acknowledged, nothing sent.
    again = _deliveries(notifications_db, provider, clock).deliver(notification_id)
    assert (again.action, again.reason) == (DONE, "already sent")
    assert len(provider.sent) == 1 and _row(notifications_db, notification_id).attempts == 1


def test_a_delivery_records_its_result_without_reading_the_row_again(
        notifications_db, notification, clock, sent_statements):  # noqa: F811
    notification_id = notification()
    sent = sent_statements(notifications_db)
    _deliveries(notifications_db, ScriptedProvider("sg-124"), clock).deliver(notification_id)
    # The claim reads the row under its lock and counts the attempt; the result is one
    # UPDATE and notification_sent in the outbox.
    assert [word for word in first_words(sent) if word != "BEGIN"] == ["SELECT", "UPDATE", "UPDATE", "INSERT"]
    assert _row(notifications_db, notification_id).provider_message_id == "sg-124"


def test_temporary_failures_are_retried_with_growing_delays_then_given_up(notifications_db, notification, clock):  # noqa: F811
    notification_id = notification(channel="sms")
    provider = ScriptedProvider(*[ProviderTemporaryError("503 down")] * 3)
    deliveries = _deliveries(notifications_db, provider, clock, max_attempts=3)

    outcomes = [deliveries.deliver(notification_id) for _ in range(3)]
    assert [(o.action, o.delay) for o in outcomes] == [(RETRY, 0.5), (RETRY, 1.0), (DEAD, 0.0)]
    assert "gave up after 3 attempts: 503 down" in outcomes[-1].reason
    row = _row(notifications_db, notification_id)
    assert (row.status, row.attempts, row.sending_until) == ("failed", 3, None)
    assert [kind for kind, _ in _events(notifications_db)] == ["notification_failed"]

    # A message for it that comes back is parked again (its dead letter may have been lost).
    assert deliveries.deliver(notification_id).action == DEAD


def test_a_retrying_notification_shows_its_last_error(notifications_db, notification, clock):  # noqa: F811
    notification_id = notification()
    _deliveries(notifications_db, ScriptedProvider(ProviderTemporaryError("timed out")), clock).deliver(
        notification_id)
    row = _row(notifications_db, notification_id)
    assert (row.status, row.attempts, row.last_error) == ("retrying", 1, "timed out")
    assert _events(notifications_db) == []


def test_a_permanent_refusal_fails_at_once(notifications_db, notification, clock):  # noqa: F811
    notification_id = notification(channel="sms")
    outcome = _deliveries(notifications_db, ScriptedProvider(ProviderPermanentError("400 21211: bad number")),
                          clock).deliver(notification_id)
    assert (outcome.action, outcome.reason) == (DEAD, "refused: 400 21211: bad number")
    row = _row(notifications_db, notification_id)
    assert (row.status, row.attempts, row.last_error) == ("failed", 1, "refused: 400 21211: bad number")


def test_an_unexpected_provider_error_counts_as_a_temporary_failure(notifications_db, notification, clock):  # noqa: F811
    notification_id = notification()
    outcome = _deliveries(notifications_db, ScriptedProvider(KeyError("bug")), clock).deliver(notification_id)
    assert outcome.action == RETRY and "unexpected error" in outcome.reason


def test_a_delivery_while_another_is_sending_waits_out_its_lease(notifications_db, notification, clock):  # noqa: F811
    notification_id = notification()
    with notifications_db.transaction() as session:  # a worker claimed it and is talking to SendGrid
        session.get(Notification, notification_id).sending_until = T0 + timedelta(seconds=10)
    provider = ScriptedProvider("sg-1")
    outcome = _deliveries(notifications_db, provider, clock).deliver(notification_id)
    assert (outcome.action, outcome.delay) == (DEFER, 15)
    assert provider.sent == [] and _row(notifications_db, notification_id).attempts == 0

    clock.now = T0 + timedelta(seconds=11)  # that worker died mid-call: its lease ran out
    assert _deliveries(notifications_db, provider, clock).deliver(notification_id).action == DONE
    assert _row(notifications_db, notification_id).status == "sent"


def test_requeue_makes_a_failed_notification_sendable_and_keeps_its_attempts(
        notifications_db, notification, clock):  # noqa: F811
    deliveries = _deliveries(notifications_db, ScriptedProvider(), clock)
    failed, sent, retrying = notification(status="failed", attempts=3), notification(status="sent", attempts=1), \
        notification(status="retrying", attempts=1)
    assert deliveries.requeue(failed) == "email"  # sendable again, on the email work queue
    assert (_row(notifications_db, failed).status, _row(notifications_db, failed).attempts) == ("queued", 3)
    assert deliveries.requeue(failed) == "email"  # still queued: it still needs its delivery message
    assert deliveries.requeue(sent) is None and deliveries.requeue(retrying) is None
    assert deliveries.requeue(999999) is None
    assert _deliveries(notifications_db, ScriptedProvider("x"), clock).deliver(999999).action == DONE


# -- Retry-After -----------------------------------------------------------------------


def test_a_retry_after_longer_than_the_back_off_is_waited_rounded_up_to_a_step():
    policy = RetryPolicy(max_attempts=5, base_delay_seconds=3, max_delay_seconds=3600)
    assert policy.delay(1, retry_after=120) == 120       # a step itself: exactly that
    assert policy.delay(1, retry_after=121) == 180       # never sooner than asked: the next step up
    assert policy.delay(2, retry_after=4.2) == 6         # the back-off (3 * 2) is already longer
    assert policy.delay(1, retry_after=0) == 3           # a date in the past: the back-off
    assert policy.delay(1, retry_after=None) == 3
    for asked in (3.01, 5.01, 7.5, 59.5, 61, 299, 1000, 3599):
        wait = policy.delay(1, retry_after=asked)
        assert asked <= wait <= max(asked * 1.5, asked + 1) and wait in RETRY_AFTER_STEPS, asked
    wide = RetryPolicy(max_attempts=5, base_delay_seconds=1, max_delay_seconds=86400)
    for low, high in zip(RETRY_AFTER_STEPS, RETRY_AFTER_STEPS[1:], strict=False):
        assert wide.delay(1, retry_after=low + 0.01) == high <= max((low + 0.01) * 1.5, low + 1.01), low


def test_no_retry_waits_longer_than_the_maximum_whatever_the_provider_asks():
    policy = RetryPolicy(max_attempts=12, base_delay_seconds=30, max_delay_seconds=600)
    assert policy.delay(1, retry_after=7200) == 600
    assert policy.delay(1, retry_after=10 ** 9) == 600
    assert policy.delay(11) == 600  # the back-off is capped too (30 * 2**10 would be 8.5 hours)
    assert max(policy.delays()) == 600


def test_a_rate_limited_attempt_retries_after_the_providers_retry_after(notifications_db, notification, clock):  # noqa: F811
    notification_id = notification()
    provider = ScriptedProvider(ProviderTemporaryError("429 Too Many Requests", retry_after=120), "sg-9")
    deliveries = _deliveries(notifications_db, provider, clock)
    outcome = deliveries.deliver(notification_id)
    assert (outcome.action, outcome.delay) == (RETRY, 120)  # not the 0.5 s back-off
    row = _row(notifications_db, notification_id)
    assert (row.status, row.attempts) == ("retrying", 1)
    assert deliveries.deliver(notification_id).action == DONE


# -- an attempt with no answer ---------------------------------------------------------


def test_an_attempt_with_an_unknown_outcome_is_never_resent_and_is_parked_for_operators(
        notifications_db, notification, clock):  # noqa: F811
    notification_id = notification()
    provider = ScriptedProvider(ProviderOutcomeUnknown("SendGrid did not answer within 10 s"), "sg-2")
    deliveries = _deliveries(notifications_db, provider, clock, max_attempts=5)
    outcome = deliveries.deliver(notification_id)
    assert outcome.action == DEAD and outcome.reason.startswith("outcome unknown, not resent")
    row = _row(notifications_db, notification_id)
    assert (row.status, row.attempts, row.sending_until) == ("unknown", 1, None)
    assert "did not answer within 10 s" in row.last_error
    assert _events(notifications_db) == []  # neither sent nor failed is known

    # Its message coming back (a redelivery) parks it again and sends nothing.
    assert deliveries.deliver(notification_id).action == DEAD
    assert provider.sent == [] and _row(notifications_db, notification_id).attempts == 1

    # A replay of every dead letter leaves it parked; an operator naming it resends it.
    assert deliveries.requeue(notification_id) == KEEP_PARKED
    assert _row(notifications_db, notification_id).status == "unknown"
    assert deliveries.requeue(notification_id, named=True) == "email"
    assert deliveries.deliver(notification_id).action == DONE
    assert (_row(notifications_db, notification_id).status, len(provider.sent)) == ("sent", 1)


def test_routes_name_each_notifications_channel(notifications_db, notification, clock):  # noqa: F811
    email, sms = notification(channel="email"), notification(channel="sms")
    deliveries = _deliveries(notifications_db, ScriptedProvider(), clock)
    assert deliveries.routes([sms, email, 999999]) == [(sms, "sms"), (email, "email")]
    assert deliveries.routes([]) == []
