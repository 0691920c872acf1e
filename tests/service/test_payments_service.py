"""The payments service in a real nameko container on the real broker, charging through
the real Stripe SDK against a real localstripe: charges, declines, idempotency, refunds,
who may read a payment, Stripe outages and timeouts, and signed webhooks."""
import json
import time
import uuid

import eventlet
import pytest
import sqlalchemy as sa
import stripe
from nameko.standalone.rpc import ServiceRpcClient

import common.runtime.rpc  # noqa: F401  (registers our errors so they arrive typed)
from common.errors import (
    Conflict,
    NotFound,
    PaymentDeclined,
    ServiceUnavailable,
    ValidationError,
)
from payments_service.models import Payment, StripeEvent
from payments_service.service import PaymentsService
from tests.fakes.localstripe import SlowLink, WebhookInbox, free_port, stripe_signature
from tests.fakes.stripe_fixtures import localstripe  # noqa: F401  (fixture)
from tests.service.amqp_probe import EventProbe

SECRET = "whsec_payments_service_tests"
PAYMENT_FIELDS = {"id", "reservation_id", "user_id", "amount", "currency", "status", "failure_reason",
                  "refunded_amount", "refunds", "created_at", "updated_at"}


def _order(**changes):
    return {"reservation_id": 12, "user_id": 7, "amount": 12000, "currency": "usd",
            "payment_method": "pm_card_visa", "idempotency_key": f"reservation-{uuid.uuid4().hex}",
            **changes}


@pytest.fixture
def stripe_api(localstripe):  # noqa: F811
    """localstripe emptied for this test, and an SDK client to look inside it."""
    localstripe.reset()
    return stripe.StripeClient("sk_test_inspector", base_addresses={"api": localstripe.url})


@pytest.fixture
def start_payments(payments_db, service_config, container_factory, localstripe, stripe_api):  # noqa: F811
    """Start a payments container whose Stripe is `api_base` (default: localstripe)."""

    def start(api_base=None, timeout_seconds=5):
        stripe_config = {"api_key": "sk_test_bookify", "api_base": api_base or localstripe.url,
                         "webhook_secret": SECRET, "timeout_seconds": timeout_seconds}
        container = container_factory(PaymentsService, dict(service_config, STRIPE=stripe_config))
        container.start()
        return container

    return start


@pytest.fixture
def rpc():
    with ServiceRpcClient("payments", timeout=30) as client:
        yield client


@pytest.fixture
def payments(start_payments, rpc):
    start_payments()
    return rpc


@pytest.fixture
def probe(service_config):
    probe = EventProbe(service_config["AMQP_URI"], "payments")
    yield probe
    probe.close()


@pytest.fixture
def slow_link(localstripe):  # noqa: F811
    """A link to localstripe whose charges and refunds are answered after 2 s: a service with
    a 1 s timeout gives up on requests localstripe did carry out. (Customers and their cards
    answer at once: the charge itself is what these tests time out.)"""
    link = SlowLink(localstripe.port, delay=2.0, spare=(b"POST /v1/customers", b"POST /v1/payment_methods"))
    yield link
    link.close()


def _intents(stripe_api):
    return list(stripe_api.v1.payment_intents.list(params={"limit": 100}).auto_paging_iter())


def _stored(payments_db, payment_id):
    with payments_db.transaction() as session:
        return session.get(Payment, payment_id)


def _stored_payment_ids(payments_db):
    with payments_db.transaction() as session:
        return session.scalars(sa.select(Payment.id)).all()


def _fields(event, *names):
    return {name: event[name] for name in names}


# -- charging ---------------------------------------------------------------------------


