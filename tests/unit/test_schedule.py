"""A place's time rules: settings, the grid, opening hours, DST days, length limits, price,
capacity with quantities and buffers, and availability slots."""
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from types import MappingProxyType, SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.errors import SlotUnavailable, ValidationError
from reservations_service.pricing import price as flat_price
from reservations_service.schedule import (
    MAX_SLOTS,
    Occupancy,
    Schedule,
    admit,
    availability,
    check_window,
    fits,
    price,
    remaining,
    units,
)
from reservations_service.windows import Window, free_intervals, merge

UTC = timezone.utc
PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
# 2026: Europe springs forward on Sunday 29 March (02:00 -> 03:00) and falls back on Sunday
# 25 October (03:00 -> 02:00); the US on Sunday 8 March and Sunday 1 November (02:00 -> 01:00).
SPRING = {"Europe/Paris": (3, 29, 2), "America/New_York": (3, 8, 2)}
FALL = {"Europe/Paris": (10, 25, 2), "America/New_York": (11, 1, 1)}
BOTH_ZONES = pytest.mark.parametrize("zone_name", ["Europe/Paris", "America/New_York"])


def utc(month, day, hour=0, minute=0, year=2030):
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def local(zone_name, month, day, hour=0, minute=0, fold=0, year=2026):
    """A wall-clock time in a zone, as the UTC instant it names (fold=1: its second reading);
    `day` may run past the month's end."""
    on = datetime(year, month, 1) + timedelta(days=day - 1)
    wall = datetime(on.year, on.month, on.day, hour, minute, tzinfo=ZoneInfo(zone_name), fold=fold)
    return wall.astimezone(UTC)


def refused(call, *args, **kwargs):
    with pytest.raises(ValidationError) as raised:
        call(*args, **kwargs)
    return raised.value.details


# Settings


def test_a_place_without_settings_keeps_todays_behaviour():
    hourly, daily = Schedule(), Schedule(unit="day")
    assert (hourly.timezone, hourly.capacity, hourly.opening_hours, hourly.buffer_minutes) == ("UTC", 1, (), 0)
    assert (hourly.slot_minutes, daily.slot_minutes) == (60, 1440)
    assert (hourly.min_minutes, hourly.max_minutes) == (None, None)


def test_a_schedule_reads_a_place_row_or_mapping_and_null_settings_take_defaults():
    row = SimpleNamespace(unit="day", unit_price=100, timezone="Europe/Paris", capacity=None)
    assert Schedule.of(row) == Schedule(unit="day", timezone="Europe/Paris")
    assert Schedule.of(MappingProxyType({"unit": "day", "capacity": 3})) == Schedule(unit="day", capacity=3)
    fields = {"unit": "hour", "timezone": "UTC", "capacity": 8, "slot_minutes": 30, "buffer_minutes": 15,
              "opening_hours": [{"weekday": 0, "open": "09:00", "close": "24:00"}], "min_minutes": None}
    schedule = Schedule.of(fields)
    assert schedule.capacity == 8 and schedule.slot_minutes == 30 and schedule.buffer_minutes == 15
    assert schedule.as_fields()["opening_hours"] == [{"weekday": 0, "open": "09:00", "close": "24:00"}]
    assert Schedule.of(schedule.as_fields()) == schedule


