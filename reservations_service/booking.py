"""Booking use-cases: hold a slot, charge, confirm; reschedule; cancel with the refund the
policy allows; expire stale holds; and make sure no charge is left without a booking.

Money and slots are never decided inside one long transaction: each step is its own
short transaction, the charge happens between them, and every way a step can fail
(declined card, payments down, a crash, a hold that expired meanwhile) ends in a
confirmed booking or a refund, never in a charge for nothing.
"""
import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.exc import IntegrityError

from common.db import utcnow
from common.errors import (
    Conflict,
    NotFound,
    PaymentDeclined,
    ServiceTimeout,
    ServiceUnavailable,
    SlotUnavailable,
    ValidationError,
)
from reservations_service.lifecycle import Status, transition
from reservations_service.models import Reservation
from reservations_service.pricing import price
from reservations_service.refunds import RefundPolicy
from reservations_service.repository import PlaceRepository, ProcessedEvents, ReservationRepository
from reservations_service.windows import validate_booking_window

log = logging.getLogger(__name__)
PAYMENT_TROUBLE = (ServiceUnavailable, ServiceTimeout)
# A retry finding a hold this old takes its first request for dead and finishes the booking;
# a younger one is answered 409 "still in progress" (a double click, a parallel retry).
RESUME_AFTER = timedelta(seconds=5)


@dataclass(frozen=True)
class BookingPolicy:
    hold_seconds: int = 600
    horizon_days: int = 365
    refunds: RefundPolicy = field(default_factory=lambda: RefundPolicy(24, 50))