def test_a_good_card_is_charged_and_payment_succeeded_is_announced(payments, probe, stripe_api):
    payment = payments.charge(_order())

    assert set(payment) == PAYMENT_FIELDS
    assert _fields(payment, "reservation_id", "user_id", "amount", "currency", "status",
                   "failure_reason", "refunded_amount", "refunds") == {
        "reservation_id": 12, "user_id": 7, "amount": 12000, "currency": "usd", "status": "succeeded",
        "failure_reason": None, "refunded_amount": 0, "refunds": []}
    [(kind, event)] = probe.drain(timeout=5)
    assert kind == "payment_succeeded"
    assert _fields(event, "payment_id", "reservation_id", "user_id", "amount", "currency") == {
        "payment_id": payment["id"], "reservation_id": 12, "user_id": 7, "amount": 12000, "currency": "usd"}
    assert {"event_id", "occurred_at"} <= set(event)

    [intent] = _intents(stripe_api)
    assert (intent.status, intent.amount, intent.currency) == ("succeeded", 12000, "usd")
    assert intent.metadata["payment_id"] == str(payment["id"])
    assert intent.metadata["reservation_id"] == "12" and intent.metadata["user_id"] == "7"


def test_a_declined_card_fails_the_payment_and_says_why_every_time(payments, probe, payments_db, stripe_api):
    order = _order(payment_method="pm_card_chargeCustomerFail")
    with pytest.raises(PaymentDeclined) as declined:
        payments.charge(order)
    payment_id = declined.value.details["payment_id"]
    assert declined.value.details == {"payment_id": payment_id, "reason": "card_declined"}

    stored = _stored(payments_db, payment_id)
    assert (stored.status, stored.failure_reason) == ("failed", "card_declined")
    [(kind, event)] = probe.drain(timeout=5)
    assert kind == "payment_failed"
    assert _fields(event, "payment_id", "reservation_id", "user_id", "amount", "currency", "reason") == {
        "payment_id": payment_id, "reservation_id": 12, "user_id": 7, "amount": 12000, "currency": "usd",
        "reason": "card_declined"}

    # The same key again: the same answer, and Stripe is not asked again.
    with pytest.raises(PaymentDeclined) as again:
        payments.charge(order)
    assert again.value.details == declined.value.details
    assert len(_intents(stripe_api)) == 1
    assert probe.drain(timeout=0.5) == []


def test_one_idempotency_key_charges_once(payments, probe, payments_db, stripe_api):
    order = _order()
    first = payments.charge(order)
    second = payments.charge(order)

    assert second == first
    assert len(_intents(stripe_api)) == 1
    assert _stored_payment_ids(payments_db) == [first["id"]]
    assert [kind for kind, _ in probe.drain(want=2, timeout=2)] == ["payment_succeeded"]


@pytest.mark.parametrize("change", [{"amount": 9900}, {"reservation_id": 13}, {"user_id": 8}])
def test_one_idempotency_key_with_other_terms_is_a_conflict(payments, stripe_api, change):
    order = _order()
    payments.charge(order)
    with pytest.raises(Conflict) as conflict:
        payments.charge(dict(order, **change))
    assert "idempotency_key" in conflict.value.details
    assert len(_intents(stripe_api)) == 1


def test_two_charges_racing_with_one_key_charge_once(payments, stripe_api, payments_db):
    order = _order()

    def charge():
        with ServiceRpcClient("payments", timeout=30) as client:
            try:
                return client.charge(order)["id"]
            except ServiceUnavailable as pending:  # the other one was still asking Stripe
                return pending.details["payment_id"]

    racers = [eventlet.spawn(charge) for _ in range(4)]
    payment_ids = {racer.wait() for racer in racers}

    assert len(payment_ids) == 1
    assert len(_intents(stripe_api)) == 1
    assert _stored_payment_ids(payments_db) == list(payment_ids)
    assert payments.get_payment(payment_ids.pop())["status"] == "succeeded"


@pytest.mark.parametrize("order", [
    {},
    _order(amount=0),
    _order(amount="12000"),
    _order(currency="USD"),
    _order(reservation_id=-1),
    dict(_order(), surprise=True),
    {k: v for k, v in _order().items() if k != "idempotency_key"},
])
def test_malformed_charges_are_refused_before_stripe_is_asked(payments, stripe_api, order):
    with pytest.raises(ValidationError):
        payments.charge(order)
    assert _intents(stripe_api) == []