@pytest.mark.parametrize(
    "settings, field",
    [
        ({"unit": "week"}, "unit"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"timezone": ""}, "timezone"),
        ({"timezone": "../../etc/passwd"}, "timezone"),
        ({"timezone": "A" * 300}, "timezone"),
        ({"timezone": 2}, "timezone"),
        ({"capacity": 0}, "capacity"),
        ({"capacity": -3}, "capacity"),
        ({"capacity": True}, "capacity"),
        ({"capacity": "2"}, "capacity"),
        ({"capacity": 2.0}, "capacity"),
        ({"slot_minutes": 7}, "slot_minutes"),
        ({"slot_minutes": 50}, "slot_minutes"),
        ({"slot_minutes": 0}, "slot_minutes"),
        ({"slot_minutes": 2880}, "slot_minutes"),
        ({"slot_minutes": "60"}, "slot_minutes"),
        ({"min_minutes": 0}, "min_minutes"),
        ({"max_minutes": -60}, "max_minutes"),
        ({"min_minutes": 120, "max_minutes": 60}, "max_minutes"),
        ({"buffer_minutes": -1}, "buffer_minutes"),
        ({"buffer_minutes": 1.5}, "buffer_minutes"),
        ({"opening_hours": {"weekday": 0, "open": "09:00", "close": "18:00"}}, "opening_hours"),
        ({"opening_hours": "09:00-18:00"}, "opening_hours"),
        ({"opening_hours": ["monday 9-5"]}, "opening_hours"),
        ({"opening_hours": [{"weekday": 7, "open": "09:00", "close": "18:00"}]}, "opening_hours"),
        ({"opening_hours": [{"weekday": -1, "open": "09:00", "close": "18:00"}]}, "opening_hours"),
        ({"opening_hours": [{"weekday": "0", "open": "09:00", "close": "18:00"}]}, "opening_hours"),
        ({"opening_hours": [{"weekday": 0, "open": "9:00", "close": "18:00"}]}, "opening_hours"),
        ({"opening_hours": [{"weekday": 0, "open": "12:60", "close": "18:00"}]}, "opening_hours"),
        ({"opening_hours": [{"weekday": 0, "open": "09:00\n", "close": "18:00"}]}, "opening_hours"),
        ({"opening_hours": [{"weekday": 0, "open": "\u0660\u0669:00", "close": "18:00"}]}, "opening_hours"),
        ({"opening_hours": [{"weekday": 0, "open": "24:00", "close": "24:00"}]}, "opening_hours"),
        ({"opening_hours": [{"weekday": 0, "open": "09:00", "close": "24:01"}]}, "opening_hours"),
        ({"opening_hours": [{"weekday": 0, "open": "09:00", "close": "25:00"}]}, "opening_hours"),
        ({"opening_hours": [{"weekday": 0, "open": "18:00", "close": "09:00"}]}, "opening_hours"),
        ({"opening_hours": [{"weekday": 0, "open": "09:00", "close": "09:00"}]}, "opening_hours"),
        ({"opening_hours": [{"weekday": 0, "open": "09:00"}]}, "opening_hours"),
        ({"opening_hours": [{"weekday": 0, "open": "09:00", "close": "18:00", "note": "x"}]}, "opening_hours"),
        (
            {"opening_hours": [{"weekday": 2, "open": "09:00", "close": "13:00"},
                               {"weekday": 2, "open": "12:00", "close": "18:00"}]},
            "opening_hours",
        ),
        (
            {"opening_hours": [{"weekday": 2, "open": "08:00", "close": "20:00"},
                               {"weekday": 2, "open": "10:00", "close": "11:00"}]},
            "opening_hours",
        ),
    ],
)
def test_a_bad_setting_is_refused_naming_its_field(settings, field):
    details = refused(Schedule, **settings)
    assert list(details) == [field]
    assert details[field] and all(isinstance(message, str) for message in details[field])


def test_every_bad_setting_is_named_at_once():
    details = refused(Schedule, timezone="Nowhere/City", capacity=0, slot_minutes=45 + 5, buffer_minutes=-5)
    assert set(details) == {"timezone", "capacity", "slot_minutes", "buffer_minutes"}


def test_touching_intervals_and_a_whole_day_are_accepted():
    schedule = Schedule(opening_hours=[
        {"weekday": 1, "open": "12:00", "close": "18:00"},
        {"weekday": 1, "open": "09:00", "close": "12:00"},
        {"weekday": 6, "open": "00:00", "close": "24:00"},
    ])
    assert [(each.weekday, each.open, each.close) for each in schedule.opening_hours] == [
        (1, 540, 720), (1, 720, 1080), (6, 0, 1440)
    ]
    assert check_window(schedule, utc(7, 2, 9), utc(7, 2, 18))  # Tuesday, across the touch


@pytest.mark.parametrize("slot", [1, 5, 15, 45, 90, 120, 480, 720, 1440])
def test_any_grid_that_divides_a_day_is_accepted(slot):
    assert Schedule(slot_minutes=slot).slot_minutes == slot


# The grid


def test_a_window_off_the_grid_is_refused_on_each_end_that_is_off():
    hourly = Schedule()
    assert set(refused(check_window, hourly, utc(7, 1, 10, 7), utc(7, 1, 10, 8))) == {"start", "end"}
    assert set(refused(check_window, hourly, utc(7, 1, 10), utc(7, 1, 10, 30))) == {"end"}
    assert set(refused(check_window, hourly, utc(7, 1, 10, 0) + timedelta(seconds=1), utc(7, 1, 11))) == {"start"}
    assert check_window(hourly, utc(7, 1, 10), utc(7, 1, 12)) == Window(utc(7, 1, 10), utc(7, 1, 12))


def test_the_grid_counts_from_local_midnight_not_from_utc():
    kolkata = Schedule(timezone="Asia/Kolkata")  # UTC+05:30 all year
    assert check_window(kolkata, utc(7, 1, 3, 30), utc(7, 1, 4, 30))  # 09:00-10:00 local
    assert set(refused(check_window, kolkata, utc(7, 1, 3), utc(7, 1, 4))) == {"start", "end"}
    daily = Schedule(unit="day", timezone="Asia/Kolkata")
    assert check_window(daily, utc(6, 30, 18, 30), utc(7, 1, 18, 30))
    assert set(refused(check_window, daily, utc(7, 1), utc(7, 2))) == {"start", "end"}


