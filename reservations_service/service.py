"""The `reservations` service: thin entrypoints over places and booking.
Operators call them from the console (common.runtime.service says how)."""
import kombu
import nameko
from nameko.extensions import DependencyProvider

from common.config import section
from common.contracts.actors import load_actor
from common.contracts.partners import PARTNER_MESSAGES
from common.contracts.reservations import (
    AvailabilityQuerySchema,
    CancelSchema,
    PlaceCreateSchema,
    PlaceQuerySchema,
    PlaceRefSchema,
    PlaceSchema,
    PlaceUpdateSchema,
    RescheduleSchema,
    ReservationCreateSchema,
    ReservationQuerySchema,
    ReservationRefSchema,
    ReservationSchema,
)
from common.contracts.reservations import idempotency_key as checked_idempotency_key
from common.runtime import (  # modules: `nameko run <module>` would run their classes as services
    inbox,
    service,
)
from common.runtime.dead_letters import DeadLetterQueue
from common.runtime.inbox import UnprocessableEvent, consumes, handles
from common.runtime.metrics import count_sweep_failure
from common.runtime.rpc import TimedServiceRpc, rpc
from common.runtime.timers import configured_timer
from common.schemas import LimitSchema, argument, query_or_empty
from reservations_service.booking import Booking, BookingPolicy
from reservations_service.models import OperatorCall, OutboxMessage
from reservations_service.partners import PartnerDesk
from reservations_service.places import Places, place_view
from reservations_service.refunds import RefundPolicy

PARTNER_EXCHANGE = kombu.Exchange("partners.events", type="topic", durable=True)
PARTNER_QUEUE = kombu.Queue("reservations.partner_requests", durable=True, bindings=[
    kombu.binding(PARTNER_EXCHANGE, routing_key=key) for key in PARTNER_MESSAGES])
PARTNER_DEAD_LETTERS = "partners.dead_letter"

places_out = PlaceSchema()
reservations_out = ReservationSchema()


class BookingSettings(DependencyProvider):
    """Reads the BOOKING config once: hold time, horizon and refund policy."""

    def setup(self):
        booking = section(nameko.config, "BOOKING")
        self.policy = BookingPolicy(
            hold_seconds=int(booking.get("hold_seconds", 600)),
            horizon_days=int(booking.get("horizon_days", 365)),
            refunds=RefundPolicy(int(booking.get("full_refund_hours", 24)),
                                 int(booking.get("late_refund_percent", 50))),
        )

    def get_dependency(self, worker_ctx):
        return self.policy


class PartnerDeadLetters(DependencyProvider):
    """The dead-letter queue of partner messages that could not be understood."""

    def setup(self):
        self.queue = DeadLetterQueue(nameko.config["AMQP_URI"], PARTNER_DEAD_LETTERS)

    def get_dependency(self, worker_ctx):
        return self.queue


def accepted_partners():
    names = nameko.config.get("PARTNERS") or ""
    return [name.strip() for name in str(names).split(",") if name.strip()]


def _place(place):
    return places_out.dump(place_view(place))


def _page(page, schema):
    return {"items": [schema.dump(item) for item in page.items], "total": page.total}


