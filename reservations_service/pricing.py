"""Units of elapsed time: every started unit of a window counts. Bookings are priced by
schedule.price, which counts hours this way and days as local calendar days of the place."""
from datetime import timedelta

# Elapsed time: 18:00 to 10:00 the next morning is one 24-hour "day" here (schedule.units counts
# it as two calendar days).
UNIT_LENGTHS = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
}


def unit_length(unit):
    try:
        return UNIT_LENGTHS[unit]
    except KeyError:
        raise ValueError(f"Unknown pricing unit {unit!r}; expected one of {sorted(UNIT_LENGTHS)}") from None


def units_started(window, unit):
    """How many units the window begins: 61 minutes is 2 hours, exactly 2 hours is 2."""
    # divmod on timedeltas is exact integer arithmetic; dividing through a float could round
    # a long window that is a microsecond past a boundary back onto it.
    whole_units, remainder = divmod(window.duration, unit_length(unit))
    return whole_units + (1 if remainder else 0)


def price(window, unit, unit_price):
    """The price in minor units (cents) of booking `window` at `unit_price` per unit."""
    if not isinstance(unit_price, int) or unit_price < 0:
        raise ValueError("unit_price must be a non-negative integer amount in minor units")
    return units_started(window, unit) * unit_price
