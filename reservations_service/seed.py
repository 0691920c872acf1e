"""Demo places for local runs (`make run`), never for production seeds."""
from reservations_service.places import Places
from reservations_service.repository import PlaceRepository

DEMO_PLACES = [
    {"name": "Meeting Room A", "description": "Eight seats, a screen, good coffee.",
     "unit": "hour", "unit_price": 2500, "currency": "usd", "timezone": "Europe/Paris"},
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
