"""The Stripe emulator `make run` starts (scripts/localstripe_server.py: localstripe with no
snapshot to disk, lists read indexes instead of scanning the store) answers what localstripe
answers, for everything Bookify uses it for, through the Stripe SDK; and its cost per write and
per list does not depend on what else it holds."""
import json
import urllib.request

import pytest
import requests
import stripe

from payments_service.stripe_gateway import StripeGateway
from scripts import launcher, localstripe_server
from tests.fakes.localstripe import WebhookInbox, free_port

SECRET = "whsec_emulator_test"
SCA_CARD = {"number": "4000002500003155", "exp_month": 12, "exp_year": 2030, "cvc": "123"}


@pytest.fixture
def emulator(tmp_path):
    port = free_port()
    process = localstripe_server.spawn(port, tmp_path / "localstripe.log")
    try:
        yield StripeGateway("sk_test_emulator", api_base=f"http://127.0.0.1:{port}", webhook_secret=SECRET)
    finally:
        process.kill()
        process.wait()


def _base(gateway):
    return gateway._client._requestor._options.base_addresses["api"]


def _post(url, body):
    request = urllib.request.Request(url, method="POST", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5):
        pass


def test_intents_refunds_and_lists_answer_as_localstripe_does(emulator):
    intents = [emulator.create_intent(amount=1000 + n, currency="eur", payment_method="pm_card_visa",
                                      metadata={"payment_ref": f"ref-{n}"}, idempotency_key=f"key-{n}")
               for n in range(3)]
    assert [intent.outcome for intent in intents] == ["succeeded"] * 3

    refund = emulator.refund(intent_id=intents[1].id, amount=400, metadata={}, idempotency_key="refund-1")
    second = emulator.refund(intent_id=intents[1].id, amount=100, metadata={}, idempotency_key="refund-2")
    assert (refund.amount, refund.status, second.amount) == (400, "succeeded", 100)

    # The list of intents holds exactly the three (no other type leaks in from the index),
    # and an intent's charge lists only its own refunds.
    assert emulator.find_intent("payment_ref", "ref-2").id == intents[2].id
    assert emulator.find_intent("payment_ref", "ref-9") is None
    charges = {intent.id: emulator._client.v1.payment_intents.retrieve(intent.id).to_dict()["charges"]["data"][0]
               for intent in intents}
    assert {intent_id: charge["amount_refunded"] for intent_id, charge in charges.items()} == \
        {intents[0].id: 0, intents[1].id: 500, intents[2].id: 0}
    assert [r["id"] for r in charges[intents[1].id]["refunds"]["data"]] in ([second.id, refund.id],
                                                                            [refund.id, second.id])
    by_intent = emulator._client.v1.refunds.list(params={"payment_intent": intents[1].id})
    assert sorted(r.id for r in by_intent.data) == sorted([refund.id, second.id])
    assert len(emulator._client.v1.refunds.list(params={"limit": 100}).data) == 2


def test_customers_and_their_attached_cards(emulator):
    client = emulator._client.v1
    alice = client.customers.create(params={"email": "alice@example.com"})
    bob = client.customers.create(params={"email": "bob@example.com"})
    card = client.payment_methods.attach("pm_card_visa", params={"customer": alice.id})
    bobs = client.payment_methods.attach("pm_card_visa", params={"customer": bob.id})
    assert card.customer == alice.id and bobs.customer == bob.id

    def cards_of(customer):
        return [pm.id for pm in client.payment_methods.list(params={"customer": customer.id, "type": "card"}).data]

    assert cards_of(alice) == [card.id] and cards_of(bob) == [bobs.id]
    # A card charged on its customer, then refunded in part.
    intent = client.payment_intents.create(params={
        "amount": 2500, "currency": "usd", "customer": alice.id, "payment_method": card.id,
        "payment_method_types": ["card"], "confirm": True})
    assert (intent.status, intent.customer) == ("succeeded", alice.id)
    emulator.refund(intent_id=intent.id, amount=500, metadata={}, idempotency_key="r")
    assert client.payment_intents.retrieve(intent.id).to_dict()["charges"]["data"][0]["amount_refunded"] == 500

    # Moved from one customer to another and detached, the lists follow.
    client.payment_methods.attach(bobs.id, params={"customer": alice.id})
    assert sorted(cards_of(alice)) == sorted([card.id, bobs.id]) and cards_of(bob) == []
    client.payment_methods.detach(card.id)
    assert cards_of(alice) == [bobs.id]
    # What localstripe refuses, refused the same way.
    with pytest.raises(stripe.CardError):
        client.payment_methods.attach("pm_card_visa_chargeDeclined", params={"customer": bob.id})
    with pytest.raises(stripe.InvalidRequestError):
        client.payment_methods.list(params={"customer": "cus_nobody", "type": "card"})
    with pytest.raises(stripe.InvalidRequestError):
        client.payment_methods.list(params={"customer": alice.id})  # no type


