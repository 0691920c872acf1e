# ruff: noqa: F811  (pytest fixtures imported from test_booking, used as arguments)
"""Money adds up, on a real database with a small payments ledger standing in for the
payments service: refunds draw on every payment, a reservation keeps the terms it was
booked at, late or started bookings stay put, what cannot be charged is refused before any
hold, partner bookings refund nothing, and the sweep survives any one bad row."""
from datetime import timedelta

import pytest
import sqlalchemy as sa

from common.contracts.payments import MAX_AMOUNT
from common.errors import Conflict, ServiceUnavailable, ValidationError
from common.storage.outbox import EventRecorder
from reservations_service.booking import Booking, BookingPolicy
from reservations_service.models import OutboxMessage, Reservation
from reservations_service.partners import PartnerDesk
from reservations_service.places import Places
from reservations_service.refunds import RefundPolicy
from tests.unit.test_booking import (  # noqa: F401  (fixtures: booking, payments, place)
    CUSTOMER,
    ScriptedPayments,
    ask,
    booking,
    events,
    last_event,
    payments,
    place,
    window,
)


def rows(db):
    with db.transaction() as session:
        return session.scalars(sa.select(Reservation).order_by(Reservation.id)).all()


def kept(payments, reservation_id):
    return sum(p["amount"] - p["refunded_amount"] for p in payments.payments_for_reservation(reservation_id))


def move(booking, reservation, clock, day, hour, hours, **extra):
    start, end = window(clock, day, hour, hours)
    return booking.reschedule(CUSTOMER, reservation.id, {"start": start, "end": end, **extra})


# -- refunds draw on every payment ------------------------------------------------------

def test_a_full_refund_after_a_dearer_move_gives_back_every_payment(booking, place, payments, clock):
    reservation = booking.reserve(CUSTOMER, ask(place, clock, day=3, hours=1))
    moved = move(booking, reservation, clock, 3, 10, 3)  # no card given: the saved one pays
    assert payments.charges[-1]["payment_method"] is None and payments.charges[-1]["amount"] == 2000
    assert (moved.paid, moved.refunded, len(moved.payment_ids)) == (3000, 0, 2)
    cancelled = booking.cancel(CUSTOMER, reservation.id)
    assert (cancelled.paid, cancelled.refunded, cancelled.refund_amount) == (3000, 3000, 3000)
    assert kept(payments, reservation.id) == 0
    assert sorted(refund[1] for refund in payments.refunds) == [1000, 2000]  # one refund per payment


def test_a_late_cancellation_refunds_the_share_of_what_is_kept_however_it_was_moved(
        booking, place, payments, clock):
    reservation = booking.reserve(CUSTOMER, ask(place, clock, day=3, hours=1))
    move(booking, reservation, clock, 3, 10, 4)  # 4000 paid in two payments
    move(booking, reservation, clock, 3, 10, 2)  # 2000 back
    clock.now = reservation.start - timedelta(hours=3)  # within 24 h: a late cancellation
    cancelled = booking.cancel(CUSTOMER, reservation.id)
    assert cancelled.refund_amount == (4000 - 2000) * 50 // 100
    assert (cancelled.paid, cancelled.refunded) == (4000, 2000 + 1000)
    assert last_event(booking.sessions, "reservation_cancelled")["refund_amount"] == 1000


def test_two_cheaper_moves_never_ask_more_than_is_left(booking, place, payments, clock):
    reservation = booking.reserve(CUSTOMER, ask(place, clock, day=3, hours=3))  # 3000
    payments.refund(reservation.payment_id, 2500, "goodwill", "operator-1")  # an operator, directly
    move(booking, reservation, clock, 3, 10, 2)  # 1000 cheaper, but only 500 is left
    moved = move(booking, reservation, clock, 3, 10, 1)  # 1000 cheaper again: nothing is left
    assert kept(payments, reservation.id) == 0
    assert (moved.paid, moved.refunded) == (3000, 3000)
    assert booking.cancel(CUSTOMER, reservation.id).refund_amount == 0


def test_the_cancellation_states_the_refund_asked_after_an_operator_refund(booking, place, payments,
                                                                             reservations_db, clock):
    reservation = booking.reserve(CUSTOMER, ask(place, clock, day=3, hours=2))  # 2000
    payments.refund(reservation.payment_id, 1500, "goodwill", "operator-2")
    cancelled = booking.cancel(CUSTOMER, reservation.id)
    assert cancelled.refund_amount == 500 and cancelled.refunded == 2000
    assert last_event(reservations_db, "reservation_cancelled")["refund_amount"] == 500


