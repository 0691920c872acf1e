"""The booking use-cases on a real database, with a scripted payments collaborator:
every path a payment can take ends in a confirmed booking or a refund."""
from datetime import timedelta

import pytest
import sqlalchemy as sa

from common.errors import (
    Conflict,
    NotFound,
    PaymentDeclined,
    ServiceTimeout,
    ServiceUnavailable,
    SlotUnavailable,
    ValidationError,
)
from common.storage.outbox import EventRecorder
from reservations_service.booking import Booking, BookingPolicy
from reservations_service.models import OutboxMessage, Reservation
from reservations_service.places import Places
from reservations_service.refunds import RefundPolicy
from tests.conftest import first_words

CUSTOMER = {"user_id": 7, "permissions": ["reservations:create"]}
OTHER = {"user_id": 8, "permissions": ["reservations:create"]}
ADMIN = {"user_id": 1, "permissions": ["reservations:read_any", "reservations:manage_any"]}


class ScriptedPayments:
    """Stands in for the payments service: a small ledger of payments and their refunds that
    succeeds unless told otherwise, and records calls."""

    def __init__(self):
        self.charges, self.refunds = [], []
        self.ledger = {}  # payment id -> payment, as payments answers it
        self.keys = {}  # refund idempotency key -> payment id
        self.next_charge_error = None
        self.refund_error = None

    def charge(self, payload):
        self.charges.append(payload)
        if self.next_charge_error:
            error, self.next_charge_error = self.next_charge_error, None
            raise error
        payment = {"id": 100 + len(self.charges), "status": "succeeded", "amount": payload["amount"],
                   "refunded_amount": 0, "reservation_id": payload["reservation_id"]}
        self.ledger[payment["id"]] = payment
        return dict(payment)

    def refund(self, payment_id, amount=None, reason=None, idempotency_key=None, at_most_remaining=False):
        if self.refund_error:
            raise self.refund_error
        payment = self.ledger.setdefault(payment_id, {  # one charged outside this ledger (an orphan)
            "id": payment_id, "status": "succeeded", "amount": amount or 1000, "refunded_amount": 0,
            "reservation_id": None})
        asked = amount
        if idempotency_key is not None and idempotency_key in self.keys:
            return dict(payment)
        left = payment["amount"] - payment["refunded_amount"]
        amount = left if amount is None else (min(amount, left) if at_most_remaining else amount)
        if amount > left:
            raise ValidationError("too much", {"amount": ["Exceeds what is left."]})
        self.refunds.append((payment_id, asked, reason, idempotency_key))  # as asked
        if idempotency_key is not None:
            self.keys[idempotency_key] = payment_id
        payment["refunded_amount"] += amount
        return dict(payment)

    def payments_for_reservation(self, reservation_id):
        return [dict(p) for p in sorted(self.ledger.values(), key=lambda p: p["id"])
                if p["reservation_id"] == reservation_id]


@pytest.fixture
def payments():
    return ScriptedPayments()


@pytest.fixture
def place(reservations_db, clock):
    return Places(reservations_db, clock=clock).create(
        {"name": "Room", "unit": "hour", "unit_price": 1000, "currency": "usd", "timezone": "UTC"})


@pytest.fixture
def booking(reservations_db, payments, clock):
    policy = BookingPolicy(hold_seconds=600, horizon_days=365, refunds=RefundPolicy(24, 50))
    return Booking(reservations_db, EventRecorder(OutboxMessage), payments, policy, clock=clock)


def window(clock, day, hour, hours=1):
    start = clock().replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=day, hours=hour)
    return start, start + timedelta(hours=hours)


def ask(place, clock, day=2, hour=10, hours=1, payment_method="pm_card_visa"):
    start, end = window(clock, day, hour, hours)
    return {"place_id": place.id, "start": start, "end": end, "payment_method": payment_method}


def events(db):
    with db.transaction() as session:
        return [row.event_type for row in session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id))]


def last_event(db, event_type):
    import json

    with db.transaction() as session:
        rows = session.scalars(sa.select(OutboxMessage).where(OutboxMessage.event_type == event_type)
                               .order_by(OutboxMessage.id.desc())).all()
        return json.loads(rows[0].payload)