def test_the_card_that_paid_is_saved_on_the_users_customer_and_charged_again_off_session(
        payments, payments_db, stripe_api):
    first = payments.charge(_order(user_id=31, amount=5000))
    with payments_db.transaction() as session:
        [saved] = session.execute(sa.text(
            "SELECT customer_id, payment_method FROM stripe_customers WHERE user_id = 31")).all()
    customer, card = saved
    # pm_card_visa is a test alias: attaching it made a PaymentMethod of the customer's own.
    assert card.startswith("pm_") and card != "pm_card_visa"
    assert stripe_api.v1.payment_methods.retrieve(card).customer == customer

    again = payments.charge(_order(user_id=31, amount=1500, payment_method=None))
    assert (again["status"], again["amount"]) == ("succeeded", 1500)
    intents = {intent.amount: intent for intent in _intents(stripe_api)}
    assert (intents[1500].customer, intents[1500].payment_method) == (customer, card)
    assert intents[5000].customer == customer  # the first charge was made to the customer too
    assert first["user_id"] == again["user_id"] == 31

    # A card given overrides the saved one, and becomes the saved one once it paid.
    payments.charge(_order(user_id=31, amount=700, payment_method="pm_card_visa"))
    with payments_db.transaction() as session:
        [(newer,)] = session.execute(sa.text(
            "SELECT payment_method FROM stripe_customers WHERE user_id = 31")).all()
    assert newer != card and stripe_api.v1.payment_methods.retrieve(newer).customer == customer
    assert len(stripe_api.v1.customers.list(params={"limit": 100}).data) == 1  # one customer per user


def test_a_customer_stripe_no_longer_has_is_replaced_and_the_card_charged(
        payments, payments_db, stripe_api, localstripe):  # noqa: F811
    payments.charge(_order(user_id=33, amount=5000))
    localstripe.reset()  # Stripe forgot the customer (deleted, or an emulator started afresh)

    again = payments.charge(_order(user_id=33, amount=1500))

    assert (again["status"], again["amount"]) == ("succeeded", 1500)
    with payments_db.transaction() as session:
        [(customer, card)] = session.execute(sa.text(
            "SELECT customer_id, payment_method FROM stripe_customers WHERE user_id = 33")).all()
    assert [found.id for found in stripe_api.v1.customers.list(params={"limit": 100}).data] == [customer]
    assert stripe_api.v1.payment_methods.retrieve(card).customer == customer
    [intent] = _intents(stripe_api)
    assert (intent.amount, intent.customer) == (1500, customer)


def test_a_card_refused_for_a_customer_stripe_still_has_keeps_the_customer(payments, payments_db, stripe_api):
    payments.charge(_order(user_id=34, amount=5000))
    with payments_db.transaction() as session:
        before = session.execute(sa.text("SELECT customer_id FROM stripe_customers WHERE user_id = 34")).scalar()

    with pytest.raises(PaymentDeclined):
        payments.charge(_order(user_id=34, amount=1500, payment_method="pm_no_such_card"))

    with payments_db.transaction() as session:
        after = session.execute(sa.text("SELECT customer_id FROM stripe_customers WHERE user_id = 34")).scalar()
    assert after == before
    assert len(stripe_api.v1.customers.list(params={"limit": 100}).data) == 1


def test_a_charge_without_a_card_for_a_user_who_never_paid_is_refused(payments, payments_db, stripe_api):
    with pytest.raises(ValidationError) as refused:
        payments.charge(_order(user_id=32, payment_method=None))
    assert "payment_method" in refused.value.details
    assert _stored_payment_ids(payments_db) == [] and _intents(stripe_api) == []
    # A declined card is never saved: the next charge without a card is refused as well.
    with pytest.raises(PaymentDeclined):
        payments.charge(_order(user_id=32, payment_method="pm_card_chargeCustomerFail"))
    with pytest.raises(ValidationError):
        payments.charge(_order(user_id=32, payment_method=None))


