"""Every event Bookify publishes, one schema per event type, owned by the service that
emits it (docs/events.md). Producers validate what they record against it
(`common.storage.outbox.EventRecorder`); consumers load what they receive with the same schema
(`common.runtime.inbox`). `VARIANTS` holds one example of every shape a producer can emit; the
contract test (tests/service/test_event_contracts.py) sends each to every consumer bound
to its type, through the real broker, so a producer change no consumer expects fails there.

Plain marshmallow: imported by domain code and tests alike."""
from dataclasses import dataclass

from marshmallow import fields, validate

from common.contracts.partners import PARTNER_MESSAGES, GuestSchema
from common.schemas import Id, LenientSchema, UtcDateTime

MINOR_UNITS = validate.Range(min=0, max=10**12)
Currency = validate.Regexp(r"^[a-z]{3}$", error="Three lowercase letters, e.g. usd.")


class EventSchema(LenientSchema):
    """The envelope every event body carries. Fields a newer producer adds are ignored by an
    older consumer (LenientSchema), so a producer may add a field without breaking anyone;
    removing or retyping one needs every consumer changed first."""

    event_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    occurred_at = UtcDateTime(required=True)


# -- auth.events ------------------------------------------------------------------------

class ContactEventSchema(EventSchema):
    """user_registered / user_profile_changed: how to reach a user."""

    user_id = fields.Integer(required=True, strict=True, validate=Id)
    email = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=254))
    name = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=100))
    phone = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=20))
    notify_email = fields.Boolean(load_default=True)
    notify_sms = fields.Boolean(load_default=True)  # SMS is opt-out (auth's default)


class UserRegisteredSchema(ContactEventSchema):
    source = fields.String(load_default="self", validate=validate.OneOf(("self", "admin", "seed")))


class RoleChangedSchema(EventSchema):
    role_id = fields.Integer(required=True, strict=True, validate=Id)


class UserRolesChangedSchema(EventSchema):
    user_id = fields.Integer(required=True, strict=True, validate=Id)


class SessionRevokedSchema(EventSchema):
    user_id = fields.Integer(required=True, strict=True, validate=Id)
    session_id = fields.String(required=True, validate=validate.Length(min=1, max=64))


# -- reservations.events ----------------------------------------------------------------

class ReservationEventSchema(EventSchema):
    """reservation_confirmed / _expired / _rescheduled (and _cancelled, below). A customer's
    booking has `user_id`; a partner's has `user_id: null`, `partner`, `partner_ref` and the
    `guest` to tell instead."""

    reservation_id = fields.Integer(required=True, strict=True, validate=Id)
    user_id = fields.Integer(required=True, strict=True, allow_none=True, validate=Id)
    place_id = fields.Integer(required=True, strict=True, validate=Id)
    start = UtcDateTime(required=True)
    end = UtcDateTime(required=True)
    amount = fields.Integer(required=True, strict=True, validate=MINOR_UNITS)
    currency = fields.String(required=True, validate=Currency)
    partner = fields.String(allow_none=True, load_default=None, validate=validate.Length(min=1, max=64))
    partner_ref = fields.String(allow_none=True, load_default=None, validate=validate.Length(min=1, max=128))
    guest = fields.Nested(GuestSchema, allow_none=True, load_default=None)
    # What messages show: the place by name, times in its zone. Absent from events recorded
    # before places had them: the place's number and UTC are shown then.
    place_name = fields.String(allow_none=True, load_default=None, validate=validate.Length(min=1, max=100))
    timezone = fields.String(allow_none=True, load_default=None, validate=validate.Length(min=1, max=64))
    quantity = fields.Integer(strict=True, load_default=1, validate=validate.Range(min=1))


class ReservationCancelledSchema(ReservationEventSchema):
    """`refund_amount`: the refund actually asked of payments (0: none is due)."""

    refund_amount = fields.Integer(required=True, strict=True, validate=MINOR_UNITS)


class PartnerAnswerSchema(EventSchema):
    partner = fields.String(required=True, validate=validate.Length(min=1, max=64))
    partner_ref = fields.String(required=True, validate=validate.Length(min=1, max=128))


class PartnerConfirmedSchema(PartnerAnswerSchema):
    reservation_id = fields.Integer(required=True, strict=True, validate=Id)


class PartnerRejectedSchema(PartnerAnswerSchema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class PartnerCancelledSchema(PartnerAnswerSchema):
    reservation_id = fields.Integer(required=True, strict=True, validate=Id)
    reason = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=2000))


# -- payments.events --------------------------------------------------------------------

