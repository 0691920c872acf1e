from datetime import datetime, timedelta, timezone
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.errors import ValidationError
from reservations_service.windows import (
    Window,
    find_overlapping,
    free_intervals,
    merge,
    validate_booking_window,
    validate_query_span,
)

UTC = timezone.utc
PARIS_SUMMER = timezone(timedelta(hours=2))
NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
PARIS = ZoneInfo("Europe/Paris")
# Paris reads 02:00-03:00 twice on 27 October 2030: 02:45 CEST (00:45 UTC), then 02:00 CET
# (01:00 UTC, fold 1). Two times of one tzinfo compare by wall clock, ignoring fold.
BEFORE_FALL_BACK = datetime(2030, 10, 27, 2, 45, tzinfo=PARIS)
AFTER_FALL_BACK = datetime(2030, 10, 27, 2, 0, tzinfo=PARIS, fold=1)


def at(hour, minute=0, second=0, day=1):
    return datetime(2030, 7, day, hour, minute, second, tzinfo=UTC)


def window(start_hour, end_hour):
    return Window(at(start_hour), at(end_hour))


# Window


def test_adjacent_windows_do_not_overlap():
    morning, afternoon = window(9, 12), window(12, 15)
    assert not morning.overlaps(afternoon)
    assert not afternoon.overlaps(morning)


def test_one_second_overlap_is_an_overlap():
    morning = window(9, 12)
    late_start = Window(at(11, 59, 59), at(15))
    assert morning.overlaps(late_start)
    assert late_start.overlaps(morning)


def test_contained_and_identical_windows_overlap():
    day = window(8, 18)
    assert day.overlaps(window(10, 11))
    assert window(10, 11).overlaps(day)
    assert day.overlaps(window(8, 18))


def test_disjoint_windows_do_not_overlap():
    assert not window(8, 9).overlaps(window(10, 11))


@pytest.mark.parametrize(
    "start, end",
    [
        (datetime(2030, 7, 1, 9), at(10)),
        (at(9), datetime(2030, 7, 1, 10)),
        (datetime(2030, 7, 1, 9), datetime(2030, 7, 1, 10)),
    ],
    ids=["naive start", "naive end", "both naive"],
)
def test_naive_times_are_refused(start, end):
    with pytest.raises(ValueError, match="timezone-aware"):
        Window(start, end)


@pytest.mark.parametrize("start, end", [(at(10), at(10)), (at(11), at(10))], ids=["empty", "reversed"])
def test_a_window_must_start_before_it_ends(start, end):
    with pytest.raises(ValueError, match="start before it ends"):
        Window(start, end)


def test_times_of_one_zone_are_ordered_as_instants_across_a_fall_back():
    later = Window(BEFORE_FALL_BACK, AFTER_FALL_BACK)
    assert (later.start, later.duration) == (datetime(2030, 10, 27, 0, 45, tzinfo=UTC), timedelta(minutes=15))
    with pytest.raises(ValueError, match="start before it ends"):
        Window(AFTER_FALL_BACK, BEFORE_FALL_BACK)


def test_a_window_is_held_in_utc():
    local = Window(
        datetime(2030, 7, 1, 11, tzinfo=PARIS_SUMMER),
        datetime(2030, 7, 1, 12, tzinfo=PARIS_SUMMER),
    )
    assert local.start.tzinfo is UTC and local.start == at(9)
    assert local == window(9, 10)


def test_duration():
    assert Window(at(9), at(10, 30)).duration == timedelta(hours=1, minutes=30)


def test_clip_is_the_intersection():
    assert window(8, 12).clip(window(10, 14)) == window(10, 12)
    assert window(10, 11).clip(window(8, 18)) == window(10, 11)
    assert window(8, 18).clip(window(10, 11)) == window(10, 11)


@pytest.mark.parametrize("other", [window(12, 13), window(14, 15)], ids=["adjacent", "disjoint"])
def test_clip_without_overlap_is_none(other):
    assert window(9, 12).clip(other) is None