def test_a_window_needs_offsets_and_must_end_after_it_starts():
    hourly = Schedule()
    naive = datetime(2030, 7, 1, 10)
    assert set(refused(check_window, hourly, naive, naive + timedelta(hours=1))) == {"start", "end"}
    assert set(refused(check_window, hourly, utc(7, 1, 10), utc(7, 1, 10))) == {"end"}
    assert set(refused(check_window, hourly, utc(7, 1, 11), utc(7, 1, 10))) == {"end"}
    assert set(refused(check_window, hourly, "2030-07-01T10:00:00Z", None)) == {"start", "end"}


@BOTH_ZONES
def test_an_hour_grid_skips_the_missing_hour_of_a_spring_forward_night(zone_name):
    month, day, gap = SPRING[zone_name]
    schedule = Schedule(timezone=zone_name)
    points = list(schedule.grid_points(local(zone_name, month, day), local(zone_name, month, day + 1)))
    walls = [point.astimezone(ZoneInfo(zone_name)).hour for point in points]
    assert walls == [hour for hour in range(24) if hour != gap] + [0]
    assert all(later - earlier == timedelta(hours=1) for earlier, later in zip(points, points[1:], strict=False))
    across = check_window(schedule, local(zone_name, month, day, gap - 1), local(zone_name, month, day, gap + 1))
    assert across.duration == timedelta(hours=1)
    assert schedule.count_slots(across) == 1 and units(schedule, across) == 1


@BOTH_ZONES
def test_a_window_starting_or_ending_at_a_time_the_clocks_skip_is_refused(zone_name):
    month, day, gap = SPRING[zone_name]
    zone = ZoneInfo(zone_name)
    schedule = Schedule(timezone=zone_name)
    skipped = datetime(2026, month, day, gap, tzinfo=zone)
    details = refused(check_window, schedule, skipped, skipped + timedelta(hours=2))
    assert list(details) == ["start"] and "does not exist" in details["start"][0]
    details = refused(check_window, schedule, skipped - timedelta(hours=1), skipped)
    assert list(details) == ["end"] and "does not exist" in details["end"][0]
    half_past = Schedule(timezone=zone_name, slot_minutes=30)
    assert list(refused(check_window, half_past, skipped.replace(minute=30), skipped + timedelta(hours=3))) == [
        "start"
    ]


@BOTH_ZONES
def test_both_readings_of_a_repeated_hour_are_grid_points(zone_name):
    month, day, repeated = FALL[zone_name]
    schedule = Schedule(timezone=zone_name)
    first, second = local(zone_name, month, day, repeated), local(zone_name, month, day, repeated, fold=1)
    assert second - first == timedelta(hours=1)
    assert schedule.is_on_grid(first) and schedule.is_on_grid(second)
    points = list(schedule.grid_points(local(zone_name, month, day), local(zone_name, month, day + 1)))
    assert len(points) == 26  # 25 hourly slots on a 25-hour day
    assert check_window(schedule, first, second).duration == timedelta(hours=1)
    night = check_window(schedule, local(zone_name, month, day), local(zone_name, month, day, repeated + 2))
    assert night.duration == timedelta(hours=repeated + 3)
    assert schedule.count_slots(night) == repeated + 3 and units(schedule, night) == repeated + 3
    half = Schedule(timezone=zone_name, slot_minutes=30)
    assert half.is_on_grid(local(zone_name, month, day, repeated, 30, fold=1))
    assert not schedule.is_on_grid(local(zone_name, month, day, repeated, 30, fold=1))


@BOTH_ZONES
@pytest.mark.parametrize("change, hours", [(SPRING, 23), (FALL, 25)])
def test_a_day_slot_runs_from_local_midnight_to_local_midnight_on_23_and_25_hour_days(zone_name, change, hours):
    month, day, _ = change[zone_name]
    daily = Schedule(unit="day", timezone=zone_name)
    window = check_window(daily, local(zone_name, month, day), local(zone_name, month, day + 1))
    assert window.duration == timedelta(hours=hours)
    assert daily.count_slots(window) == 1 and units(daily, window) == 1
    assert price(daily, window, 9000) == 9000
    assert set(refused(check_window, daily, window.start, window.start + timedelta(hours=24))) == {"end"}
    week = check_window(daily, local(zone_name, month, day - 3), local(zone_name, month, day + 4))
    assert daily.count_slots(week) == 7 and units(daily, week) == 7


def test_a_day_whose_midnight_is_skipped_begins_when_the_clocks_jump():
    santiago = "America/Santiago"  # 6 September 2026: 00:00 -> 01:00
    daily = Schedule(unit="day", timezone=santiago)
    begins = local(santiago, 9, 6, 1)
    assert begins.astimezone(ZoneInfo(santiago)).date().day == 6
    assert (begins - timedelta(seconds=1)).astimezone(ZoneInfo(santiago)).date().day == 5
    assert check_window(daily, begins, local(santiago, 9, 7)).duration == timedelta(hours=23)
    assert check_window(daily, local(santiago, 9, 5), begins).duration == timedelta(hours=24)


