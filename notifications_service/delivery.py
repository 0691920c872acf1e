"""Sending one notification, exactly once in effect, and what happens when it fails.

A delivery claims the row (attempt counted, a lease against a second sender) in one short
transaction, calls the provider outside any transaction, and records the result in another.
Its `Outcome` tells the transport what to do with the message: nothing more (sent, or
already handled), retry after a delay (provider 5xx or 429, no connection; exponential, and
never sooner than the provider's `Retry-After`), wait out another sender's lease, or park it
as a dead letter (a 4xx refusal, the last attempt failed, or an attempt whose outcome is
unknown). No nameko and no AMQP here.

An attempt that timed out after the request went out (`ProviderOutcomeUnknown`) may have
been delivered: neither SendGrid nor Twilio takes an idempotency key, so it is never sent
again on its own. It ends `unknown` and is parked for an operator, who may replay it
(docs/reliability.md, "A provider that answers too late").
"""
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from common.clock import utcnow
from common.contracts.notifications import FAILED, QUEUED, RETRYING, SENT, UNKNOWN
from common.storage.engines import UnitsOfWork
from common.storage.outbox import EventRecorder
from notifications_service.providers import (
    EmailMessage,
    ProviderOutcomeUnknown,
    ProviderPermanentError,
    ProviderTemporaryError,
    SmsMessage,
)
from notifications_service.repository import NotificationRepository

log = logging.getLogger(__name__)

# What the transport does with the delivery message.
DONE, RETRY, DEFER, DEAD = "done", "retry", "defer", "dead"
# What a replay does with a dead letter it may not send: leave it parked.
KEEP_PARKED = "keep parked"


# The waits a `Retry-After` is rounded up to. Each distinct wait is a retry queue (one TTL per
# queue keeps expiry in order), so the set must stay short; rounding up keeps "never sooner
# than asked" and costs at most half the wait again (or one second).
RETRY_AFTER_STEPS = (1, 2, 3, 4, 5, 7, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 300, 450, 600, 900,
                     1200, 1800, 2700, 3600, 5400, 7200, 10800, 14400, 21600, 28800, 43200, 64800, 86400)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay_seconds: float = 30.0
    max_delay_seconds: float = 3600.0  # no retry waits longer, whatever a provider asks

    def delay(self, attempt, retry_after=None):
        """Seconds to wait after failed attempt number `attempt` (1, 2, …): base * 2**(attempt-1),
        or the provider's `retry_after` rounded up to the next step when that is longer; never
        more than max_delay_seconds."""
        backoff = self.base_delay_seconds * 2 ** (attempt - 1)
        if retry_after is not None and retry_after > backoff:
            wait = next((step for step in RETRY_AFTER_STEPS if step >= retry_after), self.max_delay_seconds)
            return float(min(wait, self.max_delay_seconds))
        return min(backoff, self.max_delay_seconds)

    def exhausted(self, attempts):
        return attempts >= self.max_attempts

    def delays(self):
        """Every delay the back-off alone can wait (one per attempt that may still be followed by
        another). A `Retry-After` adds at most the steps up to max_delay_seconds."""
        return [self.delay(attempt) for attempt in range(1, self.max_attempts)]


@dataclass(frozen=True)
class Outcome:
    notification_id: int
    action: str
    delay: float = 0.0
    reason: str | None = None


@dataclass(frozen=True)
class _Claim:
    id: int
    user_id: int | None
    channel: str
    template: str
    recipient: str
    subject: str | None
    body: str
    html: str | None
    attempts: int

    def message(self):
        if self.channel == "email":
            return EmailMessage(to=self.recipient, subject=self.subject, text=self.body, html=self.html)
        return SmsMessage(to=self.recipient, body=self.body)


def _ignore_status(channel, status):
    """The default `on_status`: nothing counts the attempts."""


