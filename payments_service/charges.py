"""Payment use-cases: charge a card, refund, reconcile with Stripe and apply its webhooks.
Each database step is one transaction; none stays open while Stripe is being asked."""
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError

from common.clock import utcnow
from common.errors import Conflict, NotFound, PaymentDeclined, ServiceUnavailable, ValidationError
from common.permissions import may_see
from common.storage.engines import UnitsOfWork
from common.storage.outbox import EventRecorder
from payments_service.models import Payment, Refund, StripeCustomer, StripeEvent
from payments_service.repository import (
    PaymentRepository,
    RefundRepository,
    StripeCustomerRepository,
    StripeEventRepository,
)
from payments_service.stripe_gateway import (
    Intent,
    InvalidWebhook,
    StripeDeclined,
    StripeGateway,
    StripeUnavailable,
)

PENDING = "pending"
SUCCEEDED = "succeeded"
FAILED = "failed"
PARTIALLY_REFUNDED = "partially_refunded"
REFUNDED = "refunded"
REFUNDABLE = (SUCCEEDED, PARTIALLY_REFUNDED)

READ_ANY = "payments:read_any"
INTENT_EVENTS = ("payment_intent.succeeded", "payment_intent.payment_failed")


@dataclass(frozen=True)
class _Card:
    """What a PaymentIntent is charged to: a PaymentMethod attached to the user's customer.
    `saved`: the card on file, charged off-session (the customer is not there)."""

    customer: str
    payment_method: str
    saved: bool