def test_midnight_read_twice_begins_the_day_once():
    havana = "America/Havana"  # 1 November 2026: 01:00 -> 00:00
    daily = Schedule(unit="day", timezone=havana)
    first, second = local(havana, 11, 1), local(havana, 11, 1, fold=1)
    assert second - first == timedelta(hours=1)
    assert daily.is_on_grid(first) and not daily.is_on_grid(second)
    assert check_window(daily, first, local(havana, 11, 2)).duration == timedelta(hours=25)
    assert list(refused(check_window, daily, second, local(havana, 11, 2))) == ["start"]
    hourly = Schedule(timezone=havana)
    assert not hourly.is_on_grid(second)
    points = list(hourly.grid_points(local(havana, 11, 1), local(havana, 11, 2)))
    assert second not in points and len(points) == 25 and points[1] - points[0] == timedelta(hours=2)



def test_a_fall_back_that_ends_at_midnight_makes_a_25_hour_day_with_its_evening_hour_twice():
    asuncion = "America/Asuncion"  # 26 March 2023, 00:00 -03 -> 25 March, 23:00 -04
    first, second = local(asuncion, 3, 25, 23, year=2023), local(asuncion, 3, 25, 23, fold=1, year=2023)
    hourly = Schedule(timezone=asuncion)
    assert second - first == timedelta(hours=1) and hourly.is_on_grid(first) and hourly.is_on_grid(second)
    points = list(hourly.grid_points(local(asuncion, 3, 25, year=2023), local(asuncion, 3, 26, year=2023)))
    assert len(points) == 26 and points[-1] == second + timedelta(hours=1)
    daily = Schedule(unit="day", timezone=asuncion)
    day = check_window(daily, local(asuncion, 3, 25, year=2023), local(asuncion, 3, 26, year=2023))
    assert day.duration == timedelta(hours=25) and units(daily, day) == 1


# Opening hours

WEEKDAYS_9_TO_18 = [{"weekday": weekday, "open": "09:00", "close": "18:00"} for weekday in range(5)]


def test_a_window_outside_opening_hours_is_refused_naming_the_end_that_is_out():
    shop = Schedule(timezone="Europe/Paris", opening_hours=WEEKDAYS_9_TO_18)
    monday = 7, 1  # 2030-07-01 is a Monday; Paris is UTC+2 in summer
    assert check_window(shop, utc(*monday, 7), utc(*monday, 16))  # 09:00-18:00 local
    assert list(refused(check_window, shop, utc(*monday, 1), utc(*monday, 2))) == ["start"]  # 03:00
    assert list(refused(check_window, shop, utc(*monday, 6), utc(*monday, 8))) == ["start"]
    details = refused(check_window, shop, utc(*monday, 15), utc(*monday, 17))
    assert list(details) == ["end"] and "18:00" in details["end"][0]
    assert list(refused(check_window, shop, utc(7, 6, 8), utc(7, 6, 9))) == ["start"]  # Saturday


def test_a_window_may_cross_midnight_only_into_contiguous_opening_hours():
    late = Schedule(opening_hours=[{"weekday": 0, "open": "09:00", "close": "24:00"},
                                   {"weekday": 1, "open": "00:00", "close": "18:00"}])
    assert check_window(late, utc(7, 1, 20), utc(7, 2, 10))
    assert list(refused(check_window, late, utc(7, 1, 20), utc(7, 2, 19))) == ["end"]
    gap = Schedule(opening_hours=[{"weekday": 0, "open": "09:00", "close": "23:00"},
                                  {"weekday": 1, "open": "00:00", "close": "18:00"}])
    assert list(refused(check_window, gap, utc(7, 1, 20), utc(7, 2, 10))) == ["end"]
    lunch = Schedule(opening_hours=[{"weekday": 0, "open": "09:00", "close": "12:00"},
                                    {"weekday": 0, "open": "13:00", "close": "18:00"}])
    assert list(refused(check_window, lunch, utc(7, 1, 11), utc(7, 1, 14))) == ["end"]


def test_an_opening_time_the_clocks_skip_opens_at_the_jump():
    night = Schedule(timezone="Europe/Paris", slot_minutes=30,
                     opening_hours=[{"weekday": 6, "open": "02:30", "close": "05:00"}])
    assert check_window(night, local("Europe/Paris", 3, 29, 3), local("Europe/Paris", 3, 29, 4))
    assert list(refused(check_window, night, local("Europe/Paris", 3, 29, 1, 30),
                        local("Europe/Paris", 3, 29, 3, 30))) == ["start"]


def test_a_closing_time_read_twice_closes_at_its_first_reading():
    bar = Schedule(timezone="Europe/Paris", slot_minutes=30,
                   opening_hours=[{"weekday": 5, "open": "20:00", "close": "24:00"},
                                  {"weekday": 6, "open": "00:00", "close": "02:30"}])
    first_half_past_two = local("Europe/Paris", 10, 25, 2, 30)
    assert check_window(bar, local("Europe/Paris", 10, 24, 22), first_half_past_two)
    second_two = local("Europe/Paris", 10, 25, 2, fold=1)
    assert list(refused(check_window, bar, second_two, second_two + timedelta(minutes=30))) == ["start"]


