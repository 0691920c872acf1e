"""The benchmark's localstripe (bench/localstripe_server.py: no snapshot to disk, lists read an
index by type instead of scanning the store) answers what localstripe answers, through the
Stripe SDK the payments service uses."""
import pytest

from bench import localstripe_server
from payments_service.stripe_gateway import StripeGateway
from tests.fakes.localstripe import free_port


@pytest.fixture
def emulator(tmp_path):
    port = free_port()
    process = localstripe_server.spawn(port, tmp_path / "localstripe.log")
    try:
        yield StripeGateway("sk_test_bench", api_base=f"http://127.0.0.1:{port}")
    finally:
        process.kill()
        process.wait()


def test_intents_refunds_and_lists_answer_as_localstripe_does(emulator):
    intents = [emulator.create_intent(amount=1000 + n, currency="eur", payment_method="pm_card_visa",
                                      metadata={"payment_ref": f"ref-{n}"}, idempotency_key=f"key-{n}")
               for n in range(3)]
    assert [intent.outcome for intent in intents] == ["succeeded"] * 3

    refund = emulator.refund(intent_id=intents[1].id, amount=400, metadata={}, idempotency_key="refund-1")
    assert (refund.amount, refund.status) == (400, "succeeded")

    # The list of intents holds exactly the three (no other type leaks in from the index),
    # and an intent's charge lists only its own refunds.
    assert emulator.find_intent("payment_ref", "ref-2").id == intents[2].id
    assert emulator.find_intent("payment_ref", "ref-9") is None
    charges = {intent.id: emulator._client.v1.payment_intents.retrieve(intent.id).to_dict()
               for intent in intents}
    refunded = {intent_id: data["charges"]["data"][0]["amount_refunded"] for intent_id, data in charges.items()}
    assert refunded == {intents[0].id: 0, intents[1].id: 400, intents[2].id: 0}