# Sets of windows


def test_find_overlapping_keeps_the_given_order_and_skips_adjacent():
    wanted = window(10, 12)
    booked = [window(11, 13), window(8, 10), window(12, 14), Window(at(9), at(10, 0, 1)), window(10, 12)]
    assert find_overlapping(wanted, booked) == [booked[0], booked[3], booked[4]]
    assert find_overlapping(wanted, []) == []


def test_merge_sorts_and_joins_overlapping_and_touching_windows():
    booked = [window(14, 15), window(9, 11), window(10, 12), window(12, 13), window(16, 17)]
    assert merge(booked) == [window(9, 13), window(14, 15), window(16, 17)]


def test_merge_keeps_a_window_that_contains_the_next():
    assert merge([window(8, 18), window(9, 10), window(17, 19)]) == [window(8, 19)]
    assert merge([]) == []


def test_free_intervals_of_an_unbooked_span_is_the_span():
    assert free_intervals(window(8, 18), []) == [window(8, 18)]


def test_free_intervals_are_the_gaps_between_bookings_sorted():
    booked = [window(15, 16), window(9, 10), window(9, 11), window(11, 12)]
    assert free_intervals(window(8, 18), booked) == [window(8, 9), window(12, 15), window(16, 18)]


def test_free_intervals_clip_bookings_to_the_span():
    booked = [window(6, 9), window(17, 20), window(1, 2), window(20, 22)]
    assert free_intervals(window(8, 18), booked) == [window(9, 17)]


def test_a_fully_booked_span_has_no_free_intervals():
    assert free_intervals(window(8, 18), [window(7, 12), window(12, 19)]) == []


minutes = st.integers(min_value=-600, max_value=600)


@st.composite
def windows_around(draw, base):
    start = draw(minutes)
    length = draw(st.integers(min_value=1, max_value=600))
    return Window(base + timedelta(minutes=start), base + timedelta(minutes=start + length))


@given(span=windows_around(at(12)), booked=st.lists(windows_around(at(12)), max_size=12))
def test_free_and_booked_time_partition_the_span(span, booked):
    taken = merge(clipped for clipped in (each.clip(span) for each in booked) if clipped)
    free = free_intervals(span, booked)
    pieces = sorted(free + taken, key=lambda piece: piece.start)

    assert pieces[0].start == span.start
    assert pieces[-1].end == span.end
    # Each piece ends exactly where the next starts: no gap and no overlap.
    assert all(left.end == right.start for left, right in pairwise(pieces))
    assert sum((piece.duration for piece in pieces), timedelta()) == span.duration
    assert not any(gap.overlaps(booking) for gap in free for booking in booked)


# Validating a booking request


def details_of(call):
    with pytest.raises(ValidationError) as raised:
        call()
    return raised.value.details


def test_a_valid_booking_window_comes_back_in_utc():
    start = datetime(2030, 6, 2, 11, tzinfo=PARIS_SUMMER)
    booked = validate_booking_window(start, start + timedelta(hours=2), NOW, horizon_days=30)
    assert booked == Window(datetime(2030, 6, 2, 9, tzinfo=UTC), datetime(2030, 6, 2, 11, tzinfo=UTC))
    assert booked.start.tzinfo is UTC


def test_the_error_names_the_booking_window():
    with pytest.raises(ValidationError, match="Invalid booking window"):
        validate_booking_window(NOW, NOW, NOW, horizon_days=30)


@pytest.mark.parametrize(
    "start, end, fields",
    [
        (datetime(2030, 6, 2, 9), NOW + timedelta(days=1, hours=1), {"start"}),
        (NOW + timedelta(days=1), datetime(2030, 6, 2, 13), {"end"}),
        (datetime(2030, 6, 2, 9), datetime(2030, 6, 2, 13), {"start", "end"}),
    ],
    ids=["naive start", "naive end", "both naive"],
)
def test_naive_booking_times_are_refused_per_field(start, end, fields):
    details = details_of(lambda: validate_booking_window(start, end, NOW, horizon_days=30))
    assert set(details) == fields
    assert all(messages == ["Must include a timezone offset."] for messages in details.values())


