"""Email through SendGrid's official SDK: POST /v3/mail/send, Bearer auth, 202 + X-Message-Id."""
import http.client

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import Mail

from notifications_service.providers.base import ProviderTemporaryError, classify_status

DEFAULT_API_BASE = "https://api.sendgrid.com"


class SendGridEmail:
    channel = "email"

    def __init__(self, api_key, sender, api_base=None, timeout=10.0):
        self.sender = sender
        self.api_base = api_base or DEFAULT_API_BASE
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
            raise classify_status(error.status_code, _text(error.body)) from None
        except (OSError, http.client.HTTPException) as error:  # URLError, timeouts, resets
            raise ProviderTemporaryError(f"SendGrid unreachable: {error}") from None
        if response.status_code not in (200, 202):
            raise classify_status(response.status_code, _text(response.body))
        return response.headers.get("X-Message-Id")


def _text(body):
    return body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
