"""Email through SendGrid's official SDK: POST /v3/mail/send, Bearer auth, 202 + X-Message-Id.
A 429 says when to come back in `Retry-After` or, as SendGrid documents its rate limits, in
`X-RateLimit-Reset` (the Unix time the limit resets).

The SDK sends through urllib, whose errors tell whether the request went out: a failure to
connect or to send arrives as `URLError` (nothing sent: safe to retry); a timeout or a dropped
connection while waiting for the answer arrives as itself, after SendGrid had the whole
request (the outcome is unknown)."""
import http.client
import math
import time
import urllib.error

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import Mail

from notifications_service.providers.base import ProviderOutcomeUnknown, ProviderTemporaryError, classify_status

DEFAULT_API_BASE = "https://api.sendgrid.com"


class SendGridEmail:
    channel = "email"

    def __init__(self, api_key, sender, api_base=None, timeout=10.0):
        self.sender = sender
        self.api_base = api_base or DEFAULT_API_BASE
        self.timeout = timeout
        self.client = SendGridAPIClient(api_key, host=self.api_base)
        self.client.client.timeout = timeout  # the SDK has no timeout argument; its HTTP client does

    def __repr__(self):
        return f"SendGrid at {self.api_base}"

    def send(self, message):
        mail = Mail(from_email=self.sender, to_emails=message.to, subject=message.subject,
                    plain_text_content=message.text, html_content=message.html)
        try:
            response = self.client.send(mail)
        except HTTPError as error:
            raise classify_status(error.status_code, _text(error.body), _retry_after(error.headers)) from None
        except urllib.error.URLError as error:  # before the request was sent: connect refused, DNS
            raise ProviderTemporaryError(f"SendGrid unreachable: {error}") from None
        except TimeoutError:
            raise ProviderOutcomeUnknown(f"SendGrid did not answer within {self.timeout:g} s") from None
        except (OSError, http.client.HTTPException) as error:  # reset or closed while waiting
            raise ProviderOutcomeUnknown(f"SendGrid dropped the connection before answering: {error!r}") from None
        if response.status_code not in (200, 202):
            raise classify_status(response.status_code, _text(response.body), _retry_after(response.headers))
        return response.headers.get("X-Message-Id")


def _retry_after(headers):
    """The raw `Retry-After`, else seconds until `X-RateLimit-Reset`; None without either."""
    if headers is None:
        return None
    if headers.get("Retry-After") is not None:
        return headers.get("Retry-After")
    reset = headers.get("X-RateLimit-Reset")
    if reset is not None and str(reset).strip().isdigit():
        return str(max(0, math.ceil(int(reset) - time.time())))
    return None


def _text(body):
    return body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
