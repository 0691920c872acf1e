"""Partner bookings: systems that collected payment themselves ask for a reservation by
event on `partners.events`, and get `partner_reservation_confirmed` or `_rejected` back.
`partner_reservation_cancelled` follows any cancellation of a partner booking.
Idempotent per event_id and per (partner, partner_ref). Malformed messages are not ours
to guess at: they go to the dead-letter queue with the reason."""
import json
from dataclasses import dataclass

import sqlalchemy as sa

from common.clock import utcnow
from common.contracts.partners import PARTNER_MESSAGES
from common.errors import SlotUnavailable, ValidationError
from reservations_service.booking import admit_under_lock, partner_fields, reservation_fields
from reservations_service.lifecycle import Status, transition
from reservations_service.models import Reservation
from reservations_service.repository import PlaceRepository, ProcessedEvents, ReservationRepository
from reservations_service.schedule import price
from reservations_service.windows import validate_booking_window

PAYMENT_BY_PARTNER = "partner"


@dataclass(frozen=True)
class Malformed:
    """The message cannot be understood; it belongs in the dead-letter queue."""

    reason: str


class PartnerDesk:
    def __init__(self, sessions, events, policy, accepted_partners=(), clock=utcnow):
        self.sessions = sessions
        self.events = events
        self.policy = policy
        self.accepted = set(accepted_partners)  # empty: any partner
        self.clock = clock

    def handle(self, routing_key, fields):
        """Act on one message, already loaded with its schema (common.contracts.partners);
        returns Malformed(reason) when it must be dead-lettered instead."""
        if routing_key not in PARTNER_MESSAGES:
            return Malformed(f"unknown message type {routing_key!r}")
        if routing_key == "reservation_requested":
            self.book(fields)
        else:
            self.cancel(fields)
        return None

    def book(self, request):
        now = self.clock()
        with self.sessions.transaction() as session:
            if not ProcessedEvents(session).claim(request["event_id"], now):
                return  # this event was handled already (or is being handled right now)
            reservations = ReservationRepository(session)
            existing = _by_partner_ref(session, request["partner"], request["partner_ref"])
            if existing is not None:  # the same booking asked for again: answer as before
                self._answer(session, request, existing)
                return
            refusal, window = self._check(session, request, now)
            if refusal:
                self._reject(session, request, refusal)
                return
            place = PlaceRepository(session).active(request["place_id"], for_update=True)
            # Again under the place's lock: a retry of this very booking may just have won it.
            existing = _by_partner_ref(session, request["partner"], request["partner_ref"])
            if existing is not None:
                self._answer(session, request, existing)
                return
            quantity = request.get("quantity", 1)
            try:
                schedule, window = admit_under_lock(place, reservations, window, quantity, now)
            except ValidationError as error:
                self._reject(session, request, _refusal(error.details))
                return
            except SlotUnavailable as taken:
                self._reject(session, request, _taken(taken.details))
                return
            guest = request["guest"]
            reservation = reservations.add(Reservation(
                place_id=place.id, user_id=None, start=window.start, end=window.end,
                status=Status.pending.value, amount=price(schedule, window, place.unit_price, quantity),
                currency=place.currency, unit=place.unit, unit_price=place.unit_price, quantity=quantity,
                payment_method=PAYMENT_BY_PARTNER, paid=0, refunded=0, payment_ids=[],
                partner=request["partner"], partner_ref=request["partner_ref"], guest_name=guest["name"],
                guest_email=guest["email"], guest_phone=guest.get("phone"), created_at=now, updated_at=now))
            reservation.status = transition(Status.pending, Status.confirmed).value
            self._announce(session, "reservation_confirmed", reservation)
            self._answer(session, request, reservation)

    def cancel(self, request):
        now = self.clock()
        with self.sessions.transaction() as session:
            if not ProcessedEvents(session).claim(request["event_id"], now):
                return  # this event was handled already (or is being handled right now)
            reservation = _by_partner_ref(session, request["partner"], request["partner_ref"], for_update=True)
            if reservation is None:
                self._reject(session, request, "unknown_partner_ref")
                return
            if reservation.status == Status.confirmed.value:
                reservation.status = transition(Status.confirmed, Status.cancelled).value
                reservation.cancel_reason = f"cancelled by {request['partner']}"
                reservation.updated_at = now
                # The partner took the money: Bookify refunds nothing.
                reservation.refund_amount = reservation.refund_due = 0
                self._announce(session, "reservation_cancelled", reservation, refund_amount=0)
                self.events.record(session, "partner_reservation_cancelled", partner=reservation.partner,
                                   partner_ref=reservation.partner_ref, reservation_id=reservation.id,
                                   reason=reservation.cancel_reason)

    def _check(self, session, request, now):
        """(reason to refuse, or None; the window to book)."""
        if self.accepted and request["partner"] not in self.accepted:
            return "unknown_partner", None
        try:
            window = validate_booking_window(request["start"], request["end"], now, self.policy.horizon_days)
        except ValidationError as error:
            return _refusal(error.details), None
        if PlaceRepository(session).active(request["place_id"]) is None:
            return "place_not_found", None
        return None, window

    def _answer(self, session, request, reservation):
        if reservation.status == Status.confirmed.value:
            self.events.record(session, "partner_reservation_confirmed", partner=request["partner"],
                               partner_ref=request["partner_ref"], reservation_id=reservation.id)
        else:
            self._reject(session, request, f"reservation_{reservation.status}")

    def _reject(self, session, request, reason):
        self.events.record(session, "partner_reservation_rejected", partner=request["partner"],
                           partner_ref=request["partner_ref"], reason=reason)

    def _announce(self, session, event_type, reservation, **extra):
        self.events.record(session, event_type, **reservation_fields(session, reservation),
                           **partner_fields(reservation), **extra)


def _refusal(details):
    """`invalid_window: {...}` when the window breaks the place's rules (details name start or
    end: off the grid, closed then, too short or long), else `invalid_quantity: {...}`
    (more than the place's capacity)."""
    kind = "invalid_quantity" if set(details) == {"quantity"} else "invalid_window"
    return f"{kind}: {json.dumps(details, sort_keys=True)}"


def _taken(details):
    """`slot_unavailable` when nothing is left; with what is left when some is, but less than asked."""
    if details.get("remaining"):
        left = {"remaining": details["remaining"], "quantity": details["quantity"]}
        return f"slot_unavailable: {json.dumps(left, sort_keys=True)}"
    return "slot_unavailable"


def _by_partner_ref(session, partner, partner_ref, for_update=False):
    query = sa.select(Reservation).where(Reservation.partner == partner, Reservation.partner_ref == partner_ref)
    return session.scalar(query.with_for_update() if for_update else query)
