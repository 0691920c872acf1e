"""The Stripe wrapper against a real localstripe through the real SDK: what succeeds,
what is declined, what counts as unavailable, and how webhooks are verified."""
import json
import time
import uuid

import eventlet
import pytest

from payments_service.stripe_gateway import (
    Intent,
    InvalidWebhook,
    StripeDeclined,
    StripeGateway,
    StripeUnavailable,
)
from tests.fakes.localstripe import SlowLink, free_port, stripe_signature
from tests.fakes.stripe_fixtures import localstripe  # noqa: F401  (fixture)

SECRET = "whsec_unit_tests"


@pytest.fixture
def gateway(localstripe):  # noqa: F811
    return StripeGateway("sk_test_unit", localstripe.url, timeout=5, webhook_secret=SECRET)


def _charge(gateway, payment_method="pm_card_visa", amount=4200, **metadata):
    metadata = {"payment_id": 1, "payment_ref": uuid.uuid4().hex, **metadata}
    return gateway.create_intent(amount=amount, currency="usd", payment_method=payment_method,
                                 metadata=metadata, idempotency_key=uuid.uuid4().hex)


def test_a_good_card_is_charged_and_the_intent_reads_back(gateway):
    intent = _charge(gateway, reservation_id=12)
    assert (intent.outcome, intent.amount, intent.currency) == ("succeeded", 4200, "usd")
    assert intent.id.startswith("pi_")
    assert intent.metadata["reservation_id"] == "12"  # Stripe metadata values are strings
    assert gateway.retrieve_intent(intent.id) == intent


def test_workers_share_kept_alive_connections_to_stripe(localstripe):  # noqa: F811
    """Each nameko worker is a greenthread of its own; the SDK alone would open a connection
    for each of them."""
    link = SlowLink(localstripe.port)
    try:
        gateway = StripeGateway("sk_test_unit", link.url, timeout=5)
        for _ in range(3):  # three workers, one after another
            assert eventlet.spawn(_charge, gateway).wait().outcome == "succeeded"
        assert link.connections == 1
        charges = [eventlet.spawn(_charge, gateway) for _ in range(4)]  # four at once
        assert [charge.wait().outcome for charge in charges] == ["succeeded"] * 4
        assert link.connections <= 4
    finally:
        link.close()


def test_a_declined_card_is_a_decline_with_stripes_code(gateway):
    with pytest.raises(StripeDeclined) as declined:
        _charge(gateway, "pm_card_chargeCustomerFail")
    assert declined.value.code == "card_declined"
    assert "declined" in declined.value.message


def test_an_unknown_payment_method_is_a_decline_not_an_outage(gateway):
    with pytest.raises(StripeDeclined):
        _charge(gateway, "pm_does_not_exist")


def test_intents_are_found_by_metadata_and_missing_ones_are_none(gateway):
    reference = uuid.uuid4().hex
    intent = _charge(gateway, payment_ref=reference)
    assert gateway.find_intent("payment_ref", reference) == intent
    assert gateway.find_intent("payment_ref", uuid.uuid4().hex) is None
    assert gateway.retrieve_intent("pi_does_not_exist") is None


def test_refunds_go_against_the_intent(gateway):
    intent = _charge(gateway, amount=5000)
    refund = gateway.refund(intent_id=intent.id, amount=1500, metadata={"reason": "late cancel"},
                            idempotency_key=uuid.uuid4().hex)
    assert (refund.amount, refund.status) == (1500, "succeeded")
    assert refund.id.startswith("re_")


def test_a_refund_of_a_failed_payment_is_refused(gateway):
    reference = uuid.uuid4().hex
    with pytest.raises(StripeDeclined):
        _charge(gateway, "pm_card_chargeCustomerFail", payment_ref=reference)
    failed = gateway.find_intent("payment_ref", reference)
    assert (failed.outcome, failed.failure_reason) == ("failed", "card_declined")
    with pytest.raises(StripeDeclined):
        gateway.refund(intent_id=failed.id, amount=100, metadata={}, idempotency_key=uuid.uuid4().hex)