def test_an_operator_refund_is_followed_through_payment_refunded_and_repeating_it_changes_nothing(
        booking, place, payments, clock):
    reservation = booking.reserve(CUSTOMER, ask(place, clock, day=3, hours=2))
    payments.refund(reservation.payment_id, 700, "goodwill", "operator-3")
    event = {"event_id": "evt-r1", "payment_id": reservation.payment_id, "reservation_id": reservation.id,
             "amount": 700}
    booking.on_payment_refunded(event)
    booking.on_payment_refunded(event)
    now = booking.get(CUSTOMER, reservation.id)
    assert (now.paid, now.refunded, now.payment_ids) == (2000, 700, [reservation.payment_id])
    booking.on_payment_refunded(dict(event, reservation_id=999))  # not ours: nothing happens


def test_with_payments_away_at_cancel_time_the_refund_is_planned_and_sent_by_the_sweep(
        booking, place, payments, clock):
    reservation = booking.reserve(CUSTOMER, ask(place, clock, day=3, hours=1))
    move(booking, reservation, clock, 3, 10, 2)
    answer = payments.payments_for_reservation
    payments.payments_for_reservation = lambda rid: (_ for _ in ()).throw(ServiceUnavailable("down"))
    cancelled = booking.cancel(CUSTOMER, reservation.id)
    assert (cancelled.status, cancelled.refund_amount, cancelled.refund_due) == ("cancelled", 2000, 2000)
    payments.payments_for_reservation = answer
    booking.pay_refunds_due()
    done = booking.get(CUSTOMER, reservation.id)
    assert (done.refund_due, done.paid, done.refunded) == (0, 2000, 2000)
    booking.pay_refunds_due()
    assert len(payments.refunds) == 2


# -- terms kept, moves that are not allowed ---------------------------------------------

def test_a_price_or_currency_change_of_the_place_never_reprices_a_booking(
        booking, place, payments, reservations_db, clock):
    reservation = booking.reserve(CUSTOMER, ask(place, clock, day=3, hours=2))
    Places(reservations_db, clock=clock).update(place.id, {"unit_price": 100, "currency": "jpy"})
    moved = move(booking, reservation, clock, 4, 10, 2)  # same length, elsewhere: the same price
    assert (moved.amount, moved.currency, moved.unit_price) == (2000, "usd", 1000)
    assert len(payments.charges) == 1 and payments.refunds == []
    moved = move(booking, reservation, clock, 4, 10, 3)
    assert payments.charges[-1]["amount"] == 1000 and payments.charges[-1]["currency"] == "usd"


@pytest.mark.parametrize("when", ["within the full-refund window", "started", "ended"])
def test_a_late_started_or_ended_booking_cannot_be_moved(booking, place, payments, clock, when):
    reservation = booking.reserve(CUSTOMER, ask(place, clock, day=3, hours=1))
    clock.now = {"within the full-refund window": reservation.start - timedelta(hours=23),
                 "started": reservation.start + timedelta(minutes=10),
                 "ended": reservation.end + timedelta(hours=1)}[when]
    later = clock.now + timedelta(days=7)
    with pytest.raises(Conflict):
        booking.reschedule(CUSTOMER, reservation.id, {"start": later, "end": later + timedelta(hours=1)})
    kept_as_is = booking.get(CUSTOMER, reservation.id)
    assert (kept_as_is.start, kept_as_is.pending_start) == (reservation.start, None)
    assert len(payments.charges) == 1 and payments.refunds == []



@pytest.mark.parametrize("when", ["within the full-refund window", "started", "ended"])
def test_a_booking_that_may_not_move_is_refused_for_that_before_its_new_window_is_judged(
        booking, place, payments, clock, when):
    # docs/booking.md: 409 naming `start`, whatever window is asked for (here one in the past).
    reservation = booking.reserve(CUSTOMER, ask(place, clock, day=3, hours=1))
    clock.now = {"within the full-refund window": reservation.start - timedelta(hours=23),
                 "started": reservation.start + timedelta(minutes=10),
                 "ended": reservation.end + timedelta(hours=1)}[when]
    past = reservation.start - timedelta(days=1)
    with pytest.raises(Conflict) as refused:
        booking.reschedule(CUSTOMER, reservation.id, {"start": past, "end": past + timedelta(hours=1)})
    assert list(refused.value.details) == ["start"]
    assert len(payments.charges) == 1 and payments.refunds == []

# -- refused before any hold; free places ----------------------------------------------

