"""Property: whatever a place's settings and whatever sequence of bookings and cancellations,
at every minute the booked quantity (buffers included) is at most the capacity, and every
accepted booking is on the grid and inside opening hours. Checked against a brute-force oracle
that reads the local clock minute by minute over a three-day horizon, not against the rules'
own functions; the oracle also says which attempts must be accepted."""
from datetime import date, datetime, timedelta, timezone
from itertools import accumulate
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from common.errors import SlotUnavailable, ValidationError
from reservations_service.schedule import Schedule, admit, availability, check_window, fits
from reservations_service.windows import Window

UTC = timezone.utc
MINUTE = timedelta(minutes=1)
HORIZON_MINUTES = 3 * 1440
# Per zone: an ordinary day and its clock-change days (Lord Howe moves by 30 minutes; Havana
# changes at midnight).
DAYS = {
    "UTC": [date(2026, 7, 15)],
    "Europe/Paris": [date(2026, 3, 29), date(2026, 10, 25), date(2026, 7, 15)],
    "America/New_York": [date(2026, 3, 8), date(2026, 11, 1), date(2026, 7, 15)],
    "Australia/Lord_Howe": [date(2026, 4, 5), date(2026, 10, 4), date(2026, 7, 15)],
    "Asia/Kolkata": [date(2026, 7, 15)],
    "America/Havana": [date(2026, 3, 8), date(2026, 11, 1)],  # midnight skipped, then read twice
}


@st.composite
def weeks(draw):
    """Opening hours for each weekday: closed, or one or two intervals on a 15-minute grid."""
    hours = []
    for weekday in range(7):
        count = draw(st.sampled_from([0, 2, 2, 4]))
        points = sorted(draw(st.sets(st.integers(0, 96), min_size=count, max_size=count)))
        for opens, closes in zip(points[::2], points[1::2], strict=True):
            hours.append({"weekday": weekday, "open": clock(opens * 15), "close": clock(closes * 15)})
    return hours


@st.composite
def schedules(draw):
    zone = draw(st.sampled_from(sorted(DAYS)))
    schedule = Schedule(
        unit=draw(st.sampled_from(["hour", "day"])),
        timezone=zone,
        capacity=draw(st.sampled_from([1, 1, 2, 3, 4])),
        opening_hours=draw(st.one_of(st.just([]), st.just([]), weeks())),
        slot_minutes=draw(st.sampled_from([15, 30, 60, 90, 120, 180, 1440])),
        min_minutes=draw(st.sampled_from([None, None, 30, 60, 120])),
        max_minutes=draw(st.sampled_from([None, None, 120, 240, 1440])),
        buffer_minutes=draw(st.sampled_from([0, 15, 30, 60])),
    )
    return schedule, draw(st.sampled_from(DAYS[zone]))


def clock(minutes):
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


class Oracle:
    """The local clock read at every minute of the horizon, and what it says of each minute."""

    def __init__(self, schedule, day):
        zone = ZoneInfo(schedule.timezone)
        self.origin = datetime.combine(day - timedelta(days=1), datetime.min.time(), UTC)
        readings = [(self.origin + i * MINUTE).astimezone(zone) for i in range(-1, HORIZON_MINUTES + 1)]
        before, readings = readings[0], readings[1:]
        dates = [reading.date() for reading in readings]
        walls = [reading.hour * 60 + reading.minute for reading in readings]
        begins_day = [dates[i] != (dates[i - 1] if i else before.date()) for i in range(len(readings))]
        slot = schedule.slot_minutes
        self.grid = [
            begins_day[i] or (walls[i] % slot == 0 and walls[i] != 0) for i in range(len(readings))
        ]
        self.grid_before = [0, *accumulate(self.grid)]
        if not schedule.opening_hours:
            self.open = [True] * len(readings)
        else:
            self.open = [False] * len(readings)
            for each in schedule.opening_hours:
                for local_date in sorted(set(dates)):
                    if local_date.weekday() != each.weekday:
                        continue
                    opens = first(i for i in range(len(readings)) if dates[i] == local_date and walls[i] >= each.open)
                    closes = first(i for i in range(len(readings))
                                   if dates[i] > local_date or (dates[i] == local_date and walls[i] >= each.close))
                    for i in range(opens, closes):
                        self.open[i] = True
        self.load = [0] * (HORIZON_MINUTES + 1 + 24 * 60)

    def at(self, index):
        return self.origin + index * MINUTE

    def valid(self, schedule, start, end):
        if not (self.grid[start] and self.grid[end] and all(self.open[start:end])):
            return False
        minutes = (self.grid_before[end] - self.grid_before[start]) * schedule.slot_minutes
        return (schedule.min_minutes is None or minutes >= schedule.min_minutes) and (
            schedule.max_minutes is None or minutes <= schedule.max_minutes
        )

    def fits(self, schedule, start, end, quantity):
        reach = end + schedule.buffer_minutes
        return all(load + quantity <= schedule.capacity for load in self.load[start:reach])

    def take(self, schedule, start, end, quantity):
        for minute in range(start, end + schedule.buffer_minutes):
            self.load[minute] += quantity


