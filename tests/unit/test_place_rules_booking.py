"""A place's rules (capacity, opening hours, grid, zone, buffer) as booking, rescheduling,
place edits and availability apply them, on a real database."""
from datetime import datetime, timedelta, timezone

import pytest

from common.errors import Conflict, PaymentDeclined, SlotUnavailable, ValidationError
from common.storage.outbox import EventRecorder
from reservations_service.booking import Booking, BookingPolicy
from reservations_service.models import OutboxMessage
from reservations_service.places import Places, place_view
from reservations_service.refunds import RefundPolicy
from tests.unit.test_booking import ScriptedPayments

CUSTOMER = {"user_id": 7, "permissions": ["reservations:create"]}
PARIS = timezone(timedelta(hours=1))  # CET: the clock below is in winter


@pytest.fixture
def places(reservations_db, clock):
    clock.now = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)
    return Places(reservations_db, clock=clock)


@pytest.fixture
def booking(reservations_db, clock):
    policy = BookingPolicy(hold_seconds=600, horizon_days=365, refunds=RefundPolicy(24, 50))
    return Booking(reservations_db, EventRecorder(OutboxMessage), ScriptedPayments(), policy, clock=clock)


@pytest.fixture
def desks(places):
    """Three desks in Paris, Mondays 09:00-18:00 on a 30-minute grid, 15 minutes of turnover."""
    return places.create({
        "name": "Desks", "unit": "hour", "unit_price": 1000, "currency": "eur", "timezone": "Europe/Paris",
        "capacity": 3, "opening_hours": [{"weekday": 0, "open": "09:00", "close": "18:00"}],
        "slot_minutes": 30, "buffer_minutes": 15})


def monday(hour, minute=0):
    """Monday 7 December 2026 in Paris (CET)."""
    return datetime(2026, 12, 7, hour, minute, tzinfo=PARIS)


def ask(place, start, end, quantity=1):
    return {"place_id": place.id, "start": start.astimezone(timezone.utc), "end": end.astimezone(timezone.utc),
            "payment_method": "pm_card_visa", "quantity": quantity}


def test_bookings_share_a_place_while_their_quantities_fit(booking, desks):
    first = booking.reserve(CUSTOMER, ask(desks, monday(10), monday(11), quantity=2))
    assert (first.status, first.quantity, first.amount) == ("confirmed", 2, 2000)
    with pytest.raises(SlotUnavailable) as taken:
        booking.reserve(CUSTOMER, ask(desks, monday(10, 30), monday(11, 30), quantity=2))
    assert taken.value.details == {"place_id": desks.id, "remaining": 1, "quantity": 2}
    assert booking.reserve(CUSTOMER, ask(desks, monday(10, 30), monday(11, 30))).quantity == 1
    # The buffer keeps 11:00-11:15 for turnover: a 11:00 booking would need 3 there, 2 are left at most.
    with pytest.raises(SlotUnavailable):
        booking.reserve(CUSTOMER, ask(desks, monday(11), monday(12), quantity=3))
    assert booking.reserve(CUSTOMER, ask(desks, monday(11, 30), monday(12), quantity=2)).status == "confirmed"


@pytest.mark.parametrize("start, end, field", [
    (monday(10, 15), monday(11), "start"),  # off the 30-minute grid
    (monday(10), monday(10, 45), "end"),
    (monday(8), monday(10), "start"),  # before opening
    (monday(17), monday(19), "end"),  # past closing
    (monday(10) + timedelta(days=1), monday(11) + timedelta(days=1), "start"),  # closed on Tuesdays
])
def test_windows_against_the_rules_are_refused_naming_the_field(booking, desks, start, end, field):
    with pytest.raises(ValidationError) as refused:
        booking.reserve(CUSTOMER, ask(desks, start, end))
    assert list(refused.value.details) == [field]


@pytest.mark.parametrize("quantity", [4, 100])
def test_more_than_the_place_holds_is_refused_on_quantity(booking, desks, quantity):
    with pytest.raises(ValidationError) as refused:
        booking.reserve(CUSTOMER, ask(desks, monday(10), monday(11), quantity=quantity))
    assert list(refused.value.details) == ["quantity"]


