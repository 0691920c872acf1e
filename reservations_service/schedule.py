"""The rules of a place's time: its zone, opening hours, slot grid, length limits, buffer and
capacity; which windows may be booked, what they cost and what is left. Plain Python.

The rules are stated in docs/booking.md ("Places: capacity, opening hours, grid, time zone").
Every time here is an aware datetime; every instant returned is in UTC.
"""
import re
from bisect import bisect_left
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from common.errors import SlotUnavailable, ValidationError
from reservations_service.pricing import UNIT_LENGTHS, units_started
from reservations_service.windows import Window, instant, is_aware, merge, validate_query_span

UTC = timezone.utc
MINUTES_PER_DAY = 1440
DEFAULT_SLOT_MINUTES = {"hour": 60, "day": MINUTES_PER_DAY}
MAX_CAPACITY = 100_000
MAX_BUFFER_MINUTES = 7 * MINUTES_PER_DAY
MAX_SLOTS = 1000
_ONE_SECOND = timedelta(seconds=1)
# Matched whole (fullmatch): `$` alone lets "09:00\n" through; ASCII digits only (`\d` takes Arabic-Indic ones).
_CLOCK_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


@dataclass(frozen=True)
class OpeningHours:
    """One opening interval of a weekday (Monday = 0), in minutes after local midnight."""

    weekday: int
    open: int
    close: int  # up to 1440: "24:00", the start of the next local day

    def as_dict(self):
        return {"weekday": self.weekday, "open": _clock(self.open), "close": _clock(self.close)}


@dataclass(frozen=True, slots=True)
class Slot:
    """One window of the place's grid, and how many more it takes (capacity less what is booked)."""

    start: datetime
    end: datetime
    remaining: int


@dataclass(frozen=True, slots=True)
class Availability:
    """What a place has over a span, in its own zone's terms."""

    timezone: str
    capacity: int
    booked: list  # [Window]: nothing left (bookings and their buffers)
    free: list  # [Window]: within opening hours, at least one left
    slots: list  # [Slot]: every grid slot within opening hours


@dataclass(frozen=True)
class Occupancy:
    """An existing booking as capacity sees it: [start, end) for `quantity` places. Windows of
    one `reservation` (its own and the new one of a move in flight) count once where they
    overlap: it will use one of them, never both."""

    start: datetime
    end: datetime
    quantity: int = 1
    reservation: object = None  # None: a window of its own


