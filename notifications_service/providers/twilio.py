"""SMS through Twilio's official SDK: POST /2010-04-01/Accounts/{sid}/Messages.json,
form-encoded with basic auth, 201 JSON with the message sid. The SDK has no base-URL
setting, so a small HTTP client rewrites scheme and host (tests point it at a local fake)."""
from urllib.parse import urlsplit, urlunsplit

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from notifications_service.providers.base import ProviderTemporaryError, classify_status

DEFAULT_API_BASE = "https://api.twilio.com"


class RebasedHttpClient(TwilioHttpClient):
    """Sends every request to `api_base` instead of Twilio's own hosts, path unchanged."""

    def __init__(self, api_base, **kwargs):
        super().__init__(**kwargs)
        self.base = urlsplit(api_base)

    def request(self, method, url, *args, **kwargs):
        parts = urlsplit(url)
        url = urlunsplit((self.base.scheme, self.base.netloc, parts.path, parts.query, parts.fragment))
        return super().request(method, url, *args, **kwargs)


class TwilioSms:
    channel = "sms"

    def __init__(self, account_sid, auth_token, from_number, api_base=None, timeout=10.0):
        self.from_number = from_number
        self.api_base = api_base or DEFAULT_API_BASE
        http = (RebasedHttpClient(self.api_base, timeout=timeout) if self.api_base != DEFAULT_API_BASE
                else TwilioHttpClient(timeout=timeout))
        self.client = Client(account_sid, auth_token, http_client=http)

    def __repr__(self):
        return f"Twilio at {self.api_base}"

    def send(self, message):
        try:
            sent = self.client.messages.create(to=message.to, from_=self.from_number, body=message.body)
        except TwilioRestException as error:
            raise classify_status(error.status, f"{error.code}: {error.msg}") from None
        except TwilioServiceException as error:
            raise classify_status(error.status, f"{error.code}: {error.title}") from None
        except (requests.RequestException, ConnectionError, TwilioException) as error:
            raise ProviderTemporaryError(f"Twilio unreachable: {error}") from None
        return sent.sid