def test_a_reschedule_keeps_its_quantity_and_the_capacity(booking, desks):
    moved = booking.reserve(CUSTOMER, ask(desks, monday(10), monday(11), quantity=2))
    booking.reserve(CUSTOMER, ask(desks, monday(14), monday(15), quantity=2))
    with pytest.raises(SlotUnavailable):  # 2 + 2 > 3
        booking.reschedule(CUSTOMER, moved.id, ask(desks, monday(14), monday(15)))
    with pytest.raises(ValidationError) as refused:
        booking.reschedule(CUSTOMER, moved.id, ask(desks, monday(12, 10), monday(13)))
    assert list(refused.value.details) == ["start"]
    # Overlapping its own old window is fine: it never counts against itself.
    done = booking.reschedule(CUSTOMER, moved.id, ask(desks, monday(10, 30), monday(12)))
    assert (done.quantity, done.amount) == (2, 2 * 2 * 1000)


def test_a_move_whose_hold_ran_out_while_it_was_paid_for_does_not_land_on_a_booking_made_meanwhile(
        booking, desks, clock):
    """The new window is held for hold_seconds; past that, other bookings no longer count it
    (even before the sweep drops it), so one may take the window, and the move must not."""
    moved = booking.reserve(CUSTOMER, ask(desks, monday(10), monday(11), quantity=2))
    charge, meanwhile = booking.payments.charge, []

    def slow_charge(payload):  # the dearer window's difference takes longer than the hold
        booking.payments.charge = charge
        clock.now += timedelta(seconds=601)
        meanwhile.append(booking.reserve({"user_id": 8}, ask(desks, monday(14), monday(16), quantity=2)))
        return charge(payload)

    booking.payments.charge = slow_charge
    with pytest.raises(Conflict, match="nothing was moved"):
        booking.reschedule(CUSTOMER, moved.id, ask(desks, monday(14), monday(16)))
    assert meanwhile[0].status == "confirmed"
    kept = booking.get(None, moved.id)
    assert (kept.start, kept.end, kept.amount, kept.pending_start) == (
        moved.start, moved.end, 2000, None)
    assert (kept.paid, kept.refunded) == (4000, 2000)  # the difference charged, then given back


@pytest.mark.parametrize("payment", ["lands", "declined"])
def test_a_move_in_flight_holds_one_seat_where_its_old_and_new_windows_overlap(booking, places, payment):
    """Ann holds 10:00-11:00 of two seats and moves to 10:30-12:00. While the difference is
    charged she holds both windows, yet at most one seat is ever hers at 10:30-11:00 (the move
    lands and frees the old window, or fails and frees the new one): Bob gets the other seat
    there, and only what would really exceed the two seats is refused."""
    pair = places.create({
        "name": "Pair", "unit": "hour", "unit_price": 1000, "currency": "eur", "timezone": "Europe/Paris",
        "capacity": 2, "opening_hours": [{"weekday": 0, "open": "09:00", "close": "18:00"}],
        "slot_minutes": 30})
    ann = booking.reserve(CUSTOMER, ask(pair, monday(10), monday(11)))
    charge, meanwhile = booking.payments.charge, {}

    def left():
        shown = places.availability(pair.id, monday(9, 30).astimezone(timezone.utc),
                                    monday(12, 30).astimezone(timezone.utc))
        return {slot.start.astimezone(PARIS).strftime("%H:%M"): slot.remaining for slot in shown["slots"]}

    def charge_while_others_book(payload):  # the dearer window's difference, mid-move
        booking.payments.charge = charge
        meanwhile["left"] = left()
        meanwhile["bob"] = booking.reserve({"user_id": 8}, ask(pair, monday(10, 30), monday(11)))
        with pytest.raises(SlotUnavailable) as full:  # Ann's one seat and Bob's
            booking.reserve({"user_id": 9}, ask(pair, monday(10, 30), monday(11)))
        meanwhile["full"] = full.value.details
        with pytest.raises(SlotUnavailable) as beside:  # Ann's new window holds one of two seats
            booking.reserve({"user_id": 9}, ask(pair, monday(11), monday(12), quantity=2))
        meanwhile["beside"] = beside.value.details
        if payment == "declined":
            raise PaymentDeclined("The payment was declined")
        return charge(payload)

    booking.payments.charge = charge_while_others_book
    if payment == "lands":
        moved = booking.reschedule(CUSTOMER, ann.id, ask(pair, monday(10, 30), monday(12)))
        assert (moved.start, moved.end) == (monday(10, 30), monday(12))
    else:
        with pytest.raises(PaymentDeclined):
            booking.reschedule(CUSTOMER, ann.id, ask(pair, monday(10, 30), monday(12)))
    assert meanwhile["left"] == {"09:30": 2, "10:00": 1, "10:30": 1, "11:00": 1, "11:30": 1, "12:00": 2}
    assert meanwhile["bob"].status == "confirmed"
    assert meanwhile["full"] == {"place_id": pair.id, "remaining": 0, "quantity": 1}
    assert meanwhile["beside"] == {"place_id": pair.id, "remaining": 1, "quantity": 2}
    # Whichever window Ann keeps, she and Bob fit the two seats.
    assert left() == ({"09:30": 2, "10:00": 2, "10:30": 0, "11:00": 1, "11:30": 1, "12:00": 2}
                      if payment == "lands" else
                      {"09:30": 2, "10:00": 1, "10:30": 0, "11:00": 2, "11:30": 2, "12:00": 2})