# -- refunds ----------------------------------------------------------------------------


def test_partial_then_full_refund(payments, probe, stripe_api):
    payment = payments.charge(_order(amount=10000))

    payment = payments.refund(payment["id"], 3000, "cancelled 3 hours before start")
    assert (payment["status"], payment["refunded_amount"]) == ("partially_refunded", 3000)
    assert [(r["amount"], r["reason"], r["status"]) for r in payment["refunds"]] == [
        (3000, "cancelled 3 hours before start", "succeeded")]

    with pytest.raises(ValidationError) as too_much:
        payments.refund(payment["id"], 7001)
    assert too_much.value.details == {"amount": ["Must be between 1 and 7000."]}

    payment = payments.refund(payment["id"], None, "cancelled by operator")  # the rest
    assert (payment["status"], payment["refunded_amount"]) == ("refunded", 10000)
    assert [r["amount"] for r in payment["refunds"]] == [3000, 7000]
    assert set(payment["refunds"][0]) == {"id", "amount", "reason", "status", "created_at"}

    with pytest.raises(Conflict):
        payments.refund(payment["id"], 1)

    events = probe.drain(want=3, timeout=5)
    assert [kind for kind, _ in events] == ["payment_succeeded", "payment_refunded", "payment_refunded"]
    assert [_fields(body, "payment_id", "reservation_id", "user_id", "amount", "currency", "reason")
            for _, body in events[1:]] == [
        {"payment_id": payment["id"], "reservation_id": 12, "user_id": 7, "amount": 3000,
         "currency": "usd", "reason": "cancelled 3 hours before start"},
        {"payment_id": payment["id"], "reservation_id": 12, "user_id": 7, "amount": 7000,
         "currency": "usd", "reason": "cancelled by operator"}]

    [intent] = _intents(stripe_api)
    refunds = stripe_api.v1.refunds.list(params={"payment_intent": intent.id}).data
    assert sorted(refund.amount for refund in refunds) == [3000, 7000]


def test_a_refund_owed_by_policy_is_capped_at_what_an_operator_left(payments, stripe_api):
    payment = payments.charge(_order(amount=5000))
    payments.refund(payment["id"], 700, "goodwill")  # an operator, before the cancellation

    payment = payments.refund(payment["id"], 5000, "cancelled", "reservation-12-cancel", at_most_remaining=True)
    assert (payment["status"], payment["refunded_amount"]) == ("refunded", 5000)
    assert [r["amount"] for r in payment["refunds"]] == [700, 4300]
    again = payments.refund(payment["id"], 5000, "cancelled", "reservation-12-cancel", at_most_remaining=True)
    assert again == payment
    nothing_left = payments.refund(payment["id"], 100, "late fee waived", "other-key", at_most_remaining=True)
    assert [r["amount"] for r in nothing_left["refunds"]] == [700, 4300]
    with pytest.raises(ValidationError):
        payments.refund(payment["id"], 5000, "cancelled", "x", at_most_remaining="yes please")


def test_a_refund_repeated_with_its_idempotency_key_refunds_once(payments, probe, stripe_api):
    payment = payments.charge(_order(amount=5000))
    first = payments.refund(payment["id"], 2000, "rescheduled", "reservation-12-reschedule-1")
    again = payments.refund(payment["id"], 2000, "rescheduled", "reservation-12-reschedule-1")
    everything = payments.refund(payment["id"], None, "cancelled", "reservation-12-cancel")
    everything_again = payments.refund(payment["id"], None, "cancelled", "reservation-12-cancel")

    assert again == first and first["refunded_amount"] == 2000
    assert everything_again == everything and everything["status"] == "refunded"
    assert [r["amount"] for r in everything["refunds"]] == [2000, 3000]
    with pytest.raises(Conflict):
        payments.refund(payment["id"], 1000, "rescheduled", "reservation-12-reschedule-1")
    [intent] = _intents(stripe_api)
    assert len(stripe_api.v1.refunds.list(params={"payment_intent": intent.id}).data) == 2
    assert [kind for kind, _ in probe.drain(want=4, timeout=3)] == [
        "payment_succeeded", "payment_refunded", "payment_refunded"]