@dataclass
class Charges:
    """`stripe` is a StripeGateway; `call_lease_seconds` is how long a Stripe call may be in
    flight before another worker may assume it died (the SDK timeout plus a margin)."""

    sessions: UnitsOfWork
    events: EventRecorder
    stripe: StripeGateway
    call_lease_seconds: float = 15.0
    clock: Callable[[], datetime] = utcnow

    @property
    def call_lease(self):
        return timedelta(seconds=self.call_lease_seconds)

    # -- charging -----------------------------------------------------------------------

    def charge(self, order):
        """Charge a card once per idempotency key. The same key again returns the stored
        payment (or raises its PaymentDeclined again); with other terms it is a Conflict.
        Until Stripe's answer is known the payment stays pending and ServiceUnavailable is
        raised; the payment_succeeded / payment_failed event follows once it is.
        With no `payment_method` the user's saved card (the one that last paid) is charged
        off-session; ValidationError if there is none."""
        payment, is_new = self._open(order)
        in_flight = False
        if is_new:
            payment = self._submit(payment)
        else:
            _check_same_terms(payment, order)
            if payment.status == PENDING:
                payment, in_flight = self._resume(payment.id)
        if payment.status == FAILED:
            raise _declined(payment)
        if payment.status == PENDING:
            raise _unavailable(payment, in_flight)
        return payment

    def _open(self, order):
        """The payment for this idempotency key: (stored one, False) or (new pending one, True)."""
        now = self.clock()
        payment_method = order.get("payment_method") or self._saved_card(order)
        try:
            with self.sessions.transaction() as session:
                # Written before Stripe is asked: a crash mid-charge leaves a row to reconcile.
                # Inserted without looking first: a key seen before (a retry, a race) fails
                # the unique index, and the stored payment is read below. Most keys are new.
                return PaymentRepository(session).add(Payment(
                    idempotency_key=order["idempotency_key"], reference=uuid.uuid4().hex,
                    reservation_id=order["reservation_id"], user_id=order["user_id"],
                    amount=order["amount"], currency=order["currency"],
                    payment_method=payment_method, status=PENDING, refunded_amount=0,
                    stripe_call_started_at=now, created_at=now, updated_at=now,
                )), True
        except IntegrityError:  # this key was used before, or a concurrent charge committed it first
            with self.sessions.transaction() as session:
                return PaymentRepository(session).by_idempotency_key(order["idempotency_key"]), False

    def _saved_card(self, order):
        """The PaymentMethod saved for the order's user; ValidationError if none."""
        with self.sessions.read() as session:
            saved = StripeCustomerRepository(session).get(order["user_id"])
            card = saved.payment_method if saved is not None else None
        if card is None:
            raise ValidationError("No card is saved for this user", {
                "payment_method": ["Required: no card has paid for this user yet."]})
        return card

    def _card_for(self, payment):
        """The customer and PaymentMethod to charge: the saved card as it is, or the given one
        attached to the user's customer (created on the first charge) so that it can be
        charged again later."""
        with self.sessions.read() as session:
            saved = StripeCustomerRepository(session).get(payment.user_id)
            customer = saved.customer_id if saved is not None else None
            card = saved.payment_method if saved is not None else None
        if card is not None and payment.payment_method == card:
            return _Card(customer, card, saved=True)
        if customer is None:
            customer = self._new_customer(payment.user_id)
        try:
            attached = self.stripe.attach_payment_method(payment.payment_method, customer)
        except StripeDeclined:
            if saved is None or self.stripe.customer_exists(customer):
                raise  # the card itself was refused
            customer = self._replace_customer(payment.user_id, customer)
            attached = self.stripe.attach_payment_method(payment.payment_method, customer)
        return _Card(customer, attached, saved=False)

    def _new_customer(self, user_id):
        created = self.stripe.create_customer({"user_id": user_id})
        now = self.clock()
        try:
            with self.sessions.transaction() as session:
                StripeCustomerRepository(session).add(StripeCustomer(
                    user_id=user_id, customer_id=created, created_at=now, updated_at=now))
            return created
        except IntegrityError:  # a parallel first charge of this user made one first: use it
            with self.sessions.read() as session:
                return StripeCustomerRepository(session).get(user_id).customer_id

    def _replace_customer(self, user_id, gone):
        """A new customer for a user whose stored one Stripe no longer has; the card saved on
        the old one is forgotten. A parallel charge that replaced it first wins."""
        created = self.stripe.create_customer({"user_id": user_id})
        with self.sessions.transaction() as session:
            saved = StripeCustomerRepository(session).get_for_update(user_id)
            if saved.customer_id == gone:
                saved.customer_id, saved.payment_method, saved.updated_at = created, None, self.clock()
            return saved.customer_id

    def _resume(self, payment_id):
        """A retried charge whose payment is still pending: find out what Stripe did, and
        send it (with the same idempotency key, so Stripe never charges twice) if nothing.
        Returns (payment, whether another worker's Stripe call for it is still in flight)."""
        payment = self._claim_payment(payment_id)
        if payment is None:  # another worker is asking Stripe right now, or it was settled
            payment = self.get(payment_id)
            return payment, payment.status == PENDING
        try:
            intent = self._look_up(payment)
        except ServiceUnavailable:
            self._release_payment(payment.id)
            raise
        if intent is None:
            return self._submit(payment), False
        return self._settle(payment.id, intent), False

    def _submit(self, payment):
        try:
            card = self._card_for(payment)
            intent = self.stripe.create_intent(
                amount=payment.amount, currency=payment.currency,
                payment_method=card.payment_method, metadata=_metadata(payment),
                idempotency_key=payment.idempotency_key, customer=card.customer, off_session=card.saved,
            )
        except StripeDeclined as declined:
            return self._settle(payment.id, None, failure=declined)
        except StripeUnavailable as error:
            self._release_payment(payment.id)
            raise _unavailable(payment) from error
        return self._settle(payment.id, intent, card=card)

    def _settle(self, payment_id, intent, failure=None, our_call=True, card=None):
        """Apply Stripe's answer (an intent, or a decline) to the payment, once. The payment
        is returned without its refunds: it was pending, and a pending payment has none.
        A new `card` that paid becomes the user's saved card."""
        with self.sessions.transaction() as session:
            payment = PaymentRepository(session).lock(payment_id, with_refunds=False)
            if our_call:
                payment.stripe_call_started_at = None  # our call is over, whatever it said
            if failure is not None:
                self._apply(session, payment, FAILED, failure.intent_id, failure.code)
            else:
                self._apply(session, payment, intent.outcome, intent.id, intent.failure_reason)
            if card is not None and not card.saved and payment.status == SUCCEEDED:
                saved = StripeCustomerRepository(session).get(payment.user_id)
                if saved is not None and saved.customer_id == card.customer:
                    saved.payment_method, saved.updated_at = card.payment_method, self.clock()
            return payment

    def _apply(self, session, payment, outcome, intent_id, reason):
        if payment.status != PENDING:
            return  # settled already (webhook, reconcile, a retry): its event went out then
        if intent_id and payment.stripe_intent_id is None:
            payment.stripe_intent_id = intent_id
        if outcome == PENDING:  # Stripe is still processing; the webhook will tell
            return
        payment.status = outcome
        payment.updated_at = self.clock()
        fields = dict(payment_id=payment.id, reservation_id=payment.reservation_id,
                      user_id=payment.user_id, amount=payment.amount, currency=payment.currency)
        if outcome == FAILED:
            payment.failure_reason = reason
            self.events.record(session, "payment_failed", **fields, reason=reason)
        else:
            self.events.record(session, "payment_succeeded", **fields)

    def _claim_payment(self, payment_id):
        """The pending payment, now marked as being sent to Stripe by us; None when it is
        settled or another worker's call is still in flight."""
        with self.sessions.transaction() as session:
            return self._claim(PaymentRepository(session).lock(payment_id))

    def _release_payment(self, payment_id):
        with self.sessions.transaction() as session:
            PaymentRepository(session).lock(payment_id).stripe_call_started_at = None

    def _look_up(self, payment):
        """The PaymentIntent Stripe holds for this payment, or None if it never got one."""
        try:
            if payment.stripe_intent_id:
                return self.stripe.retrieve_intent(payment.stripe_intent_id)
            return self.stripe.find_intent("payment_ref", payment.reference)
        except (StripeUnavailable, StripeDeclined) as error:
            raise _unavailable(payment) from error

    # -- refunds ------------------------------------------------------------------------

    def refund(self, payment_id, amount=None, reason=None, idempotency_key=None, at_most_remaining=False):
        """Refund `amount` (default: all not yet refunded) of a succeeded payment. The same
        idempotency_key again returns the payment, re-sending the refund only if Stripe never
        answered the first time; with another amount it is a Conflict.
        `at_most_remaining` caps `amount` at what is left instead of refusing it: a refund owed
        by policy (a cancellation) after an operator already refunded part of the payment. Its
        key, repeated, answers the capped refund whatever amount is asked."""
        now = self.clock()
        with self.sessions.transaction() as session:
            payment = self._locked(session, payment_id)
            refund = _refund_with_key(payment, idempotency_key)
            if refund is None:
                if at_most_remaining and amount is not None:
                    amount = min(amount, payment.amount - payment.refunded_amount)
                    if amount == 0:
                        return payment  # everything owed is already back with the customer
                refund = self._new_refund(payment, amount, reason, idempotency_key, now)
                session.flush()
            elif amount is not None and amount != refund.amount and not at_most_remaining:
                raise Conflict("This idempotency key was already used for a different refund",
                               {"idempotency_key": [f"Already used for a refund of {refund.amount}."]})
            elif refund.status == PENDING and not self._in_flight(refund, now):
                refund.stripe_call_started_at = now  # the earlier attempt is over: send it again
            else:
                return _refund_outcome(payment, refund)
        return _refund_outcome(self._send_refund(payment, refund), refund)

    def _new_refund(self, payment, amount, reason, idempotency_key, now):
        if payment.status not in REFUNDABLE:
            raise Conflict(f"A {payment.status} payment cannot be refunded",
                           {"payment_id": payment.id, "status": payment.status})
        if any(refund.status == PENDING for refund in payment.refunds):
            raise ServiceUnavailable(
                "An earlier refund of this payment still awaits Stripe; retry later or reconcile it",
                {"payment_id": payment.id, "service": "stripe"})
        remaining = payment.amount - payment.refunded_amount
        amount = remaining if amount is None else amount
        if not 1 <= amount <= remaining:
            raise ValidationError("The refund amount exceeds what is left to refund",
                                  {"amount": [f"Must be between 1 and {remaining}."]})
        refund = Refund(sequence=len(payment.refunds) + 1, amount=amount, reason=reason,
                        idempotency_key=idempotency_key, status=PENDING,
                        stripe_call_started_at=now, created_at=now, updated_at=now)
        payment.refunds.append(refund)
        return refund

    def _send_refund(self, payment, refund):
        """Ask Stripe for the refund and record its answer; the payment as it is then."""
        try:
            result = self.stripe.refund(
                intent_id=payment.stripe_intent_id, amount=refund.amount,
                metadata={"payment_id": payment.id, "payment_ref": payment.reference,
                          "reason": refund.reason},
                # One key per refund of this payment: a retry of the same refund never pays twice.
                idempotency_key=f"payment-{payment.id}-{payment.reference}-refund-{refund.sequence}",
            )
        except StripeDeclined as refused:
            return self._finish_refund(payment.id, refund.id, failure=refused.code)
        except StripeUnavailable as error:
            self._release_refund(refund.id)
            raise _refund_pending(payment, refund) from error
        return self._finish_refund(payment.id, refund.id, result=result)

    def _finish_refund(self, payment_id, refund_id, result=None, failure=None):
        with self.sessions.transaction() as session:
            payment = PaymentRepository(session).lock(payment_id)
            refund = RefundRepository(session).get(refund_id)
            refund.stripe_call_started_at = None
            if refund.status != PENDING:
                return payment
            now = self.clock()
            refund.updated_at = now
            if failure is not None:
                refund.status, refund.failure_reason = FAILED, failure
                return payment
            refund.status, refund.stripe_refund_id = SUCCEEDED, result.id
            payment.refunded_amount += refund.amount
            payment.status = REFUNDED if payment.refunded_amount >= payment.amount else PARTIALLY_REFUNDED
            payment.updated_at = now
            self.events.record(
                session, "payment_refunded", payment_id=payment.id, reservation_id=payment.reservation_id,
                user_id=payment.user_id, amount=refund.amount, currency=payment.currency,
                reason=refund.reason)
            return payment

    def _claim_refund(self, payment_id, refund_id):
        with self.sessions.transaction() as session:
            PaymentRepository(session).lock(payment_id)
            return self._claim(RefundRepository(session).get(refund_id))

    def _release_refund(self, refund_id):
        with self.sessions.transaction() as session:
            RefundRepository(session).get(refund_id).stripe_call_started_at = None

    # -- reconciliation -----------------------------------------------------------------

    def reconcile(self, payment_id):
        """Bring a payment in line with Stripe: a pending charge takes the outcome of its
        PaymentIntent (left pending if Stripe never got one); a pending refund is re-sent
        with its own idempotency key. Never starts a new charge."""
        payment = self.get(payment_id)
        if payment.status == PENDING:
            intent = self._look_up(payment)
            if intent is not None:
                self._settle(payment.id, intent, our_call=False)
                payment = self.get(payment_id)
        for refund in [r for r in payment.refunds if r.status == PENDING]:
            claimed = self._claim_refund(payment.id, refund.id)
            if claimed is not None:
                self._send_refund(payment, claimed)
        return self.get(payment_id)

    def handle_webhook(self, payload, signature):
        """Apply a signed Stripe event once: a PaymentIntent outcome settles its payment if
        that is still pending; every other event is recorded and ignored."""
        try:
            event = self.stripe.parse_webhook(payload, signature)
        except InvalidWebhook as invalid:
            message = "Invalid Stripe signature" if invalid.field == "signature" else "Invalid Stripe event"
            raise ValidationError(message, {invalid.field: [invalid.message]}) from None
        answer = {"event_id": event.id, "type": event.type, "duplicate": True}
        try:
            with self.sessions.transaction() as session:
                payment = self._payment_of(session, event.object) if event.type in INTENT_EVENTS else None
                # An event seen before fails the primary key here, and nothing is applied
                # (IntegrityError, below): one statement instead of a look first.
                StripeEventRepository(session).add(StripeEvent(
                    id=event.id, type=event.type, received_at=self.clock(),
                    payment_id=payment.id if payment is not None else None))
                if payment is not None:
                    intent = Intent.from_stripe(event.object)
                    self._apply(session, payment, intent.outcome, intent.id, intent.failure_reason)
        except IntegrityError:  # delivered before, or twice at once: the other delivery applied it
            return answer
        return dict(answer, duplicate=False)

    def _payment_of(self, session, intent):
        """Our payment for a PaymentIntent in an event, locked, without its refunds (applying
        an outcome never reads them); None if it is not ours."""
        payments = PaymentRepository(session)
        payment = payments.lock_by_intent(intent["id"]) if intent.get("id") else None
        if payment is not None:
            return payment
        # A timed-out charge never learnt its intent id: match on metadata, and the
        # reference too, since payment ids repeat across databases sharing one Stripe account.
        metadata = intent.get("metadata") or {}
        payment_id = str(metadata.get("payment_id", ""))
        if not payment_id.isdigit():
            return None
        payment = payments.lock(int(payment_id), with_refunds=False)
        if payment is None or payment.reference != metadata.get("payment_ref"):
            return None
        return payment

    # -- reading ------------------------------------------------------------------------

    def get(self, payment_id, actor=None):
        """A payment with its refunds. For an `actor` who neither owns it nor holds
        payments:read_any it does not exist (NotFound, never Forbidden)."""
        with self.sessions.transaction() as session:
            payment = PaymentRepository(session).get(payment_id)
        if payment is None or not may_see(actor, payment.user_id, READ_ANY):
            raise NotFound("Payment not found", {"id": payment_id})
        return payment

    def for_reservation(self, reservation_id):
        with self.sessions.transaction() as session:
            return PaymentRepository(session).for_reservation(reservation_id)

    # -- internals ----------------------------------------------------------------------

    def _locked(self, session, payment_id):
        payment = PaymentRepository(session).lock(payment_id)
        if payment is None:
            raise NotFound("Payment not found", {"id": payment_id})
        return payment

    def _claim(self, row):
        """`row` (a payment or refund, locked), marked as being sent to Stripe by us now;
        None when it is settled or another worker's call for it is still in flight."""
        now = self.clock()
        if row.status != PENDING or self._in_flight(row, now):
            return None
        row.stripe_call_started_at = now
        return row

    def _in_flight(self, row, now):
        started = row.stripe_call_started_at
        return started is not None and started > now - self.call_lease


