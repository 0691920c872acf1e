"""What a retry with the same Idempotency-Key finds after a fault, on a real database with a
scripted payments collaborator: the hold of a first request that died is finished (with the
same Stripe key, never a second booking), a hold still being charged is 409, and a hold that
expired is never answered as a success."""
import json

import pytest

from common.clock import utcnow
from common.errors import Conflict, ServiceUnavailable, SlotUnavailable
from common.storage.outbox import EventRecorder
from payments_service.charges import Charges
from payments_service.models import OutboxMessage as PaymentOutbox
from payments_service.repository import PaymentRepository
from payments_service.stripe_gateway import Intent, StripeUnavailable, WebhookEvent
from reservations_service.booking import RESUME_AFTER
from tests.conftest import first_words
from tests.unit.auth_fixtures import clock  # noqa: F401  (fixture)
from tests.unit.test_booking import CUSTOMER, ask, booking, payments, place, status_of  # noqa: F401

STRIPE_AWAY = ServiceUnavailable("Stripe is unreachable", {"payment_id": 1, "service": "stripe"})
IN_FLIGHT = ServiceUnavailable("Stripe is being asked", {"payment_id": 1, "service": "stripe", "in_flight": True})


def held_by_a_request_that_died(booking, place, payments, clock):  # noqa: F811
    """The first request held the slot, then its answer never came (payments unreachable
    here; a killed worker leaves the same state)."""
    request = ask(place, clock)
    payments.next_charge_error = STRIPE_AWAY
    with pytest.raises(ServiceUnavailable) as error:
        booking.reserve(CUSTOMER, request, idempotency_key="k1")
    return error.value.details["reservation_id"], request


def test_a_retry_soon_after_is_told_the_first_is_in_progress(booking, place, payments, clock):  # noqa: F811
    held, request = held_by_a_request_that_died(booking, place, payments, clock)
    with pytest.raises(Conflict) as error:
        booking.reserve(CUSTOMER, request, idempotency_key="k1")
    assert error.value.details == {"reservation_id": held}
    assert len(payments.charges) == 1  # not charged again


def test_a_later_retry_finishes_the_booking_with_the_same_stripe_key(
        booking, place, payments, reservations_db, clock):  # noqa: F811
    held, request = held_by_a_request_that_died(booking, place, payments, clock)
    clock.advance(seconds=RESUME_AFTER.total_seconds() + 1)
    confirmed = booking.reserve(CUSTOMER, request, idempotency_key="k1")
    assert (confirmed.id, confirmed.status) == (held, "confirmed")
    assert [c["idempotency_key"] for c in payments.charges] == [f"reservation-{held}"] * 2
    again = booking.reserve(CUSTOMER, request, idempotency_key="k1")
    assert again.id == held and len(payments.charges) == 2  # replayed, no third call


def test_a_later_retry_while_stripe_is_still_away_is_503_and_keeps_the_hold(
        booking, place, payments, reservations_db, clock):  # noqa: F811
    held, request = held_by_a_request_that_died(booking, place, payments, clock)
    clock.advance(seconds=RESUME_AFTER.total_seconds() + 1)
    payments.next_charge_error = STRIPE_AWAY
    with pytest.raises(ServiceUnavailable):
        booking.reserve(CUSTOMER, request, idempotency_key="k1")
    assert status_of(reservations_db, held) == "pending"


def test_a_later_retry_while_another_worker_charges_is_409(booking, place, payments, clock):  # noqa: F811
    held, request = held_by_a_request_that_died(booking, place, payments, clock)
    clock.advance(seconds=RESUME_AFTER.total_seconds() + 1)
    payments.next_charge_error = IN_FLIGHT
    with pytest.raises(Conflict) as error:
        booking.reserve(CUSTOMER, request, idempotency_key="k1")
    assert error.value.details == {"reservation_id": held}


def test_a_retry_after_the_hold_expired_is_not_a_success(booking, place, payments, reservations_db, clock):  # noqa: F811
    held, request = held_by_a_request_that_died(booking, place, payments, clock)
    clock.advance(seconds=601)
    assert booking.expire_stale_holds() == 1
    with pytest.raises(SlotUnavailable) as error:
        booking.reserve(CUSTOMER, request, idempotency_key="k1")
    assert error.value.details == {"reservation_id": held, "status": "expired"}
    assert len(payments.charges) == 1


# -- payments: a retried charge says whether Stripe is away or another worker is asking it --

