"""Public shapes of places and reservations: validated at the reservations service's RPC
edge, documented in the gateway's OpenAPI, reused by gRPC and events.

A place's booking settings (time zone, capacity, opening hours, grid, limits, buffer) are only
typed here: their rules, and how they combine, are checked once, by the reservations service's
Schedule (docs/booking.md), on the settings a place would have after the change."""
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


# The time itself ("HH:MM", in range, close after open) is checked by the Schedule, whose
# message names the entry; here only what no time can hold, as for every free-text field.
ClockText = [validate.Length(min=1, max=5), PrintableText]


class OpeningHoursSchema(Schema):
    weekday = fields.Integer(required=True, strict=True, metadata={"description": "0 = Monday … 6 = Sunday."})
    open = fields.String(required=True, validate=ClockText, metadata={"description": "Local time HH:MM."})
    close = fields.String(required=True, validate=ClockText,
                          metadata={"description": 'Local time HH:MM, after open; "24:00" allowed.'})


class OpeningHoursOutSchema(LenientSchema):
    weekday = fields.Integer()
    open = fields.String()
    close = fields.String()


_TIMEZONE = {"description": "IANA name, e.g. Europe/Paris: opening hours, day pricing and the times "
                            "shown to people follow it."}
_CAPACITY = {"description": "How many can be booked at once (seats, desks, boats): 1 to 100000."}
_OPENING_HOURS = {"description": "Local opening intervals; empty or absent: always open. Intervals of "
                                 "one weekday must not overlap."}
_SLOT_MINUTES = {"description": "Bookings start and end on this grid, counted from local midnight; must "
                                "divide 1440. Default 60 for unit hour, 1440 for unit day."}
_MIN_MINUTES = {"description": "Shortest booking, in minutes of grid slots; null: no limit."}
_MAX_MINUTES = {"description": "Longest booking, in minutes of grid slots; null: no limit."}
_BUFFER_MINUTES = {"description": "Kept free after each booking (turnover), 0 to 10080."}
# The zone itself is checked by the Schedule; here only what no zone name can hold.
ZoneName = [validate.Length(min=1, max=64), PrintableText]
Minutes = validate.Range(min=0, max=10**7)  # the Schedule holds the real limits; this keeps ints sane


class PlaceCreateSchema(Schema):
    name = fields.String(required=True, validate=[validate.Length(min=1, max=100), PrintableText])
    description = fields.String(validate=[validate.Length(max=2000), MultilineText], allow_none=True)
    unit = fields.String(required=True, validate=validate.OneOf(UNITS))
    unit_price = fields.Integer(required=True, strict=True, validate=Price)
    currency = fields.String(required=True, validate=Currency)
    timezone = fields.String(load_default="UTC", validate=ZoneName, metadata=_TIMEZONE)
    capacity = fields.Integer(strict=True, load_default=1, validate=Minutes, metadata=_CAPACITY)
    opening_hours = fields.List(fields.Nested(OpeningHoursSchema), allow_none=True, metadata=_OPENING_HOURS)
    slot_minutes = fields.Integer(strict=True, allow_none=True, validate=Minutes, metadata=_SLOT_MINUTES)
    min_minutes = fields.Integer(strict=True, allow_none=True, validate=Minutes, metadata=_MIN_MINUTES)
    max_minutes = fields.Integer(strict=True, allow_none=True, validate=Minutes, metadata=_MAX_MINUTES)
    buffer_minutes = fields.Integer(strict=True, load_default=0, validate=Minutes, metadata=_BUFFER_MINUTES)


class PlaceUpdateSchema(Schema):
    """Only the fields given change; null on slot_minutes, min_minutes or max_minutes goes back to
    the default, null or [] on opening_hours to always open."""

    name = fields.String(validate=[validate.Length(min=1, max=100), PrintableText])
    description = fields.String(validate=[validate.Length(max=2000), MultilineText], allow_none=True)
    unit = fields.String(validate=validate.OneOf(UNITS))
    unit_price = fields.Integer(strict=True, validate=Price)
    currency = fields.String(validate=Currency)
    timezone = fields.String(validate=ZoneName, metadata=_TIMEZONE)
    capacity = fields.Integer(strict=True, validate=Minutes, metadata=_CAPACITY)
    opening_hours = fields.List(fields.Nested(OpeningHoursSchema), allow_none=True, metadata=_OPENING_HOURS)
    slot_minutes = fields.Integer(strict=True, allow_none=True, validate=Minutes, metadata=_SLOT_MINUTES)
    min_minutes = fields.Integer(strict=True, allow_none=True, validate=Minutes, metadata=_MIN_MINUTES)
    max_minutes = fields.Integer(strict=True, allow_none=True, validate=Minutes, metadata=_MAX_MINUTES)
    buffer_minutes = fields.Integer(strict=True, validate=Minutes, metadata=_BUFFER_MINUTES)


class PlaceSchema(LenientSchema):
    id = fields.Integer()
    name = fields.String()
    description = fields.String(allow_none=True)
    unit = fields.String()
    unit_price = fields.Integer()
    currency = fields.String()
    timezone = fields.String(metadata=_TIMEZONE)
    capacity = fields.Integer(metadata=_CAPACITY)
    opening_hours = fields.List(fields.Nested(OpeningHoursOutSchema), metadata=_OPENING_HOURS)
    slot_minutes = fields.Integer(metadata=_SLOT_MINUTES)
    min_minutes = fields.Integer(allow_none=True, metadata=_MIN_MINUTES)
    max_minutes = fields.Integer(allow_none=True, metadata=_MAX_MINUTES)
    buffer_minutes = fields.Integer(metadata=_BUFFER_MINUTES)
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


class SlotSchema(LenientSchema):
    start = UtcDateTime()
    end = UtcDateTime()
    remaining = fields.Integer(metadata={"description": "How many can still be booked for the whole slot."})


class AvailabilitySchema(LenientSchema):
    place_id = fields.Integer()
    timezone = fields.String(metadata=_TIMEZONE)
    capacity = fields.Integer(metadata=_CAPACITY)
    booked = fields.List(fields.Nested(IntervalSchema), metadata={"description": "Nothing left."})
    free = fields.List(fields.Nested(IntervalSchema), metadata={
        "description": "Within opening hours, at least one left."})
    slots = fields.List(fields.Nested(SlotSchema), metadata={
        "description": "Each grid slot within opening hours; at most 1000 per answer."})


class ReservationCreateSchema(Schema):
    place_id = fields.Integer(required=True, strict=True, validate=Id)
    start = UtcDateTime(required=True)
    end = UtcDateTime(required=True)
    quantity = fields.Integer(strict=True, load_default=1, validate=validate.Range(min=1, max=100_000), metadata={
        "description": "How many to book at once (seats, desks): 1 to the place's capacity."})
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
    quantity = fields.Integer(metadata={"description": "How many it holds at once (seats, desks)."})
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