@dataclass
class Deliveries:
    """Sends each notification once through `providers` (`for_channel(channel).send(message)`)."""

    sessions: UnitsOfWork
    events: EventRecorder
    providers: object
    policy: RetryPolicy
    lease_seconds: float
    clock: Callable[[], datetime] = utcnow
    # Hears every attempt's result (channel, status): sent, retrying or failed (the metrics).
    on_status: Callable[[str, str], None] = _ignore_status

    @property
    def lease(self):
        return timedelta(seconds=self.lease_seconds)

    def deliver(self, notification_id):
        """Try to send a notification once; the Outcome says what becomes of its message."""
        claim = self._claim(notification_id)
        if isinstance(claim, Outcome):
            return claim
        try:
            message_id = self.providers.for_channel(claim.channel).send(claim.message())
        except ProviderPermanentError as error:
            return self._failed(claim, f"refused: {error}")
        except ProviderTemporaryError as error:
            return self._temporary(claim, str(error), error.retry_after)
        except ProviderOutcomeUnknown as error:
            return self._unknown(claim, str(error))
        except Exception as error:  # a bug in a provider: retried, then parked where operators look
            log.exception("notification %s: unexpected error from the %s provider", claim.id, claim.channel)
            return self._temporary(claim, f"unexpected error: {error!r}")
        return self._sent(claim, message_id)

    def requeue(self, notification_id, named=False):
        """A dead letter's notification made sendable again (failed or unknown → queued,
        attempts kept): its channel, or None when it needs no delivery (already sent,
        retrying, or no such notification). An `unknown` one may have arrived: it is sent
        again only when the operator `named` it, else it stays parked (KEEP_PARKED)."""
        with self.sessions.transaction() as session:
            notification = NotificationRepository(session).lock(notification_id)
            if notification is None or notification.status in (SENT, RETRYING):
                return None
            if notification.status == UNKNOWN and not named:
                return KEEP_PARKED
            if notification.status in (FAILED, UNKNOWN):
                notification.status, notification.updated_at = QUEUED, self.clock()
            return notification.channel

    def routes(self, notification_ids):
        """[(id, channel)] of the notifications that exist among `notification_ids`, in order:
        each channel has its own work queue."""
        with self.sessions.transaction() as session:
            channels = NotificationRepository(session).channels(notification_ids)
        return [(id_, channels[id_]) for id_ in notification_ids if id_ in channels]

    # -- steps ---------------------------------------------------------------------------

    def _claim(self, notification_id):
        now = self.clock()
        with self.sessions.transaction() as session:
            notification = NotificationRepository(session).lock(notification_id)
            if notification is None:
                log.warning("delivery for unknown notification %s dropped", notification_id)
                return Outcome(notification_id, DONE, reason="unknown notification")
            if notification.status == SENT:
                return Outcome(notification_id, DONE, reason="already sent")
            if notification.status in (FAILED, UNKNOWN):
                # Given up (or left to an operator) but its message came back: the dead letter
                # may never have been parked (broker trouble right then). Parking it again is
                # harmless; sending it is not.
                return Outcome(notification_id, DEAD, reason=notification.last_error or "failed")
            if notification.sending_until is not None and notification.sending_until > now:
                # One fixed wait (a whole lease, never less than what is left of it): a retry
                # queue per distinct delay stays a short list.
                return Outcome(notification_id, DEFER, self.lease.total_seconds(),
                               reason="another delivery is in progress")
            notification.attempts += 1
            notification.sending_until = now + self.lease
            notification.updated_at = now
            return _Claim(notification.id, notification.user_id, notification.channel, notification.template,
                          notification.recipient, notification.subject, notification.body, notification.html,
                          notification.attempts)

    def _sent(self, claim, message_id):
        with self.sessions.transaction() as session:
            self._finish(session, claim, SENT, provider_message_id=message_id, last_error=None)
            self._announce(session, "notification_sent", claim)
        self.on_status(claim.channel, SENT)
        log.info("notification %s (%s %s) sent on attempt %s", claim.id, claim.channel, claim.template,
                 claim.attempts)
        return Outcome(claim.id, DONE)

    def _temporary(self, claim, error, retry_after=None):
        if self.policy.exhausted(claim.attempts):
            return self._failed(claim, f"gave up after {claim.attempts} attempts: {error}")
        with self.sessions.transaction() as session:
            self._finish(session, claim, RETRYING, last_error=error[:500])
        self.on_status(claim.channel, RETRYING)
        delay = self.policy.delay(claim.attempts, retry_after)
        log.info("notification %s: attempt %s failed (%s); retry in %.1fs", claim.id, claim.attempts, error, delay)
        return Outcome(claim.id, RETRY, delay, reason=error)

    def _unknown(self, claim, error):
        """No answer after the request went out: maybe delivered. Not sent again on its own,
        and no event (neither sent nor failed is known); parked so an operator sees it."""
        reason = f"outcome unknown, not resent: {error}"[:500]
        with self.sessions.transaction() as session:
            self._finish(session, claim, UNKNOWN, last_error=reason)
        self.on_status(claim.channel, UNKNOWN)
        log.warning("notification %s (%s to user %s): %s", claim.id, claim.channel, claim.user_id, reason)
        return Outcome(claim.id, DEAD, reason=reason)

    def _failed(self, claim, reason):
        reason = reason[:500]
        with self.sessions.transaction() as session:
            self._finish(session, claim, FAILED, last_error=reason)
            self._announce(session, "notification_failed", claim)
        self.on_status(claim.channel, FAILED)
        log.warning("notification %s (%s to user %s) failed: %s", claim.id, claim.channel, claim.user_id, reason)
        return Outcome(claim.id, DEAD, reason=reason)

    def _finish(self, session, claim, status, **fields):
        """The attempt's result, in one UPDATE: the claim holds all the event needs."""
        NotificationRepository(session).finish(claim.id, status, self.clock(), **fields)

    def _announce(self, session, event_type, claim):
        self.events.record(session, event_type, notification_id=claim.id, user_id=claim.user_id,
                           channel=claim.channel, template=claim.template, attempts=claim.attempts)
