"""The `payments` service: thin RPC entrypoints over the charge, refund and webhook use-cases.
Operators call them from the console (common.runtime.service says how)."""
import nameko

from common.config import require_secret, section
from common.contracts.actors import load_actor
from common.contracts.payments import ChargeSchema, PaymentRefSchema, PaymentSchema, RefundSchema, WebhookSchema
from common.contracts.reservations import ReservationRefSchema
from common.runtime import service  # modules: `nameko run <module>` would run their classes as services
from common.runtime.rpc import rpc
from common.schemas import argument
from payments_service.charges import Charges
from payments_service.models import OperatorCall, OutboxMessage
from payments_service.stripe_gateway import StripeGateway

# How long past the SDK timeout a Stripe call counts as still in flight (a worker may die mid-call).
CALL_LEASE_MARGIN_SECONDS = 5

payments_out = PaymentSchema()


class StripeComponents(service.Components):
    """Reads the STRIPE config once; hands workers the gateway and the call lease."""

    def setup(self):
        config = section(nameko.config, "STRIPE")
        require_secret(config.get("webhook_secret"), "STRIPE_WEBHOOK_SECRET")
        self.gateway = StripeGateway.from_config(config)
        self.call_lease_seconds = float(config.get("timeout_seconds", 10)) + CALL_LEASE_MARGIN_SECONDS


class PaymentsService(service.BookifyService, audit_table=OperatorCall, outbox_table=OutboxMessage):
    name = "payments"

    stripe = StripeComponents()

    @rpc
    def charge(self, payload):
        """Charge a card for a reservation, once per idempotency_key. Raises PaymentDeclined,
        Conflict (key reused with other terms) or ServiceUnavailable (Stripe silent; stays pending).
        Example: n.rpc.payments.charge({"reservation_id": 12, "user_id": 7, "amount": 12000,
                 "currency": "usd", "payment_method": "pm_card_visa", "idempotency_key": "res-12"})"""
        order = ChargeSchema().load_or_raise(payload)
        return payments_out.dump(self._charges().charge(order))

    @rpc
    def refund(self, payment_id, amount=None, reason=None, idempotency_key=None, at_most_remaining=False):
        """Refund part of a payment, or all that is left when amount is None; the same
        idempotency_key again never refunds twice. at_most_remaining=True caps the amount at what
        is left instead of refusing it.
        Example: n.rpc.payments.refund(42, 6000, "cancelled 3 hours before start", "res-12-cancel")"""
        fields = RefundSchema().load_or_raise({"payment_id": payment_id, "amount": amount, "reason": reason,
                                               "idempotency_key": idempotency_key,
                                               "at_most_remaining": at_most_remaining})
        return payments_out.dump(self._charges().refund(**fields))

    @rpc
    def get_payment(self, payment_id, actor=None):
        """A payment with its refunds; another user's is NotFound unless payments:read_any.
        Example: n.rpc.payments.get_payment(42)"""
        payment = self._charges().get(argument(PaymentRefSchema, payment_id=payment_id), load_actor(actor))
        return payments_out.dump(payment)

    @rpc
    def payments_for_reservation(self, reservation_id):
        """Every payment made for a reservation, oldest first.
        Example: n.rpc.payments.payments_for_reservation(12)"""
        fields = ReservationRefSchema().load_or_raise({"reservation_id": reservation_id})
        return [payments_out.dump(p) for p in self._charges().for_reservation(fields["reservation_id"])]

    @rpc
    def reconcile(self, payment_id):
        """Ask Stripe what became of a pending payment (or a pending refund) and record it.
        Example: n.rpc.payments.reconcile(42)"""
        fields = PaymentRefSchema().load_or_raise({"payment_id": payment_id})
        return payments_out.dump(self._charges().reconcile(fields["payment_id"]))

    @rpc
    def handle_stripe_webhook(self, payload, signature):
        """Apply a Stripe webhook (the raw body and its Stripe-Signature header), once per event.
        Example: n.rpc.payments.handle_stripe_webhook('{"id": "evt_1", …}', "t=1700000000,v1=5257a8…")"""
        fields = WebhookSchema().load_or_raise({"payload": payload, "signature": signature})
        return self._charges().handle_webhook(fields["payload"], fields["signature"])

    def _charges(self):
        return Charges(self.db, self.events, self.stripe.gateway, self.stripe.call_lease_seconds)