# Length limits


def test_min_and_max_minutes_bound_the_window_and_name_end():
    limited = Schedule(min_minutes=120, max_minutes=180)
    assert list(refused(check_window, limited, utc(7, 1, 9), utc(7, 1, 10))) == ["end"]
    assert check_window(limited, utc(7, 1, 9), utc(7, 1, 11))
    assert check_window(limited, utc(7, 1, 9), utc(7, 1, 12))
    assert list(refused(check_window, limited, utc(7, 1, 9), utc(7, 1, 13))) == ["end"]


def test_length_counts_grid_slots_so_nights_across_a_clock_change_are_whole_days():
    two_nights = Schedule(unit="day", timezone="Europe/Paris", min_minutes=2880, max_minutes=2880)
    spring = check_window(two_nights, local("Europe/Paris", 3, 28), local("Europe/Paris", 3, 30))
    assert spring.duration == timedelta(hours=47)
    fall = check_window(two_nights, local("Europe/Paris", 10, 24), local("Europe/Paris", 10, 26))
    assert fall.duration == timedelta(hours=49)
    assert units(two_nights, spring) == units(two_nights, fall) == 2


# Price


@pytest.mark.parametrize(
    "unit, start, end",
    [
        ("hour", utc(7, 1, 9), utc(7, 1, 10)),
        ("hour", utc(7, 1, 9), utc(7, 1, 17)),
        ("hour", utc(7, 1, 22), utc(7, 2, 3)),
        ("day", utc(7, 1), utc(7, 2)),
        ("day", utc(7, 1), utc(7, 8)),
        ("day", utc(2, 27), utc(3, 2)),
    ],
)
def test_a_utc_place_on_its_default_grid_costs_what_it_did(unit, start, end):
    schedule = Schedule(unit=unit)
    window = check_window(schedule, start, end)
    assert price(schedule, window, 1250) == flat_price(window, unit, 1250)


def test_price_is_unit_price_times_units_times_quantity():
    room = Schedule(capacity=8)
    assert price(room, Window(utc(7, 1, 9), utc(7, 1, 12)), 1500, quantity=4) == 1500 * 3 * 4
    assert price(room, Window(utc(7, 1, 9), utc(7, 1, 12)), 0, quantity=8) == 0
    assert list(refused(price, room, Window(utc(7, 1, 9), utc(7, 1, 12)), 1500, quantity=0)) == ["quantity"]
    # A booking made before the room shrank keeps its price; the unit it was booked at wins.
    assert price(Schedule(capacity=2), Window(utc(7, 1, 9), utc(7, 1, 12)), 1500, quantity=4) == 1500 * 3 * 4
    assert price(room, Window(utc(7, 1), utc(7, 3)), 100, unit="day") == 200
    with pytest.raises(ValueError):
        price(room, Window(utc(7, 1, 9), utc(7, 1, 12)), -1)


def test_a_day_is_a_local_calendar_day_touched():
    """On a finer grid a day place charges every local date the window touches."""
    car = Schedule(unit="day", slot_minutes=60, timezone="America/New_York")
    overnight = check_window(car, local("America/New_York", 7, 1, 18), local("America/New_York", 7, 2, 10))
    assert units(car, overnight) == 2
    assert flat_price(overnight, "day", 100) == 100  # what 24-hours-from-start charged
    same_day = check_window(car, local("America/New_York", 7, 1, 9), local("America/New_York", 7, 1, 17))
    assert units(car, same_day) == 1
    until_midnight = check_window(car, local("America/New_York", 7, 1, 18), local("America/New_York", 7, 2))
    assert units(car, until_midnight) == 1
    # 01:00 in New York is 05:00 UTC: a UTC "day" would be a different one.
    early = check_window(car, local("America/New_York", 7, 2, 1), local("America/New_York", 7, 2, 2))
    assert units(car, early) == 1


def test_hours_are_elapsed_hours_across_a_clock_change():
    hourly = Schedule(timezone="America/New_York")
    night = check_window(hourly, local("America/New_York", 11, 1), local("America/New_York", 11, 1, 4))
    assert units(hourly, night) == 5 and price(hourly, night, 10) == 50


# Capacity


def bookings(*spans):
    return [Occupancy(utc(7, 1, start), utc(7, 1, end), quantity) for start, end, quantity in spans]


def test_remaining_is_capacity_minus_the_peak_of_overlapping_quantities():
    room = Schedule(capacity=8)
    existing = bookings((9, 11, 3), (10, 12, 4), (14, 15, 8))
    assert remaining(room, existing, Window(utc(7, 1, 9), utc(7, 1, 10))) == 5
    assert remaining(room, existing, Window(utc(7, 1, 10), utc(7, 1, 11))) == 1
    assert remaining(room, existing, Window(utc(7, 1, 11), utc(7, 1, 12))) == 4
    assert remaining(room, existing, Window(utc(7, 1, 9), utc(7, 1, 13))) == 1
    assert remaining(room, existing, Window(utc(7, 1, 12), utc(7, 1, 14))) == 8
    assert remaining(room, existing, Window(utc(7, 1, 14), utc(7, 1, 15))) == 0
    assert fits(room, existing, Window(utc(7, 1, 10), utc(7, 1, 11)), 1)
    assert not fits(room, existing, Window(utc(7, 1, 10), utc(7, 1, 11)), 2)
    assert fits(room, existing, Window(utc(7, 1, 12), utc(7, 1, 14)), 8)


