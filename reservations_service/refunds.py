"""How much of a payment a cancellation gives back: all of it when cancelled early
enough, a fixed percentage after that."""
from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class RefundPolicy:
    """Full refund up to `full_refund_hours` before the start; `late_refund_percent` after."""

    full_refund_hours: int
    late_refund_percent: int

    def __post_init__(self):
        if not 0 <= self.late_refund_percent <= 100:
            raise ValueError("late_refund_percent must be between 0 and 100")
        if self.full_refund_hours < 0:
            raise ValueError("full_refund_hours must not be negative")

    def refund_for(self, amount, start, now):
        """The refund in minor units for `amount` paid, cancelling at `now` a booking at `start`."""
        if not isinstance(amount, int) or amount < 0:
            raise ValueError("amount must be a non-negative integer amount in minor units")
        if now <= start - timedelta(hours=self.full_refund_hours):
            return amount
        # Rounding down keeps a refund from ever exceeding the advertised percentage.
        return amount * self.late_refund_percent // 100