@pytest.mark.parametrize("length", [timedelta(0), timedelta(hours=-1)], ids=["empty", "reversed"])
def test_end_must_be_after_start(length):
    start = NOW + timedelta(days=1)
    details = details_of(lambda: validate_booking_window(start, start + length, NOW, horizon_days=30))
    assert details == {"end": ["Must be after start."]}


def test_a_booking_window_in_the_place_zone_is_ordered_as_instants_across_a_fall_back():
    assert validate_booking_window(BEFORE_FALL_BACK, AFTER_FALL_BACK, NOW, horizon_days=365).duration == \
        timedelta(minutes=15)
    details = details_of(lambda: validate_booking_window(AFTER_FALL_BACK, BEFORE_FALL_BACK, NOW, horizon_days=365))
    assert details == {"end": ["Must be after start."]}
    assert validate_query_span(BEFORE_FALL_BACK, AFTER_FALL_BACK).duration == timedelta(minutes=15)


def test_start_must_not_be_in_the_past():
    start, end = NOW - timedelta(seconds=1), NOW + timedelta(hours=1)
    details = details_of(lambda: validate_booking_window(start, end, NOW, horizon_days=30))
    assert details == {"start": ["Must not be in the past."]}


def test_starting_right_now_is_allowed():
    assert validate_booking_window(NOW, NOW + timedelta(hours=1), NOW, horizon_days=30).start == NOW


def test_end_must_be_within_the_horizon():
    end = NOW + timedelta(days=30, seconds=1)
    details = details_of(lambda: validate_booking_window(NOW, end, NOW, horizon_days=30))
    assert details == {"end": ["Must be within 30 days from now."]}


def test_ending_exactly_at_the_horizon_is_allowed():
    end = NOW + timedelta(days=30)
    assert validate_booking_window(NOW, end, NOW, horizon_days=30).end == end


def test_every_wrong_field_is_reported_at_once():
    start = NOW - timedelta(days=1)
    end = NOW + timedelta(days=40)
    details = details_of(lambda: validate_booking_window(start, end, NOW, horizon_days=30))
    assert details == {"start": ["Must not be in the past."], "end": ["Must be within 30 days from now."]}


# Validating an availability query


def test_a_valid_query_span_comes_back_in_utc():
    frm = datetime(2030, 7, 1, 2, tzinfo=PARIS_SUMMER)
    assert validate_query_span(frm, frm + timedelta(days=7)) == Window(at(0), at(0, day=8))


def test_a_naive_query_bound_is_refused_per_field():
    details = details_of(lambda: validate_query_span(datetime(2030, 7, 1), at(10)))
    assert details == {"from": ["Must include a timezone offset."]}
    details = details_of(lambda: validate_query_span(at(10), datetime(2030, 7, 2)))
    assert details == {"to": ["Must include a timezone offset."]}


@pytest.mark.parametrize("to", [at(10), at(9)], ids=["empty", "reversed"])
def test_query_to_must_be_after_from(to):
    with pytest.raises(ValidationError, match="Invalid availability query") as raised:
        validate_query_span(at(10), to)
    assert raised.value.details == {"to": ["Must be after from."]}


def test_a_query_span_may_be_at_most_max_days_long():
    assert validate_query_span(at(0), at(0) + timedelta(days=366)).duration == timedelta(days=366)
    details = details_of(lambda: validate_query_span(at(0), at(0) + timedelta(days=366, seconds=1)))
    assert details == {"to": ["Must be at most 366 days after from."]}
    details = details_of(lambda: validate_query_span(at(0), at(0, day=9), max_days=7))
    assert details == {"to": ["Must be at most 7 days after from."]}
