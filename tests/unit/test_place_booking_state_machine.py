"""Property, as a hypothesis state machine on a real database: whatever a customer books,
moves and cancels at a shared place (capacity above 1, opening hours, a slot grid, a buffer,
Paris around a clock change), whatever payments does meanwhile (declines, is away, is slow
while someone else books, or the worker dies mid-charge) and however time passes and the
sweep runs, after every step the reservations table itself says:

* at every minute, the quantities of what blocks (held and confirmed reservations, and a
  move's new window while its hold lasts), each over `[start, end + buffer)`, sum to at most
  the capacity (a reservation counts once where its old and new windows meet: it will use
  one of them);
* every blocking window is on the grid, inside opening hours and within the length limits,
  by a minute-by-minute reading of the local clock (tests/unit/test_schedule_properties.py's
  Oracle), not by the rules' own functions;
* a request the use-case refused (ValidationError, SlotUnavailable, Conflict) changed nothing;
  and what was accepted or refused is what the oracle, reading the table, says it must be.

The steps are the use-cases of reservations_service/booking.py (`reserve`, `reschedule`,
`cancel`, `on_payment_succeeded`, the sweep) on the clock they are given; only payments is a
fake. SQLite only: each example needs a database of its own, and the capacity rule is the same
code on both backends (tests/unit/test_place_rules_booking.py runs on both)."""
import shutil
import tempfile
import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from itertools import groupby
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from hypothesis import HealthCheck, event, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from common.errors import Conflict, PaymentDeclined, ServiceUnavailable, SlotUnavailable, ValidationError
from common.storage.engines import Sessions
from common.storage.outbox import EventRecorder
from reservations_service.booking import Booking, BookingPolicy
from reservations_service.models import OutboxMessage, Reservation
from reservations_service.places import Places
from reservations_service.refunds import RefundPolicy
from reservations_service.schedule import Schedule
from tests.conftest import database_template, migrated
from tests.unit.test_booking import ScriptedPayments
from tests.unit.test_schedule_properties import HORIZON_MINUTES, MINUTE, Oracle

UTC = timezone.utc
ZONE = "Europe/Paris"
HOLD = timedelta(seconds=600)
FULL_REFUND_HOURS = 24
POLICY = BookingPolicy(hold_seconds=600, horizon_days=365, refunds=RefundPolicy(FULL_REFUND_HOURS, 50))
CUSTOMER = {"user_id": 7, "permissions": []}
SOMEONE_ELSE = {"user_id": 8, "permissions": []}  # books while the customer's payment is under way
# The last Sundays of March and October 2026: Paris skips 02:00-03:00, then reads it twice.
# Both change at 01:00 UTC, which is minute 1500 of the Oracle's horizon (it starts at 00:00
# UTC the day before).
CLOCK_CHANGES = [date(2026, 3, 29), date(2026, 10, 25)]
CHANGE_MINUTE = 1500
SAT, SUN, MON = 5, 6, 0


def hours(*entries):
    return [{"weekday": day, "open": opens, "close": closes} for day, opens, closes in entries]


WEEKS = {
    "always open": [],
    # A lunch break, a night through the change, closed between.
    "split": hours((SAT, "09:00", "12:00"), (SAT, "13:00", "24:00"), (SUN, "00:00", "04:00"),
                   (SUN, "08:00", "20:00"), (MON, "07:00", "22:00")),
    # Nights across midnight: open until 24:00, on from 00:00, through the change.
    "nights": hours((SAT, "00:00", "03:30"), (SAT, "22:00", "24:00"), (SUN, "00:00", "03:30"),
                    (SUN, "22:00", "24:00"), (MON, "00:00", "03:30")),
    # Opens at 02:30 on the Sunday: a time skipped in March, read twice in October.
    "opens in the change": hours((SAT, "10:00", "18:00"), (SUN, "02:30", "05:00"), (MON, "10:00", "18:00")),
}

# A window: ("grid", grid points from the focus, length in grid points); ("like", which
# reservation, -1/0/1): the window just before it, its own, or the one just after it (where
# buffers decide); or ("minute", start minute of the horizon, length in minutes), which is
# mostly off the grid.
WINDOWS = st.sampled_from(["grid", "grid", "grid", "like", "like", "minute"]).flatmap(lambda kind: st.tuples(
    st.just(kind), st.integers(-2, 2), st.integers(1, 6)) if kind == "grid" else st.tuples(
    st.just(kind), st.integers(0, 19), st.integers(-1, 1)) if kind == "like" else st.tuples(
    st.just(kind), st.integers(0, HORIZON_MINUTES - 1), st.integers(1, 480)))
