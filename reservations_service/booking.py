"""Booking use-cases: hold a slot, charge, confirm; reschedule; cancel with the refund the
policy allows; expire stale holds; and make sure no charge is left without a booking.

Money and slots are never decided inside one long transaction: each step is its own
short transaction, the charge happens between them, and every way a step can fail
(declined card, payments down, a crash, a hold that expired meanwhile) ends in a
confirmed booking or a refund, never in a charge for nothing.

Payments owns the money. A reservation keeps `paid`, `refunded` and `payment_ids` in step
with payments' answers (a charge, a refund, `payments_for_reservation`) and its
`payment_refunded` events, never lowering a figure it has seen: answers may arrive out of
order, and money charged or refunded only ever grows.
"""
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError

from common.clock import utcnow
from common.contracts.payments import MAX_AMOUNT
from common.errors import (
    Conflict,
    NotFound,
    PaymentDeclined,
    ServiceTimeout,
    ServiceUnavailable,
    SlotUnavailable,
    ValidationError,
)
from common.permissions import may_see, owner_filter
from common.storage.engines import UnitsOfWork
from common.storage.outbox import EventRecorder
from reservations_service.lifecycle import Status, transition
from reservations_service.models import Place, Reservation
from reservations_service.refunds import RefundPolicy
from reservations_service.repository import PlaceRepository, ProcessedEvents, ReservationRepository
from reservations_service.schedule import Schedule, admit, price
from reservations_service.windows import validate_booking_window

log = logging.getLogger(__name__)
PAYMENT_TROUBLE = (ServiceUnavailable, ServiceTimeout)
# A retry finding a hold this old takes its first request for dead and finishes the booking;
# a younger one is answered 409 "still in progress" (a double click, a parallel retry).
RESUME_AFTER = timedelta(seconds=5)
# The payment_method of a booking that cost nothing (nothing was charged).
NO_CHARGE = "none"
# Payment statuses whose amount was charged (and may since have been refunded).
CHARGED = ("succeeded", "partially_refunded", "refunded")
CANCEL_REFUND_REASON = "cancelled"


def _ignore_failure(task):
    """The default `on_sweep_failure`: the failure is logged; nothing counts it."""


@dataclass(frozen=True)
class BookingPolicy:
    hold_seconds: int = 600
    horizon_days: int = 365
    refunds: RefundPolicy = field(default_factory=lambda: RefundPolicy(24, 50))