def test_remaining_never_drops_below_zero_when_a_place_shrank():
    room = Schedule(capacity=2)
    assert remaining(room, bookings((9, 10, 3)), Window(utc(7, 1, 9), utc(7, 1, 10))) == 0


def test_the_buffer_follows_every_booking_including_the_new_one():
    cleaned = Schedule(slot_minutes=30, buffer_minutes=30)
    existing = bookings((9, 10, 1))
    assert not fits(cleaned, existing, Window(utc(7, 1, 10), utc(7, 1, 11)))
    assert fits(cleaned, existing, Window(utc(7, 1, 10, 30), utc(7, 1, 11)))
    later = bookings((11, 12, 1))
    assert not fits(cleaned, later, Window(utc(7, 1, 10), utc(7, 1, 11)))
    assert fits(cleaned, later, Window(utc(7, 1, 10), utc(7, 1, 10, 30)))
    assert fits(Schedule(slot_minutes=30), later, Window(utc(7, 1, 10), utc(7, 1, 11)))


def test_mixed_quantities_and_buffers_add_up():
    desks = Schedule(capacity=3, buffer_minutes=60)
    existing = bookings((9, 10, 2), (11, 12, 1))
    # 10:00-11:00 sees the first booking's buffer (2); its own buffer reaches 11:00-12:00 (1).
    assert remaining(desks, existing, Window(utc(7, 1, 10), utc(7, 1, 11))) == 1
    assert remaining(desks, existing, Window(utc(7, 1, 13), utc(7, 1, 14))) == 3
    assert remaining(desks, existing, Window(utc(7, 1, 12), utc(7, 1, 13))) == 2


def test_only_bookings_overlapping_the_affecting_span_matter():
    cleaned = Schedule(buffer_minutes=90)
    window = Window(utc(7, 1, 10), utc(7, 1, 11))
    assert cleaned.affecting(window) == Window(utc(7, 1, 8, 30), utc(7, 1, 12, 30))
    just_inside = bookings((8, 9, 1)), bookings((12, 13, 1))  # buffer reaches 10:30; 12:00 < 12:30
    assert [remaining(cleaned, each, window) for each in just_inside] == [0, 0]
    outside = [Occupancy(utc(7, 1, 7), utc(7, 1, 8, 30)), Occupancy(utc(7, 1, 12, 30), utc(7, 1, 13))]
    assert not any(Window(each.start, each.end).overlaps(cleaned.affecting(window)) for each in outside)
    assert remaining(cleaned, outside, window) == 1


@pytest.mark.parametrize("quantity", [0, -1, 4, True, "1", 1.0, None])
def test_a_quantity_below_one_or_above_capacity_is_refused(quantity):
    desks = Schedule(capacity=3)
    assert list(refused(fits, desks, [], Window(utc(7, 1, 9), utc(7, 1, 10)), quantity)) == ["quantity"]


def test_existing_bookings_may_be_plain_pairs_or_triples():
    desks = Schedule(capacity=3)
    existing = [(utc(7, 1, 9), utc(7, 1, 10)), (utc(7, 1, 9), utc(7, 1, 10), 2)]
    assert remaining(desks, existing, Window(utc(7, 1, 9), utc(7, 1, 10))) == 0


def test_admit_checks_rules_and_quantity_together_then_capacity():
    desks = Schedule(capacity=3, opening_hours=WEEKDAYS_9_TO_18)
    assert set(refused(admit, desks, [], utc(7, 1, 7, 30), utc(7, 1, 8, 30), 5)) == {"start", "end", "quantity"}
    existing = bookings((9, 10, 2))
    with pytest.raises(SlotUnavailable) as raised:
        admit(desks, existing, utc(7, 1, 9), utc(7, 1, 10), 2)
    assert raised.value.details == {"remaining": 1, "quantity": 2}
    assert admit(desks, existing, utc(7, 1, 9), utc(7, 1, 10), 1) == Window(utc(7, 1, 9), utc(7, 1, 10))


def moving(reservation, old, new, quantity=1):
    """A reservation's window and the new one of its move in flight, as occupied_windows gives them."""
    return [(utc(7, 1, *old[:2]), utc(7, 1, *old[2:]), quantity, reservation),
            (utc(7, 1, *new[:2]), utc(7, 1, *new[2:]), quantity, reservation)]


