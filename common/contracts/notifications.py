"""Public shapes of the notifications API: the delivery log it lists, its work-queue
messages, and the operator calls on dead letters. The events it consumes are their
producers' (common/contracts/events.py)."""
from marshmallow import fields, validate

from common.schemas import Id, LenientSchema, PageQuery, Schema, UtcDateTime, WholeNumber

CHANNELS = ("email", "sms")
# The statuses of a notification, named once here (the service and the API both read them).
# unknown: the provider took the request but did not answer in time; not resent on its own.
QUEUED, SENT, RETRYING, FAILED, UNKNOWN = "queued", "sent", "retrying", "failed", "unknown"
NOTIFICATION_STATUSES = (QUEUED, SENT, RETRYING, FAILED, UNKNOWN)


class DeliverySchema(Schema):
    """A message on the notifications work queue: which notification to send."""

    notification_id = fields.Integer(required=True, strict=True, validate=Id)


class NotificationQuerySchema(PageQuery):
    status = fields.String(validate=validate.OneOf(NOTIFICATION_STATUSES))
    channel = fields.String(validate=validate.OneOf(CHANNELS))
    user_id = WholeNumber(validate=Id, metadata={"description": "Needs notifications:read_any."})
    reservation_id = WholeNumber(validate=Id, metadata={
        "description": "The messages about one reservation (a partner booking's guest included, "
                       "with notifications:read_any)."})


class ReplaySchema(Schema):
    """Which dead letters to replay; None replays every one."""

    notification_ids = fields.List(fields.Integer(strict=True, validate=Id), allow_none=True, load_default=None)


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