def test_a_day_place_charges_local_calendar_days(booking, places):
    cabin = places.create({"name": "Cabin", "unit": "day", "unit_price": 10000, "currency": "eur",
                           "timezone": "Europe/Paris"})
    # Two local nights, whatever the UTC hours: midnight Paris is 23:00 UTC the day before.
    start, end = datetime(2026, 12, 9, tzinfo=PARIS), datetime(2026, 12, 11, tzinfo=PARIS)
    assert booking.reserve(CUSTOMER, ask(cabin, start, end)).amount == 20000
    with pytest.raises(ValidationError) as refused:  # UTC midnight is 01:00 in Paris: off the day grid
        booking.reserve(CUSTOMER, ask(cabin, datetime(2026, 12, 12, tzinfo=timezone.utc),
                                      datetime(2026, 12, 13, tzinfo=timezone.utc)))
    assert set(refused.value.details) == {"start", "end"}


def test_a_place_shows_its_settings_with_the_defaults(places):
    plain = place_view(places.create({"name": "Plain", "unit": "day", "unit_price": 1, "currency": "usd"}))
    assert {name: plain[name] for name in ("timezone", "capacity", "opening_hours", "slot_minutes",
                                           "min_minutes", "max_minutes", "buffer_minutes")} == {
        "timezone": "UTC", "capacity": 1, "opening_hours": [], "slot_minutes": 1440, "min_minutes": None,
        "max_minutes": None, "buffer_minutes": 0}


@pytest.mark.parametrize("fields, named", [
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"capacity": 0}, "capacity"),
    ({"slot_minutes": 7}, "slot_minutes"),
    ({"opening_hours": [{"weekday": 0, "open": "09:00", "close": "12:00"},
                        {"weekday": 0, "open": "11:00", "close": "14:00"}]}, "opening_hours"),
    ({"opening_hours": [{"weekday": 0, "open": "12:00", "close": "09:00"}]}, "opening_hours"),
    ({"min_minutes": 120, "max_minutes": 60}, "max_minutes"),
])
def test_bad_settings_are_refused_naming_the_field_and_nothing_is_stored(places, fields, named):
    with pytest.raises(ValidationError) as refused:
        places.create({"name": "Bad", "unit": "hour", "unit_price": 1, "currency": "usd", **fields})
    assert named in refused.value.details
    assert places.listing(10, 0).total == 0


def test_an_update_is_checked_as_the_place_would_be_after_it(places, desks):
    with pytest.raises(ValidationError) as refused:
        places.update(desks.id, {"min_minutes": 120, "max_minutes": 60})
    assert "max_minutes" in refused.value.details
    places.update(desks.id, {"max_minutes": 120})
    with pytest.raises(ValidationError) as refused:  # only min given: still above the stored max
        places.update(desks.id, {"min_minutes": 180})
    assert "max_minutes" in refused.value.details
    changed = place_view(places.update(desks.id, {"slot_minutes": None, "unit": "day", "max_minutes": None}))
    assert (changed["slot_minutes"], changed["max_minutes"], changed["capacity"]) == (1440, None, 3)


def test_availability_counts_what_is_left_per_slot(booking, places, desks):
    booking.reserve(CUSTOMER, ask(desks, monday(10), monday(11), quantity=2))
    shown = places.availability(desks.id, monday(9).astimezone(timezone.utc), monday(12).astimezone(timezone.utc))
    assert (shown["timezone"], shown["capacity"]) == ("Europe/Paris", 3)
    left = {slot.start.astimezone(PARIS).strftime("%H:%M"): slot.remaining for slot in shown["slots"]}
    # 10:00-11:00 and its buffer to 11:15 hold 2 of 3; so does the 09:30 slot, whose own buffer reaches 10:15.
    assert left == {"09:00": 3, "09:30": 1, "10:00": 1, "10:30": 1, "11:00": 1, "11:30": 3}
    assert shown["booked"] == []
