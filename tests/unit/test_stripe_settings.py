"""Which Stripe `make run` and the payments service use, from STRIPE_API_KEY and STRIPE_API_BASE
as the README states it: neither set, localstripe (started by `make run`); a key alone, Stripe
itself; a base, that base. No call leaves the machine: the SDK's HTTP session gets a transport
that records where a request would go and refuses it."""
import pytest
import requests
import requests.adapters

from common import config
from payments_service.stripe_gateway import (
    LOCALSTRIPE_API_BASE,
    LOCALSTRIPE_API_KEY,
    StripeGateway,
    StripeUnavailable,
)
from scripts import run_local

LIVE_KEY = "sk_live_51HxReal0000000000000000"


class RecordingTransport(requests.adapters.BaseAdapter):
    """Keeps each request the SDK sends, answers none of them."""

    def __init__(self):
        super().__init__()
        self.sent = []

    def send(self, request, **kwargs):
        self.sent.append(request)
        raise requests.ConnectionError("no network in this test")

    def close(self):
        pass


def _gateway_from(monkeypatch, **env):
    for name in ("STRIPE_API_KEY", "STRIPE_API_BASE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return StripeGateway.from_config(config.load()["STRIPE"])


def _first_request(gateway):
    transport = RecordingTransport()
    gateway._session.mount("https://", transport)
    gateway._session.mount("http://", transport)
    with pytest.raises(StripeUnavailable):
        gateway.retrieve_intent("pi_123")
    return transport.sent[0]


def test_a_key_alone_talks_to_stripe_itself(monkeypatch):
    gateway = _gateway_from(monkeypatch, STRIPE_API_KEY=LIVE_KEY)
    sent = _first_request(gateway)
    assert sent.url == "https://api.stripe.com/v1/payment_intents/pi_123"
    assert sent.headers["Authorization"] == f"Bearer {LIVE_KEY}"
    # ... and `make run` does not start localstripe.
    assert run_local.stripe_uses_localstripe({"STRIPE_API_KEY": LIVE_KEY}) is False
    assert run_local.stripe_api_base({"STRIPE_API_KEY": LIVE_KEY}) == "https://api.stripe.com"


@pytest.mark.parametrize("env", [{}, {"STRIPE_API_KEY": "", "STRIPE_API_BASE": ""}, {"STRIPE_API_KEY": "  "}])
def test_neither_set_means_localstripe_which_make_run_starts(monkeypatch, env):
    gateway = _gateway_from(monkeypatch, **env)
    sent = _first_request(gateway)
    assert sent.url == f"{LOCALSTRIPE_API_BASE}/v1/payment_intents/pi_123"
    assert sent.headers["Authorization"] == f"Bearer {LOCALSTRIPE_API_KEY}"
    assert run_local.stripe_uses_localstripe(env) is True
    assert LOCALSTRIPE_API_BASE == f"http://127.0.0.1:{run_local.LOCALSTRIPE_PORT}"


def test_a_base_is_used_as_given_with_or_without_a_key(monkeypatch):
    gateway = _gateway_from(monkeypatch, STRIPE_API_BASE="http://stripe-mock.internal:12111/")
    sent = _first_request(gateway)
    assert sent.url == "http://stripe-mock.internal:12111/v1/payment_intents/pi_123"
    assert sent.headers["Authorization"] == f"Bearer {LOCALSTRIPE_API_KEY}"
    assert run_local.stripe_uses_localstripe({"STRIPE_API_BASE": "http://stripe-mock.internal:12111"}) is False

    gateway = _gateway_from(monkeypatch, STRIPE_API_KEY="sk_test_mine", STRIPE_API_BASE="https://stripe.example")
    sent = _first_request(gateway)
    assert (sent.url, sent.headers["Authorization"]) == \
        ("https://stripe.example/v1/payment_intents/pi_123", "Bearer sk_test_mine")
    assert run_local.stripe_uses_localstripe({"STRIPE_API_KEY": "sk_test_mine"}) is False
