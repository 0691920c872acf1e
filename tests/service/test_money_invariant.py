"""The money invariant as a hypothesis state machine, on the real services: the reservations
and payments services in nameko containers on the real broker, payments charging and
refunding through the real Stripe SDK against a real localstripe. Steps: book, move to a
dearer or a cheaper window, cancel, an operator's refund straight through payments, a change
of the place's price, time passing (the reservations service's clock), and requests that
must be refused. After every step, for every reservation made:

* 0 <= refunded <= paid, and both are what payments says;
* the refunds Stripe holds for its payments add up to `refunded`;
* a late cancellation gave back no more than the policy's share of what was kept, however
  the booking was moved; an early one gave back everything;
* no hold (pending booking, or pending move) outlives a refused request."""
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
import stripe
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from nameko.standalone.rpc import ServiceRpcClient

import common.runtime.rpc  # noqa: F401  (registers our errors so they arrive typed)
import reservations_service.service as reservations_module
from common.errors import Conflict, PaymentDeclined, ValidationError
from payments_service.models import Payment
from payments_service.service import PaymentsService
from reservations_service.booking import Booking
from reservations_service.models import Reservation
from reservations_service.service import ReservationsService
from tests.conftest import database_template
from tests.fakes.stripe_fixtures import localstripe  # noqa: F401  (fixture)

LATE_PERCENT, FULL_HOURS = 50, 24


class Clock:
    def __init__(self):
        self.now = datetime.now(timezone.utc)

    def __call__(self):
        return self.now


@pytest.fixture
def db_template(tmp_path):
    """SQLite only: the invariant is about money, not storage (both backends run the money
    rules in tests/unit/test_money.py), and one run keeps `make test` short."""
    return database_template("sqlite", tmp_path)


@pytest.fixture
def stack(reservations_db, payments_db, service_config, container_factory, localstripe, monkeypatch):  # noqa: F811
    """Both services running, reservations on a clock the test moves."""
    clock = Clock()

    class ClockedBooking(Booking):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **dict(kwargs, clock=clock))

    monkeypatch.setattr(reservations_module, "Booking", ClockedBooking)
    stripe_config = {"api_key": "sk_test_bookify", "api_base": localstripe.url, "webhook_secret": "whsec_x",
                     "timeout_seconds": 5}
    container_factory(PaymentsService, dict(service_config, STRIPE=stripe_config)).start()
    booking = {"hold_seconds": 600, "horizon_days": 365, "full_refund_hours": FULL_HOURS,
               "late_refund_percent": LATE_PERCENT, "sweep_interval_seconds": 1}
    container_factory(ReservationsService, dict(service_config, BOOKING=booking)).start()
    with ServiceRpcClient("reservations", timeout=30) as reservations, \
            ServiceRpcClient("payments", timeout=30) as payments:
        yield {"reservations": reservations, "payments": payments, "clock": clock,
               "reservations_db": reservations_db, "payments_db": payments_db,
               "stripe": stripe.StripeClient("sk_test_inspector", base_addresses={"api": localstripe.url})}