def test_signed_webhooks_and_sca_authentication(emulator):
    inbox = WebhookInbox()
    try:
        _post(f"{_base(emulator)}/_config/webhooks/bookify", {"url": inbox.url, "secret": SECRET})
        paid = emulator.create_intent(amount=700, currency="eur", payment_method="pm_card_visa",
                                      metadata={"payment_ref": "hook"}, idempotency_key="hook")
        payload, signature = inbox.wait_for("payment_intent.succeeded", lambda obj: obj["id"] == paid.id)
        event = emulator.parse_webhook(payload, signature)  # the signature checks out
        assert (event.type, event.object["id"], event.object["amount"]) == ("payment_intent.succeeded", paid.id, 700)

        # 3-D Secure: the intent waits for the customer, who passes (one) or fails (the other).
        intents = []
        for _ in range(2):
            card = emulator._client.v1.payment_methods.create(params={"type": "card", "card": SCA_CARD})
            intents.append(emulator._client.v1.payment_intents.create(params={
                "amount": 900, "currency": "eur", "payment_method": card.id,
                "payment_method_types": ["card"], "confirm": True}))
        assert [intent.status for intent in intents] == ["requires_action"] * 2
        for intent, success in zip(intents, ("true", "false"), strict=True):
            answer = requests.post(f"{_base(emulator)}/v1/payment_intents/{intent.id}/_authenticate",
                                   params={"client_secret": intent.client_secret, "success": success},
                                   headers={"Authorization": "Bearer sk_test_emulator"}, timeout=5)
            assert answer.status_code == 200, answer.text
        assert emulator.retrieve_intent(intents[0].id).outcome == "succeeded"
        assert emulator.retrieve_intent(intents[1].id).outcome == "failed"
        payload, signature = inbox.wait_for("payment_intent.succeeded", lambda obj: obj["id"] == intents[0].id)
        assert emulator.parse_webhook(payload, signature).object["status"] == "succeeded"
        # (A failed authentication sends no webhook, in localstripe as shipped either.)
    finally:
        inbox.close()


def test_emptying_the_store_empties_the_indexes_too(emulator):
    client = emulator._client.v1
    customer = client.customers.create(params={})
    client.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    old = emulator.create_intent(amount=300, currency="eur", payment_method="pm_card_visa", metadata={},
                                 idempotency_key="old")
    emulator.refund(intent_id=old.id, amount=100, metadata={}, idempotency_key="old-refund")

    requests.delete(f"{_base(emulator)}/_config/data", timeout=5).raise_for_status()

    assert emulator.retrieve_intent(old.id) is None
    assert client.payment_intents.list().data == [] and client.refunds.list().data == []
    new = emulator.create_intent(amount=300, currency="eur", payment_method="pm_card_visa", metadata={},
                                 idempotency_key="new")
    assert emulator._client.v1.refunds.list(params={"payment_intent": new.id}).data == []


# -- in the emulator's own process: what a write and a list cost ---------------------------

@pytest.fixture(scope="module")
def resources():
    """localstripe's object model, indexed as scripts.localstripe_server indexes it, in this
    process (once: the patch is for the process). Webhooks need the server's event loop: kept."""
    from localstripe import resources

    localstripe_server.index_store(resources)
    original, sent = resources.schedule_webhook, []
    resources.schedule_webhook = sent.append
    yield resources
    resources.schedule_webhook = original
    resources.store.clear()


@pytest.fixture
def store(resources, monkeypatch):
    resources.store.clear()
    pickled = []
    monkeypatch.setattr(resources.pickle, "dump", lambda *args, **kwargs: pickled.append(args))
    yield resources.store, pickled
    resources.store.clear()