class PaymentEventSchema(EventSchema):
    """payment_succeeded; `amount` is what was charged."""

    payment_id = fields.Integer(required=True, strict=True, validate=Id)
    reservation_id = fields.Integer(required=True, strict=True, validate=Id)
    user_id = fields.Integer(required=True, strict=True, validate=Id)
    amount = fields.Integer(required=True, strict=True, validate=MINOR_UNITS)
    currency = fields.String(required=True, validate=Currency)


class PaymentFailedSchema(PaymentEventSchema):
    reason = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=2000))


class PaymentRefundedSchema(PaymentEventSchema):
    """`amount` is this refund, not the payment."""

    reason = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=255))


# -- notifications.events ---------------------------------------------------------------

class NotificationEventSchema(EventSchema):
    """notification_sent / notification_failed; `user_id` is null for a partner's guest."""

    notification_id = fields.Integer(required=True, strict=True, validate=Id)
    user_id = fields.Integer(required=True, strict=True, allow_none=True, validate=Id)
    channel = fields.String(required=True, validate=validate.OneOf(("email", "sms")))
    template = fields.String(required=True, validate=validate.Length(min=1, max=64))
    attempts = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))


EVENTS = {
    "auth": {
        "user_registered": UserRegisteredSchema,
        "user_profile_changed": ContactEventSchema,
        "role_changed": RoleChangedSchema,
        "user_roles_changed": UserRolesChangedSchema,
        "session_revoked": SessionRevokedSchema,
    },
    "reservations": {
        "reservation_confirmed": ReservationEventSchema,
        "reservation_cancelled": ReservationCancelledSchema,
        "reservation_expired": ReservationEventSchema,
        "reservation_rescheduled": ReservationEventSchema,
        "partner_reservation_confirmed": PartnerConfirmedSchema,
        "partner_reservation_rejected": PartnerRejectedSchema,
        "partner_reservation_cancelled": PartnerCancelledSchema,
    },
    "payments": {
        "payment_succeeded": PaymentEventSchema,
        "payment_failed": PaymentFailedSchema,
        "payment_refunded": PaymentRefundedSchema,
    },
    "notifications": {
        "notification_sent": NotificationEventSchema,
        "notification_failed": NotificationEventSchema,
    },
    # Published by partner systems, not by a service of ours (docs/partners.md).
    "partners": PARTNER_MESSAGES,
}


class UnknownEvent(LookupError):
    """An event type no producer declares."""


def schema_of(source, event_type):
    """The schema class of `source`'s `event_type` (KeyError-free: UnknownEvent)."""
    try:
        return EVENTS[source][event_type]
    except KeyError:
        raise UnknownEvent(f"{source}.{event_type} is not a declared event") from None


# -- every shape a producer emits, as an example --------------------------------------

@dataclass(frozen=True)
class Variant:
    source: str
    event_type: str
    name: str
    body: dict


_ENVELOPE = {"event_id": "00000000-0000-4000-8000-000000000000", "occurred_at": "2027-03-01T09:00:00+00:00"}
_CUSTOMER = {"reservation_id": 41, "user_id": 7, "place_id": 1, "start": "2027-03-02T10:00:00+00:00",
             "end": "2027-03-02T12:00:00+00:00", "amount": 5000, "currency": "usd",
             "partner": None, "partner_ref": None, "guest": None, "place_name": "Meeting Room A",
             "timezone": "Europe/Paris", "quantity": 1}
# As reservations recorded them before events named the place and its zone.
_CUSTOMER_BEFORE_ZONES = {key: value for key, value in _CUSTOMER.items()
                          if key not in ("place_name", "timezone", "quantity")}
_PARTNER = {**_CUSTOMER, "reservation_id": 42, "user_id": None, "partner": "acme", "partner_ref": "A-1",
            "guest": {"name": "Gus Guest", "email": "gus@example.com", "phone": "+14155550100"}}
_PARTNER_NO_PHONE = {**_PARTNER, "reservation_id": 43, "partner_ref": "A-2",
                     "guest": {"name": "Gia Guest", "email": "gia@example.com", "phone": None}}
_PAYMENT = {"payment_id": 9, "reservation_id": 41, "user_id": 7, "amount": 5000, "currency": "usd"}
_CONTACT = {"user_id": 7, "email": "ann@example.com", "name": "Ann", "phone": "+14155550123",
            "notify_email": True, "notify_sms": True}