def test_money_adds_up_whatever_happens(stack):
    reservations, payments, clock = stack["reservations"], stack["payments"], stack["clock"]

    class Money(RuleBasedStateMachine):
        """Steps act on the booking in hand (`active`); once it is cancelled another is made."""

        def __init__(self):
            super().__init__()
            clock.now = datetime.now(timezone.utc)
            self.user = {"user_id": 1000 + uuid.uuid4().int % 10**9, "permissions": []}
            self.mine = {}  # reservation id -> place id
            self.places = []
            self.active = None  # the reservation the steps act on
            self.was_late = set()  # reservations that were within the full-refund window at some point

        # -- steps ----------------------------------------------------------------------------

        @initialize(days=st.integers(2, 4), hours=st.integers(1, 3))
        def first_booking(self, days, hours):
            self.book(days, hours, 700)

        @precondition(lambda self: self.active is None and len(self.mine) < 3)
        @rule(days=st.integers(1, 5), hours=st.integers(1, 3), price=st.sampled_from([0, 700, 2500]))
        def book(self, days, hours, price):
            place = reservations.create_place({"name": "Room", "unit": "hour", "unit_price": price,
                                               "currency": "usd"})
            self.places.append(place["id"])
            start = _hour(clock() + timedelta(days=days))
            body = {"place_id": place["id"], "start": start.isoformat(),
                    "end": (start + timedelta(hours=hours)).isoformat()}
            if price:
                body["payment_method"] = "pm_card_visa"
            reservation = reservations.create_reservation(self.user, body)
            assert reservation["status"] == "confirmed" and reservation["paid"] == price * hours
            self.mine[reservation["id"]] = place["id"]
            self.active = reservation["id"]
            self._note_late()

        @rule(hours=st.integers(1, 3), card=st.sampled_from(["pm_card_visa", "pm_card_chargeCustomerFail"]))
        def refused_bookings(self, hours, card):
            """Too dear to charge, and a declined card: refused, with no hold left behind."""
            dear = reservations.create_place({"name": "Hall", "unit": "day", "unit_price": 60_000_000,
                                              "currency": "usd"})
            self.places.append(dear["id"])
            start = _hour(clock() + timedelta(days=2))
            day = start.replace(hour=0)  # on the day grid: refused for its price, not its window
            with pytest.raises(ValidationError) as refused:
                reservations.create_reservation(self.user, {
                    "place_id": dear["id"], "start": day.isoformat(),
                    "end": (day + timedelta(days=2)).isoformat(), "payment_method": "pm_card_visa"})
            assert list(refused.value.details) == ["end"]
            if card == "pm_card_chargeCustomerFail":
                cheap = reservations.create_place({"name": "Nook", "unit": "hour", "unit_price": 300,
                                                   "currency": "usd"})
                self.places.append(cheap["id"])
                with pytest.raises(PaymentDeclined):
                    reservations.create_reservation(self.user, {
                        "place_id": cheap["id"], "start": start.isoformat(),
                        "end": (start + timedelta(hours=hours)).isoformat(), "payment_method": card})

        @precondition(lambda self: self.active is not None)
        @rule(by=st.integers(1, 2), shift=st.sampled_from([1, 72]))
        def reschedule_up(self, by, shift):
            self._reschedule(by, shift)

        @precondition(lambda self: self.active is not None)
        @rule(by=st.integers(1, 2), shift=st.sampled_from([1, 72]))
        def reschedule_down(self, by, shift):
            self._reschedule(-by, shift)

        def _reschedule(self, by, shift):
            reservation_id = self.active
            now = reservations.get_reservation(reservation_id)
            start, end = _time(now["start"]), _time(now["end"])
            hours = max(1, (end - start) // timedelta(hours=1) + by)
            later = start + timedelta(hours=shift)  # 72 h later would make a late booking early again
            kept = _kept(payments, reservation_id)
            try:
                moved = reservations.reschedule_reservation(
                    reservation_id, {"start": later.isoformat(), "end": (later + timedelta(hours=hours)).isoformat()},
                    self.user)
            except Conflict:  # too late to move: nothing moved, nothing charged
                after = reservations.get_reservation(reservation_id)
                assert (after["start"], after["paid"]) == (now["start"], now["paid"])
                assert clock() >= start - timedelta(hours=FULL_HOURS)
                return
            assert moved["amount"] == hours * now["unit_price"]  # the price it was booked at
            difference = moved["amount"] - now["amount"]  # charged in full, or refunded as far as money is left
            assert _kept(payments, reservation_id) == kept + difference if difference >= 0 else \
                _kept(payments, reservation_id) == kept - min(-difference, kept)
            # Only a booking still outside the full-refund window moves.
            assert reservation_id not in self.was_late and clock() < start - timedelta(hours=FULL_HOURS)

        @precondition(lambda self: self.active is not None)
        @rule()
        def cancel(self):
            reservation_id = self.active
            before = reservations.get_reservation(reservation_id)
            kept = _kept(payments, reservation_id)
            try:
                cancelled = reservations.cancel_reservation(reservation_id, "changed plans", self.user)
            except Conflict:  # over already
                assert clock() >= _time(before["end"])
                self.active = None
                return
            self.active = None
            given_back = kept - _kept(payments, reservation_id)
            assert cancelled["refund_amount"] == given_back
            if reservation_id in self.was_late:  # however it was moved since
                assert given_back <= kept * LATE_PERCENT // 100
            else:
                assert given_back == kept and cancelled["refunded"] == cancelled["paid"]

        @precondition(lambda self: self.active is not None)
        @rule(share=st.integers(1, 100))
        def operator_refund(self, share):
            for payment in payments.payments_for_reservation(self.active):
                left = payment["amount"] - payment["refunded_amount"]
                if left > 0 and payment["status"] in ("succeeded", "partially_refunded"):
                    payments.refund(payment["id"], max(1, left * share // 100), "goodwill",
                                    f"operator-{uuid.uuid4().hex}")
                    return

        @precondition(lambda self: self.active is not None)
        @rule(price=st.sampled_from([0, 300, 5000]))
        def change_price(self, price):
            reservations.update_place(self.mine[self.active], {"unit_price": price})

        @rule(hours=st.sampled_from([6, 30]))
        def time_passes(self, hours):
            clock.now += timedelta(hours=hours)
            self._note_late()

        @precondition(lambda self: self.active is not None)
        @rule(before_start=st.sampled_from([3, 12]))
        def time_passes_into_the_late_window(self, before_start):
            start = _time(reservations.get_reservation(self.active)["start"])
            clock.now = max(clock.now, start - timedelta(hours=before_start))
            self._note_late()

        def _note_late(self):
            for reservation_id in self.mine:
                seen = reservations.get_reservation(reservation_id)
                if seen["status"] == "confirmed" and clock() > _time(seen["start"]) - timedelta(hours=FULL_HOURS):
                    self.was_late.add(reservation_id)

        # -- after every step ---------------------------------------------------------------

        @invariant()
        def money_adds_up(self):
            for reservation_id in self.mine:
                exact = payments.payments_for_reservation(reservation_id)
                charged = [p for p in exact if p["status"] in ("succeeded", "partially_refunded", "refunded")]
                paid = sum(p["amount"] for p in charged)
                refunded = sum(p["refunded_amount"] for p in charged)
                assert 0 <= refunded <= paid
                assert _stripe_refunds(stack, reservation_id) == refunded
                # The reservation follows payments (an operator's refund arrives as an event).
                deadline = time.monotonic() + 10
                while True:
                    seen = reservations.get_reservation(reservation_id)
                    if (seen["paid"], seen["refunded"]) == (paid, refunded):
                        break
                    assert time.monotonic() < deadline, (seen, paid, refunded)
                    time.sleep(0.1)
                assert sorted(seen["payment_ids"]) == sorted(p["id"] for p in charged)

        @invariant()
        def no_hold_outlives_a_refused_request(self):
            if not self.places:
                return
            with stack["reservations_db"].read() as session:
                held = session.scalars(sa.select(Reservation).where(
                    Reservation.place_id.in_(self.places),
                    sa.or_(Reservation.status == "pending", Reservation.pending_start.is_not(None)))).all()
            assert held == []

    run_state_machine_as_test(Money, settings=settings(
        # No shrinking: a failing run is reported as found, within the test's time limit.
        max_examples=18, stateful_step_count=12, deadline=None, derandomize=True,
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        suppress_health_check=list(HealthCheck)))


def _hour(moment):
    return moment.replace(minute=0, second=0, microsecond=0)


def _time(text):
    return datetime.fromisoformat(text)


def _kept(payments, reservation_id):
    return sum(p["amount"] - p["refunded_amount"] for p in payments.payments_for_reservation(reservation_id)
               if p["status"] in ("succeeded", "partially_refunded", "refunded"))


def _stripe_refunds(stack, reservation_id):
    """What Stripe itself refunded for the reservation's payments."""
    with stack["payments_db"].read() as session:
        intents = session.scalars(sa.select(Payment.stripe_intent_id).where(
            Payment.reservation_id == reservation_id, Payment.stripe_intent_id.is_not(None))).all()
    total = 0
    for intent in intents:
        refunds = stack["stripe"].v1.refunds.list(params={"payment_intent": intent, "limit": 100})
        total += sum(refund.amount for refund in refunds.auto_paging_iter() if refund.status == "succeeded")
    return total