def test_a_price_over_what_can_be_charged_is_refused_before_any_hold(booking, reservations_db, payments, clock):
    dear = Places(reservations_db, clock=clock).create(
        {"name": "Hall", "unit": "hour", "unit_price": 2_000_000, "currency": "usd", "timezone": "UTC"})
    start = clock() + timedelta(days=1)
    with pytest.raises(ValidationError) as refused:
        booking.reserve(CUSTOMER, {"place_id": dear.id, "start": start, "end": start + timedelta(days=364),
                                   "payment_method": "pm_card_visa"})
    assert list(refused.value.details) == ["end"] and str(MAX_AMOUNT) in refused.value.details["end"][0]
    assert rows(reservations_db) == [] and payments.charges == []
    # A booking that fits is fine, and moving it to a window too dear is refused the same way.
    small = booking.reserve(CUSTOMER, {"place_id": dear.id, "start": start + timedelta(days=2),
                                       "end": start + timedelta(days=2, hours=1), "payment_method": "pm_card_visa"})
    with pytest.raises(ValidationError) as too_dear:
        booking.reschedule(CUSTOMER, small.id, {"start": start + timedelta(days=3),
                                                "end": start + timedelta(days=300)})
    assert list(too_dear.value.details) == ["end"]
    assert booking.get(CUSTOMER, small.id).pending_start is None


def test_a_free_place_books_without_a_charge_and_a_priced_one_needs_a_card(
        booking, place, reservations_db, payments, clock):
    free = Places(reservations_db, clock=clock).create(
        {"name": "Bench", "unit": "hour", "unit_price": 0, "currency": "usd", "timezone": "UTC"})
    start, end = window(clock, 2, 10)
    reservation = booking.reserve(CUSTOMER, {"place_id": free.id, "start": start, "end": end})
    assert (reservation.status, reservation.paid, reservation.amount, reservation.payment_id) == (
        "confirmed", 0, 0, None)
    assert payments.charges == [] and events(reservations_db) == ["reservation_confirmed"]
    cancelled = booking.cancel(CUSTOMER, reservation.id)
    assert (cancelled.refund_amount, cancelled.paid, cancelled.refunded) == (0, 0, 0) and payments.refunds == []
    with pytest.raises(ValidationError) as refused:
        booking.reserve(CUSTOMER, {"place_id": place.id, "start": start, "end": end})
    assert list(refused.value.details) == ["payment_method"]
    assert [r.status for r in rows(reservations_db)] == ["cancelled"]  # no hold left


# -- partner bookings ----------------------------------------------------------------------

def _partner_booking(reservations_db, place, clock):
    policy = BookingPolicy(hold_seconds=600, horizon_days=365, refunds=RefundPolicy(24, 50))
    desk = PartnerDesk(reservations_db, EventRecorder(OutboxMessage), policy, clock=clock)
    start, end = window(clock, 3, 10)
    desk.book({"event_id": "p-1", "partner": "acme", "partner_ref": "A-1", "place_id": place.id,
               "start": start, "end": end,
               "guest": {"name": "Ada Guest", "email": "ada@example.com", "phone": "+15550100"}})
    [reservation] = rows(reservations_db)
    return desk, reservation


def test_an_operator_cancel_of_a_partner_booking_refunds_nothing_and_tells_the_partner(
        booking, place, payments, reservations_db, clock):
    _, reservation = _partner_booking(reservations_db, place, clock)
    confirmed = last_event(reservations_db, "reservation_confirmed")
    assert confirmed["user_id"] is None and (confirmed["partner"], confirmed["partner_ref"]) == ("acme", "A-1")
    assert confirmed["guest"] == {"name": "Ada Guest", "email": "ada@example.com", "phone": "+15550100"}
    cancelled = booking.cancel(None, reservation.id, "venue closed")
    assert (cancelled.status, cancelled.refund_amount, cancelled.refund_due) == ("cancelled", 0, 0)
    assert (cancelled.paid, cancelled.refunded, cancelled.payment_ids) == (0, 0, [])
    assert payments.refunds == [] and payments.charges == []
    told = last_event(reservations_db, "partner_reservation_cancelled")
    assert {k: told[k] for k in ("partner", "partner_ref", "reservation_id", "reason")} == {
        "partner": "acme", "partner_ref": "A-1", "reservation_id": reservation.id, "reason": "venue closed"}
    event = last_event(reservations_db, "reservation_cancelled")
    assert (event["refund_amount"], event["partner"], event["guest"]["email"]) == (0, "acme", "ada@example.com")
    booking.pay_refunds_due()  # the sweep has nothing to do with it
    booking.expire_stale_holds()