def status_of(db, reservation_id):
    with db.transaction() as session:
        return session.get(Reservation, reservation_id).status


def test_reserve_holds_charges_and_confirms(booking, place, payments, reservations_db, clock):
    reservation = booking.reserve(CUSTOMER, ask(place, clock, hours=2))
    assert reservation.status == "confirmed" and reservation.amount == 2000 and reservation.payment_id == 101
    assert payments.charges[0]["idempotency_key"] == f"reservation-{reservation.id}"
    assert events(reservations_db) == ["reservation_confirmed"]


def test_overlap_is_refused_before_any_charge(booking, place, payments, clock):
    booking.reserve(CUSTOMER, ask(place, clock, hour=10, hours=2))
    with pytest.raises(SlotUnavailable):
        booking.reserve(OTHER, ask(place, clock, hour=11))
    assert len(payments.charges) == 1
    assert booking.reserve(OTHER, ask(place, clock, hour=12)).status == "confirmed"  # adjacent


def test_declined_card_fails_the_reservation_and_frees_the_slot(booking, place, payments, reservations_db, clock):
    payments.next_charge_error = PaymentDeclined("declined", {"reason": "card_declined"})
    with pytest.raises(PaymentDeclined):
        booking.reserve(CUSTOMER, ask(place, clock))
    with reservations_db.transaction() as session:
        assert session.scalars(sa.select(Reservation.status)).all() == ["failed"]
    assert booking.reserve(OTHER, ask(place, clock)).status == "confirmed"


@pytest.mark.parametrize("trouble", [ServiceUnavailable("down"), ServiceTimeout("slow")])
def test_payments_down_keeps_the_hold_until_it_expires(booking, place, payments, reservations_db, clock, trouble):
    payments.next_charge_error = trouble
    with pytest.raises(ServiceUnavailable) as error:
        booking.reserve(CUSTOMER, ask(place, clock))
    held = error.value.details["reservation_id"]
    assert status_of(reservations_db, held) == "pending"
    with pytest.raises(SlotUnavailable):  # still held
        booking.reserve(OTHER, ask(place, clock))
    clock.advance(seconds=601)
    assert booking.expire_stale_holds() == 1
    assert status_of(reservations_db, held) == "expired"
    assert "reservation_expired" in events(reservations_db)
    assert booking.reserve(OTHER, ask(place, clock)).status == "confirmed"


def test_a_charge_that_lands_after_the_hold_expired_is_refunded(booking, place, payments, reservations_db, clock):
    """The crash/timeout case: the card was charged but the booking could not be confirmed."""
    payments.next_charge_error = ServiceTimeout("slow")
    with pytest.raises(ServiceUnavailable) as error:
        booking.reserve(CUSTOMER, ask(place, clock))
    held = error.value.details["reservation_id"]
    clock.advance(seconds=601)
    booking.expire_stale_holds()
    # The payment did go through after all; payments announces it.
    booking.on_payment_succeeded({"event_id": "evt-1", "reservation_id": held, "payment_id": 555})
    assert payments.refunds == [(555, None, "reservation_not_confirmed", f"reservation-{held}-orphan-555")]
    assert status_of(reservations_db, held) == "expired"
    booking.on_payment_succeeded({"event_id": "evt-1", "reservation_id": held, "payment_id": 555})
    assert len(payments.refunds) == 1  # a redelivery changes nothing


def test_a_charge_confirmed_by_event_after_a_timeout_confirms_the_hold(booking, place, payments, reservations_db,
                                                                        clock):
    payments.next_charge_error = ServiceTimeout("slow")
    with pytest.raises(ServiceUnavailable) as error:
        booking.reserve(CUSTOMER, ask(place, clock))
    held = error.value.details["reservation_id"]
    booking.on_payment_succeeded({"event_id": "evt-2", "reservation_id": held, "payment_id": 777})
    assert status_of(reservations_db, held) == "confirmed"
    assert payments.refunds == []
    assert events(reservations_db) == ["reservation_confirmed"]


