"""Demo places for local runs (`make run`), never for production seeds."""
from reservations_service.places import Places
from reservations_service.repository import PlaceRepository

DEMO_PLACES = [
    # Eight seats booked one by one (or several at once), by the half hour, 08:00-20:00 Paris time.
    {"name": "Meeting Room A", "description": "Eight seats, a screen, good coffee.",
     "unit": "hour", "unit_price": 2500, "currency": "usd", "timezone": "Europe/Paris",
     "capacity": 8, "slot_minutes": 30, "buffer_minutes": 0,
     "opening_hours": [{"weekday": day, "open": "08:00", "close": "20:00"} for day in range(7)]},
    {"name": "Cabin by the Lake", "description": "Sleeps four. Boat included.",
     "unit": "day", "unit_price": 12000, "currency": "usd", "timezone": "America/Vancouver"},
]


def seed_demo(sessions):
    """Creates the demo places that do not exist yet (matched by name); returns how many."""
    with sessions.transaction() as session:
        existing = {place.name for place in PlaceRepository(session).listing(100, 0).items}
    missing = [fields for fields in DEMO_PLACES if fields["name"] not in existing]
    for fields in missing:
        Places(sessions).create(dict(fields))
    return len(missing)