def test_a_partner_cancel_request_tells_the_partner_too(booking, place, reservations_db, clock):
    desk, reservation = _partner_booking(reservations_db, place, clock)
    desk.cancel({"event_id": "p-2", "partner": "acme", "partner_ref": "A-1"})
    told = last_event(reservations_db, "partner_reservation_cancelled")
    assert (told["reservation_id"], told["partner_ref"]) == (reservation.id, "A-1")
    assert last_event(reservations_db, "reservation_cancelled")["guest"]["name"] == "Ada Guest"


# -- a reschedule racing a cancel -------------------------------------------------------------

def test_a_cancel_while_a_move_is_being_paid_is_a_conflict_and_the_move_completes(
        booking, place, payments, clock):
    reservation = booking.reserve(CUSTOMER, ask(place, clock, day=3, hours=1))
    refused = []

    class CancelDuringCharge(ScriptedPayments):
        def charge(self, payload):
            if "reschedule" in payload["idempotency_key"]:
                with pytest.raises(Conflict) as conflict:
                    booking.cancel(CUSTOMER, reservation.id)
                refused.append(conflict.value)
            return super().charge(payload)

    booking.payments = ledger = CancelDuringCharge()
    ledger.ledger, ledger.charges = payments.ledger, payments.charges
    moved = move(booking, reservation, clock, 3, 10, 2)
    assert refused and moved.status == "confirmed" and moved.paid == 2000
    assert booking.cancel(CUSTOMER, reservation.id).refunded == 2000


def test_a_move_whose_hold_ran_out_while_it_was_paid_is_a_conflict_and_its_charge_is_refunded(
        booking, place, payments, clock):
    reservation = booking.reserve(CUSTOMER, ask(place, clock, day=3, hours=1))

    class ExpireDuringCharge(ScriptedPayments):
        def charge(self, payload):
            clock.advance(seconds=601)
            booking.expire_stale_holds()
            return super().charge(payload)

    booking.payments = ledger = ExpireDuringCharge()
    ledger.ledger, ledger.charges = payments.ledger, payments.charges
    with pytest.raises(Conflict):
        move(booking, reservation, clock, 3, 10, 2)
    after = booking.get(CUSTOMER, reservation.id)
    assert (after.start, after.amount, after.paid, after.refunded) == (reservation.start, 1000, 2000, 1000)


# -- the sweep survives any one bad row ---------------------------------------------------------

def test_a_refund_that_fails_for_one_row_leaves_the_others_paid_and_is_counted(
        booking, place, payments, clock):
    failures = []
    booking.on_sweep_failure = failures.append
    first = booking.reserve(CUSTOMER, ask(place, clock, day=3, hour=10))
    second = booking.reserve(CUSTOMER, ask(place, clock, day=3, hour=12))
    refund = payments.refund

    def broken_for_first(payment_id, *args, **kwargs):
        if payment_id == first.payment_id:
            raise RuntimeError("a bug in one row")
        return refund(payment_id, *args, **kwargs)

    payments.refund = broken_for_first
    booking.cancel(CUSTOMER, first.id)  # answered although its refund failed
    booking.cancel(CUSTOMER, second.id)
    assert booking.get(CUSTOMER, second.id).refunded == 1000
    assert booking.get(CUSTOMER, first.id).refund_due == 1000
    failures.clear()
    booking.pay_refunds_due()
    assert failures == ["pay_refunds_due"]
    payments.refund = refund
    booking.pay_refunds_due()
    assert booking.get(CUSTOMER, first.id).refunded == 1000


def test_a_hold_that_fails_to_expire_leaves_the_others_expired_and_is_counted(
        reservations_db, place, payments, clock):
    class BrokenForOne(EventRecorder):
        def record(self, session, event_type, **fields):
            if event_type == "reservation_expired" and fields["reservation_id"] == broken["id"]:
                raise RuntimeError("a bug in one row")
            return super().record(session, event_type, **fields)

    broken = {}
    failures = []
    policy = BookingPolicy(hold_seconds=600, horizon_days=365, refunds=RefundPolicy(24, 50))
    booking = Booking(reservations_db, BrokenForOne(OutboxMessage), payments, policy, clock=clock,
                      on_sweep_failure=failures.append)
    held = []
    for hour in (10, 12, 14):
        payments.next_charge_error = ServiceUnavailable("down")
        with pytest.raises(ServiceUnavailable) as error:
            booking.reserve(CUSTOMER, ask(place, clock, hour=hour))
        held.append(error.value.details["reservation_id"])
    broken["id"] = held[1]
    clock.advance(seconds=601)
    assert booking.expire_stale_holds() == 2
    assert failures == ["expire_stale_holds"]
    assert [r.status for r in rows(reservations_db)] == ["expired", "pending", "expired"]