def test_payment_succeeded_for_a_booking_it_already_confirmed_changes_and_records_nothing(
        booking, place, reservations_db, clock, sent_statements, commands_sent):
    reservation = booking.reserve(CUSTOMER, ask(place, clock))
    booking.get(CUSTOMER, reservation.id)  # the read pool's connection is open and set up
    sent = sent_statements(reservations_db)
    commands_sent.clear()
    booking.on_payment_succeeded({"event_id": "evt-3", "reservation_id": reservation.id,
                                  "payment_id": reservation.payment_id})
    statements = first_words(sent)
    assert statements.count("SELECT") == 1 and "INSERT" not in statements and "UPDATE" not in statements
    if reservations_db.read_engine is not None:  # MariaDB: that one read is all it sends, no COMMIT
        assert first_words(sql for _, sql in commands_sent) == ["SELECT"]
    assert status_of(reservations_db, reservation.id) == "confirmed"
    assert events(reservations_db) == ["reservation_confirmed"]


def test_confirm_after_the_hold_was_lost_refunds_inline(booking, place, payments, reservations_db, clock):
    """Injected failure between charge and confirm: the hold expires while the charge runs."""

    class ExpireDuringCharge(ScriptedPayments):
        def charge(self, payload):
            clock.advance(seconds=601)
            booking.expire_stale_holds()
            return super().charge(payload)

    booking.payments = slow = ExpireDuringCharge()
    with pytest.raises(SlotUnavailable):
        booking.reserve(CUSTOMER, ask(place, clock))
    assert [refund[2] for refund in slow.refunds] == ["reservation_not_confirmed"]


def test_idempotency_key_replays_the_first_result(booking, place, payments, clock):
    first = booking.reserve(CUSTOMER, ask(place, clock), idempotency_key="k1")
    again = booking.reserve(CUSTOMER, ask(place, clock), idempotency_key="k1")
    assert again.id == first.id and len(payments.charges) == 1
    with pytest.raises(Conflict):
        booking.reserve(CUSTOMER, ask(place, clock, hour=15), idempotency_key="k1")
    # Keys are per user: another user's k1 is a different request.
    assert booking.reserve(OTHER, ask(place, clock, hour=16), idempotency_key="k1").id != first.id


def test_a_booking_looks_its_idempotency_key_up_once(booking, place, reservations_db, clock, sent_statements):
    sent = sent_statements(reservations_db)
    booking.reserve(CUSTOMER, ask(place, clock), idempotency_key="once")
    lookups = [s for s in sent if s.lstrip().upper().startswith("SELECT") and "idempotency_key =" in s]
    assert len(lookups) == 1


def test_a_booking_confirms_its_hold_in_one_statement(booking, place, reservations_db, clock, sent_statements):
    sent = sent_statements(reservations_db)
    reservation = booking.reserve(CUSTOMER, ask(place, clock))
    assert reservation.status == "confirmed" and reservation.hold_expires_at is None
    # The hold: the place locked, the overlap check, the row. The confirmation: one UPDATE (the
    # row is not read again) and reservation_confirmed in the outbox, named after the place the
    # hold locked (it is not read again either).
    words = [word for word in first_words(sent) if word != "BEGIN"]
    assert words == ["SELECT", "SELECT", "INSERT", "UPDATE", "INSERT"]
    confirmed = last_event(reservations_db, "reservation_confirmed")
    assert (confirmed["place_name"], confirmed["timezone"]) == ("Room", "UTC")
    with reservations_db.transaction() as session:
        stored = session.get(Reservation, reservation.id)
        assert (stored.status, stored.payment_id, stored.hold_expires_at) == ("confirmed", 101, None)
        assert stored.updated_at == reservation.updated_at  # the answer says what the row says
    announced = last_event(reservations_db, "reservation_confirmed")
    assert (announced["reservation_id"], announced["amount"]) == (reservation.id, reservation.amount)


