"""Public shapes of places and reservations: validated at the reservations service's RPC
edge, documented in the gateway's OpenAPI, reused by gRPC and events."""
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import ValidationError as FieldError
from marshmallow import fields, validate

from common.errors import ValidationError
from common.schemas import (
    Id,
    LenientSchema,
    MultilineText,
    PageQuery,
    Pattern,
    PrintableText,
    Schema,
    UtcDateTime,
    WholeNumber,
)

UNITS = ("hour", "day")
RESERVATION_STATUSES = ("pending", "confirmed", "cancelled", "expired", "failed")
Currency = Pattern(r"^[a-z]{3}$", error="Three lowercase letters, e.g. usd.")
PaymentMethod = Pattern(r"^[A-Za-z0-9_]{1,255}$", error="Not a payment method id.")
Price = validate.Range(min=0, max=10**9)


def TimeZone(value):  # noqa: N802 -- reads like the other validators
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a file
        raise FieldError("Unknown time zone; use an IANA name like Europe/Paris.") from None


class PlaceRefSchema(Schema):
    place_id = fields.Integer(required=True, strict=True, validate=Id)


class ReservationRefSchema(Schema):
    reservation_id = fields.Integer(required=True, strict=True, validate=Id)


class IdempotencyKeySchema(Schema):
    """The Idempotency-Key a booking may carry (HTTP header, gRPC field, RPC argument)."""

    idempotency_key = fields.String(allow_none=True, load_default=None,
                                    validate=[validate.Length(min=1, max=255), PrintableText])


def idempotency_key(value, name="idempotency_key"):
    """The one check of an Idempotency-Key, at every door (HTTP header, gRPC field, RPC
    argument): None, or 1-255 printable characters. The error names the field as that door
    calls it (`Idempotency-Key` for the HTTP header)."""
    try:
        return IdempotencyKeySchema().load_or_raise({"idempotency_key": value})["idempotency_key"]
    except ValidationError:
        raise ValidationError(f"Invalid {name}", {name: ["1-255 printable characters."]}) from None


class PlaceCreateSchema(Schema):
    name = fields.String(required=True, validate=[validate.Length(min=1, max=100), PrintableText])
    description = fields.String(validate=[validate.Length(max=2000), MultilineText], allow_none=True)
    unit = fields.String(required=True, validate=validate.OneOf(UNITS))
    unit_price = fields.Integer(required=True, strict=True, validate=Price)
    currency = fields.String(required=True, validate=Currency)
    timezone = fields.String(load_default="UTC", validate=[validate.Length(min=1, max=64), TimeZone])


class PlaceUpdateSchema(Schema):
    name = fields.String(validate=[validate.Length(min=1, max=100), PrintableText])
    description = fields.String(validate=[validate.Length(max=2000), MultilineText], allow_none=True)
    unit = fields.String(validate=validate.OneOf(UNITS))
    unit_price = fields.Integer(strict=True, validate=Price)
    currency = fields.String(validate=Currency)
    timezone = fields.String(validate=[validate.Length(min=1, max=64), TimeZone])


class PlaceSchema(LenientSchema):
    id = fields.Integer()
    name = fields.String()
    description = fields.String(allow_none=True)
    unit = fields.String()
    unit_price = fields.Integer()
    currency = fields.String()
    timezone = fields.String()
    created_at = UtcDateTime()
    updated_at = UtcDateTime()


class PlaceQuerySchema(PageQuery):
    pass


class AvailabilityQuerySchema(Schema):
    # data_key: `from` is a Python keyword
    frm = UtcDateTime(required=True, data_key="from")
    to = UtcDateTime(required=True)


class IntervalSchema(LenientSchema):
    start = UtcDateTime()
    end = UtcDateTime()


class AvailabilitySchema(LenientSchema):
    place_id = fields.Integer()
    booked = fields.List(fields.Nested(IntervalSchema))
    free = fields.List(fields.Nested(IntervalSchema))


class ReservationCreateSchema(Schema):
    place_id = fields.Integer(required=True, strict=True, validate=Id)
    start = UtcDateTime(required=True)
    end = UtcDateTime(required=True)
    payment_method = fields.String(load_default=None, validate=PaymentMethod, metadata={
        "description": "Required when the booking costs anything (a place with unit_price 0 books free)."})


class RescheduleSchema(Schema):
    start = UtcDateTime(required=True)
    end = UtcDateTime(required=True)
    payment_method = fields.String(validate=PaymentMethod, metadata={
        "description": "Pays the difference when the new window costs more; without it the card "
                       "that paid the booking (saved on the customer) is charged."})


class CancelSchema(Schema):
    reason = fields.String(validate=[validate.Length(max=500), PrintableText], allow_none=True)


class ReservationQuerySchema(PageQuery):
    status = fields.String(validate=validate.OneOf(RESERVATION_STATUSES))
    place_id = WholeNumber(validate=Id)
    user_id = WholeNumber(validate=Id, metadata={"description": "Needs reservations:read_any."})
    frm = UtcDateTime(data_key="from")
    to = UtcDateTime()


class ReservationSchema(LenientSchema):
    id = fields.Integer()
    place_id = fields.Integer()
    user_id = fields.Integer()
    start = UtcDateTime()
    end = UtcDateTime()
    status = fields.String()
    amount = fields.Integer(metadata={"description": "The price of the window booked, at the terms it was "
                                                     "booked at (minor units)."})
    currency = fields.String()
    unit = fields.String()
    unit_price = fields.Integer(metadata={"description": "The price per unit when it was booked."})
    quantity = fields.Integer()
    payment_id = fields.Integer(allow_none=True, metadata={"description": "The first payment."})
    paid = fields.Integer(metadata={"description": "The sum charged for it (minor units)."})
    refunded = fields.Integer(metadata={"description": "The sum refunded; never more than paid."})
    payment_ids = fields.List(fields.Integer(), metadata={"description": "Every payment made for it, "
                                                                       "first one first."})
    refund_amount = fields.Integer(metadata={"description": "The refund its cancellation asked for."})
    cancel_reason = fields.String(allow_none=True)
    hold_expires_at = UtcDateTime(allow_none=True)
    created_at = UtcDateTime()
    updated_at = UtcDateTime()