class ReservationsService(service.BookifyService, inbox.EventDeadLetterOperations,
                          audit_table=OperatorCall, outbox_table=OutboxMessage):
    name = "reservations"

    payments = TimedServiceRpc("payments")
    policy = BookingSettings()
    partner_dead_letters = PartnerDeadLetters()

    # -- places -------------------------------------------------------------------------

    @rpc
    def create_place(self, payload):
        """Example: n.rpc.reservations.create_place({"name": "Room A", "unit": "hour",
                 "unit_price": 2500, "currency": "usd", "timezone": "Europe/Paris"})"""
        return _place(Places(self.db).create(PlaceCreateSchema().load_or_raise(payload)))

    @rpc
    def get_place(self, place_id):
        """Example: n.rpc.reservations.get_place(1)"""
        return _place(Places(self.db).get(argument(PlaceRefSchema, place_id=place_id)))

    @rpc
    def list_places(self, query=None):
        """Example: n.rpc.reservations.list_places({"limit": 20, "offset": 0})"""
        page = PlaceQuerySchema().load_or_raise(query_or_empty(query))
        found = Places(self.db).listing(page["limit"], page["offset"])
        return {"items": [_place(place) for place in found.items], "total": found.total}

    @rpc
    def update_place(self, place_id, payload):
        """Change a place; new prices apply to new bookings only.
        Example: n.rpc.reservations.update_place(1, {"unit_price": 3000})"""
        place_id = argument(PlaceRefSchema, place_id=place_id)
        changes = PlaceUpdateSchema().load_or_raise(payload)
        return _place(Places(self.db).update(place_id, changes))

    @rpc
    def delete_place(self, place_id):
        """Retire a place; Conflict while it has upcoming reservations.
        Example: n.rpc.reservations.delete_place(1)"""
        Places(self.db).delete(argument(PlaceRefSchema, place_id=place_id))

    @rpc
    def availability(self, place_id, query):
        """Booked and free intervals of a place, and what is left of each grid slot.
        Example: n.rpc.reservations.availability(1, {"from": "2027-01-01T00:00:00Z",
                 "to": "2027-01-02T00:00:00Z"})"""
        place_id = argument(PlaceRefSchema, place_id=place_id)
        span = AvailabilityQuerySchema().load_or_raise(query)
        shown = Places(self.db).availability(place_id, span["frm"], span["to"])
        return {"place_id": shown["place_id"], "timezone": shown["timezone"], "capacity": shown["capacity"],
                "booked": [_interval(w) for w in shown["booked"]],
                "free": [_interval(w) for w in shown["free"]],
                "slots": [{"start": slot.start.isoformat(), "end": slot.end.isoformat(), "remaining": slot.remaining}
                          for slot in shown["slots"]]}

    # -- reservations -------------------------------------------------------------------

    @rpc
    def create_reservation(self, actor, payload, idempotency_key=None):
        """Hold the slot, charge, confirm. SlotUnavailable if taken, PaymentDeclined if refused.
        A booking is always someone's: `actor` names the user it is for and who pays (an operator
        books for a customer by passing their id; None is refused).
        Example: n.rpc.reservations.create_reservation({"user_id": 2, "permissions": []},
                 {"place_id": 1, "start": "2027-01-01T10:00:00Z", "end": "2027-01-01T12:00:00Z",
                  "payment_method": "pm_card_visa"})"""
        actor = load_actor(actor, required=True)
        fields = ReservationCreateSchema().load_or_raise(payload)
        key = checked_idempotency_key(idempotency_key)
        return reservations_out.dump(self._booking().reserve(actor, fields, key))

    @rpc
    def get_reservation(self, reservation_id, actor=None):
        """Example: n.rpc.reservations.get_reservation(12)"""
        reservation_id = argument(ReservationRefSchema, reservation_id=reservation_id)
        return reservations_out.dump(self._booking().get(load_actor(actor), reservation_id))

    @rpc
    def list_reservations(self, query=None, actor=None):
        """Search reservations by user, place, status and time.
        Example: n.rpc.reservations.list_reservations({"place_id": 1, "status": "confirmed",
                 "from": "2027-01-01T00:00:00Z"})"""
        filters = ReservationQuerySchema().load_or_raise(query_or_empty(query))
        return _page(self._booking().search(load_actor(actor), filters), reservations_out)

    @rpc
    def reschedule_reservation(self, reservation_id, payload, actor=None):
        """Move a confirmed reservation; the price difference is charged or refunded.
        Example: n.rpc.reservations.reschedule_reservation(12, {"start": "2027-01-02T10:00:00Z",
                 "end": "2027-01-02T13:00:00Z", "payment_method": "pm_card_visa"})"""
        reservation_id = argument(ReservationRefSchema, reservation_id=reservation_id)
        fields = RescheduleSchema().load_or_raise(payload)
        return reservations_out.dump(self._booking().reschedule(load_actor(actor), reservation_id, fields))

    @rpc
    def cancel_reservation(self, reservation_id, reason=None, actor=None):
        """Cancel with the refund the policy allows of what was kept; a partner booking refunds
        nothing and its partner is told (partner_reservation_cancelled).
        Example: n.rpc.reservations.cancel_reservation(12, "guest called to cancel")"""
        reservation_id = argument(ReservationRefSchema, reservation_id=reservation_id)
        reason = argument(CancelSchema, reason=reason)
        return reservations_out.dump(self._booking().cancel(load_actor(actor), reservation_id, reason))

    # -- background ---------------------------------------------------------------------

    @configured_timer("BOOKING", "sweep_interval_seconds", default=15)
    def sweep(self):
        """Expire holds whose payment never completed; retry refunds that could not be sent."""
        booking = self._booking()
        booking.expire_stale_holds()
        booking.pay_refunds_due()

    @handles("payments", "payment_succeeded")
    def on_payment_succeeded(self, event):
        self._booking().on_payment_succeeded(event)

    @handles("payments", "payment_refunded")
    def on_payment_refunded(self, event):
        self._booking().on_payment_refunded(event)

    # -- partners -----------------------------------------------------------------------

    @consumes(PARTNER_QUEUE, PARTNER_MESSAGES, dead_letter_queue=PARTNER_DEAD_LETTERS)
    def on_partner_message(self, delivery):
        """A partner's reservation_requested / reservation_cancel_requested (docs/partners.md),
        loaded with its schema; a malformed one is parked in partners.dead_letter."""
        desk = PartnerDesk(self.db, self.events, self.policy, accepted_partners())
        if refusal := desk.handle(delivery.routing_key, delivery.payload):
            raise UnprocessableEvent(refusal.reason)

    @rpc
    def list_partner_dead_letters(self, limit=50):
        """Partner messages that could not be handled, with the reason, oldest first.
        Example: n.rpc.reservations.list_partner_dead_letters(10)"""
        fields = LimitSchema().load_or_raise({"limit": limit})
        return self.partner_dead_letters.peek(fields["limit"])

    @rpc
    def replay_partner_dead_letters(self, limit=1000):
        """Send dead-lettered partner messages back to partners.events (after a fix).
        Example: n.rpc.reservations.replay_partner_dead_letters()"""
        fields = LimitSchema().load_or_raise({"limit": limit})
        return self.partner_dead_letters.replay(fields["limit"])

    def _booking(self):
        return Booking(self.db, self.events, self.payments, self.policy,
                       on_sweep_failure=lambda task: count_sweep_failure(self.name, task))


def _interval(window):
    return {"start": window.start.isoformat(), "end": window.end.isoformat()}
