from datetime import datetime, timedelta, timezone

import pytest

from reservations_service.refunds import RefundPolicy

START = datetime(2030, 7, 1, 9, tzinfo=timezone.utc)
POLICY = RefundPolicy(full_refund_hours=24, late_refund_percent=50)


def test_cancelling_well_before_the_start_refunds_everything():
    assert POLICY.refund_for(10_000, START, now=START - timedelta(days=3)) == 10_000


def test_cancelling_exactly_full_refund_hours_before_the_start_refunds_everything():
    assert POLICY.refund_for(10_000, START, now=START - timedelta(hours=24)) == 10_000


def test_cancelling_a_second_later_refunds_the_late_percentage():
    assert POLICY.refund_for(10_000, START, now=START - timedelta(hours=24) + timedelta(seconds=1)) == 5_000


def test_cancelling_after_the_start_refunds_the_late_percentage():
    assert POLICY.refund_for(10_000, START, now=START + timedelta(hours=1)) == 5_000


def test_late_refunds_round_down_to_the_minor_unit():
    policy = RefundPolicy(full_refund_hours=24, late_refund_percent=33)
    assert policy.refund_for(999, START, now=START) == 329  # 329.67
    assert policy.refund_for(1, START, now=START) == 0


@pytest.mark.parametrize("percent, refund", [(0, 0), (100, 10_000)])
def test_late_percent_bounds(percent, refund):
    policy = RefundPolicy(full_refund_hours=24, late_refund_percent=percent)
    assert policy.refund_for(10_000, START, now=START) == refund


def test_zero_hours_means_a_full_refund_until_the_start():
    policy = RefundPolicy(full_refund_hours=0, late_refund_percent=0)
    assert policy.refund_for(10_000, START, now=START) == 10_000
    assert policy.refund_for(10_000, START, now=START + timedelta(seconds=1)) == 0


def test_refunds_are_integers():
    assert isinstance(POLICY.refund_for(10_001, START, now=START), int)


@pytest.mark.parametrize("percent", [-1, 101])
def test_late_percent_must_be_between_0_and_100(percent):
    with pytest.raises(ValueError, match="late_refund_percent"):
        RefundPolicy(full_refund_hours=24, late_refund_percent=percent)


def test_full_refund_hours_must_not_be_negative():
    with pytest.raises(ValueError, match="full_refund_hours"):
        RefundPolicy(full_refund_hours=-1, late_refund_percent=50)


@pytest.mark.parametrize("amount", [-1, 10.5])
def test_amount_must_be_a_non_negative_integer(amount):
    with pytest.raises(ValueError, match="amount"):
        POLICY.refund_for(amount, START, now=START)