def _variants():
    def v(source, event_type, name, /, **body):  # positional: `name` is also a field
        return Variant(source, event_type, name, {**_ENVELOPE, **body})

    return [
        v("auth", "user_registered", "self sign-up", **_CONTACT, source="self"),
        v("auth", "user_registered", "created by an admin, no phone", **{**_CONTACT, "phone": None},
          source="admin"),
        v("auth", "user_registered", "the seeded admin", **{**_CONTACT, "name": None, "phone": None},
          source="seed"),
        v("auth", "user_profile_changed", "opted out of SMS", **{**_CONTACT, "notify_sms": False}),
        v("auth", "role_changed", "a role edited", role_id=3),
        v("auth", "user_roles_changed", "roles replaced", user_id=7),
        v("auth", "session_revoked", "logout or refresh reuse", user_id=7,
          session_id="5b0c3f6e-2a51-4a55-9d8e-1f2a3b4c5d6e"),
        v("reservations", "reservation_confirmed", "customer booking", **_CUSTOMER),
        v("reservations", "reservation_confirmed", "free place", **{**_CUSTOMER, "amount": 0}),
        v("reservations", "reservation_confirmed", "three seats of a UTC place",
          **{**_CUSTOMER, "timezone": "UTC", "quantity": 3, "amount": 15000}),
        v("reservations", "reservation_confirmed", "recorded before events named the place",
          **_CUSTOMER_BEFORE_ZONES),
        v("reservations", "reservation_confirmed", "partner booking", **_PARTNER),
        v("reservations", "reservation_confirmed", "partner booking, guest without phone", **_PARTNER_NO_PHONE),
        v("reservations", "reservation_cancelled", "customer, full refund", **_CUSTOMER, refund_amount=5000),
        v("reservations", "reservation_cancelled", "customer, late: part refunded", **_CUSTOMER,
          refund_amount=2500),
        v("reservations", "reservation_cancelled", "operator cancel, already refunded", **_CUSTOMER,
          refund_amount=0),
        v("reservations", "reservation_cancelled", "partner booking, no refund", **_PARTNER, refund_amount=0),
        v("reservations", "reservation_expired", "customer hold lapsed", **_CUSTOMER),
        v("reservations", "reservation_rescheduled", "moved to a dearer window",
          **{**_CUSTOMER, "end": "2027-03-02T13:00:00+00:00", "amount": 7500}),
        v("reservations", "reservation_rescheduled", "moved to a cheaper window",
          **{**_CUSTOMER, "end": "2027-03-02T11:00:00+00:00", "amount": 2500}),
        v("reservations", "partner_reservation_confirmed", "booked", partner="acme", partner_ref="A-1",
          reservation_id=42),
        v("reservations", "partner_reservation_rejected", "slot taken", partner="acme", partner_ref="A-3",
          reason="slot_unavailable"),
        v("reservations", "partner_reservation_rejected", "fewer left than asked", partner="acme",
          partner_ref="A-4", reason='slot_unavailable: {"quantity": 3, "remaining": 2}'),
        v("reservations", "partner_reservation_rejected", "outside opening hours", partner="acme",
          partner_ref="A-5", reason='invalid_window: {"start": ["The place is closed then (opening hours '
                                    'are in Europe/Paris)."]}'),
        v("reservations", "partner_reservation_rejected", "more than the place holds", partner="acme",
          partner_ref="A-6", reason='invalid_quantity: {"quantity": ["Must be a whole number from 1 to the '
                                    'place\'s capacity, 3."]}'),
        v("reservations", "partner_reservation_cancelled", "cancelled by an operator", partner="acme",
          partner_ref="A-1", reservation_id=42, reason="guest called"),
        v("payments", "payment_succeeded", "booking charged", **_PAYMENT),
        v("payments", "payment_succeeded", "reschedule difference charged",
          **{**_PAYMENT, "payment_id": 10, "amount": 2500}),
        v("payments", "payment_failed", "card declined", **_PAYMENT, reason="card_declined"),
        v("payments", "payment_refunded", "cancellation refund", **_PAYMENT, reason="cancelled"),
        v("payments", "payment_refunded", "operator refund, part", **{**_PAYMENT, "amount": 1000},
          reason=None),
        v("payments", "payment_refunded", "orphan charge refunded", **_PAYMENT,
          reason="reservation_not_confirmed"),
        v("notifications", "notification_sent", "to a customer", notification_id=5, user_id=7,
          channel="email", template="reservation_confirmed", attempts=1),
        v("notifications", "notification_failed", "to a guest", notification_id=6, user_id=None,
          channel="sms", template="reservation_confirmed", attempts=5),
        v("partners", "reservation_requested", "with a guest phone", partner="acme", partner_ref="A-9",
          place_id=1, start="2027-03-05T10:00:00+00:00", end="2027-03-05T11:00:00+00:00",
          guest={"name": "Gus Guest", "email": "gus@example.com", "phone": "+14155550100"}),
        v("partners", "reservation_cancel_requested", "by the partner", partner="acme", partner_ref="A-9"),
    ]


VARIANTS = _variants()


def variants_of(source, event_type):
    return [variant for variant in VARIANTS if (variant.source, variant.event_type) == (source, event_type)]
