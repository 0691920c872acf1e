"""/v1/payments and the Stripe webhook."""
from common.contracts.payments import PaymentSchema
from common.runtime.rpc import TimedClient
from gateway.routing import route


class PaymentRoutes:
    # What this group uses; the gateway service class provides it (tests/unit/test_gateway_groups.py).
    payments: TimedClient

    @route("GET", "/v1/payments/{payment_id}", tag="payments", response=PaymentSchema)
    def get_payment(self, call, payment_id):
        """A payment with its refunds: yours, or any with payments:read_any (else 404)."""
        return self.payments.get_payment(payment_id, call.principal.as_actor())

    @route("POST", "/v1/webhooks/stripe", tag="payments", public=True)
    def stripe_webhook(self, call):
        """Stripe events; the Stripe-Signature header is verified, each event applied once."""
        result = self.payments.handle_stripe_webhook(
            call.request.get_data(as_text=True), call.request.headers.get("Stripe-Signature", ""))
        return {"received": True, "duplicate": result["duplicate"]}
