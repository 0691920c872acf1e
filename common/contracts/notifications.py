"""Public shapes of the notifications API: the events it consumes (validated where they
arrive), the delivery log it lists, and the operator calls on dead letters."""
from marshmallow import fields, validate

from common.schemas import Id, LenientSchema, PageQuery, Schema, UtcDateTime

CHANNELS = ("email", "sms")
NOTIFICATION_STATUSES = ("queued", "sent", "retrying", "failed")


class ContactEventSchema(LenientSchema):
    """auth.user_registered / auth.user_profile_changed: how to reach a user."""

    event_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    occurred_at = UtcDateTime(required=True)
    user_id = fields.Integer(required=True, strict=True, validate=Id)
    email = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=254))
    name = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=100))
    phone = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=20))
    notify_email = fields.Boolean(load_default=True)
    notify_sms = fields.Boolean(load_default=True)  # SMS is opt-out (auth's default)


class GuestEventSchema(LenientSchema):
    """The guest of a partner booking, as reservations announces them."""

    name = fields.String(required=True, validate=validate.Length(max=100))
    email = fields.String(required=True, validate=validate.Length(min=1, max=254))
    phone = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=32))


class ReservationEventSchema(LenientSchema):
    """reservations.reservation_confirmed / _cancelled / _expired / _rescheduled. A partner
    booking has no user (`user_id: null`) but a `partner`, `partner_ref` and `guest`."""

    event_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    occurred_at = UtcDateTime(required=True)
    reservation_id = fields.Integer(required=True, strict=True, validate=Id)
    user_id = fields.Integer(required=True, strict=True, validate=Id, allow_none=True)
    place_id = fields.Integer(required=True, strict=True, validate=Id)
    start = UtcDateTime(required=True)
    end = UtcDateTime(required=True)
    amount = fields.Integer(required=True, strict=True)
    currency = fields.String(required=True, validate=validate.Length(equal=3))
    refund_amount = fields.Integer(strict=True, allow_none=True, load_default=None)
    partner = fields.String(allow_none=True, load_default=None)
    partner_ref = fields.String(allow_none=True, load_default=None)
    guest = fields.Nested(GuestEventSchema, allow_none=True, load_default=None)


class PaymentEventSchema(LenientSchema):
    """payments.payment_failed / payment_refunded."""

    event_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    occurred_at = UtcDateTime(required=True)
    payment_id = fields.Integer(required=True, strict=True, validate=Id)
    reservation_id = fields.Integer(required=True, strict=True, validate=Id)
    user_id = fields.Integer(required=True, strict=True, validate=Id)
    amount = fields.Integer(required=True, strict=True)
    currency = fields.String(required=True, validate=validate.Length(equal=3))
    reason = fields.String(allow_none=True, load_default=None)


class NotificationQuerySchema(PageQuery):
    status = fields.String(validate=validate.OneOf(NOTIFICATION_STATUSES))
    channel = fields.String(validate=validate.OneOf(CHANNELS))
    user_id = fields.Integer(validate=Id, metadata={"description": "Needs notifications:read_any."})
    reservation_id = fields.Integer(validate=Id, metadata={
        "description": "The messages about one reservation (a partner booking's guest included, "
                       "with notifications:read_any)."})


class LimitSchema(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=1000))


class ReplaySchema(Schema):
    """Which dead letters to replay; None replays every one."""

    notification_ids = fields.List(fields.Integer(strict=True, validate=Id), allow_none=True, load_default=None)


class ActorSchema(LenientSchema):
    """Who asks, as the gateway passes it; None over RPC means an operator (full trust)."""

    user_id = fields.Integer(required=True, strict=True, validate=Id)
    permissions = fields.List(fields.String(), load_default=list)


class NotificationSchema(LenientSchema):
    """One row of the delivery log. `user_id` is null for the guest of a partner booking;
    `reservation_id` is the reservation the message is about (null for a welcome)."""

    id = fields.Integer()
    user_id = fields.Integer(allow_none=True)
    reservation_id = fields.Integer(allow_none=True)
    channel = fields.String(metadata={"enum": list(CHANNELS)})
    template = fields.String()
    recipient = fields.String()
    status = fields.String(metadata={"enum": list(NOTIFICATION_STATUSES)})
    attempts = fields.Integer()
    provider_message_id = fields.String(allow_none=True)
    last_error = fields.String(allow_none=True)
    event_id = fields.String()
    created_at = UtcDateTime()
    updated_at = UtcDateTime()


class DeadLetterSchema(LenientSchema):
    """A message parked in `notifications.dead_letter`, as an operator sees it."""

    notification_id = fields.Integer()
    reason = fields.String()
    dead_lettered_at = fields.String(allow_none=True)