def test_only_succeeded_payments_can_be_refunded(payments):
    with pytest.raises(PaymentDeclined) as declined:
        payments.charge(_order(payment_method="pm_card_chargeCustomerFail"))
    with pytest.raises(Conflict):
        payments.refund(declined.value.details["payment_id"])
    with pytest.raises(NotFound):
        payments.refund(999999)
    with pytest.raises(ValidationError):
        payments.refund(1, 0)


# -- reading ----------------------------------------------------------------------------


def test_a_payment_is_visible_to_its_owner_and_to_payments_read_any_only(payments):
    payment = payments.charge(_order(user_id=7))
    payments.refund(payment["id"], 500)

    owner = {"user_id": 7, "permissions": ["reservations:create"]}
    stranger = {"user_id": 8, "permissions": ["reservations:create"]}
    auditor = {"user_id": 9, "permissions": ["payments:read_any"]}
    for actor in (owner, auditor, None):
        seen = payments.get_payment(payment["id"], actor)
        assert (seen["id"], seen["refunded_amount"], len(seen["refunds"])) == (payment["id"], 500, 1)
    with pytest.raises(NotFound) as hidden:
        payments.get_payment(payment["id"], stranger)
    with pytest.raises(NotFound) as missing:
        payments.get_payment(999999, owner)
    assert (hidden.value.message, hidden.value.details) == (
        "Payment not found", {"id": payment["id"]})  # nothing tells it exists
    assert missing.value.message == hidden.value.message


def test_payments_of_a_reservation_are_listed(payments):
    first = payments.charge(_order(reservation_id=40, amount=1000))
    second = payments.charge(_order(reservation_id=40, amount=300))  # a reschedule's difference
    payments.charge(_order(reservation_id=41))
    assert [p["id"] for p in payments.payments_for_reservation(40)] == [first["id"], second["id"]]
    assert payments.payments_for_reservation(42) == []
    assert payments.ping() == "pong"


# -- Stripe down, slow, or answering by webhook -----------------------------------------


def test_stripe_unreachable_leaves_the_payment_pending_until_the_charge_is_retried(
        start_payments, rpc, probe, payments_db, stripe_api):
    down = start_payments(api_base=f"http://127.0.0.1:{free_port()}")  # nothing listens there
    order = _order()
    with pytest.raises(ServiceUnavailable) as unavailable:
        rpc.charge(order)
    payment_id = unavailable.value.details["payment_id"]
    assert _stored(payments_db, payment_id).status == "pending"
    assert probe.drain(timeout=0.5) == []
    down.stop()

    start_payments()  # Stripe is back
    assert rpc.reconcile(payment_id)["status"] == "pending"  # Stripe never heard of it
    assert _intents(stripe_api) == []

    payment = rpc.charge(order)  # the caller retries with its key: now it is charged, once
    assert (payment["id"], payment["status"]) == (payment_id, "succeeded")
    assert rpc.charge(order) == payment
    assert rpc.reconcile(payment_id) == payment
    assert len(_intents(stripe_api)) == 1
    assert [kind for kind, _ in probe.drain(want=2, timeout=3)] == ["payment_succeeded"]