@dataclass
class Booking:
    """`actor` is {"user_id", "permissions"} from the gateway, or None for operators and
    partners acting with full trust. `payments` answers payments' charge, refund and
    payments_for_reservation (the payments service's RPC)."""

    sessions: UnitsOfWork
    events: EventRecorder
    payments: object
    policy: BookingPolicy
    clock: Callable[[], datetime] = utcnow
    # Called with the task's name ("expire_stale_holds", "pay_refunds_due") for each row
    # the sweep could not handle (the service counts them in its metrics).
    on_sweep_failure: Callable[[str], None] = _ignore_failure

    # -- book ---------------------------------------------------------------------------

    def reserve(self, actor, fields, idempotency_key=None):
        """Hold the slot, charge the card, confirm. Raises SlotUnavailable, PaymentDeclined."""
        now = self.clock()
        window = validate_booking_window(fields["start"], fields["end"], now, self.policy.horizon_days)
        user_id = actor["user_id"]
        fingerprint = _fingerprint(fields)
        try:
            with self.sessions.transaction() as session:
                held, place = self._hold(session, user_id, fields, window, now, idempotency_key, fingerprint)
        except IntegrityError:  # the same key raced in from a parallel request, which won
            with self.sessions.transaction() as session:
                earlier = ReservationRepository(session).by_idempotency_key(user_id, idempotency_key)
                return self._replay(earlier, fingerprint)
        if isinstance(held, _Replay):  # outside the transaction: it may have to finish the charge
            return self._replay(held.earlier, fingerprint, resume=True)
        if held.status == Status.confirmed.value:
            return held  # it cost nothing
        return self._charge_and_confirm(held, place)

    def _hold(self, session, user_id, fields, window, now, idempotency_key, fingerprint):
        """(the new pending reservation, the place it locked), or (the _Replay of the earlier
        one with this key, None); the confirmation's event takes the place's name and zone
        from that place rather than reading it again.
        The key is looked up under the place's lock only: a parallel retry with it may
        just have held the window, and must be found rather than refused as taken. (A
        retry pays for that lock; the usual request saves a round trip.)"""
        place = PlaceRepository(session).active(fields["place_id"], for_update=True)
        reservations = ReservationRepository(session)
        if idempotency_key:
            earlier = reservations.by_idempotency_key(user_id, idempotency_key)
            if earlier is not None:
                return _Replay(earlier), None  # even if the place was retired since
        if place is None:
            raise NotFound("Place not found", {"place_id": fields["place_id"]})
        quantity = fields.get("quantity", 1)
        schedule, window = admit_under_lock(place, reservations, window, quantity, now)
        amount = price(schedule, window, place.unit_price, quantity)
        _check_chargeable(amount, fields.get("payment_method"))
        reservation = reservations.add(Reservation(
            place_id=place.id, user_id=user_id, start=window.start, end=window.end,
            status=Status.pending.value, amount=amount, currency=place.currency, unit=place.unit,
            unit_price=place.unit_price, quantity=quantity, payment_method=fields.get("payment_method") or NO_CHARGE,
            paid=0, refunded=0, payment_ids=[],
            hold_expires_at=now + timedelta(seconds=self.policy.hold_seconds),
            idempotency_key=idempotency_key, request_fingerprint=fingerprint,
            created_at=now, updated_at=now))
        if amount == 0:  # nothing to charge: confirmed at once
            self._move(reservation, Status.confirmed, now)
            self._announce(session, "reservation_confirmed", reservation, place=place)
        return reservation, place

    def _charge_and_confirm(self, reservation, place=None):
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
        return self.confirm_paid(reservation, payment["id"], place)

    def confirm_paid(self, held, payment_id, place=None):
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
                held.payment_id, held.paid, held.payment_ids = payment_id, held.amount, [payment_id]
                self._move(held, Status.confirmed, now)
                self._announce(session, "reservation_confirmed", held, place=place)
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
        filters["user_id"] = owner_filter(actor, query.get("user_id"), "reservations:read_any")
        with self.sessions.read() as session:
            return ReservationRepository(session).search(query["limit"], query["offset"], **filters)

    # -- change -------------------------------------------------------------------------

    def cancel(self, actor, reservation_id, reason=None):
        """Cancel. A confirmed card booking gets the refund the policy allows of what it kept
        (paid - refunded, as payments says now), drawn on its payments newest first;
        `refund_amount` is that refund, the one asked of payments. A partner booking refunds
        nothing (the partner took the money) and the partner is told."""
        now = self.clock()
        for attempt in range(3):
            with self.sessions.read() as session:
                seen = self._visible(ReservationRepository(session).get(reservation_id), actor, "manage")
                version, charged = seen.version, _charged(seen) and seen.status == Status.confirmed.value
            payments = self._payments_of(reservation_id) if charged else []
            with self.sessions.transaction() as session:
                reservation = self._visible(
                    ReservationRepository(session).get_for_update(reservation_id), actor, "manage")
                if reservation.version != version and attempt < 2:
                    continue  # moved meanwhile, and its money with it: ask payments again
                self._cancel(session, reservation, reason, payments, now)
                break
        self.pay_refunds_due([reservation_id])
        return self.get(None, reservation_id)

    def _cancel(self, session, reservation, reason, payments, now):
        """`payments`: payments' answer for it, or None when payments could not answer (the
        refund is then planned by the sweep once it can)."""
        confirmed = reservation.status == Status.confirmed.value
        if confirmed and reservation.end <= now:
            raise Conflict("This reservation is already over", {"status": reservation.status})
        if reservation.pending_start is not None:
            if reservation.pending_expires_at > now:
                raise Conflict("A reschedule of this reservation is in progress; try again shortly",
                               {"status": reservation.status})
            reservation.pending_start = reservation.pending_end = reservation.pending_expires_at = None
        refund, plan = 0, []
        if confirmed and _charged(reservation):
            if payments is not None:
                _take_money(reservation, payments, complete=True)
            kept = reservation.paid - reservation.refunded
            refund = self.policy.refunds.refund_for(kept, reservation.start, now)
            if payments is not None:
                plan = _refund_plan(payments, refund)
                refund = sum(amount for _, amount in plan)
            else:
                plan = None  # planned from payments' own figures when it answers again
        self._move(reservation, Status.cancelled)
        reservation.cancel_reason = reason
        reservation.refund_amount = reservation.refund_due = refund
        reservation.refund_plan = plan
        self._announce(session, "reservation_cancelled", reservation, refund_amount=refund)
        if reservation.partner is not None:
            self.events.record(session, "partner_reservation_cancelled", partner=reservation.partner,
                               partner_ref=reservation.partner_ref, reservation_id=reservation.id,
                               reason=reason or "cancelled_by_operator")

    def reschedule(self, actor, reservation_id, fields):
        """Move a confirmed booking at the terms it was booked at; charge the difference (to
        the given card, else the one that paid) or refund it (never more than is left)."""
        now = self.clock()
        with self.sessions.transaction() as session:
            reservations = ReservationRepository(session)
            reservation = self._visible(reservations.get_for_update(reservation_id), actor, "manage")
            if reservation.status != Status.confirmed.value or reservation.pending_start is not None:
                raise Conflict("Only a confirmed reservation with no change in flight can be moved",
                               {"status": reservation.status})
            if reservation.partner is not None:
                raise Conflict("A partner booking is changed by its partner", {"partner": reservation.partner})
            hours = self.policy.refunds.full_refund_hours
            if now >= reservation.start - timedelta(hours=hours):
                raise Conflict(f"A booking that has started, has ended or starts within {hours} hours "
                               "cannot be moved", {"start": reservation.start.isoformat()})
            # Whether it may move at all comes before where to: a booking under way is 409, not
            # a 400 about the window asked for.
            window = validate_booking_window(fields["start"], fields["end"], now, self.policy.horizon_days)
            place = PlaceRepository(session).active(reservation.place_id, for_update=True)
            if place is None:
                raise Conflict("The place is no longer bookable", {"place_id": reservation.place_id})
            # The place's rules of today, for its quantity, beside every booking but itself.
            schedule, window = admit_under_lock(place, reservations, window, reservation.quantity, now,
                                                exclude_id=reservation.id)
            # The terms it was booked at, whatever the place costs now.
            new_amount = price(schedule, window, reservation.unit_price, reservation.quantity, unit=reservation.unit)
            _check_chargeable(new_amount, "given")
            difference = new_amount - reservation.amount
            # Hold the new window while money moves; the old one stays booked until then.
            reservation.pending_start, reservation.pending_end = window.start, window.end
            reservation.pending_expires_at = now + timedelta(seconds=self.policy.hold_seconds)
            key = f"reservation-{reservation.id}-reschedule-{reservation.version}"
            snapshot = (reservation.user_id, reservation.currency)
        try:
            moved = self._settle_difference(reservation_id, difference, key, snapshot, fields.get("payment_method"))
        except Exception:
            self._abandon_reschedule(reservation_id)
            raise
        with self.sessions.transaction() as session:
            reservation = ReservationRepository(session).get_for_update(reservation_id)
            # The place's lock, as for every change to what the place holds: a booking counting
            # the place right now finishes first, so the clock read next is no earlier than its.
            PlaceRepository(session).active(reservation.place_id, for_update=True)
            now = self.clock()
            _take_money(reservation, *moved)
            ours = reservation.status == Status.confirmed.value and reservation.pending_start == window.start \
                and reservation.pending_end == window.end
            # Its hold on the new window ran out meanwhile (swept, or past its time: then other
            # bookings no longer count it, occupied_windows, and one may have taken the window):
            # nothing moves.
            lost = not ours or reservation.pending_expires_at <= now
            if ours:
                reservation.pending_start = reservation.pending_end = reservation.pending_expires_at = None
            if not lost:
                reservation.start, reservation.end = window.start, window.end
                reservation.amount = new_amount
                reservation.version += 1
                reservation.updated_at = now
                self._announce(session, "reservation_rescheduled", reservation)
        if lost:
            if difference > 0:  # give back what was charged for a move that did not happen
                self._refund_payment(reservation_id, moved[0][0]["id"], f"{key}-undo", "reschedule_not_done")
            raise Conflict("The reservation changed while it was being moved; nothing was moved",
                           {"reservation_id": reservation_id})
        return reservation

    def _settle_difference(self, reservation_id, difference, key, snapshot, payment_method):
        """Charge or refund the difference; (payments' answers, whether they are all of the
        reservation's payments) for _take_money."""
        user_id, currency = snapshot
        if difference > 0:
            payment = self.payments.charge({
                "reservation_id": reservation_id, "user_id": user_id, "amount": difference,
                "currency": currency, "payment_method": payment_method, "idempotency_key": key})
            return [payment], False
        if difference < 0:
            payments = self.payments.payments_for_reservation(reservation_id)
            answers = {payment["id"]: payment for payment in payments}
            for payment_id, amount in _refund_plan(payments, -difference):
                answers[payment_id] = self.payments.refund(payment_id, amount, "rescheduled",
                                                           f"{key}-{payment_id}", at_most_remaining=True)
            return list(answers.values()), True
        return [], False

    def _abandon_reschedule(self, reservation_id):
        with self.sessions.transaction() as session:
            reservation = ReservationRepository(session).get_for_update(reservation_id)
            reservation.pending_start = reservation.pending_end = reservation.pending_expires_at = None

    # -- money kept in step with payments -------------------------------------------------

    def sync_money(self, reservation_id):
        """Bring paid / refunded / payment_ids in line with what payments says now (after an
        operator refunded through payments, say). Safe to repeat; a reservation payments
        never charged (a partner's, a free one) is left alone."""
        with self.sessions.read() as session:
            reservation = ReservationRepository(session).get(reservation_id)
            if reservation is None or reservation.partner is not None:
                return reservation
        payments = self.payments.payments_for_reservation(reservation_id)
        with self.sessions.transaction() as session:
            reservation = ReservationRepository(session).get_for_update(reservation_id)
            _take_money(reservation, payments, complete=True)
            return reservation

    def on_payment_refunded(self, event):
        """payments.payment_refunded: whoever refunded (a cancellation, an operator), the
        reservation's figures follow payments'."""
        self.sync_money(event["reservation_id"])

    def _payments_of(self, reservation_id):
        """Every payment of the reservation as payments says now; None if it cannot say."""
        try:
            return self.payments.payments_for_reservation(reservation_id)
        except PAYMENT_TROUBLE as error:
            log.warning("payments of reservation %s unknown for now: %s", reservation_id, error)
            return None

    def _refund_payment(self, reservation_id, payment_id, key, reason):
        try:
            self.payments.refund(payment_id, None, reason, key, at_most_remaining=True)
        finally:
            self.sync_money(reservation_id)

    # -- background work (the service's timer) ------------------------------------------

    def expire_stale_holds(self):
        """Free the slots of holds whose payment never completed, and the new windows of
        reschedules that never finished. Each row on its own: one that fails is logged,
        counted and left for the next round; the others go on. Returns how many expired."""
        now = self.clock()
        with self.sessions.transaction() as session:
            reservations = ReservationRepository(session)
            stale = [reservation.id for reservation in reservations.stale_holds(now)]
            moves = [reservation.id for reservation in reservations.stale_reschedules(now)]
        expired = 0
        for reservation_id in stale:
            if self._each_row("expire_stale_holds", reservation_id, self._expire, reservation_id, now):
                expired += 1
        for reservation_id in moves:
            self._each_row("expire_stale_holds", reservation_id, self._drop_stale_move, reservation_id, now)
        return expired

    def _expire(self, reservation_id, now):
        with self.sessions.transaction() as session:
            reservation = ReservationRepository(session).get_for_update(reservation_id)
            if reservation.status == Status.pending.value and reservation.hold_expires_at <= now:
                self._move(reservation, Status.expired)
                self._announce(session, "reservation_expired", reservation)

    def _drop_stale_move(self, reservation_id, now):
        with self.sessions.transaction() as session:
            reservation = ReservationRepository(session).get_for_update(reservation_id)
            if reservation.pending_start is not None and reservation.pending_expires_at <= now:
                reservation.pending_start = reservation.pending_end = reservation.pending_expires_at = None

    def pay_refunds_due(self, reservation_ids=None):
        """Send refunds owed by cancellations, each reservation on its own: one that fails
        (payments away, or anything else) is logged, counted and retried on the next round."""
        with self.sessions.transaction() as session:
            due = [r.id for r in ReservationRepository(session).refunds_due()
                   if reservation_ids is None or r.id in reservation_ids]
        for reservation_id in due:
            self._each_row("pay_refunds_due", reservation_id, self._pay_refund, reservation_id)

    def _pay_refund(self, reservation_id):
        with self.sessions.read() as session:
            reservation = ReservationRepository(session).get(reservation_id)
            plan, due = reservation.refund_plan, reservation.refund_due
        if due <= 0:
            return
        if plan is None:  # payments could not answer at cancel time: plan on its figures now
            plan = _refund_plan(self.payments.payments_for_reservation(reservation_id), due)
            with self.sessions.transaction() as session:
                reservation = ReservationRepository(session).get_for_update(reservation_id)
                if reservation.refund_plan is None:
                    reservation.refund_plan = plan
                plan = reservation.refund_plan
        for payment_id, amount in plan:
            # Capped: an operator may have refunded part of it since (goodwill).
            self.payments.refund(payment_id, amount, CANCEL_REFUND_REASON,
                                 f"reservation-{reservation_id}-cancel-{payment_id}", at_most_remaining=True)
        payments = self.payments.payments_for_reservation(reservation_id)
        with self.sessions.transaction() as session:
            reservation = ReservationRepository(session).get_for_update(reservation_id)
            reservation.refund_due = 0
            _take_money(reservation, payments, complete=True)

    def _each_row(self, task, reservation_id, work, *args):
        """Run one row's work; True if it went through. A failure is logged and counted."""
        try:
            work(*args)
            return True
        except PAYMENT_TROUBLE as error:
            log.warning("%s: reservation %s waits for the next round: %s", task, reservation_id, error)
        except Exception:
            log.exception("%s: reservation %s failed; the other rows go on", task, reservation_id)
        self.on_sweep_failure(task)
        return False

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
                _take_money(reservation, [{"id": event["payment_id"], "amount": reservation.amount,
                                           "refunded_amount": 0, "status": "succeeded"}], complete=False)
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
        if not may_see(actor, reservation.user_id, f"reservations:{intent}_any"):
            raise NotFound("Reservation not found")
        return reservation

    def _move(self, reservation, target, now=None):
        reservation.status = transition(Status(reservation.status), target).value
        reservation.updated_at = now or self.clock()
        if target is not Status.pending:
            reservation.hold_expires_at = None

    def _announce(self, session, event_type, reservation, place=None, **extra):
        if reservation.partner is not None:
            extra.update(partner_fields(reservation))
        self.events.record(session, event_type, **reservation_fields(session, reservation, place), **extra)