# A move: ("stretch", grid points later, grid points longer) from where the booking is (a
# longer or shorter window costs more or less, so payments has a part), or any window.
MOVES = st.one_of(st.tuples(st.just("stretch"), st.integers(-2, 2), st.sampled_from([1, -1, 2, 0])), WINDOWS)
# Mostly what the place can hold; sometimes none, or more than any place here holds.
QUANTITIES = st.sampled_from([1, 1, 1, 2, 2, 3, 4, 0, 5])
# What payments does at the first call a request makes of it.
PAYMENT = st.sampled_from(["ok", "ok", "ok", "declined", "down", "slow", "crash"])
# A move's payment is where the most can go wrong: slow more often.
MOVE_PAYMENT = st.sampled_from(["ok", "ok", "declined", "down", "slow", "slow", "crash"])
# During a slow payment: time passes (minutes), the sweep may run, someone else books the
# window being paid for, or another.
INTERLOPER = st.tuples(st.sampled_from([11, 1, 30]), st.booleans(),
                       st.one_of(st.sampled_from(["the same", "its last slot"]), WINDOWS),
                       st.one_of(st.just("the rest"), QUANTITIES))


class WorkerDied(BaseException):  # noqa: N818  (not an error the code may catch: the process is gone)
    """The worker running the request is killed while payments is being called."""


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


class Payments(ScriptedPayments):
    """ScriptedPayments, and what it does at a request's first call to it when armed."""

    def __init__(self):
        super().__init__()
        self.armed = None  # (behaviour, what happens during a slow call)

    def _first_call(self, call):
        armed, self.armed = self.armed, None
        if armed is None:
            return
        behaviour, meanwhile = armed
        if behaviour == "declined" and call == "charge":
            raise PaymentDeclined("The payment was declined")
        if behaviour == "down":
            raise ServiceUnavailable("payments is away", {"service": "payments"})
        if behaviour == "crash":
            raise WorkerDied()
        if behaviour == "slow":
            meanwhile()

    def charge(self, payload):
        self._first_call("charge")
        return super().charge(payload)

    def refund(self, payment_id, amount=None, reason=None, idempotency_key=None, at_most_remaining=False):
        self._first_call("refund")
        return super().refund(payment_id, amount, reason, idempotency_key, at_most_remaining)

    def payments_for_reservation(self, reservation_id):
        self._first_call("read")
        return super().payments_for_reservation(reservation_id)


@dataclass(frozen=True)
class Row:
    """What a reservation row says about time and capacity."""

    id: int
    user_id: int
    status: str
    start: datetime
    end: datetime
    quantity: int
    hold_expires_at: datetime | None
    pending_start: datetime | None
    pending_end: datetime | None
    pending_expires_at: datetime | None


_ROW = [Reservation.id, Reservation.user_id, Reservation.status, Reservation.start, Reservation.end,
        Reservation.quantity, Reservation.hold_expires_at, Reservation.pending_start, Reservation.pending_end,
        Reservation.pending_expires_at]


def migrated_once(folder):
    """A migrated reservations database (a SQLite file) to copy for each example: migrating
    is most of an example's time, and shrinking a failure runs many."""
    migrated(database_template("sqlite", folder), "reservations", "reservations_service").dispose()
    return Path(folder) / "bookify_reservations.db"