@pytest.mark.parametrize("card, status, event_type", [
    ("pm_card_visa", "succeeded", "payment_succeeded"),
    ("pm_card_chargeCustomerFail", "failed", "payment_failed"),
])
def test_a_charge_that_timed_out_is_reconciled_from_stripe_once(
        start_payments, rpc, probe, payments_db, stripe_api, slow_link, card, status, event_type):
    start_payments(api_base=slow_link.url, timeout_seconds=1)
    order = _order(payment_method=card)
    with pytest.raises(ServiceUnavailable) as unavailable:
        rpc.charge(order)
    payment_id = unavailable.value.details["payment_id"]
    assert _stored(payments_db, payment_id).status == "pending"
    [intent] = _intents(stripe_api)  # yet localstripe did act on it

    slow_link.delay = 0
    payment = rpc.reconcile(payment_id)
    assert payment["status"] == status
    assert _stored(payments_db, payment_id).stripe_intent_id == intent.id
    assert rpc.reconcile(payment_id) == payment
    [(kind, event)] = probe.drain(want=2, timeout=3)
    assert (kind, event["payment_id"]) == (event_type, payment_id)

    if status == "succeeded":
        assert rpc.charge(order) == payment
    else:
        with pytest.raises(PaymentDeclined):
            rpc.charge(order)
    assert len(_intents(stripe_api)) == 1


def test_a_webhook_signed_with_our_secret_is_applied_once(
        start_payments, rpc, probe, payments_db, stripe_api, slow_link):
    start_payments(api_base=slow_link.url, timeout_seconds=1)
    with pytest.raises(ServiceUnavailable) as unavailable:
        rpc.charge(_order())
    payment_id = unavailable.value.details["payment_id"]
    [intent] = _intents(stripe_api)
    # The event Stripe would send, signed the way Stripe signs it.
    payload = json.dumps({
        "id": f"evt_{uuid.uuid4().hex[:14]}", "object": "event", "type": "payment_intent.succeeded",
        "api_version": "2017-08-15", "created": 1700000000, "livemode": False,
        "data": {"object": intent.to_dict()},
    })

    for bad in ("", "t=1700000000,v1=deadbeef", stripe_signature(payload, "whsec_not_ours")):
        with pytest.raises(ValidationError) as invalid:
            rpc.handle_stripe_webhook(payload, bad)
        assert invalid.value.message == "Invalid Stripe signature"
        assert list(invalid.value.details) == ["signature"]
    tampered = payload.replace('"amount": 12000', '"amount": 1')
    with pytest.raises(ValidationError):
        rpc.handle_stripe_webhook(tampered, stripe_signature(payload, SECRET))
    assert _stored(payments_db, payment_id).status == "pending"
    assert probe.drain(timeout=0.5) == []

    signature = stripe_signature(payload, SECRET)
    first = rpc.handle_stripe_webhook(payload, signature)
    again = rpc.handle_stripe_webhook(payload, signature)

    event_id = json.loads(payload)["id"]
    assert first == {"event_id": event_id, "type": "payment_intent.succeeded", "duplicate": False}
    assert again == dict(first, duplicate=True)
    stored = _stored(payments_db, payment_id)
    assert (stored.status, stored.stripe_intent_id) == ("succeeded", intent.id)
    [(kind, event)] = probe.drain(want=2, timeout=3)
    assert (kind, event["payment_id"]) == ("payment_succeeded", payment_id)


def test_webhooks_that_are_not_about_our_pending_payments_change_nothing(
        start_payments, rpc, probe, payments_db, stripe_api, slow_link):
    start_payments(api_base=slow_link.url, timeout_seconds=1)
    with pytest.raises(ServiceUnavailable) as unavailable:
        rpc.charge(_order())
    payment_id = unavailable.value.details["payment_id"]
    [intent] = _intents(stripe_api)
    # Another database sharing the Stripe account has a payment with the same id.
    stranger = dict(intent.to_dict(), id="pi_from_elsewhere",
                    metadata={"payment_id": str(payment_id), "payment_ref": uuid.uuid4().hex})

    for event_type, stripe_object in [("payment_intent.succeeded", stranger),
                                      ("charge.refunded", {"id": "ch_1", "object": "charge"})]:
        payload = json.dumps({"id": f"evt_{uuid.uuid4().hex[:14]}", "object": "event",
                              "type": event_type, "data": {"object": stripe_object}})
        answer = rpc.handle_stripe_webhook(payload, stripe_signature(payload, SECRET))
        assert (answer["type"], answer["duplicate"]) == (event_type, False)

    assert _stored(payments_db, payment_id).status == "pending"
    assert probe.drain(timeout=0.5) == []