def admit_under_lock(place, reservations, window, quantity, now, exclude_id=None):
    """(the place's Schedule, the window) once `quantity` fits in `window` beside the bookings
    that can matter (schedule.admit): the caller holds the place's row lock, so no other
    booking of the place can be counted or added meanwhile, on any instance. One query, over
    the span the window's buffers reach. ValidationError naming start, end or quantity;
    SlotUnavailable with what is left."""
    schedule = Schedule.of(place)
    reach = schedule.affecting(window)
    existing = reservations.occupied_windows(place.id, reach.start, reach.end, now, exclude_id=exclude_id)
    try:
        return schedule, admit(schedule, existing, window.start, window.end, quantity)
    except SlotUnavailable as taken:
        raise SlotUnavailable("This window is already booked", {"place_id": place.id, **taken.details}) from None


def reservation_fields(session, reservation, place=None):
    """What every reservation_* event carries: the booking, and the place's name and time zone
    for the messages people read: from `place` when the caller has it, else from the session
    (where it usually is already: it was locked)."""
    if place is None:
        place = session.get(Place, reservation.place_id)
    return {"reservation_id": reservation.id, "user_id": reservation.user_id, "place_id": reservation.place_id,
            "place_name": place.name, "timezone": place.timezone or "UTC", "start": reservation.start.isoformat(),
            "end": reservation.end.isoformat(), "amount": reservation.amount, "currency": reservation.currency,
            "quantity": reservation.quantity}


