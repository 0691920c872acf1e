"""What every provider shares: the messages it sends and the two ways a send can fail."""
from dataclasses import dataclass


class ProviderTemporaryError(Exception):
    """The provider could not take the message now (5xx, 429, timeout, no connection): retry later."""


class ProviderPermanentError(Exception):
    """The provider refused the message itself (bad number, bad request): retrying cannot help."""


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


def classify_status(status, detail):
    """The error for an HTTP answer that was not a success: 4xx permanent except 408/429."""
    message = f"{status} {detail}".strip()[:480]
    if status in (408, 429) or status >= 500:
        return ProviderTemporaryError(message)
    return ProviderPermanentError(message)
