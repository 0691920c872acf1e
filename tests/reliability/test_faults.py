"""The fault scenarios, scaled down, on one stack with two instances of every service:
kill -9, a broker outage, a database outage, a Stripe outage and a paused service, each in
the middle of a load of bookings. After each: no violation of the money-and-slots
invariants (tests/reliability/invariants.py), no 500, no hang, no process died on its own.
Full size: `python -m tests.reliability.campaign --bookings 1000` (docs/reliability.md)."""
import pytest

from tests.reliability import scenarios
from tests.reliability.harness import BookingLoad, FaultStack

pytestmark = [pytest.mark.mariadb, pytest.mark.timeout(400)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with FaultStack(tmp_path_factory.mktemp("faults"), instances=2) as stack:
        yield stack


@pytest.fixture(scope="module")
def load(stack):
    return BookingLoad(stack)


def assert_sound(figures, stack):
    assert figures["violations"] == [], figures
    assert figures["settled_after_load_s"] is not None, figures
    assert figures["server_errors_500"] == 0 and figures["unshaped_errors"] == 0, figures
    assert figures["hangs"] == 0, figures
    assert figures["died"] == [], stack.stacks[0].logs_tail()
    assert not any(figures["dead_letters"].values()), figures  # no good event given up on


def test_kill_9_of_one_reservations_and_one_payments_instance_loses_nothing(stack, load):
    figures = scenarios.kill_instances(stack, load, bookings=150)
    assert_sound(figures, stack)
    assert set(figures["killed_pids"]) == {"reservations", "payments"}
    assert figures["created_201"] > 100, figures  # the survivors carried the load


def test_a_broker_outage_is_503_then_everything_goes_out(stack, load):
    figures = scenarios.broker_outage(stack, load, bookings=80, seconds=12)
    assert_sound(figures, stack)
    assert set(figures["answers_during_fault"]) <= {"503", "504", "201", "409"}, figures
    # requests sent while the broker is away are refused with 503 (or, at worst, end at the
    # gateway's deadline with 504): never a 500, never a hang
    probed = figures["new_requests_during_fault"]
    assert "503" in probed and set(probed) <= {"503", "504"}, figures
    assert figures["recovered_s"] is not None, figures  # bookings succeed again by themselves


def test_a_database_outage_is_503_then_bookings_succeed_again(stack, load):
    figures = scenarios.database_outage(stack, load, bookings=80, seconds=6)
    assert_sound(figures, stack)
    during = figures["answers_during_fault"]
    assert "503" in during and set(during) <= {"503", "504", "201", "409"}, figures
    assert set(figures["new_requests_during_fault"]) == {"503"}, figures
    assert figures["recovered_s"] is not None, figures


def test_a_stripe_outage_fails_bookings_clearly_and_never_charges_twice(stack, load):
    figures = scenarios.stripe_outage(stack, load, bookings=80, seconds=6)
    assert_sound(figures, stack)
    assert "503" in figures["answers_during_fault"], figures
    assert figures["recovered_s"] is not None, figures
    assert figures["abandoned_503"] > 0, figures  # and those holds ended by themselves (settled)


def test_a_paused_service_is_504_and_a_retry_with_the_same_key_is_safe(stack, load):
    figures = scenarios.slow_service(stack, load, bookings=40)
    assert_sound(figures, stack)
    assert figures["bookings_answered_504"] > 0, figures
    probed = figures["new_requests_during_fault"]  # the gateway's deadline; 200 once it is back
    assert "504" in probed and set(probed) <= {"504", "200"}, figures
    # every booking that was answered 504 was retried with its key and ended as one booking
    assert set(figures["their_final_answers"]) <= {"201", "409"}, figures