def partner_fields(reservation):
    """What the reservation_* events of a partner booking carry besides the usual fields."""
    return {"partner": reservation.partner, "partner_ref": reservation.partner_ref,
            "guest": {"name": reservation.guest_name, "email": reservation.guest_email,
                      "phone": reservation.guest_phone}}


def _check_chargeable(amount, payment_method):
    """Refuse, before anything is held, a price payments could never charge, and a priced
    booking with no card; named after fields the caller sent."""
    if amount > MAX_AMOUNT:
        raise ValidationError("This window costs more than can be charged at once", {
            "end": [f"The price of this window ({amount}) is over the most one payment can be "
                    f"({MAX_AMOUNT}); choose a shorter window."]})
    if amount > 0 and not payment_method:
        raise ValidationError("A payment method is required", {
            "payment_method": ["Missing data for required field."]})


def _charged(reservation):
    """True for a booking payments may hold money for (not a partner's)."""
    return reservation.partner is None


def _take_money(reservation, payments, complete):
    """Apply payments' answers to the reservation's figures. `complete`: they are all its
    payments (so the sums are exact); else each new one is added. Never lowers a figure."""
    charged = [payment for payment in payments if payment.get("status", "succeeded") in CHARGED]
    ids = list(reservation.payment_ids or [])
    if complete:
        reservation.paid = max(reservation.paid or 0, sum(p["amount"] for p in charged))
        reservation.refunded = max(reservation.refunded or 0, sum(p["refunded_amount"] for p in charged))
    else:
        for payment in charged:
            if payment["id"] not in ids:
                reservation.paid = (reservation.paid or 0) + payment["amount"]
    reservation.payment_ids = sorted(set(ids) | {payment["id"] for payment in charged})
    reservation.refunded = min(reservation.refunded, reservation.paid)


def _refund_plan(payments, amount):
    """`amount` drawn on the payments, newest first, each for no more than it has left:
    [[payment_id, amount], ...]."""
    plan = []
    for payment in sorted(payments, key=lambda p: p["id"], reverse=True):
        if amount <= 0:
            break
        if payment["status"] not in CHARGED:
            continue
        take = min(amount, payment["amount"] - payment["refunded_amount"])
        if take > 0:
            plan.append([payment["id"], take])
            amount -= take
    return plan


@dataclass(frozen=True)
class _Replay:
    earlier: Reservation


def _fingerprint(fields):
    canonical = {"place_id": fields["place_id"], "start": fields["start"].isoformat(),
                 "end": fields["end"].isoformat(), "payment_method": fields.get("payment_method")}
    if fields.get("quantity", 1) != 1:  # so fingerprints of single bookings stay what they were
        canonical["quantity"] = fields["quantity"]
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()