def test_signed_webhooks_that_are_not_readable_events_are_refused_over_rpc_and_change_nothing(
        start_payments, rpc, probe, payments_db):
    """The operator's door (`n.rpc.payments.handle_stripe_webhook`) answers as the HTTP one."""
    start_payments()
    payment = rpc.charge(_order())
    intent = {"id": "pi_elsewhere", "object": "payment_intent", "status": "requires_payment_method",
              "amount": 12000, "currency": "usd",
              "metadata": {"payment_id": str(payment["id"]), "payment_ref": "not-ours"}}
    probe.drain(timeout=1)
    bodies = [
        [1, 2],
        {"id": "evt_a", "type": "payment_intent.payment_failed", "data": {"object": "pi_elsewhere"}},
        {"id": "evt_b", "type": "payment_intent.payment_failed", "data": {"object": dict(intent, metadata=[1])}},
        {"id": "evt_c", "type": "payment_intent.payment_failed",
         "data": {"object": dict(intent, metadata={"payment_id": "9" * 23})}},
        {"id": "evt_d", "type": "payment_intent.payment_failed", "data": {"object": dict(intent, amount=None)}},
        {"id": "evt_e", "type": "payment_intent.payment_failed",
         "data": {"object": dict(intent, last_payment_error="card_declined")}},
        {"type": "payment_intent.payment_failed", "data": {"object": intent}},
    ]
    for body in bodies:
        payload = json.dumps(body)
        with pytest.raises(ValidationError) as invalid:
            rpc.handle_stripe_webhook(payload, stripe_signature(payload, SECRET))
        assert (invalid.value.message, list(invalid.value.details)) == ("Invalid Stripe event", ["payload"])
    payload = json.dumps({"id": "evt_f", "type": "payment_intent.payment_failed", "data": {"object": intent}})
    with pytest.raises(ValidationError) as invalid:
        rpc.handle_stripe_webhook(payload, stripe_signature(payload, SECRET, timestamp=int(time.time()) + 3600))
    assert list(invalid.value.details) == ["signature"]

    assert _stored(payments_db, payment["id"]).status == "succeeded"
    with payments_db.transaction() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(StripeEvent)) == 0
    assert probe.drain(timeout=0.5) == []


def test_a_payment_confirmed_by_localstripes_own_webhook_after_a_timeout_is_not_lost(
        localstripe, start_payments, rpc, probe, payments_db, slow_link):  # noqa: F811
    inbox = WebhookInbox()
    localstripe.register_webhook("payments-service-tests", inbox.url, SECRET)
    try:
        start_payments(api_base=slow_link.url, timeout_seconds=1)
        with pytest.raises(ServiceUnavailable) as unavailable:
            rpc.charge(_order())
        payment_id = unavailable.value.details["payment_id"]
        reference = _stored(payments_db, payment_id).reference

        # localstripe posts payment_intent.succeeded about a second later, signed with SECRET.
        payload, signature = inbox.wait_for(
            "payment_intent.succeeded", where=lambda pi: pi["metadata"].get("payment_ref") == reference)
        assert rpc.handle_stripe_webhook(payload, signature)["duplicate"] is False
        assert rpc.handle_stripe_webhook(payload, signature)["duplicate"] is True
    finally:
        localstripe.register_webhook("payments-service-tests", "http://127.0.0.1:9/gone", SECRET,
                                     events=["nothing.ever"])
        inbox.close()

    assert _stored(payments_db, payment_id).status == "succeeded"
    [(kind, event)] = probe.drain(want=2, timeout=3)
    assert (kind, event["payment_id"]) == ("payment_succeeded", payment_id)
