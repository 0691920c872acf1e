"""What every provider shares: the messages it sends and the three ways a send can fail."""
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


class ProviderTemporaryError(Exception):
    """The provider could not take the message now (5xx, 429, no connection): retry later.
    `retry_after` is the provider's own `Retry-After` in seconds, when it gave one."""

    def __init__(self, message, retry_after=None):
        super().__init__(message)
        self.retry_after = retry_after


class ProviderPermanentError(Exception):
    """The provider refused the message itself (bad number, bad request): retrying cannot help."""


class ProviderOutcomeUnknown(Exception):
    """The request went out but no answer came back in time (a read timeout, a connection
    dropped while waiting): the provider may have sent the message. Neither SendGrid nor
    Twilio takes an idempotency key, so sending again may deliver it twice."""


@dataclass(frozen=True)
class EmailMessage:
    to: str
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class SmsMessage:
    to: str
    body: str


def classify_status(status, detail, retry_after=None):
    """The error for an HTTP answer that was not a success: 4xx permanent except 408/429.
    `retry_after` (the raw `Retry-After` header) is kept on a 429 or 503."""
    message = f"{status} {detail}".strip()[:480]
    if status in (408, 429) or status >= 500:
        wait = retry_after_seconds(retry_after) if status in (429, 503) else None
        return ProviderTemporaryError(message if wait is None else f"{message} (Retry-After {wait:g} s)",
                                      retry_after=wait)
    return ProviderPermanentError(message)


def retry_after_seconds(value, now=None):
    """Seconds a `Retry-After` header asks to wait: delay-seconds or an HTTP date
    (RFC 9110 §10.2.3). None when absent or unreadable; a date in the past is 0."""
    if value is None:
        return None
    value = str(value).strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