def test_availability_shows_what_is_booked_and_knows_only_bookable_places(
        booking, place, reservations_db, clock):
    places = Places(reservations_db, clock=clock)
    start, end = window(clock, 2, 0, hours=24)
    assert places.availability(place.id, start, end)["booked"] == []
    reservation = booking.reserve(CUSTOMER, ask(place, clock, hour=10))
    shown = places.availability(place.id, start, end)
    assert [(w.start, w.end) for w in shown["booked"]] == [(reservation.start, reservation.end)]
    assert shown["place_id"] == place.id and len(shown["free"]) == 2
    assert places.availability(str(place.id), start, end)["place_id"] == place.id  # the stored id
    with pytest.raises(NotFound):
        places.availability(place.id + 1000, start, end)
    booking.cancel(CUSTOMER, reservation.id)
    places.delete(place.id)
    with pytest.raises(NotFound):
        places.availability(place.id, start, end)


def test_a_booking_reuses_the_statements_the_last_one_built(booking, place, reservations_db, clock):
    """The key lookup, the overlap check and the confirmation are built once, not per booking."""
    executed = []

    def record(conn, clauseelement, *args):
        executed.append(clauseelement)

    sa.event.listen(reservations_db.engine, "before_execute", record)
    try:
        booking.reserve(CUSTOMER, ask(place, clock, hour=9), idempotency_key="first")
        first, executed[:] = list(executed), []
        booking.reserve(CUSTOMER, ask(place, clock, hour=11), idempotency_key="second")
    finally:
        sa.event.remove(reservations_db.engine, "before_execute", record)
    reused = [str(statement) for statement in executed if any(statement is earlier for earlier in first)]
    assert any(sql.startswith("SELECT") and "idempotency_key =" in sql for sql in reused)
    assert any("UNION ALL" in sql for sql in reused)
    assert any(sql.startswith("UPDATE reservations") for sql in reused)


def test_a_retry_is_answered_even_after_its_place_was_retired(booking, place, payments, reservations_db, clock):
    payments.next_charge_error = PaymentDeclined("declined")
    with pytest.raises(PaymentDeclined):
        booking.reserve(CUSTOMER, ask(place, clock), idempotency_key="retired")
    Places(reservations_db, clock=clock).delete(place.id)
    with pytest.raises(PaymentDeclined):  # the first answer again, not "Place not found"
        booking.reserve(CUSTOMER, ask(place, clock), idempotency_key="retired")
    with pytest.raises(NotFound):
        booking.reserve(CUSTOMER, ask(place, clock), idempotency_key="new")


def test_idempotent_retry_of_a_declined_request_is_declined_again_without_a_charge(booking, place, payments, clock):
    payments.next_charge_error = PaymentDeclined("declined")
    for _ in range(2):
        with pytest.raises(PaymentDeclined):
            booking.reserve(CUSTOMER, ask(place, clock), idempotency_key="k2")
    assert len(payments.charges) == 1


def test_others_see_404_admins_see_all(booking, place, clock):
    reservation = booking.reserve(CUSTOMER, ask(place, clock))
    with pytest.raises(NotFound):
        booking.get(OTHER, reservation.id)
    with pytest.raises(NotFound):
        booking.cancel(OTHER, reservation.id)
    assert booking.get(ADMIN, reservation.id).id == reservation.id
    query = {"limit": 20, "offset": 0}
    assert booking.search(OTHER, dict(query, user_id=CUSTOMER["user_id"])).total == 0
    assert booking.search(ADMIN, dict(query, user_id=CUSTOMER["user_id"])).total == 1


def test_cancel_early_refunds_all_late_refunds_the_share(booking, place, payments, reservations_db, clock):
    early = booking.reserve(CUSTOMER, ask(place, clock, day=3))
    cancelled = booking.cancel(CUSTOMER, early.id, "change of plans")
    assert (cancelled.status, cancelled.refund_amount, cancelled.cancel_reason) == (
        "cancelled", 1000, "change of plans")
    event = last_event(reservations_db, "reservation_cancelled")
    assert {k: event[k] for k in ("reservation_id", "user_id", "place_id", "amount", "currency", "refund_amount")} \
        == {"reservation_id": early.id, "user_id": 7, "place_id": place.id, "amount": 1000, "currency": "usd",
            "refund_amount": 1000}
    assert event["start"] == early.start.isoformat() and "event_id" in event and "occurred_at" in event
    assert payments.refunds[-1] == (early.payment_id, 1000, "cancelled",
                                    f"reservation-{early.id}-cancel-{early.payment_id}")
    assert (cancelled.paid, cancelled.refunded, cancelled.payment_ids) == (1000, 1000, [early.payment_id])
    start = clock() + timedelta(hours=2)
    late = booking.reserve(CUSTOMER, {"place_id": place.id, "start": start, "end": start + timedelta(hours=1),
                                      "payment_method": "pm_card_visa"})
    assert booking.cancel(CUSTOMER, late.id).refund_amount == 500