def test_a_closed_port_is_unavailable_for_every_call():
    gateway = StripeGateway("sk_test_unit", f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(StripeUnavailable):
        _charge(gateway)
    with pytest.raises(StripeUnavailable):
        gateway.retrieve_intent("pi_123")
    with pytest.raises(StripeUnavailable):
        gateway.find_intent("payment_ref", "abc")
    with pytest.raises(StripeUnavailable):
        gateway.refund(intent_id="pi_123", amount=1, metadata={}, idempotency_key="k")


def test_a_timeout_is_unavailable_although_stripe_acted_on_the_request(localstripe):  # noqa: F811
    link = SlowLink(localstripe.port, delay=2.0)
    try:
        slow = StripeGateway("sk_test_unit", link.url, timeout=0.5)
        reference = uuid.uuid4().hex
        with pytest.raises(StripeUnavailable):
            _charge(slow, payment_ref=reference)
    finally:
        link.close()
    # Which is why an unanswered charge stays pending and is reconciled, never assumed failed.
    found = StripeGateway("sk_test_unit", localstripe.url).find_intent("payment_ref", reference)
    assert found is not None and found.outcome == "succeeded"


@pytest.fixture
def webhooks():
    """Reading webhooks asks Stripe nothing: no emulator behind this one."""
    return StripeGateway("sk_test_unit", "http://127.0.0.1:9", webhook_secret=SECRET)


def _intent_event(**intent):
    return {"id": "evt_1", "object": "event", "type": "payment_intent.succeeded",
            "data": {"object": {"id": "pi_1", "object": "payment_intent", "status": "succeeded",
                                "amount": 4200, "currency": "usd",
                                "metadata": {"payment_id": "12", "payment_ref": "abc"},
                                "last_payment_error": None, **intent}}}


def _signed(webhooks, event, timestamp=None):
    payload = event if isinstance(event, str) else json.dumps(event)
    return webhooks.parse_webhook(payload, stripe_signature(payload, SECRET, timestamp=timestamp))


def test_a_signed_webhook_is_read(webhooks):
    event = _signed(webhooks, _intent_event())
    assert (event.id, event.type, event.object["id"]) == ("evt_1", "payment_intent.succeeded", "pi_1")
    assert Intent.from_stripe(event.object).metadata == {"payment_id": "12", "payment_ref": "abc"}
    other = _signed(webhooks, {"id": "evt_2", "type": "charge.refunded", "data": {"object": {"id": "ch_1"}}})
    assert other.object == {"id": "ch_1"}  # events about anything else need no intent's fields


@pytest.mark.parametrize("signature", [
    "",
    "t=1,v1=00",
    "garbage",
    stripe_signature('{"id": "evt_1"}', "whsec_someone_else"),
    stripe_signature('{"id": "evt_1"}', SECRET, timestamp=int(time.time()) - 3600),  # replayed
    stripe_signature('{"id": "evt_1"}', SECRET, timestamp=int(time.time()) + 3600),  # from the future
])
def test_webhooks_not_signed_with_our_secret_now_are_refused(webhooks, signature):
    with pytest.raises(InvalidWebhook) as invalid:
        webhooks.parse_webhook('{"id": "evt_1"}', signature)
    assert invalid.value.field == "signature"


def test_the_tolerance_holds_both_ways_and_is_a_setting(webhooks):
    now = int(time.time())
    for skew in (-250, 250):  # within 300 s either way
        assert _signed(webhooks, _intent_event(), timestamp=now + skew).id == "evt_1"
    strict = StripeGateway("sk_test_unit", "http://127.0.0.1:9", webhook_secret=SECRET, webhook_tolerance_seconds=60)
    for skew in (-120, 120):
        with pytest.raises(InvalidWebhook):
            _signed(strict, _intent_event(), timestamp=now + skew)
    configured = StripeGateway.from_config({"webhook_secret": SECRET, "webhook_tolerance_seconds": 60})
    assert configured.webhook_tolerance_seconds == 60


MALFORMED = {
    "not json": "not json",
    "a list": "[1, 2]",
    "a string": '"evt_1"',
    "null": "null",
    "no id": {"type": "charge.refunded", "data": {"object": {}}},
    "no type": {"id": "evt_1", "data": {"object": {}}},
    "id a number": {"id": 1, "type": "charge.refunded", "data": {"object": {}}},
    "no data": {"id": "evt_1", "type": "charge.refunded"},
    "data a list": {"id": "evt_1", "type": "charge.refunded", "data": [1]},
    "object a string": _intent_event() | {"data": {"object": "pi_1"}},
    "object missing": _intent_event() | {"data": {}},
    "metadata a list": _intent_event(metadata=["payment_id", "12"]),
    "metadata a string": _intent_event(metadata="12"),
    "metadata value a number": _intent_event(metadata={"payment_id": 12}),
    "23-digit payment_id": _intent_event(metadata={"payment_id": "1" * 23, "payment_ref": "abc"}),
    "payment_id past 2**63-1": _intent_event(metadata={"payment_id": str(2**63)}),
    "payment_id zero": _intent_event(metadata={"payment_id": "0"}),
    "payment_id negative": _intent_event(metadata={"payment_id": "-4"}),
    "payment_id with a newline": _intent_event(metadata={"payment_id": "12\n"}),
    "intent without id": _intent_event(id=None),
    "intent id empty": _intent_event(id=""),
    "intent without status": {"id": "evt_1", "type": "payment_intent.succeeded",
                              "data": {"object": {"id": "pi_1", "amount": 1, "currency": "usd"}}},
    "amount a string": _intent_event(amount="4200"),
    "amount a float": _intent_event(amount=42.5),
    "amount huge": _intent_event(amount=10**30),
    "last_payment_error a string": _intent_event(last_payment_error="card_declined"),
    "error code a list": _intent_event(last_payment_error={"code": ["x"]}),
    "event id too long": {"id": "e" * 300, "type": "charge.refunded", "data": {"object": {}}},
    "nested too deep": "[" * 100_000 + "]" * 100_000,
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_signed_payload_that_is_not_an_event_we_can_read_is_refused(webhooks, case):
    with pytest.raises(InvalidWebhook) as invalid:
        _signed(webhooks, MALFORMED[case])
    assert invalid.value.field == "payload"


@pytest.mark.parametrize("status, outcome", [
    ("succeeded", "succeeded"),
    ("requires_payment_method", "failed"),
    ("canceled", "failed"),
    ("requires_action", "failed"),  # 3-D Secure: nobody can complete a server-side confirmation
    ("processing", "pending"),
])
def test_intent_statuses_map_to_three_outcomes(status, outcome):
    assert Intent(id="pi_1", status=status, amount=1, currency="usd").outcome == outcome