class StripeAway:
    """A StripeGateway that cannot reach Stripe."""

    def __init__(self):
        self.calls = 0

    def create_intent(self, *_, **__):
        self.calls += 1
        raise StripeUnavailable("connection refused")

    find_intent = retrieve_intent = create_customer = attach_payment_method = create_intent


def test_a_retried_charge_tells_stripe_away_from_another_worker_asking(payments_db):  # noqa: F811
    stripe = StripeAway()
    charges = Charges(payments_db, EventRecorder(PaymentOutbox), stripe)
    order = {"reservation_id": 12, "user_id": 7, "amount": 1200, "currency": "usd",
             "payment_method": "pm_card_visa", "idempotency_key": "reservation-12"}
    with pytest.raises(ServiceUnavailable) as first:
        charges.charge(order)
    with pytest.raises(ServiceUnavailable) as retry:  # Stripe still away: looked up, not in flight
        charges.charge(order)
    assert "in_flight" not in first.value.details and "in_flight" not in retry.value.details
    asked = stripe.calls
    with payments_db.transaction() as session:  # another worker claims the call to Stripe
        PaymentRepository(session).lock(first.value.details["payment_id"]).stripe_call_started_at = utcnow()
    with pytest.raises(ServiceUnavailable) as busy:
        charges.charge(order)
    assert busy.value.details["in_flight"] is True and stripe.calls == asked  # Stripe not asked again


class StripeSays:
    """A StripeGateway whose PaymentIntents all succeed at once, and whose webhooks are
    taken as signed."""

    def __init__(self):
        self.intents = 0

    def create_intent(self, amount, currency, **_):
        self.intents += 1
        return Intent(id=f"pi_{self.intents}", status="succeeded", amount=amount, currency=currency)

    def create_customer(self, metadata):
        return "cus_1"

    def attach_payment_method(self, payment_method, customer):
        return "pm_1"

    def parse_webhook(self, payload, signature):
        event = json.loads(payload)
        return WebhookEvent(id=event["id"], type=event["type"], object=event["data"]["object"])


def _sql(statements):
    return [word for word in first_words(statements) if word != "BEGIN"]  # SQLite's BEGIN IMMEDIATE


def test_a_new_charge_inserts_its_payment_without_looking_for_it_first(
        payments_db, sent_statements):  # noqa: F811
    charges = Charges(payments_db, EventRecorder(PaymentOutbox), StripeSays())
    order = {"reservation_id": 13, "user_id": 7, "amount": 1200, "currency": "usd",
             "payment_method": "pm_card_visa", "idempotency_key": "reservation-13"}
    sent = sent_statements(payments_db)
    payment = charges.charge(order)
    assert payment.status == "succeeded" and payment.refunds == []
    # The payment row; the user's Stripe customer (none yet: it is made and stored); then,
    # settling, the locked payment (not its refunds: it has none), payment_succeeded in the
    # outbox, the payment's new state, and the customer whose card this now is.
    assert _sql(sent) == ["INSERT", "SELECT", "INSERT", "SELECT", "INSERT", "UPDATE", "SELECT", "UPDATE"]
    del sent[:]
    charges.charge(dict(order, reservation_id=15, idempotency_key="reservation-15"))
    # The user's next charge: the payment row first, then the customer, known now.
    assert _sql(sent)[:2] == ["INSERT", "SELECT"] and _sql(sent).count("INSERT") == 2
    assert charges.charge(order).id == payment.id  # the key again: the stored payment
    with pytest.raises(Conflict):
        charges.charge(dict(order, amount=1300))


def test_a_stripe_event_is_applied_once_without_looking_for_it_first(payments_db, sent_statements):  # noqa: F811
    charges = Charges(payments_db, EventRecorder(PaymentOutbox), StripeSays())
    payment = charges.charge({"reservation_id": 14, "user_id": 7, "amount": 1200, "currency": "usd",
                              "payment_method": "pm_card_visa", "idempotency_key": "reservation-14"})
    event = json.dumps({"id": "evt_14", "type": "payment_intent.succeeded",
                        "data": {"object": {"id": "pi_1", "status": "succeeded", "amount": 1200,
                                            "currency": "usd", "metadata": {}}}})
    sent = sent_statements(payments_db)
    assert charges.handle_webhook(event, "signed")["duplicate"] is False
    assert _sql(sent) == ["SELECT", "INSERT"]  # its payment, locked; the event (already settled)
    assert charges.handle_webhook(event, "signed")["duplicate"] is True
    assert charges.get(payment.id).status == "succeeded"