def test_a_move_in_flight_counts_its_reservation_once_where_its_windows_overlap():
    """Ann holds 10:00-11:00 and moves to 10:30-11:30: at most one seat is ever hers there
    (the move lands and frees the old window, or fails and frees the new one)."""
    two = Schedule(capacity=2, slot_minutes=30)
    ann = moving(41, (10, 0, 11, 0), (10, 30, 11, 30))
    assert remaining(two, ann, Window(utc(7, 1, 10, 30), utc(7, 1, 11))) == 1
    assert admit(two, ann, utc(7, 1, 10, 30), utc(7, 1, 11), 1) == Window(utc(7, 1, 10, 30), utc(7, 1, 11))
    with pytest.raises(SlotUnavailable):  # the union, 10:00-11:30, still holds her seat
        admit(two, ann, utc(7, 1, 10), utc(7, 1, 11, 30), 2)
    answer = availability(two, ann, utc(7, 1, 9, 30), utc(7, 1, 12))
    assert [slot.remaining for slot in answer.slots] == [2, 1, 1, 1, 2]
    assert answer.booked == []
    # Two reservations are two, even over the same windows; a plain window has no owner.
    bob = moving(42, (10, 0, 11, 0), (10, 30, 11, 30))
    assert remaining(two, ann + bob, Window(utc(7, 1, 10, 30), utc(7, 1, 11))) == 0
    plain = [(start, end, quantity) for start, end, quantity, _ in ann]
    assert remaining(two, plain, Window(utc(7, 1, 10, 30), utc(7, 1, 11))) == 0


def test_a_move_to_a_window_apart_still_holds_both_with_its_quantity():
    desks = Schedule(capacity=3, slot_minutes=30)
    apart = moving(41, (9, 0, 10, 0), (14, 0, 15, 0), quantity=2)
    assert remaining(desks, apart, Window(utc(7, 1, 9), utc(7, 1, 10))) == 1
    assert remaining(desks, apart, Window(utc(7, 1, 14), utc(7, 1, 15))) == 1
    assert remaining(desks, apart, Window(utc(7, 1, 10), utc(7, 1, 14))) == 3
    answer = availability(desks, apart, utc(7, 1, 8), utc(7, 1, 16))
    assert [slot.remaining for slot in answer.slots] == [3, 3, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3, 1, 1, 3, 3]
    as_occupancy = [Occupancy(start, end, quantity, reservation) for start, end, quantity, reservation in apart]
    assert remaining(desks, as_occupancy, Window(utc(7, 1, 9), utc(7, 1, 15))) == 1


def test_a_move_in_flight_counts_once_over_the_union_of_its_windows_with_their_buffers():
    """Each window is [start, end + buffer) as always; where those meet (here the old window's
    buffer and the new window just after it) the reservation counts once."""
    cleaned = Schedule(capacity=2, slot_minutes=30, buffer_minutes=30)
    ann = moving(41, (10, 0, 11, 0), (11, 0, 12, 0), quantity=1)
    # 11:00-11:30 is both the old window's buffer and the new window: one seat, not two.
    assert remaining(cleaned, ann, Window(utc(7, 1, 10, 30), utc(7, 1, 11))) == 1
    # The new window's buffer still follows it to 12:30.
    assert remaining(cleaned, ann, Window(utc(7, 1, 12), utc(7, 1, 12, 30))) == 1
    assert remaining(cleaned, ann, Window(utc(7, 1, 12, 30), utc(7, 1, 13))) == 2
    # A move further off: each window with its own buffer, apart, each holding its quantity.
    later = moving(41, (10, 0, 11, 0), (12, 30, 13, 30), quantity=2)
    assert remaining(cleaned, later, Window(utc(7, 1, 11), utc(7, 1, 11, 30))) == 0
    assert remaining(cleaned, later, Window(utc(7, 1, 11, 30), utc(7, 1, 12))) == 2
    assert remaining(cleaned, later, Window(utc(7, 1, 13, 30), utc(7, 1, 14))) == 0
    assert remaining(cleaned, later, Window(utc(7, 1, 14), utc(7, 1, 14, 30))) == 2
    answer = availability(cleaned, ann, utc(7, 1, 9), utc(7, 1, 13))
    assert [slot.remaining for slot in answer.slots] == [2, 1, 1, 1, 1, 1, 1, 2]


# Availability


def test_availability_of_a_default_place_is_what_it_was():
    existing = bookings((9, 10, 1), (10, 11, 1), (13, 15, 1))
    answer = availability(Schedule(), existing, utc(7, 1, 8), utc(7, 1, 14))
    assert (answer.timezone, answer.capacity) == ("UTC", 1)
    assert answer.booked == [Window(utc(7, 1, 9), utc(7, 1, 11)), Window(utc(7, 1, 13), utc(7, 1, 14))]
    assert answer.free == [Window(utc(7, 1, 8), utc(7, 1, 9)), Window(utc(7, 1, 11), utc(7, 1, 13))]
    assert [(slot.start.hour, slot.remaining) for slot in answer.slots] == [
        (8, 1), (9, 0), (10, 0), (11, 1), (12, 1), (13, 0)
    ]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 47), st.integers(1, 12)), max_size=12))