def first(indexes):
    return next(indexes, HORIZON_MINUTES + 1)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(setup=schedules(), data=st.data())
def test_no_sequence_of_bookings_overfills_a_place_or_leaves_its_rules(setup, data):
    schedule, day = setup
    oracle = Oracle(schedule, day)
    grid = [i for i, on in enumerate(oracle.grid) if on]
    live = []  # (start index, end index, quantity)
    # Attempts crowd around one point of the horizon, so that they compete for the capacity.
    focus = data.draw(st.integers(0, max(0, len(grid) - 2)), label="focus")
    for _ in range(data.draw(st.integers(1, 20), label="attempts")):
        if live and data.draw(st.integers(0, 4), label="cancel?") == 0:
            start, end, quantity = live.pop(data.draw(st.integers(0, len(live) - 1), label="which"))
            oracle.take(schedule, start, end, -quantity)
            continue
        if data.draw(st.integers(0, 5), label="anywhere?") == 0 or len(grid) < 2:
            start = data.draw(st.integers(0, HORIZON_MINUTES - 1), label="start minute")
            end = data.draw(st.integers(start + 1, HORIZON_MINUTES), label="end minute")
        else:
            at = data.draw(st.integers(max(0, focus - 2), min(focus + 2, len(grid) - 2)), label="start point")
            start = grid[at]
            end = grid[data.draw(st.integers(at + 1, min(at + 4, len(grid) - 1)), label="end point")]
        quantity = data.draw(st.integers(0, schedule.capacity + 1), label="quantity")
        existing = [(oracle.at(s), oracle.at(e), q) for s, e, q in live]

        try:
            window = check_window(schedule, oracle.at(start), oracle.at(end))
        except ValidationError as error:
            assert set(error.details) <= {"start", "end"}
            assert not oracle.valid(schedule, start, end)
            window = None
        if window is not None:
            assert oracle.valid(schedule, start, end)
            assert window == Window(oracle.at(start), oracle.at(end))
        if not 1 <= quantity <= schedule.capacity:
            with pytest.raises(ValidationError) as raised:
                fits(schedule, existing, Window(oracle.at(start), oracle.at(end)), quantity)
            assert "quantity" in raised.value.details
            continue
        room = fits(schedule, existing, Window(oracle.at(start), oracle.at(end)), quantity)
        assert room == oracle.fits(schedule, start, end, quantity)
        accepted = window is not None and room
        event("accepted" if accepted else "refused: full" if window is not None else "refused: rules")

        try:
            admitted = admit(schedule, existing, oracle.at(start), oracle.at(end), quantity)
        except ValidationError:
            assert window is None
        except SlotUnavailable:
            assert window is not None and not room
        else:
            assert accepted and admitted == window

        if accepted:
            assert oracle.grid[start] and oracle.grid[end]
            assert all(oracle.open[start:end])
            live.append((start, end, quantity))
            oracle.take(schedule, start, end, quantity)
            assert max(oracle.load) <= schedule.capacity


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(setup=schedules())
def test_availability_lists_exactly_the_open_grid_slots_the_oracle_sees(setup):
    schedule, day = setup
    oracle = Oracle(schedule, day)
    grid = [i for i, on in enumerate(oracle.grid) if on]
    expected = [(oracle.at(a), oracle.at(b)) for a, b in zip(grid, grid[1:], strict=False) if all(oracle.open[a:b])]
    answer = availability(schedule, [], oracle.at(0), oracle.at(HORIZON_MINUTES))
    assert [(slot.start, slot.end) for slot in answer.slots] == expected
    assert all(slot.remaining == schedule.capacity for slot in answer.slots)
    open_minutes = [i for i in range(HORIZON_MINUTES) if oracle.open[i]]
    assert sum(int((each.end - each.start) / MINUTE) for each in answer.free) == len(open_minutes)
