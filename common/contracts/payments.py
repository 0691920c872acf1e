"""Public shapes of the payments API: what the reservations service sends to charge and
refund, and the payment (with its refunds) every caller gets back."""
from marshmallow import fields, validate

from common.schemas import Id, LenientSchema, Pattern, PrintableText, Schema, UtcDateTime

PAYMENT_STATUSES = ("pending", "succeeded", "failed", "partially_refunded", "refunded")
# Stripe's own ceiling for one charge (8 digits of minor units).
MAX_AMOUNT = 99_999_999


class ChargeSchema(Schema):
    """Charge a card for a reservation. The same `idempotency_key` never charges twice."""

    reservation_id = fields.Integer(required=True, strict=True, validate=Id)
    user_id = fields.Integer(required=True, strict=True, validate=Id)
    amount = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=MAX_AMOUNT))
    currency = fields.String(required=True, validate=Pattern(
        r"^[a-z]{3}$", error="Three lowercase letters (ISO 4217), e.g. usd."))
    # None: the user's saved card (the one that last paid), charged off-session.
    payment_method = fields.String(allow_none=True, load_default=None, validate=[
        validate.Length(min=1, max=255),
        Pattern(r"^[A-Za-z0-9_]+$", error="A Stripe payment method id, e.g. pm_card_visa.")])
    idempotency_key = fields.String(required=True, validate=[validate.Length(min=1, max=255), PrintableText])


class RefundSchema(Schema):
    """Refund part or all of a payment; no amount means everything not yet refunded.
    The same idempotency_key again never refunds twice."""

    payment_id = fields.Integer(required=True, strict=True, validate=Id)
    amount = fields.Integer(strict=True, allow_none=True, load_default=None,
                            validate=validate.Range(min=1, max=MAX_AMOUNT))
    reason = fields.String(allow_none=True, load_default=None,
                           validate=[validate.Length(max=255), PrintableText])
    idempotency_key = fields.String(allow_none=True, load_default=None,
                                    validate=[validate.Length(min=1, max=255), PrintableText])
    at_most_remaining = fields.Boolean(load_default=False)


class PaymentRefSchema(Schema):
    payment_id = fields.Integer(required=True, strict=True, validate=Id)


class WebhookSchema(Schema):
    """A Stripe webhook as the gateway forwards it: the raw body and its signature header."""

    payload = fields.String(required=True, validate=validate.Length(min=1, max=1_048_576))
    signature = fields.String(required=True, allow_none=True)


class RefundOutSchema(LenientSchema):
    id = fields.Integer()
    amount = fields.Integer()
    reason = fields.String(allow_none=True)
    status = fields.String()
    created_at = UtcDateTime()


class PaymentSchema(LenientSchema):
    id = fields.Integer()
    reservation_id = fields.Integer()
    user_id = fields.Integer()
    amount = fields.Integer()
    currency = fields.String()
    status = fields.String(metadata={"enum": list(PAYMENT_STATUSES)})
    failure_reason = fields.String(allow_none=True)
    refunded_amount = fields.Integer()
    refunds = fields.List(fields.Nested(RefundOutSchema))
    created_at = UtcDateTime()
    updated_at = UtcDateTime()
