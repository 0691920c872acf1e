"""Place use-cases: the catalogue admins manage, and its availability."""
from common.clock import utcnow
from common.errors import Conflict, NotFound
from reservations_service.models import Place
from reservations_service.repository import PlaceRepository, ReservationRepository
from reservations_service.windows import Window, free_intervals, merge, validate_query_span


class Places:
    def __init__(self, sessions, clock=utcnow):
        self.sessions = sessions
        self.clock = clock

    def create(self, fields):
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
        """Price changes apply to new bookings; confirmed ones keep the price they paid."""
        with self.sessions.transaction() as session:
            place = self._place(PlaceRepository(session), place_id, for_update=True)
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
        """Booked and free intervals of [frm, to)."""
        span = validate_query_span(frm, to)
        with self.sessions.read() as session:
            found = PlaceRepository(session).active_id(place_id)
            if found is None:
                raise NotFound("Place not found", {"place_id": place_id})
            taken = ReservationRepository(session).occupied_windows(found, span.start, span.end, self.clock())
        booked = merge([Window(start, end).clip(span) for start, end in taken])
        return {"place_id": found, "booked": booked, "free": free_intervals(span, booked)}

    @staticmethod
    def _place(places, place_id, for_update=False):
        place = places.active(place_id, for_update=for_update)
        if place is None:
            raise NotFound("Place not found", {"place_id": place_id})
        return place