def test_a_refund_that_cannot_be_sent_is_retried(booking, place, payments, reservations_db, clock):
    reservation = booking.reserve(CUSTOMER, ask(place, clock, day=3))
    payments.refund_error = ServiceUnavailable("down")
    assert booking.cancel(CUSTOMER, reservation.id).status == "cancelled"
    assert payments.refunds == []
    payments.refund_error = None
    booking.pay_refunds_due()
    booking.pay_refunds_due()
    assert len(payments.refunds) == 1


def test_reschedule_charges_or_refunds_the_difference(booking, place, payments, reservations_db, clock):
    reservation = booking.reserve(CUSTOMER, ask(place, clock, hour=10, hours=1))
    start, end = window(clock, 2, 14, 3)
    moved = booking.reschedule(CUSTOMER, reservation.id, {"start": start, "end": end,
                                                         "payment_method": "pm_card_visa"})
    assert (moved.start, moved.amount) == (start, 3000)
    assert payments.charges[-1]["amount"] == 2000
    event = last_event(reservations_db, "reservation_rescheduled")
    assert (event["start"], event["end"], event["amount"]) == (start.isoformat(), end.isoformat(), 3000)
    start, end = window(clock, 2, 14, 1)
    moved = booking.reschedule(CUSTOMER, reservation.id, {"start": start, "end": end})
    assert moved.amount == 1000 and payments.refunds[-1][1] == 2000
    assert (moved.paid, moved.refunded, len(moved.payment_ids)) == (3000, 2000, 2)


def test_reschedule_declined_keeps_the_old_window(booking, place, payments, clock):
    reservation = booking.reserve(CUSTOMER, ask(place, clock, hour=10))
    payments.next_charge_error = PaymentDeclined("declined")
    start, end = window(clock, 2, 14, 2)
    with pytest.raises(PaymentDeclined):
        booking.reschedule(CUSTOMER, reservation.id, {"start": start, "end": end, "payment_method": "pm_x"})
    kept = booking.get(CUSTOMER, reservation.id)
    assert (kept.start, kept.amount, kept.pending_start) == (reservation.start, 1000, None)
    assert booking.reserve(OTHER, {"place_id": place.id, "start": start, "end": end,
                                   "payment_method": "pm_card_visa"}).status == "confirmed"


def test_a_reschedule_in_flight_holds_its_new_window(booking, place, payments, reservations_db, clock):
    reservation = booking.reserve(CUSTOMER, ask(place, clock, hour=10))
    start, end = window(clock, 2, 14, 2)

    class BookDuringCharge(ScriptedPayments):
        def charge(self, payload):
            if payload["idempotency_key"].startswith(f"reservation-{reservation.id}-reschedule"):
                with pytest.raises(SlotUnavailable):
                    booking.reserve(OTHER, {"place_id": place.id, "start": start, "end": end,
                                            "payment_method": "pm_card_visa"})
                # availability shows it taken too, beside the window being left
                shown = Places(reservations_db, clock=clock).availability(
                    place.id, reservation.start - timedelta(hours=1), end + timedelta(hours=1))
                assert [(w.start, w.end) for w in shown["booked"]] == [
                    (reservation.start, reservation.end), (start, end)]
            return super().charge(payload)

    booking.payments = BookDuringCharge()
    assert booking.reschedule(CUSTOMER, reservation.id, {"start": start, "end": end,
                                                         "payment_method": "pm_card_visa"}).start == start
