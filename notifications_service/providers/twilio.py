"""SMS through Twilio's official SDK: POST /2010-04-01/Accounts/{sid}/Messages.json,
form-encoded with basic auth, 201 JSON with the message sid. The SDK has no base-URL
setting, so a small HTTP client rewrites scheme and host (tests point it at a local fake);
the same client reads `Retry-After`, which the SDK's errors drop.

requests says whether the request went out: a failure to connect (`ConnectTimeout`, a refused
connection) sent nothing and is retried; a `ReadTimeout`, or a connection dropped while
waiting for the answer, came after Twilio had the whole request (the outcome is unknown)."""
from urllib.parse import urlsplit, urlunsplit

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from urllib3.exceptions import ProtocolError

from notifications_service.providers.base import ProviderOutcomeUnknown, ProviderTemporaryError, classify_status

DEFAULT_API_BASE = "https://api.twilio.com"


class RebasedHttpClient(TwilioHttpClient):
    """Sends every request to `api_base` (Twilio's own hosts when None), path unchanged, and
    turns a 429/503 that carries `Retry-After` into a ProviderTemporaryError that keeps it."""

    def __init__(self, api_base=None, **kwargs):
        super().__init__(**kwargs)
        self.base = urlsplit(api_base) if api_base else None

    def request(self, method, url, *args, **kwargs):
        if self.base is not None:
            parts = urlsplit(url)
            url = urlunsplit((self.base.scheme, self.base.netloc, parts.path, parts.query, parts.fragment))
        response = super().request(method, url, *args, **kwargs)
        retry_after = response.headers.get("Retry-After") if response.headers else None
        if response.status_code in (429, 503) and retry_after is not None:
            raise classify_status(response.status_code, _detail(response.text), retry_after)
        return response


class TwilioSms:
    channel = "sms"

    def __init__(self, account_sid, auth_token, from_number, api_base=None, timeout=10.0):
        self.from_number = from_number
        self.api_base = api_base or DEFAULT_API_BASE
        self.timeout = timeout
        http = RebasedHttpClient(self.api_base if self.api_base != DEFAULT_API_BASE else None, timeout=timeout)
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
        except requests.ReadTimeout:
            raise ProviderOutcomeUnknown(f"Twilio did not answer within {self.timeout:g} s") from None
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as error:
            if _after_sending(error):
                raise ProviderOutcomeUnknown(f"Twilio dropped the connection before answering: {error}") from None
            raise ProviderTemporaryError(f"Twilio unreachable: {error}") from None
        except (requests.RequestException, ConnectionError, TwilioException) as error:
            raise ProviderTemporaryError(f"Twilio unreachable: {error}") from None
        return sent.sid


def _after_sending(error):
    """A connection lost once the request was out (urllib3's "Connection aborted"), rather
    than one that never opened."""
    return isinstance(error, requests.exceptions.ChunkedEncodingError) or any(
        isinstance(arg, ProtocolError) for arg in error.args)


def _detail(text):
    return (text or "").strip()[:300]
