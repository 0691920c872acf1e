"""Time windows as half-open [start, end) intervals in UTC: overlap, free time between
bookings, and validation of the windows users ask to book or to query."""
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from common.errors import ValidationError


def is_aware(moment):
    return moment.tzinfo is not None and moment.utcoffset() is not None


def instant(moment):
    """An aware time in UTC. Python compares two times sharing one tzinfo by their wall clocks,
    ignoring `fold`: in Europe/Paris on a fall-back night 02:00 CET (fold 1) is an hour after
    02:45 CEST but compares before it. Times are compared as instants, in UTC."""
    return moment.astimezone(timezone.utc)


@dataclass(frozen=True)
class Window:
    """[start, end): a window ending at 10:00 and one starting at 10:00 do not overlap."""

    start: datetime
    end: datetime

    def __post_init__(self):
        if not (is_aware(self.start) and is_aware(self.end)):
            raise ValueError("A window needs timezone-aware start and end")
        # One representation for every instant, so equal windows also look equal; and compared
        # in UTC, since two times of one zone compare by their wall clocks (see `instant`).
        object.__setattr__(self, "start", instant(self.start))
        object.__setattr__(self, "end", instant(self.end))
        if self.start >= self.end:
            raise ValueError("A window must start before it ends")

    @property
    def duration(self):
        return self.end - self.start

    def overlaps(self, other):
        return self.start < other.end and other.start < self.end

    def clip(self, other):
        """The part of this window inside `other`, or None when they do not overlap."""
        if not self.overlaps(other):
            return None
        return Window(max(self.start, other.start), min(self.end, other.end))


def find_overlapping(window, windows):
    """The windows, in their given order, that share at least an instant with `window`."""
    return [candidate for candidate in windows if window.overlaps(candidate)]


def merge(windows):
    """The sorted union: overlapping and touching windows become one."""
    merged = []
    for window in sorted(windows, key=lambda each: each.start):
        if merged and window.start <= merged[-1].end:
            merged[-1] = Window(merged[-1].start, max(merged[-1].end, window.end))
        else:
            merged.append(window)
    return merged


def free_intervals(span, booked):
    """The parts of `span` no booked window covers, sorted; bookings outside it are ignored."""
    inside = [clipped for clipped in (window.clip(span) for window in booked) if clipped]
    free = []
    cursor = span.start
    for taken in merge(inside):
        if cursor < taken.start:
            free.append(Window(cursor, taken.start))
        cursor = taken.end
    if cursor < span.end:
        free.append(Window(cursor, span.end))
    return free


def validate_booking_window(start, end, now, horizon_days):
    """The window to book, in UTC; raises ValidationError naming each field that is wrong."""
    details = _aware_fields({"start": start, "end": end})
    if not details:
        start, end = instant(start), instant(end)
        if end <= start:
            details.setdefault("end", []).append("Must be after start.")
        if start < now:
            details.setdefault("start", []).append("Must not be in the past.")
        if end > now + timedelta(days=horizon_days):
            details.setdefault("end", []).append(f"Must be within {horizon_days} days from now.")
    if details:
        raise ValidationError("Invalid booking window", details)
    return Window(start, end)


def validate_query_span(frm, to, max_days=366):
    """The span an availability query covers, in UTC; at most `max_days` long."""
    details = _aware_fields({"from": frm, "to": to})
    if not details:
        frm, to = instant(frm), instant(to)
        if to <= frm:
            details["to"] = ["Must be after from."]
        elif to - frm > timedelta(days=max_days):
            details["to"] = [f"Must be at most {max_days} days after from."]
    if details:
        raise ValidationError("Invalid availability query", details)
    return Window(frm, to)


def _aware_fields(moments):
    # A naive time is ambiguous across the timezones our users book from, so it is refused.
    return {
        field: ["Must include a timezone offset."]
        for field, moment in moments.items()
        if not is_aware(moment)
    }