def test_a_default_place_answers_booked_and_free_as_windows_did(spans):
    """Capacity 1, no buffer, always open: `booked` is the merged bookings, `free` the rest."""
    base = utc(7, 1)
    taken = [Window(base + timedelta(minutes=15 * at), base + timedelta(minutes=15 * (at + length)))
             for at, length in spans]
    span = Window(base + timedelta(hours=2), base + timedelta(hours=10))
    answer = availability(Schedule(), [(each.start, each.end) for each in taken], span.start, span.end)
    booked = [part for part in (each.clip(span) for each in merge(taken)) if part]
    assert answer.booked == booked
    assert answer.free == free_intervals(span, booked)


def test_availability_answers_slots_with_remaining_within_opening_hours():
    desks = Schedule(capacity=3, timezone="Europe/Paris", opening_hours=WEEKDAYS_9_TO_18, buffer_minutes=30,
                     slot_minutes=120)
    existing = bookings((7, 9, 3), (9, 10, 1), (12, 13, 2))  # UTC: 09-11, 11-12 and 14-15 local
    answer = availability(desks, existing, utc(7, 1), utc(7, 2))
    assert answer.timezone == "Europe/Paris" and answer.capacity == 3
    assert [(slot.start.astimezone(PARIS).hour, slot.end.astimezone(PARIS).hour, slot.remaining)
            for slot in answer.slots] == [(10, 12, 0), (12, 14, 1), (14, 16, 1), (16, 18, 3)]
    # The first slot of the day would start at 08:00, before opening: there is none.
    assert answer.booked == [Window(utc(7, 1, 7), utc(7, 1, 9, 30))]
    assert answer.free == [Window(utc(7, 1, 9, 30), utc(7, 1, 16))]


def test_availability_refuses_more_than_a_thousand_slots_naming_to():
    minutes = Schedule(slot_minutes=1)
    start = utc(7, 1)
    assert len(availability(minutes, [], start, start + timedelta(minutes=MAX_SLOTS)).slots) == MAX_SLOTS
    assert list(refused(availability, minutes, [], start, start + timedelta(minutes=MAX_SLOTS + 1))) == ["to"]
    assert list(refused(availability, minutes, [], start, start - timedelta(minutes=1))) == ["to"]
    shop = Schedule(slot_minutes=1, opening_hours=[{"weekday": 0, "open": "09:00", "close": "10:00"}])
    assert len(availability(shop, [], start, start + timedelta(days=60)).slots) == 9 * 60


@BOTH_ZONES
def test_availability_has_23_and_25_hourly_slots_on_clock_change_days(zone_name):
    for change, count in ((SPRING, 23), (FALL, 25)):
        month, day, _ = change[zone_name]
        answer = availability(Schedule(timezone=zone_name), [], local(zone_name, month, day),
                              local(zone_name, month, day + 1))
        assert len(answer.slots) == count
        assert all(slot.end - slot.start == timedelta(hours=1) for slot in answer.slots)


@settings(max_examples=40, deadline=None)
@given(
    capacity=st.integers(1, 4),
    buffer=st.sampled_from([0, 15, 60, 150]),
    spans=st.lists(st.tuples(st.integers(0, 90), st.integers(1, 12), st.integers(1, 4)), max_size=15),
)
def test_each_slots_remaining_is_what_remaining_says_for_that_slot(capacity, buffer, spans):
    schedule = Schedule(capacity=capacity, buffer_minutes=buffer, slot_minutes=30)
    base = utc(7, 1)
    existing = [(base + timedelta(minutes=15 * at), base + timedelta(minutes=15 * (at + length)), quantity)
                for at, length, quantity in spans]
    answer = availability(schedule, existing, base + timedelta(hours=2), base + timedelta(hours=20))
    assert len(answer.slots) == 36
    for slot in answer.slots:
        assert slot.remaining == remaining(schedule, existing, Window(slot.start, slot.end))


def test_availability_is_a_sweep_not_slots_times_bookings():
    schedule = Schedule(slot_minutes=1, capacity=500)
    start = utc(7, 1)
    existing = [(start + timedelta(seconds=7 * n), start + timedelta(seconds=7 * n + 600), 1) for n in range(20_000)]
    began = time.perf_counter()
    answer = availability(schedule, existing, start, start + timedelta(minutes=MAX_SLOTS))
    assert time.perf_counter() - began < 2  # slots × bookings would be 20 million steps
    assert len(answer.slots) == MAX_SLOTS
    for slot in answer.slots[::97]:
        assert 0 < slot.remaining == remaining(schedule, existing, Window(slot.start, slot.end)) < 500


# Purity


def test_the_rules_import_no_framework():
    code = (
        "import sys, reservations_service.schedule; "
        "print(sorted(m for m in ('nameko', 'eventlet', 'kombu', 'werkzeug', 'sqlalchemy') if m in sys.modules))"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "[]"