def _check_same_terms(payment, order):
    stored = (payment.reservation_id, payment.user_id, payment.amount, payment.currency)
    asked = (order["reservation_id"], order["user_id"], order["amount"], order["currency"])
    if stored != asked:
        raise Conflict("This idempotency key was already used for a different payment",
                       {"idempotency_key": ["Already used with another reservation, user or amount."]})


def _refund_with_key(payment, idempotency_key):
    if idempotency_key is None:
        return None
    return next((r for r in payment.refunds if r.idempotency_key == idempotency_key), None)


def _refund_outcome(payment, refund):
    """What a refund call answers once the refund's state is known."""
    refund = next(r for r in payment.refunds if r.id == refund.id)
    if refund.status == FAILED:
        raise Conflict("Stripe refused the refund",
                       {"payment_id": payment.id, "refund_id": refund.id, "reason": refund.failure_reason})
    if refund.status == PENDING:
        raise _refund_pending(payment, refund)
    return payment


def _refund_pending(payment, refund):
    return ServiceUnavailable(
        "The refund is not confirmed by Stripe yet; it stays pending until retried or reconciled",
        {"payment_id": payment.id, "refund_id": refund.id, "service": "stripe"})


def _metadata(payment):
    return {"payment_id": payment.id, "payment_ref": payment.reference,
            "reservation_id": payment.reservation_id, "user_id": payment.user_id}


def _declined(payment):
    return PaymentDeclined("The payment was declined",
                           {"payment_id": payment.id, "reason": payment.failure_reason})


def _unavailable(payment, in_flight=False):
    """`in_flight`: another worker is asking Stripe about this payment right now (the caller
    is a retry), rather than Stripe being unreachable."""
    details = {"payment_id": payment.id, "service": "stripe"}
    if in_flight:
        details["in_flight"] = True
    return ServiceUnavailable(
        "The payment is not confirmed by Stripe yet; it stays pending until Stripe answers", details)