class PlaceBookings(RuleBasedStateMachine):
    template = None  # migrated_once's file

    def __init__(self):
        super().__init__()
        self.folder = tempfile.mkdtemp(prefix="bookify-place-sm-")
        if PlaceBookings.template is None:
            PlaceBookings.template = migrated_once(tempfile.mkdtemp(prefix="bookify-place-sm-template-"))
        shutil.copyfile(self.template, Path(self.folder) / self.template.name)
        self.sessions = Sessions.for_url(database_template("sqlite", self.folder).replace("<service>", "reservations"))
        self.payments = Payments()
        self.clock = Clock(None)
        self.booking = Booking(self.sessions, EventRecorder(OutboxMessage), self.payments, POLICY, clock=self.clock)
        self.place = None
        self.seen = []
        self.meanwhile = None  # the rows as someone else's booking during a slow payment left them

    def teardown(self):
        self.sessions.dispose()
        shutil.rmtree(self.folder, ignore_errors=True)

    # -- the place -------------------------------------------------------------------------

    @initialize(day=st.sampled_from(CLOCK_CHANGES), capacity=st.sampled_from([2, 3, 4]),
                week=st.sampled_from(sorted(WEEKS)), slot=st.sampled_from([15, 30, 60, 90]),
                buffer=st.sampled_from([0, 15, 45, 60]), unit_price=st.sampled_from([1000, 1000, 1000, 0]),
                lengths=st.sampled_from([(None, None), (None, None), (30, 180)]),
                focus=st.one_of(st.integers(-240, 240), st.integers(-CHANGE_MINUTE, HORIZON_MINUTES - CHANGE_MINUTE)),
                lead_hours=st.integers(2, 48))
    def open_place(self, day, capacity, week, slot, buffer, lengths, unit_price, focus, lead_hours):
        settings = {"timezone": ZONE, "capacity": capacity, "opening_hours": WEEKS[week], "slot_minutes": slot,
                    "buffer_minutes": buffer, "min_minutes": lengths[0], "max_minutes": lengths[1]}
        self.schedule = Schedule(unit="hour", **settings)
        self.oracle = Oracle(self.schedule, day)
        self.clock.now = self.oracle.at(0) - timedelta(hours=lead_hours)
        self.place = Places(self.sessions, clock=self.clock).create(
            {"name": "Desks", "unit": "hour", "unit_price": unit_price, "currency": "eur", **settings})
        self.grid = [minute for minute, on in enumerate(self.oracle.grid) if on]
        # Windows crowd around one open grid slot (near the clock change, mostly), so that
        # they compete for the capacity.
        near = CHANGE_MINUTE + focus
        opened = [i for i in range(3, len(self.grid) - 5) if all(self.oracle.open[self.grid[i]:self.grid[i + 1]])]
        self.focus = min(opened or [3], key=lambda i: abs(self.grid[i] - near))
        self.zone = ZoneInfo(ZONE)

    # -- steps -----------------------------------------------------------------------------

    @rule(requests=st.lists(st.tuples(WINDOWS, QUANTITIES, PAYMENT, INTERLOPER), min_size=1, max_size=3))
    def reserve(self, requests):
        """One to three bookings in a row: it takes several to fill a place."""
        for window, quantity, payment, meanwhile in requests:
            self._reserve(CUSTOMER, self.minutes(window), quantity, payment, meanwhile)
            self.check(self.rows())

    @precondition(lambda self: self.seen)
    @rule(which=st.integers(0, 19), window=MOVES, payment=MOVE_PAYMENT, meanwhile=INTERLOPER)
    def reschedule(self, which, window, payment, meanwhile):
        before = self.rows()
        # Mostly a booking that may move (confirmed, nothing in flight); sometimes any.
        movable = [row for row in before if row.status == "confirmed" and row.pending_start is None]
        moved = self.pick(movable if movable and which % 4 else before, which)
        start, end = self.stretched(moved, window) if window[0] == "stretch" else self.minutes(window)
        expected = self.expect_move(before, moved, start, end)
        asked = self.clock.now
        note(f"move {moved.id} ({moved.status}) to {self.shown(start, end)}: expect {expected}, payments {payment}")
        event(f"move: {expected}")
        self.arm(payment, meanwhile, (start, end))
        try:
            done = self.booking.reschedule(None, moved.id, self.ask(start, end, moved.quantity))
        except ValidationError:
            assert expected == "invalid"
            self.assert_unchanged(before)
        except SlotUnavailable:
            assert expected == "full"
            self.assert_unchanged(before)
        except Conflict:
            if self.meanwhile is None:
                assert expected == "conflict"
                self.assert_unchanged(before)
            else:  # the new window's hold ran out while payments took its time: nothing moved
                assert expected == "admitted" and payment == "slow" and self.clock.now >= asked + HOLD
                kept = self.row(self.meanwhile, moved.id)
                self.assert_unchanged([replace(row, pending_start=None, pending_end=None, pending_expires_at=None)
                                       if row == kept else row for row in self.meanwhile])
        except (PaymentDeclined, ServiceUnavailable):
            assert expected == "admitted" and payment in ("declined", "down")
            self.assert_unchanged(before)
        except WorkerDied:
            assert expected == "admitted" and payment == "crash"
            after = self.rows()
            held = self.row(after, moved.id)
            assert (held.pending_start, held.pending_end) == (self.oracle.at(start), self.oracle.at(end))
            assert held.pending_expires_at == self.clock.now + HOLD
            assert [row for row in after if row.id != moved.id] == [row for row in before if row.id != moved.id]
        else:
            assert expected == "admitted" and self.clock.now < asked + HOLD  # moved while its hold lasted
            assert (done.start, done.end, done.quantity) == (self.oracle.at(start), self.oracle.at(end),
                                                               moved.quantity)
            row = self.row(self.rows(), moved.id)
            assert (row.status, row.start, row.end, row.pending_start) == ("confirmed", done.start, done.end, None)
        finally:
            self.disarm()

    @precondition(lambda self: self.seen)
    @rule(which=st.integers(0, 19), payment=st.sampled_from(["ok", "ok", "down", "crash"]))
    def cancel(self, which, payment):
        before = self.rows()
        cancelled = self.pick(before, which)
        now = self.clock.now
        expected = "conflict" if (
            cancelled.status not in ("pending", "confirmed")
            or (cancelled.status == "confirmed" and cancelled.end <= now)
            or (cancelled.pending_start is not None and cancelled.pending_expires_at > now)
        ) else "cancelled"
        note(f"cancel {cancelled.id} ({cancelled.status}): expect {expected}, payments {payment}")
        event(f"cancel: {expected}")
        self.arm(payment, None, None)
        try:
            self.booking.cancel(None, cancelled.id)
        except Conflict:
            assert expected == "conflict"
            self.assert_unchanged(before)
        except WorkerDied:
            assert cancelled.status == "confirmed" and payment == "crash"
            self.assert_unchanged(before)
        else:
            assert expected == "cancelled"
            row = self.row(self.rows(), cancelled.id)
            assert (row.status, row.pending_start) == ("cancelled", None)
        finally:
            self.disarm()

    @precondition(lambda self: any(row.status in ("pending", "expired") for row in self.seen))
    @rule(which=st.integers(0, 19))
    def payment_lands(self, which):
        """payments' payment_succeeded for a hold whose request never saw its charge succeed
        (payments was away, or the worker died): it confirms a hold still pending, else refunds."""
        before = self.rows()
        waiting = [row for row in before if row.status in ("pending", "expired")]
        paid = waiting[which % len(waiting)]
        payment_id = 10_000 + len(self.payments.ledger)
        self.payments.ledger[payment_id] = {"id": payment_id, "status": "succeeded", "amount": 1,
                                            "refunded_amount": 0, "reservation_id": paid.id}
        note(f"payment {payment_id} lands for {paid.id} ({paid.status})")
        self.booking.on_payment_succeeded({"event_id": str(uuid.uuid4()), "reservation_id": paid.id,
                                           "payment_id": payment_id})
        after = self.rows()
        if paid.status == "pending":
            assert self.row(after, paid.id).status == "confirmed"
            assert [row for row in after if row.id != paid.id] == [row for row in before if row.id != paid.id]
        else:
            assert after == before

    @rule(minutes=st.sampled_from([1, 11, 60, 180, 720]), sweep=st.booleans())
    def time_passes(self, minutes, sweep):
        self.clock.now += timedelta(minutes=minutes)
        if sweep:
            self.sweep()

    # -- what must always hold -------------------------------------------------------------

    @invariant()
    def the_table_keeps_the_rules(self):
        if self.place is None:
            return
        self.check(self.rows())

    def check(self, rows):
        self.seen = rows
        load = self.load(rows)
        assert max(load) <= self.schedule.capacity, self.overfull(rows, load)
        for start, end, _, row in self.blocking(rows):
            assert self.oracle.valid(self.schedule, start, end), f"{self.shown(start, end)} breaks the rules: {row}"

    def blocking(self, rows, leaving_out=None):
        """(start minute, end minute, quantity, row) of each window that blocks now, read
        from the rows themselves: held and confirmed reservations, and moves still held."""
        now = self.clock.now
        for row in rows:
            if row.id == leaving_out:
                continue
            if row.status in ("pending", "confirmed"):
                yield self.minute(row.start), self.minute(row.end), row.quantity, row
            if row.status == "confirmed" and row.pending_start is not None and row.pending_expires_at > now:
                yield self.minute(row.pending_start), self.minute(row.pending_end), row.quantity, row

    def load(self, rows, leaving_out=None):
        """The quantity blocked at each minute of the horizon (buffers included): a
        reservation counts once at a minute its old window and its move's new one both cover
        (it will use one of them), for admission as for the invariant (docs/booking.md, "How
        capacity is enforced")."""
        load = [0] * (HORIZON_MINUTES + self.schedule.buffer_minutes + 1)
        for _, windows in groupby(self.blocking(rows, leaving_out), key=lambda window: window[3].id):
            covered = set()
            for start, end, quantity, _ in windows:
                for minute in range(start, end + self.schedule.buffer_minutes):
                    if minute not in covered:
                        covered.add(minute)
                        load[minute] += quantity
        return load

    def overfull(self, rows, load):
        worst = max(range(len(load)), key=load.__getitem__)
        at = [row for start, end, _, row in self.blocking(rows)
              if start <= worst < end + self.schedule.buffer_minutes]
        return f"{load[worst]} > {self.schedule.capacity} at {self.shown(worst, worst)}, held by {at}"

    def assert_unchanged(self, before):
        after = self.rows()
        assert after == before, f"a refused request changed the table: {before} -> {after}"

    # -- the oracle's expectations ------------------------------------------------------------

    def expect_booking(self, rows, start, end, quantity, leaving_out=None):
        """"invalid", "full" or "admitted", for a window of the horizon's minutes."""
        if end <= start or self.oracle.at(start) < self.clock.now or not self.oracle.valid(self.schedule, start, end):
            return "invalid"
        if not 1 <= quantity <= self.schedule.capacity:
            return "invalid"
        load = self.load(rows, leaving_out)
        reach = range(start, end + self.schedule.buffer_minutes)
        return "admitted" if all(load[minute] + quantity <= self.schedule.capacity for minute in reach) else "full"

    def expect_move(self, rows, moved, start, end):
        if moved.status != "confirmed" or moved.pending_start is not None:
            return "conflict"
        if self.clock.now >= moved.start - timedelta(hours=FULL_REFUND_HOURS):
            return "conflict"
        return self.expect_booking(rows, start, end, moved.quantity, leaving_out=moved.id)

    # -- helpers -----------------------------------------------------------------------------

    def _reserve(self, actor, window, quantity, payment, meanwhile=None):
        start, end = window
        before = self.rows()
        expected = self.expect_booking(before, start, end, quantity)
        note(f"user {actor['user_id']} books {quantity} for {self.shown(start, end)}: expect {expected}, "
             f"payments {payment}")
        event(f"book: {expected}")
        self.arm(payment, meanwhile, window)
        try:
            made = self.booking.reserve(actor, self.ask(start, end, quantity))
        except ValidationError:
            assert expected == "invalid"
            self.assert_unchanged(before)
            return
        except SlotUnavailable as refused:
            if "reservation_id" not in refused.details:  # the window was full
                assert expected == "full"
                self.assert_unchanged(before)
                return
            # The hold was swept while payments took its time: the charge is refunded.
            assert expected == "admitted" and payment == "slow" and self.meanwhile is not None
            self.assert_unchanged(self.meanwhile)
            status = "expired"
        except PaymentDeclined:
            assert payment == "declined"
            status = "failed"
        except ServiceUnavailable:
            assert payment == "down"
            status = "pending"  # held until the payment lands or the sweep expires it
        except WorkerDied:
            assert payment == "crash"
            status = "pending"
        else:
            status = "confirmed"
            assert (made.start, made.end, made.quantity) == (self.oracle.at(start), self.oracle.at(end), quantity)
        finally:
            self.disarm()
        assert expected == "admitted"
        after = self.rows()
        ours = [row for row in after if row.user_id == actor["user_id"] and row.id not in {r.id for r in before}]
        assert len(ours) == 1
        assert (ours[0].status, ours[0].start, ours[0].end, ours[0].quantity) == (
            status, self.oracle.at(start), self.oracle.at(end), quantity)

    def arm(self, payment, meanwhile, window):
        self.meanwhile = None
        if payment == "slow" and meanwhile is not None:
            self.payments.armed = (payment, lambda: self.someone_else_books(window, *meanwhile))
        elif payment not in ("ok", "slow"):
            self.payments.armed = (payment, None)

    def disarm(self):
        self.payments.armed = None

    def someone_else_books(self, paid_for, minutes, sweep, window, quantity):
        """While the customer's payment is under way (no transaction open): time passes, the
        sweep may run, and someone else books (`paid_for`, the window being paid for, its last
        grid slot, or another; "the rest": as many as the oracle says are left there)."""
        note(f"meanwhile, {minutes} minutes pass" + (" and the sweep runs" if sweep else ""))
        self.clock.now += timedelta(minutes=minutes)
        if sweep:
            self.sweep()
        rows = self.rows()
        self.check(rows)
        if window == "the same":
            start, end = paid_for
        elif window == "its last slot":  # of the window being paid for
            end = paid_for[1]
            start = self.grid[self.grid.index(end) - 1] if end in self.grid[1:] else paid_for[0]
        else:
            start, end = self.minutes(window)
        if quantity == "the rest":
            load = self.load(rows)
            quantity = max(1, self.schedule.capacity - max(load[start:end + self.schedule.buffer_minutes], default=0))
        self._reserve(SOMEONE_ELSE, (start, end), quantity, "ok")
        self.check(self.rows())
        self.meanwhile = self.rows()

    def sweep(self):
        self.booking.expire_stale_holds()
        self.booking.pay_refunds_due()
        now = self.clock.now
        for row in self.rows():
            assert not (row.status == "pending" and row.hold_expires_at <= now), row
            assert not (row.pending_start is not None and row.pending_expires_at <= now), row

    def minutes(self, window):
        kind, first, length = window
        rows = self.seen
        if kind == "like" and rows:
            row = self.pick(rows, first)
            start, end = self.minute(row.start), self.minute(row.end)
            if length < 0:
                return max(0, 2 * start - end), start
            if length > 0:
                return end, min(2 * end - start, HORIZON_MINUTES)
            return start, end
        if kind == "minute":
            return first, min(first + length, HORIZON_MINUTES)
        at = self.focus + (first if kind == "grid" else 0)
        return self.grid[at], self.grid[min(at + max(length, 1), len(self.grid) - 1)]

    def stretched(self, row, window):
        _, later, longer = window
        start, end = self.minute(row.start), self.minute(row.end)
        if start not in self.grid or end not in self.grid:
            return self.minutes(("grid", later, 1))
        first, last = self.grid.index(start) + later, self.grid.index(end) + later + longer
        first = min(max(first, 0), len(self.grid) - 2)
        return self.grid[first], self.grid[min(max(last, first + 1), len(self.grid) - 1)]

    def ask(self, start, end, quantity):
        return {"place_id": self.place.id, "start": self.oracle.at(start).astimezone(self.zone),
                "end": self.oracle.at(end).astimezone(self.zone), "payment_method": "pm_card_visa",
                "quantity": quantity}

    def rows(self):
        with self.sessions.read() as session:
            return [Row(*row) for row in session.execute(sa.select(*_ROW).order_by(Reservation.id))]

    @staticmethod
    def row(rows, reservation_id):
        return next(row for row in rows if row.id == reservation_id)

    @staticmethod
    def pick(rows, which):
        return rows[which % len(rows)]

    def minute(self, instant):
        offset = (instant - self.oracle.at(0)) / MINUTE
        assert offset == int(offset) and 0 <= offset <= HORIZON_MINUTES, f"{instant} is off the horizon"
        return int(offset)

    def shown(self, start, end):
        local = [self.oracle.at(minute).astimezone(self.zone) for minute in (start, end)]
        return f"{local[0]:%a %H:%M%z}-{local[1]:%a %H:%M%z} (minutes {start}-{end})"


def test_a_shared_place_never_overfills_nor_leaves_its_rules_whatever_happens(tmp_path, monkeypatch):
    monkeypatch.setattr(PlaceBookings, "template", migrated_once(tmp_path))
    run_state_machine_as_test(PlaceBookings, settings=settings(
        max_examples=25, stateful_step_count=20, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
