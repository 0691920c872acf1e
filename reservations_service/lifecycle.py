"""The reservation state machine: which status may follow which, and which statuses
hold a slot."""
from enum import StrEnum

from common.errors import Conflict


class Status(StrEnum):
    """A str, so it compares equal to (and is stored as) its value: Status.pending == "pending"."""

    pending = "pending"  # slot held while the payment is taken
    confirmed = "confirmed"
    cancelled = "cancelled"
    expired = "expired"  # the hold ran out before payment finished
    failed = "failed"  # the payment was declined


ALLOWED = {
    Status.pending: {Status.confirmed, Status.failed, Status.expired, Status.cancelled},
    Status.confirmed: {Status.cancelled},
}

# Statuses that occupy the place's time slot; every other status frees it.
BLOCKING = frozenset({Status.pending, Status.confirmed})


# A plain Conflict, not a subclass: only the types in common.errors cross RPC as
# themselves (a subclass would reach the gateway as an unknown remote error).
InvalidTransition = Conflict


def transition(current, target):
    """`target` as a Status if a reservation in `current` may move there; else InvalidTransition."""
    current, target = Status(current), Status(target)
    if target not in ALLOWED.get(current, ()):
        raise InvalidTransition(
            f"A {current.value} reservation cannot become {target.value}", {"status": current.value}
        )
    return target