@dataclass(frozen=True)
class Schedule:
    """A place's booking rules. Building one validates every setting; a bad one raises
    ValidationError naming each wrong field. The defaults are a place's behaviour before these
    settings existed: UTC, always open, capacity 1, a 60-minute (hour) or day (day) grid."""

    unit: str = "hour"
    timezone: str = "UTC"
    capacity: int = 1
    opening_hours: tuple = ()  # of dicts {"weekday", "open", "close"} or OpeningHours
    slot_minutes: int | None = None
    min_minutes: int | None = None
    max_minutes: int | None = None
    buffer_minutes: int = 0
    zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        details = {}
        if self.unit not in UNIT_LENGTHS:
            details["unit"] = [f"Must be one of {', '.join(sorted(UNIT_LENGTHS))}."]
        zone = _zone(self.timezone)
        if zone is None:
            details["timezone"] = ["Unknown time zone; use an IANA name like Europe/Paris."]
        if not _whole(self.capacity, 1, MAX_CAPACITY):
            details["capacity"] = [f"Must be a whole number from 1 to {MAX_CAPACITY}."]
        slot = self.slot_minutes
        if slot is None:
            slot = DEFAULT_SLOT_MINUTES.get(self.unit, 60)
        if not _whole(slot, 1, MINUTES_PER_DAY) or MINUTES_PER_DAY % slot:
            details["slot_minutes"] = ["Must divide a day (1440 minutes) evenly, e.g. 15, 30, 60 or 1440."]
        for name in ("min_minutes", "max_minutes"):
            value = getattr(self, name)
            if value is not None and not _whole(value, 1, 366 * MINUTES_PER_DAY):
                details[name] = [f"Must be a whole number of minutes from 1 to {366 * MINUTES_PER_DAY}."]
        if (
            "min_minutes" not in details and "max_minutes" not in details
            and self.min_minutes is not None and self.max_minutes is not None
            and self.min_minutes > self.max_minutes
        ):
            details["max_minutes"] = ["Must not be less than min_minutes."]
        if not _whole(self.buffer_minutes, 0, MAX_BUFFER_MINUTES):
            details["buffer_minutes"] = [f"Must be a whole number of minutes from 0 to {MAX_BUFFER_MINUTES}."]
        hours, problems = _opening_hours(self.opening_hours)
        if problems:
            details["opening_hours"] = problems
        if details:
            raise ValidationError("Invalid place settings", details)
        object.__setattr__(self, "slot_minutes", slot)
        object.__setattr__(self, "opening_hours", hours)
        object.__setattr__(self, "zone", zone)

    @classmethod
    def of(cls, place):
        """The schedule of a place (a row or a mapping); absent or null settings take defaults."""
        read = place.get if isinstance(place, Mapping) else lambda name: getattr(place, name, None)
        given = {name: read(name) for name in _SETTINGS}
        return cls(**{name: value for name, value in given.items() if value is not None})

    def as_fields(self):
        """The settings as a place's JSON shows them."""
        return {
            "unit": self.unit,
            "timezone": self.timezone,
            "capacity": self.capacity,
            "opening_hours": [each.as_dict() for each in self.opening_hours],
            "slot_minutes": self.slot_minutes,
            "min_minutes": self.min_minutes,
            "max_minutes": self.max_minutes,
            "buffer_minutes": self.buffer_minutes,
        }

    def affecting(self, window):
        """The span whose overlapping bookings are all that can change remaining(window) or an
        availability answer for `window`: a booking's buffer reaches forward, the window's own
        buffer too."""
        return Window(window.start - self.buffer, window.end + self.buffer)

    @property
    def slot(self):
        return timedelta(minutes=self.slot_minutes)

    @property
    def buffer(self):
        return timedelta(minutes=self.buffer_minutes)

    # The local calendar

    def local_date(self, instant):
        return instant.astimezone(self.zone).date()

    def day_start(self, day):
        """The first instant of a local date: local midnight, or the moment the clocks jump past it."""
        return _first_reading(self.timezone, day, 0)

    def is_on_grid(self, instant):
        """Whether `instant` is a grid point: it begins a local day, or its local clock reads a
        multiple of slot_minutes after midnight (at each reading, if the clocks go back; but
        midnight is read once, as the day's start)."""
        local = instant.astimezone(self.zone)
        if instant == self.day_start(local.date()):
            return True
        minute = local.hour * 60 + local.minute
        return not (local.second or local.microsecond) and minute != 0 and minute % self.slot_minutes == 0

    def grid_points(self, frm, to):
        """The grid points in [frm, to], in order (a generator: stop reading when you have enough)."""
        day = self.local_date(frm)
        while True:
            begins = self.day_start(day)
            if begins > to:
                return
            for point in self._day_grid(day, begins):
                if point > to:
                    return
                if point >= frm:
                    yield point
            day += timedelta(days=1)

    def count_slots(self, window):
        """How many grid slots [start, end) covers; start and end must be grid points."""
        count = 0
        day = self.local_date(window.start)
        last = self.local_date(window.end)
        while day <= last:
            begins = self.day_start(day)
            regular = self._regular_day(day, begins)
            if regular:
                # k-th point is begins + k * slot: count the k with start <= point < end.
                first = max(0, -((begins - window.start) // self.slot))
                beyond = min(regular, -((begins - window.end) // self.slot))
                count += max(0, beyond - first)
            else:
                points = self._day_grid(day, begins)
                count += bisect_left(points, window.end) - bisect_left(points, window.start)
            day += timedelta(days=1)
        return count

    def open_intervals(self, span):
        """The opening hours within `span`, as merged UTC windows (contiguous ones joined)."""
        if not self.opening_hours:
            return [span]
        by_weekday = {}
        for each in self.opening_hours:
            by_weekday.setdefault(each.weekday, []).append(each)
        found = []
        day, last = self.local_date(span.start), self.local_date(span.end)
        while day <= last:
            for each in by_weekday.get(day.weekday(), ()):
                opens = _first_reading(self.timezone, day, each.open)
                closes = _first_reading(self.timezone, day, each.close)
                if opens < closes:  # both may fall in one clock jump: then it never opens that day
                    found.append(Window(opens, closes))
            day += timedelta(days=1)
        return [part for part in (window.clip(span) for window in merge(found)) if part]

    def _day_grid(self, day, begins):
        regular = self._regular_day(day, begins)
        if regular:
            return [begins + k * self.slot for k in range(regular)]
        return _irregular_day_grid(self.timezone, self.slot_minutes, day)

    def _regular_day(self, day, begins):
        """The number of grid points of a 24-hour day with no clock change, else 0."""
        ends = self.day_start(day + timedelta(days=1))
        if ends - begins != timedelta(days=1):
            return 0
        if begins.astimezone(self.zone).utcoffset() != (ends - _ONE_SECOND).astimezone(self.zone).utcoffset():
            return 0
        return MINUTES_PER_DAY // self.slot_minutes


_SETTINGS = ("unit", "timezone", "capacity", "opening_hours", "slot_minutes", "min_minutes",
             "max_minutes", "buffer_minutes")


# Windows


def check_window(schedule, start, end):
    """The window [start, end) if the place's rules allow booking it, as a UTC Window; else
    ValidationError naming `start` and/or `end`. Past and horizon limits are checked apart
    (windows.validate_booking_window)."""
    details = {}
    for name, moment in (("start", start), ("end", end)):
        if not isinstance(moment, datetime) or not is_aware(moment):
            details[name] = ["Must include a timezone offset."]
        elif not _exists(moment):
            details[name] = [
                f"{moment.replace(tzinfo=None).isoformat(timespec='minutes')} does not exist in "
                f"{moment.tzinfo}: the clocks skip it."
            ]
    if details:
        raise ValidationError("Invalid booking window", details)
    if instant(end) <= instant(start):
        raise ValidationError("Invalid booking window", {"end": ["Must be after start."]})
    window = Window(start, end)
    grid = (
        f"Must be on the place's {schedule.slot_minutes}-minute grid, counted from local midnight "
        f"in {schedule.timezone}."
    )
    for name in ("start", "end"):
        if not schedule.is_on_grid(getattr(window, name)):
            details[name] = [grid]
    if not details:
        _check_open(schedule, window, details)
    if not details:
        minutes = schedule.count_slots(window) * schedule.slot_minutes
        if schedule.min_minutes is not None and minutes < schedule.min_minutes:
            details["end"] = [f"The booking must last at least {schedule.min_minutes} minutes."]
        if schedule.max_minutes is not None and minutes > schedule.max_minutes:
            details["end"] = [f"The booking may last at most {schedule.max_minutes} minutes."]
    if details:
        raise ValidationError("Invalid booking window", details)
    return window


def _check_open(schedule, window, details):
    around = schedule.open_intervals(window)
    if not around or around[0].start != window.start:
        details["start"] = [f"The place is closed then (opening hours are in {schedule.timezone})."]
    elif around[0].end != window.end:
        closes = around[0].end.astimezone(schedule.zone)
        details["end"] = [f"The place closes at {closes:%H:%M} ({schedule.timezone}) before this ends."]


# Price


def units(schedule, window, unit=None):
    """Hours: every started hour of elapsed time. Days: every local calendar day the window
    touches (a 23- or 25-hour day is one day). `unit` overrides the place's (a reservation
    keeps the unit it was booked at)."""
    unit = unit or schedule.unit
    if unit == "day":
        first = schedule.local_date(window.start)
        last = schedule.local_date(window.end - timedelta(microseconds=1))
        return (last - first).days + 1
    return units_started(window, unit)


def price(schedule, window, unit_price, quantity=1, unit=None):
    """unit_price × units × quantity, in minor units. The quantity is not held against today's
    capacity here: a booking keeps its price if the place shrinks (fits() refuses new ones)."""
    if not isinstance(unit_price, int) or isinstance(unit_price, bool) or unit_price < 0:
        raise ValueError("unit_price must be a non-negative integer amount in minor units")
    if not _whole(quantity, 1, MAX_CAPACITY):
        raise ValidationError("Invalid quantity", {"quantity": [f"Must be a whole number from 1 to {MAX_CAPACITY}."]})
    return unit_price * units(schedule, window, unit) * quantity


# Capacity


def check_quantity(schedule, quantity):
    if not _whole(quantity, 1, schedule.capacity):
        raise ValidationError("Invalid quantity", {"quantity": [
            f"Must be a whole number from 1 to the place's capacity, {schedule.capacity}."
        ]})


def remaining(schedule, existing, window):
    """How many places are free for all of [start, end + buffer): capacity minus the peak of
    the quantities whose [start, end + buffer) overlap it (never below 0)."""
    reach = Window(window.start, window.end + schedule.buffer)
    peak = 0
    for _, load in _load_steps(schedule, existing, reach):
        peak = max(peak, load)
    return max(0, schedule.capacity - peak)


def fits(schedule, existing, window, quantity=1):
    """Whether `quantity` more fit in `window` beside `existing` bookings, buffers included."""
    check_quantity(schedule, quantity)
    return remaining(schedule, existing, window) >= quantity


def admit(schedule, existing, start, end, quantity=1):
    """The one check before a hold: the window follows the place's rules (ValidationError on
    start/end), the quantity is possible (ValidationError on quantity), and it fits beside the
    existing bookings (SlotUnavailable). Returns the UTC Window."""
    details = {}
    window = None
    try:
        window = check_window(schedule, start, end)
    except ValidationError as error:
        details.update(error.details)
    try:
        check_quantity(schedule, quantity)
    except ValidationError as error:
        details.update(error.details)
    if details:
        raise ValidationError("Invalid booking", details)
    left = remaining(schedule, existing, window)
    if left < quantity:
        raise SlotUnavailable("The requested time slot is not available", {"remaining": left, "quantity": quantity})
    return window


# Availability


def availability(schedule, existing, frm, to, max_slots=MAX_SLOTS):
    """What is booked, free and left per grid slot in [frm, to); at most `max_slots` slots."""
    span = validate_query_span(frm, to)
    opened = schedule.open_intervals(span)
    slots = []
    for interval in opened:
        previous = None
        for point in schedule.grid_points(interval.start, interval.end):
            if previous is not None:
                if len(slots) == max_slots:
                    raise ValidationError("Too many slots", {"to": [
                        f"At most {max_slots} slots per answer; ask for a shorter span."
                    ]})
                slots.append((previous, point))
            previous = point
    reach = Window(span.start, span.end + schedule.buffer)
    steps = list(_load_steps(schedule, existing, reach))
    segments = [(at, steps[i + 1][0] if i + 1 < len(steps) else reach.end, load) for i, (at, load) in enumerate(steps)]
    full = [Window(begins, ends) for begins, ends, load in segments if load >= schedule.capacity]
    booked = [part for part in (window.clip(span) for window in merge(full)) if part]
    return Availability(
        timezone=schedule.timezone,
        capacity=schedule.capacity,
        booked=booked,
        free=_subtract(opened, booked),
        slots=[
            Slot(start, end, max(0, schedule.capacity - peak))
            for (start, end), peak in zip(slots, _peaks(segments, slots, schedule.buffer), strict=True)
        ],
    )


def _load_steps(schedule, existing, reach):
    """(instant, load) at each change of load within `reach`, the first at reach.start:
    the summed quantities of bookings whose [start, end + buffer) cover that instant, each
    reservation once however many of its windows do."""
    changes = {}
    for start, end, quantity in _covered(schedule, existing, reach):
        changes[start] = changes.get(start, 0) + quantity
        changes[end] = changes.get(end, 0) - quantity
    load = changes.pop(reach.start, 0)
    yield reach.start, load
    for at in sorted(changes):
        if at < reach.end:
            load += changes[at]
            yield at, load


def _covered(schedule, existing, reach):
    """(start, end, quantity): what each booking blocks within `reach`, [start, end + buffer)
    clipped; the windows of one reservation joined where they overlap or touch."""
    joined = {}
    for booking in existing:
        start, end, quantity, reservation = _occupancy(booking)
        start, end = max(start, reach.start), min(end + schedule.buffer, reach.end)
        if start >= end:
            continue
        if reservation is None:
            yield start, end, quantity
        else:
            joined.setdefault((reservation, quantity), []).append((start, end))
    for (_, quantity), spans in joined.items():
        if len(spans) == 1:  # most reservations: no move in flight
            yield *spans[0], quantity
        else:
            for part in merge(Window(*span) for span in spans):
                yield part.start, part.end, quantity


def _peaks(segments, slots, buffer):
    """For each slot, in order, the peak load over [start, end + buffer): a sliding maximum,
    since both ends only move forward."""
    window = deque()  # indexes of segments, loads decreasing
    following = 0
    for start, end in slots:
        reach = end + buffer
        while following < len(segments) and segments[following][0] < reach:
            while window and segments[window[-1]][2] <= segments[following][2]:
                window.pop()
            window.append(following)
            following += 1
        while window and segments[window[0]][1] <= start:
            window.popleft()
        yield segments[window[0]][2] if window else 0


def _subtract(intervals, taken):
    """The parts of sorted, disjoint `intervals` that no sorted, disjoint `taken` window covers."""
    left = []
    index = 0
    for interval in intervals:
        cursor = interval.start
        while index < len(taken) and taken[index].end <= cursor:
            index += 1
        probe = index
        while probe < len(taken) and taken[probe].start < interval.end:
            if cursor < taken[probe].start:
                left.append(Window(cursor, taken[probe].start))
            cursor = max(cursor, taken[probe].end)
            probe += 1
        if cursor < interval.end:
            left.append(Window(cursor, interval.end))
    return left


def _occupancy(booking):
    """(start, end, quantity, reservation) of an Occupancy or a tuple of its first fields."""
    if isinstance(booking, Occupancy):
        return booking.start, booking.end, booking.quantity, booking.reservation
    start, end, *rest = booking
    return start, end, (rest[0] if rest else 1), (rest[1] if len(rest) > 1 else None)


# Clocks


@lru_cache(maxsize=64)
def _zone_cached(name):
    return ZoneInfo(name)


def _zone(name):
    if not isinstance(name, str) or not name or len(name) > 64:
        return None
    try:
        return _zone_cached(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a file
        return None


@lru_cache(maxsize=4096)
def _first_reading(zone_name, day, minutes):
    """The first instant of local `day` at which the clock reads `minutes` after midnight or
    later; 1440 is the start of the next day. A time the clocks skip gives the jump's instant."""
    if minutes >= MINUTES_PER_DAY:
        return _first_reading(zone_name, day + timedelta(days=1), minutes - MINUTES_PER_DAY)
    zone = _zone_cached(zone_name)
    wall = datetime.combine(day, time()) + timedelta(minutes=minutes)
    first = wall.replace(tzinfo=zone).astimezone(UTC)  # fold 0: the earlier of two readings
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    # Skipped: fold 0 reads it with the offset before the jump (after the jump instant), fold 1
    # with the offset after (before it); the jump lies between, on a whole second.
    before, after = wall.replace(tzinfo=zone, fold=1).astimezone(UTC), first
    while after - before > _ONE_SECOND:
        middle = before + (after - before) // _ONE_SECOND // 2 * _ONE_SECOND
        if middle.astimezone(zone).replace(tzinfo=None) >= wall:
            after = middle
        else:
            before = middle
    return after


@lru_cache(maxsize=1024)
def _irregular_day_grid(zone_name, slot_minutes, day):
    """A clock-change day's grid: each existing reading of each multiple of the slot after
    midnight, and the day's first instant (midnight is read once: it begins the day)."""
    zone = _zone_cached(zone_name)
    begins = _first_reading(zone_name, day, 0)
    ends = _first_reading(zone_name, day, MINUTES_PER_DAY)
    points = {begins}
    midnight = datetime.combine(day, time())
    for minutes in range(slot_minutes, MINUTES_PER_DAY, slot_minutes):
        wall = midnight + timedelta(minutes=minutes)
        for fold in (0, 1):
            instant = wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)
            if instant.astimezone(zone).replace(tzinfo=None) == wall and begins <= instant < ends:
                points.add(instant)
    return sorted(points)


def _exists(moment):
    """False for a wall-clock time its own zone skips (e.g. 02:30 on a spring-forward night)."""
    back = moment.astimezone(UTC).astimezone(moment.tzinfo)
    return back.replace(tzinfo=None) == moment.replace(tzinfo=None)


# Settings


def _whole(value, low, high):
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _clock(minutes):
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _minutes(text, allow_end_of_day):
    if allow_end_of_day and text == "24:00":
        return MINUTES_PER_DAY
    found = _CLOCK_TIME.fullmatch(text) if isinstance(text, str) else None
    return int(found[1]) * 60 + int(found[2]) if found else None


def _opening_hours(entries):
    """(sorted OpeningHours, problems): each problem names the entry by its position."""
    if entries is None:
        return (), []
    if isinstance(entries, str | bytes | dict) or not hasattr(entries, "__iter__"):
        return (), ["Must be a list of {weekday, open, close}."]
    hours, problems = [], []
    for position, entry in enumerate(entries):
        if isinstance(entry, OpeningHours):
            entry = entry.as_dict()
        if not isinstance(entry, dict) or set(entry) != {"weekday", "open", "close"}:
            problems.append(f"Entry {position}: must be exactly {{weekday, open, close}}.")
            continue
        wrong = []
        if not _whole(entry["weekday"], 0, 6):
            wrong.append("weekday must be 0 (Monday) to 6 (Sunday)")
        opens = _minutes(entry["open"], allow_end_of_day=False)
        if opens is None:
            wrong.append('open must be a time "HH:MM" from 00:00 to 23:59')
        closes = _minutes(entry["close"], allow_end_of_day=True)
        if closes is None:
            wrong.append('close must be a time "HH:MM" from 00:00 to 24:00')
        if opens is not None and closes is not None and closes <= opens:
            wrong.append("close must be after open")
        if wrong:
            problems.append(f"Entry {position}: {'; '.join(wrong)}.")
        else:
            hours.append(OpeningHours(entry["weekday"], opens, closes))
    hours.sort(key=lambda each: (each.weekday, each.open))
    for earlier, later in zip(hours, hours[1:], strict=False):
        if earlier.weekday == later.weekday and later.open < earlier.close:
            problems.append(
                f"Weekday {later.weekday}: {_clock(earlier.open)}-{_clock(earlier.close)} overlaps "
                f"{_clock(later.open)}-{_clock(later.close)}."
            )
    return tuple(hours), problems


__all__ = [
    "Availability", "MAX_SLOTS", "Occupancy", "OpeningHours", "Schedule", "Slot", "admit",
    "availability", "check_quantity", "check_window", "fits", "price", "remaining", "units",
]
