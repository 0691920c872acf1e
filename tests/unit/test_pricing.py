from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reservations_service.pricing import UNIT_LENGTHS, price, units_started
from reservations_service.windows import Window

START = datetime(2030, 7, 1, 9, tzinfo=timezone.utc)


def lasting(**length):
    return Window(START, START + timedelta(**length))


@pytest.mark.parametrize(
    "length, units",
    [
        (timedelta(minutes=1), 1),
        (timedelta(minutes=59), 1),
        (timedelta(hours=1), 1),
        (timedelta(minutes=61), 2),
        (timedelta(hours=2), 2),
        (timedelta(hours=2, microseconds=1), 3),
    ],
)
def test_hourly_places_charge_every_started_hour(length, units):
    assert units_started(Window(START, START + length), "hour") == units


@pytest.mark.parametrize(
    "length, units",
    [
        (timedelta(hours=1), 1),
        (timedelta(days=1), 1),
        (timedelta(days=1, seconds=1), 2),
        (timedelta(days=7), 7),
    ],
)
def test_daily_places_charge_every_started_day(length, units):
    assert units_started(Window(START, START + length), "day") == units


def test_a_day_is_24_hours_from_the_start_not_a_calendar_day():
    evening = datetime(2030, 7, 1, 18, tzinfo=timezone.utc)
    overnight = Window(evening, evening + timedelta(hours=16))
    assert units_started(overnight, "day") == 1


def test_a_long_window_just_past_a_boundary_still_starts_another_unit():
    # Ten years and a microsecond: float division would round this down to whole hours.
    assert units_started(lasting(days=3650, microseconds=1), "hour") == 3650 * 24 + 1


def test_price_is_units_started_times_unit_price_in_minor_units():
    assert price(lasting(minutes=61), "hour", 1250) == 2500
    assert price(lasting(hours=2), "hour", 1250) == 2500
    assert price(lasting(hours=30), "day", 9900) == 19800
    assert price(lasting(hours=3), "hour", 0) == 0


@pytest.mark.parametrize("unit", ["week", "Hour", "", None])
def test_an_unknown_unit_is_refused(unit):
    with pytest.raises(ValueError, match="Unknown pricing unit"):
        units_started(lasting(hours=1), unit)
    with pytest.raises(ValueError, match="Unknown pricing unit"):
        price(lasting(hours=1), unit, 100)


@pytest.mark.parametrize("unit_price", [-1, 12.5, "100"])
def test_unit_price_must_be_a_non_negative_integer(unit_price):
    with pytest.raises(ValueError, match="unit_price"):
        price(lasting(hours=1), "hour", unit_price)


@given(
    unit=st.sampled_from(sorted(UNIT_LENGTHS)),
    length=st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(days=3000)),
)
def test_units_started_is_the_fewest_units_covering_the_window(unit, length):
    units = units_started(Window(START, START + length), unit)
    assert (units - 1) * UNIT_LENGTHS[unit] < length <= units * UNIT_LENGTHS[unit]
