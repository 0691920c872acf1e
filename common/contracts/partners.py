"""What partner systems publish to the `partners.events` exchange (docs/partners.md)."""
from marshmallow import fields, validate

from common.schemas import Id, Pattern, PrintableText, Schema, UtcDateTime

partner = fields.String(required=True, validate=[validate.Length(min=1, max=64), PrintableText])
partner_ref = fields.String(required=True, validate=[validate.Length(min=1, max=128), PrintableText])
event_id = fields.String(required=True, validate=[validate.Length(min=1, max=64), PrintableText])
# Informative: partners may send their envelope's time; it is not read, but not just anything.
occurred_at = fields.String(validate=[validate.Length(max=64), PrintableText])


class GuestSchema(Schema):
    name = fields.String(required=True, validate=[validate.Length(min=1, max=100), PrintableText])
    email = fields.Email(required=True, validate=validate.Length(max=254))
    phone = fields.String(validate=Pattern(r"^\+[1-9]\d{6,14}$", error="Use E.164, e.g. +14155550100."),
                          allow_none=True)


class ReservationRequestedSchema(Schema):
    """routing key `reservation_requested`"""

    event_id = event_id
    partner = partner
    partner_ref = partner_ref
    place_id = fields.Integer(required=True, strict=True, validate=Id)
    start = UtcDateTime(required=True)
    end = UtcDateTime(required=True)
    quantity = fields.Integer(strict=True, load_default=1, validate=validate.Range(min=1, max=100_000))
    guest = fields.Nested(GuestSchema, required=True)
    occurred_at = occurred_at


class ReservationCancelRequestedSchema(Schema):
    """routing key `reservation_cancel_requested`"""

    event_id = event_id
    partner = partner
    partner_ref = partner_ref
    occurred_at = occurred_at


PARTNER_MESSAGES = {
    "reservation_requested": ReservationRequestedSchema,
    "reservation_cancel_requested": ReservationCancelRequestedSchema,
}