class Booking:
    """`actor` is {"user_id", "permissions"} from the gateway, or None for operators and
    partners acting with full trust."""

    def __init__(self, sessions, events, payments, policy: BookingPolicy, clock=utcnow):
        self.sessions = sessions
        self.events = events
        self.payments = payments
        self.policy = policy
        self.clock = clock

    # -- book ---------------------------------------------------------------------------

    def reserve(self, actor, fields, idempotency_key=None):
        """Hold the slot, charge the card, confirm. Raises SlotUnavailable, PaymentDeclined."""
        now = self.clock()
        window = validate_booking_window(fields["start"], fields["end"], now, self.policy.horizon_days)
        user_id = actor["user_id"]
        fingerprint = _fingerprint(fields)
        try:
            with self.sessions.transaction() as session:
                held = self._hold(session, user_id, fields, window, now, idempotency_key, fingerprint)
        except IntegrityError:  # the same key raced in from a parallel request, which won
            with self.sessions.transaction() as session:
                earlier = ReservationRepository(session).by_idempotency_key(user_id, idempotency_key)
                return self._replay(earlier, fingerprint)
        if isinstance(held, _Replay):  # outside the transaction: it may have to finish the charge
            return self._replay(held.earlier, fingerprint, resume=True)
        return self._charge_and_confirm(held)

    def _hold(self, session, user_id, fields, window, now, idempotency_key, fingerprint):
        """The new pending reservation, or the _Replay of the earlier one with this key.
        The key is looked up under the place's lock only: a parallel retry with it may
        just have held the window, and must be found rather than refused as taken. (A
        retry pays for that lock; the usual request saves a round trip.)"""
        place = PlaceRepository(session).active(fields["place_id"], for_update=True)
        reservations = ReservationRepository(session)
        if idempotency_key:
            earlier = reservations.by_idempotency_key(user_id, idempotency_key)
            if earlier is not None:
                return _Replay(earlier)  # even if the place was retired since
        if place is None:
            raise NotFound("Place not found", {"place_id": fields["place_id"]})
        if reservations.occupied_windows(place.id, window.start, window.end, now):
            raise SlotUnavailable("This window is already booked", {"place_id": place.id})
        return reservations.add(Reservation(
            place_id=place.id, user_id=user_id, start=window.start, end=window.end,
            status=Status.pending.value, amount=price(window, place.unit, place.unit_price),
            currency=place.currency, payment_method=fields["payment_method"],
            hold_expires_at=now + timedelta(seconds=self.policy.hold_seconds),
            idempotency_key=idempotency_key, request_fingerprint=fingerprint,
            created_at=now, updated_at=now))

    def _charge_and_confirm(self, reservation):
        try:
            payment = self.payments.charge({
                "reservation_id": reservation.id, "user_id": reservation.user_id,
                "amount": reservation.amount, "currency": reservation.currency,
                "payment_method": reservation.payment_method,
                # Stripe sees one key per reservation: a retried charge can never charge twice.
                "idempotency_key": f"reservation-{reservation.id}",
            })
        except PaymentDeclined:
            self._settle(reservation.id, Status.failed)
            raise
        except PAYMENT_TROUBLE as trouble:
            # The hold stays; the charge may still complete. payment_succeeded (or the
            # sweeper, when the hold runs out) decides, and money is never left behind.
            details = {"reservation_id": reservation.id}
            if getattr(trouble, "details", {}).get("in_flight"):
                details["in_flight"] = True  # another worker is charging it right now
            raise ServiceUnavailable(
                "The payment could not be confirmed yet; the slot stays held meanwhile", details) from None
        return self.confirm_paid(reservation, payment["id"])

    def confirm_paid(self, held, payment_id):
        """The payment for this hold (a pending reservation as it was read) succeeded: confirm
        it, or refund if the hold was lost meanwhile (expired, cancelled). Safe to call more
        than once."""
        reservation_id = held.id
        with self.sessions.transaction() as session:
            reservations = ReservationRepository(session)
            now = self.clock()
            if reservations.confirm_if_pending(reservation_id, payment_id, now):
                # The usual case, in one statement: the hold was still ours. `held` now says
                # what the row says; nothing else in it can change while it is pending.
                held.payment_id = payment_id
                self._move(held, Status.confirmed, now)
                self._announce(session, "reservation_confirmed", held)
                return held
            reservation = reservations.get(reservation_id)  # settled by now: it stays as it is
            known = reservation.payment_id == payment_id
        if not known and reservation.status != Status.confirmed.value:
            self._refund_orphan(reservation_id, payment_id)
            raise SlotUnavailable("The hold expired before the payment completed; the charge is refunded",
                                  {"reservation_id": reservation_id})
        return reservation

    def _refund_orphan(self, reservation_id, payment_id):
        try:
            self.payments.refund(payment_id, None, "reservation_not_confirmed",
                                 f"reservation-{reservation_id}-orphan-{payment_id}")
        except Conflict:
            pass  # already refunded by an earlier attempt
        log.warning("refunded payment %s of unconfirmed reservation %s", payment_id, reservation_id)

    def _settle(self, reservation_id, status):
        with self.sessions.transaction() as session:
            reservation = ReservationRepository(session).get_for_update(reservation_id)
            if reservation.status == Status.pending.value:
                self._move(reservation, status)

    def _replay(self, earlier, fingerprint, resume=False):
        """The first result of an idempotent request, never a second booking or charge.
        With `resume`, a hold whose first request is presumably gone (its worker died,
        its answer was lost) is finished: charged with the same Stripe key, then confirmed."""
        if earlier.request_fingerprint != fingerprint:
            raise Conflict("This Idempotency-Key was used for a different request",
                           {"idempotency_key": ["Reused with a different body."]})
        if earlier.status == Status.failed.value:
            raise PaymentDeclined("The payment was declined", {"reservation_id": earlier.id})
        if earlier.status == Status.pending.value:
            if resume and earlier.created_at <= self.clock() - RESUME_AFTER:
                return self._resume(earlier)
            raise Conflict("The first request with this Idempotency-Key is still in progress",
                           {"reservation_id": earlier.id})
        if earlier.status == Status.expired.value:
            # The first request never got its 201: the hold ran out before the payment was
            # confirmed. Answering the expired reservation as a success would be a lie.
            raise SlotUnavailable("The hold expired before the payment was confirmed; any charge is refunded",
                                  {"reservation_id": earlier.id, "status": earlier.status})
        return earlier

    def _resume(self, earlier):
        try:
            return self._charge_and_confirm(earlier)
        except ServiceUnavailable as error:
            if not error.details.get("in_flight"):
                raise  # Stripe (or the database) is away: 503, the hold stays, retry later
            raise Conflict("The first request with this Idempotency-Key is still in progress",
                           {"reservation_id": earlier.id}) from None

    # -- read ---------------------------------------------------------------------------

    def get(self, actor, reservation_id):
        with self.sessions.read() as session:
            return self._visible(ReservationRepository(session).get(reservation_id), actor, "read")

    def search(self, actor, query):
        filters = {k: query.get(k) for k in ("place_id", "status", "frm", "to")}
        if actor is None or "reservations:read_any" in actor["permissions"]:
            filters["user_id"] = query.get("user_id")
        else:
            filters["user_id"] = actor["user_id"]  # customers see their own, whatever they ask
        with self.sessions.read() as session:
            return ReservationRepository(session).search(query["limit"], query["offset"], **filters)

    # -- change -------------------------------------------------------------------------

    def cancel(self, actor, reservation_id, reason=None):
        """Cancel; a confirmed booking gets the refund the policy allows (refund_amount)."""
        now = self.clock()
        with self.sessions.transaction() as session:
            reservation = self._visible(
                ReservationRepository(session).get_for_update(reservation_id), actor, "manage")
            if reservation.status == Status.confirmed.value and reservation.end <= now:
                raise Conflict("This reservation is already over", {"status": reservation.status})
            refund = 0
            if reservation.status == Status.confirmed.value:
                refund = self.policy.refunds.refund_for(reservation.amount, reservation.start, now)
            self._move(reservation, Status.cancelled)
            reservation.cancel_reason = reason
            reservation.refund_amount = reservation.refund_due = refund
            reservation.pending_start = reservation.pending_end = reservation.pending_expires_at = None
            self._announce(session, "reservation_cancelled", reservation, refund_amount=refund)
        self.pay_refunds_due([reservation.id])
        return self.get(None, reservation.id)

    def reschedule(self, actor, reservation_id, fields):
        """Move a confirmed booking; charge the difference or refund it."""
        now = self.clock()
        window = validate_booking_window(fields["start"], fields["end"], now, self.policy.horizon_days)
        with self.sessions.transaction() as session:
            reservations = ReservationRepository(session)
            reservation = self._visible(reservations.get_for_update(reservation_id), actor, "manage")
            if reservation.status != Status.confirmed.value or reservation.pending_start is not None:
                raise Conflict("Only a confirmed reservation with no change in flight can be moved",
                               {"status": reservation.status})
            place = PlaceRepository(session).active(reservation.place_id, for_update=True)
            if place is None:
                raise Conflict("The place is no longer bookable", {"place_id": reservation.place_id})
            if reservations.occupied_windows(place.id, window.start, window.end, now, exclude_id=reservation.id):
                raise SlotUnavailable("This window is already booked", {"place_id": place.id})
            new_amount = price(window, place.unit, place.unit_price)
            difference = new_amount - reservation.amount
            if difference > 0 and not fields.get("payment_method"):
                raise ValidationError("The new window costs more", {
                    "payment_method": [f"Needed to pay the difference of {difference}."]})
            # Hold the new window while money moves; the old one stays booked until then.
            reservation.pending_start, reservation.pending_end = window.start, window.end
            reservation.pending_expires_at = now + timedelta(seconds=self.policy.hold_seconds)
            key = f"reservation-{reservation.id}-reschedule-{reservation.version}"
            snapshot = (reservation.user_id, reservation.currency, reservation.payment_id)
        try:
            self._settle_difference(reservation_id, difference, key, snapshot, fields.get("payment_method"))
        except Exception:
            self._abandon_reschedule(reservation_id)
            raise
        with self.sessions.transaction() as session:
            reservation = ReservationRepository(session).get_for_update(reservation_id)
            reservation.start, reservation.end = reservation.pending_start, reservation.pending_end
            reservation.pending_start = reservation.pending_end = reservation.pending_expires_at = None
            reservation.amount = new_amount
            reservation.version += 1
            reservation.updated_at = self.clock()
            self._announce(session, "reservation_rescheduled", reservation)
            return reservation

    def _settle_difference(self, reservation_id, difference, key, snapshot, payment_method):
        user_id, currency, payment_id = snapshot
        if difference > 0:
            self.payments.charge({"reservation_id": reservation_id, "user_id": user_id, "amount": difference,
                                  "currency": currency, "payment_method": payment_method,
                                  "idempotency_key": key})
        elif difference < 0:
            self.payments.refund(payment_id, -difference, "rescheduled", key)

    def _abandon_reschedule(self, reservation_id):
        with self.sessions.transaction() as session:
            reservation = ReservationRepository(session).get_for_update(reservation_id)
            reservation.pending_start = reservation.pending_end = reservation.pending_expires_at = None

    # -- background work (the service's timer) ------------------------------------------

    def expire_stale_holds(self):
        """Free the slots of holds whose payment never completed. Returns how many."""
        now = self.clock()
        with self.sessions.transaction() as session:
            reservations = ReservationRepository(session)
            stale = reservations.stale_holds(now)
            for reservation in stale:
                self._move(reservation, Status.expired)
                self._announce(session, "reservation_expired", reservation)
            for reservation in reservations.stale_reschedules(now):
                reservation.pending_start = reservation.pending_end = reservation.pending_expires_at = None
            return len(stale)

    def pay_refunds_due(self, reservation_ids=None):
        """Send refunds owed by cancellations; one that fails is retried on the next round."""
        with self.sessions.transaction() as session:
            due = [(r.id, r.payment_id, r.refund_due) for r in ReservationRepository(session).refunds_due()
                   if reservation_ids is None or r.id in reservation_ids]
        for reservation_id, payment_id, amount in due:
            try:
                # Capped: an operator may have refunded part of it already (goodwill).
                self.payments.refund(payment_id, amount, "cancelled", f"reservation-{reservation_id}-cancel",
                                     at_most_remaining=True)
            except PAYMENT_TROUBLE as error:
                log.warning("refund for reservation %s waits: %s", reservation_id, error)
                continue
            with self.sessions.transaction() as session:
                ReservationRepository(session).get_for_update(reservation_id).refund_due = 0

    def on_payment_succeeded(self, event):
        """payments.payment_succeeded: confirm a hold that was waiting, refund a charge
        whose booking is gone. The event counts as handled only once its effect is
        committed, so a crash midway means a redelivery does the work."""
        now = self.clock()
        with self.sessions.read() as session:
            if ReservationRepository(session).confirmed_by(event["reservation_id"], event["payment_id"]):
                # The usual case: the booking request confirmed it with this very payment.
                # Nothing to do, so nothing to remember, no row lock, no transaction.
                return
        with self.sessions.transaction() as session:
            reservations = ReservationRepository(session)
            processed = ProcessedEvents(session)
            if processed.seen(event["event_id"]):
                return
            reservation = reservations.get_for_update(event["reservation_id"])
            orphan = reservation is not None and reservation.status != Status.confirmed.value \
                and reservation.payment_id != event["payment_id"]
            if reservation is not None and reservation.status == Status.pending.value:
                reservation.payment_id = event["payment_id"]
                self._move(reservation, Status.confirmed)
                self._announce(session, "reservation_confirmed", reservation)
                orphan = False
            if not orphan:
                processed.claim(event["event_id"], now)
                return
        # Refund idempotently (keyed by payment), then remember the event.
        self._refund_orphan(reservation.id, event["payment_id"])
        with self.sessions.transaction() as session:
            ProcessedEvents(session).claim(event["event_id"], now)

    # -- internals ----------------------------------------------------------------------

    def _visible(self, reservation, actor, intent):
        """Someone else's reservation is 404, not 403: its existence is not revealed."""
        if reservation is None:
            raise NotFound("Reservation not found")
        if actor is not None and reservation.user_id != actor["user_id"] \
                and f"reservations:{intent}_any" not in actor["permissions"]:
            raise NotFound("Reservation not found")
        return reservation

    def _move(self, reservation, target, now=None):
        reservation.status = transition(Status(reservation.status), target).value
        reservation.updated_at = now or self.clock()
        if target is not Status.pending:
            reservation.hold_expires_at = None

    def _announce(self, session, event_type, reservation, **extra):
        self.events.record(
            session, event_type, reservation_id=reservation.id, user_id=reservation.user_id,
            place_id=reservation.place_id, start=reservation.start.isoformat(),
            end=reservation.end.isoformat(), amount=reservation.amount, currency=reservation.currency,
            **extra)


@dataclass(frozen=True)
class _Replay:
    earlier: Reservation


def _fingerprint(fields):
    canonical = {"place_id": fields["place_id"], "start": fields["start"].isoformat(),
                 "end": fields["end"].isoformat(), "payment_method": fields["payment_method"]}
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()
