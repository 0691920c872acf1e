"""Place use-cases: the catalogue admins manage, and its availability."""
from common.clock import utcnow
from common.errors import Conflict, NotFound
from reservations_service.models import Place
from reservations_service.repository import PlaceRepository, ReservationRepository
from reservations_service.schedule import Schedule, availability
from reservations_service.windows import validate_query_span

# The settings a Schedule is built from, as stored on the place (NULL: the default).
SETTINGS = ("unit", "timezone", "capacity", "opening_hours", "slot_minutes", "min_minutes", "max_minutes",
            "buffer_minutes")
_SHOWN = ("id", "name", "description", "unit_price", "currency", "created_at", "updated_at")


def place_view(place):
    """A place as its JSON shows it: its settings with the defaults filled in."""
    return {**{name: getattr(place, name) for name in _SHOWN}, **Schedule.of(place).as_fields()}


class Places:
    def __init__(self, sessions, clock=utcnow):
        self.sessions = sessions
        self.clock = clock

    def create(self, fields):
        """ValidationError naming each setting the Schedule refuses; nothing is stored then."""
        fields = {**fields, **_settings(Schedule.of(fields), fields)}
        now = self.clock()
        with self.sessions.transaction() as session:
            return PlaceRepository(session).add(Place(**fields, created_at=now, updated_at=now))

    def get(self, place_id):
        with self.sessions.read() as session:
            return self._place(PlaceRepository(session), place_id)

    def listing(self, limit, offset):
        with self.sessions.read() as session:
            return PlaceRepository(session).listing(limit, offset)

    def update(self, place_id, changes):
        """Price changes apply to new bookings; confirmed ones keep the price they paid. The
        settings are checked as they would be after the change (a grid that suits the new unit,
        a min that stays below the current max). Existing bookings stay as they are, even when
        the new rules would refuse them now."""
        with self.sessions.transaction() as session:
            place = self._place(PlaceRepository(session), place_id, for_update=True)
            merged = {name: changes.get(name, getattr(place, name)) for name in SETTINGS}
            changes = {**changes, **_settings(Schedule.of(merged), changes)}
            for name, value in changes.items():
                setattr(place, name, value)
            place.updated_at = self.clock()
            return place

    def delete(self, place_id):
        """Retire a place; refused while it has future pending or confirmed reservations."""
        now = self.clock()
        with self.sessions.transaction() as session:
            place = self._place(PlaceRepository(session), place_id, for_update=True)
            upcoming = ReservationRepository(session).future_blocking_count(place.id, now)
            if upcoming:
                raise Conflict("The place has upcoming reservations", {"reservations": upcoming})
            place.deleted_at = place.updated_at = now

    def availability(self, place_id, frm, to):
        """Booked, free and remaining per grid slot in [frm, to) (schedule.availability): one
        read of the place's settings, one query for the bookings that can matter."""
        span = validate_query_span(frm, to)
        with self.sessions.read() as session:
            place = PlaceRepository(session).active_settings(place_id)
            if place is None:
                raise NotFound("Place not found", {"place_id": place_id})
            schedule = Schedule.of(place)
            reach = schedule.affecting(span)
            taken = ReservationRepository(session).occupied_windows(place["id"], reach.start, reach.end, self.clock())
        shown = availability(schedule, taken, span.start, span.end)
        return {"place_id": place["id"], "timezone": shown.timezone, "capacity": shown.capacity,
                "booked": shown.booked, "free": shown.free, "slots": shown.slots}

    @staticmethod
    def _place(places, place_id, for_update=False):
        place = places.active(place_id, for_update=for_update)
        if place is None:
            raise NotFound("Place not found", {"place_id": place_id})
        return place


def _settings(schedule, given):
    """The settings to store: opening hours as the schedule reads them (sorted, one spelling);
    the rest as given (a NULL grid keeps following the unit)."""
    if "opening_hours" not in given:
        return {}
    return {"opening_hours": [each.as_dict() for each in schedule.opening_hours] or None}