def _paid_intent(resources, customer=None):
    card = resources.PaymentMethod._api_retrieve("pm_card_visa")
    if customer is not None:
        resources.PaymentMethod._api_attach(card.id, customer=customer.id)
    intent = resources.PaymentIntent._api_create(
        amount=1000, currency="eur", payment_method=card.id, confirm=True,
        customer=customer.id if customer else None)
    assert intent.status == "succeeded"
    return intent, card


def test_a_write_does_not_pickle_the_store(resources, store):
    _, pickled = store
    customer = resources.Customer._api_create(email="x@example.com")
    intent, _ = _paid_intent(resources, customer)
    resources.Refund._api_create(payment_intent=intent.id, amount=100)
    resources.store.dump_to_disk()  # what the server does after every POST, PUT and DELETE
    assert pickled == []


def test_lists_read_only_their_own_objects(resources, store):
    class Unrelated(Exception):
        pass

    def tripwire(name):
        return property(lambda self: (_ for _ in ()).throw(Unrelated(f"{name} of {self.id} read")))

    # Another customer's intents, refunds and cards, in numbers.
    other = resources.Customer._api_create()
    others = []
    for _ in range(20):
        intent, card = _paid_intent(resources, other)
        others.append((resources.Refund._api_create(payment_intent=intent.id, amount=100), card))
    mine = resources.Customer._api_create()
    intent, card = _paid_intent(resources, mine)
    refund = resources.Refund._api_create(payment_intent=intent.id, amount=300)

    # From now on, reading the charge of another refund or the customer of another card fails,
    # and so does scanning the whole store.
    class ForeignRefund(resources.Refund):
        charge = tripwire("charge")

    class ForeignCard(resources.PaymentMethod):
        customer = tripwire("customer")

    for other_refund, other_card in others:
        other_refund.__class__, other_card.__class__ = ForeignRefund, ForeignCard

    class UnscannableStore(type(resources.store)):
        def items(self):
            raise Unrelated("whole store scanned")

        values = items
        __iter__ = items

    indexed = type(resources.store)
    resources.store.__class__ = UnscannableStore
    try:
        exported = resources.PaymentIntent._api_retrieve(intent.id)._export()
        assert [r["id"] for r in exported["charges"]["data"][0]["refunds"]["data"]] == [refund.id]
        assert exported["latest_charge"]["amount_refunded"] == 300
        refunds = resources.Refund._api_list_all("/v1/refunds", payment_intent=intent.id)
        assert [r.id for r in refunds._list] == [refund.id]
        cards = resources.PaymentMethod._api_list_all("/v1/payment_methods", customer=mine.id, type="card")
        assert [c.id for c in cards._list] == [card.id]
        listed = resources.PaymentIntent._api_list_all("/v1/payment_intents", limit=100)
        assert len(listed._list) == 21 and all(isinstance(i, resources.PaymentIntent) for i in listed._list)
    finally:
        resources.store.__class__ = indexed


def test_make_run_starts_this_emulator_with_webhooks_to_the_gateway(tmp_path):
    """scripts.launcher.Stack (make run, the end-to-end tests) runs scripts.localstripe_server,
    and registers its signed webhooks as before."""
    port = free_port()
    stack = launcher.Stack(localstripe_server.ROOT, services=[], log_dir=tmp_path, localstripe_port=port)
    inbox = WebhookInbox()
    try:
        stack.start()
        assert stack.procs[launcher.LOCALSTRIPE].args[:3] == localstripe_server.COMMAND
        assert stack.env["STRIPE_API_BASE"] == f"http://127.0.0.1:{port}"
        # register_stripe_webhook points it at <gateway>/v1/webhooks/stripe (the inbox takes any path).
        stack.register_stripe_webhook(inbox.url.removesuffix("/stripe"), SECRET)
        gateway = StripeGateway("sk_test_local_bookify", api_base=stack.env["STRIPE_API_BASE"],
                                webhook_secret=SECRET)
        paid = gateway.create_intent(amount=1200, currency="usd", payment_method="pm_card_visa",
                                     metadata={"payment_ref": "make-run"}, idempotency_key="make-run")
        payload, signature = inbox.wait_for("payment_intent.succeeded", lambda obj: obj["id"] == paid.id)
        assert gateway.parse_webhook(payload, signature).object["metadata"] == {"payment_ref": "make-run"}
    finally:
        inbox.close()
        stack.stop()
