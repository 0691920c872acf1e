from itertools import product

import pytest

from common.errors import Conflict
from reservations_service.lifecycle import BLOCKING, InvalidTransition, Status, transition

ALLOWED = {
    (Status.pending, Status.confirmed),
    (Status.pending, Status.failed),
    (Status.pending, Status.expired),
    (Status.pending, Status.cancelled),
    (Status.confirmed, Status.cancelled),
}
REFUSED = sorted(set(product(Status, Status)) - ALLOWED)


@pytest.mark.parametrize("current, target", sorted(ALLOWED), ids=lambda status: status.value)
def test_allowed_transitions(current, target):
    assert transition(current, target) is target


@pytest.mark.parametrize("current, target", REFUSED, ids=lambda status: status.value)
def test_every_other_transition_is_refused(current, target):
    with pytest.raises(InvalidTransition) as raised:
        transition(current, target)
    assert current.value in raised.value.message and target.value in raised.value.message
    assert raised.value.details == {"status": current.value}


def test_the_refusal_is_a_conflict_with_json_safe_details():
    with pytest.raises(Conflict) as raised:
        transition(Status.cancelled, Status.confirmed)
    assert str(raised.value) == "A cancelled reservation cannot become confirmed"
    assert raised.value.args[1] == '{"status": "cancelled"}'


def test_statuses_read_from_storage_as_strings_are_accepted():
    assert transition("pending", "confirmed") is Status.confirmed
    with pytest.raises(InvalidTransition):
        transition("confirmed", "confirmed")


def test_an_unknown_status_is_a_programming_error():
    with pytest.raises(ValueError):
        transition("pending", "paid")


def test_only_pending_and_confirmed_block_the_slot():
    assert BLOCKING == {Status.pending, Status.confirmed}
    assert "pending" in BLOCKING


@pytest.mark.parametrize("status", list(Status), ids=lambda status: status.value)
def test_final_statuses_are_those_with_no_way_out(status):
    has_no_way_out = all((status, target) not in ALLOWED for target in Status)
    assert has_no_way_out == (status in {Status.cancelled, Status.expired, Status.failed})
