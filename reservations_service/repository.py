"""Persistence of places and reservations behind repositories (SQLAlchemy)."""
import sqlalchemy as sa

from common.storage import outbox as common_events
from common.storage.repository import SqlRepository
from reservations_service.lifecycle import BLOCKING, Status
from reservations_service.models import Place, ProcessedEvent, Reservation

_BLOCKING = [status.value for status in BLOCKING]


class PlaceRepository(SqlRepository[Place]):
    model = Place

    def active(self, place_id, for_update=False):
        """A place that can be booked. The row lock serialises bookings of one place:
        the overlap check and the insert that follows it cannot interleave."""
        place = self.session.get(Place, place_id, with_for_update=for_update)
        return place if place is not None and place.deleted_at is None else None

    def active_settings(self, place_id):
        """The id and booking settings of a place that can be booked, as a mapping (None if
        there is none), without building a Place: availability reads only these."""
        return self.session.execute(_ACTIVE_PLACE, {"place_id": place_id}).mappings().first()

    def listing(self, limit, offset):
        return self.page(limit, offset, where=[Place.deleted_at.is_(None)])


class ReservationRepository(SqlRepository[Reservation]):
    model = Reservation

    def by_idempotency_key(self, user_id, key):
        return self.session.scalar(_BY_IDEMPOTENCY_KEY, {"user_id": user_id, "key": key})

    def confirm_if_pending(self, reservation_id, payment_id, now):
        """Confirm a reservation paid by this payment if it is still pending (one UPDATE, the
        row locked until commit); False if it is not pending any more."""
        confirmed = self.session.execute(_CONFIRM_IF_PENDING, {
            "reservation_id": reservation_id, "payment_id": payment_id, "payment_ids": [payment_id], "now": now})
        return confirmed.rowcount == 1

    def confirmed_by(self, reservation_id, payment_id):
        """True if the reservation is confirmed and paid by this payment (one indexed read,
        no lock: a confirmed reservation's payment never changes back)."""
        found = self.session.execute(_CONFIRMED_BY, {"reservation_id": reservation_id, "payment_id": payment_id})
        return found.first() is not None

    def occupied_windows(self, place_id, start, end, now, exclude_id=None):
        """(start, end, quantity, reservation id) of every window taken within [start, end),
        sorted: held and confirmed reservations, and the new window of a reschedule still in
        flight (for the reservation's quantity; the id lets capacity count a reservation once
        where its two windows overlap, schedule.Occupancy). Plain rows, not Reservation
        objects: availability reads many, and building objects was most of its cost. The two
        sides are one UNION ALL, each with an index it can range over (the id rides in every
        index, so the held side still answers from its index alone)."""
        values = {"place_id": place_id, "start": start, "end": end, "now": now}
        if exclude_id is not None:
            values["exclude_id"] = exclude_id
        rows = self.session.execute(_OCCUPIED[exclude_id is not None], values)
        return sorted(tuple(row) for row in rows)

    def future_blocking_count(self, place_id, now):
        return self.session.scalar(sa.select(sa.func.count()).select_from(Reservation).where(
            Reservation.place_id == place_id, Reservation.status.in_(_BLOCKING), Reservation.end > now))

    def search(self, limit, offset, user_id=None, place_id=None, status=None, frm=None, to=None):
        where = self.matching(user_id=user_id, place_id=place_id, status=status)
        if frm is not None:
            where.append(Reservation.end > frm)
        if to is not None:
            where.append(Reservation.start < to)
        return self.page(limit, offset, where=where, order_by=Reservation.start.desc())

    def stale_holds(self, now, limit=100):
        return self.session.scalars(
            sa.select(Reservation)
            .where(Reservation.status == Status.pending.value, Reservation.hold_expires_at <= now)
            .order_by(Reservation.id).limit(limit).with_for_update(skip_locked=True)).all()

    def stale_reschedules(self, now, limit=100):
        return self.session.scalars(
            sa.select(Reservation)
            .where(Reservation.pending_start.is_not(None), Reservation.pending_expires_at <= now)
            .order_by(Reservation.id).limit(limit).with_for_update(skip_locked=True)).all()

    def refunds_due(self, limit=100):
        return self.session.scalars(
            sa.select(Reservation).where(Reservation.refund_due > 0)
            .order_by(Reservation.id).limit(limit)).all()


# The statements of the booking path and of availability, built once with their values as
# parameters: building a statement (and its cache key) on every call cost more than running it.
_ACTIVE_PLACE = sa.select(
    Place.id, Place.unit, Place.timezone, Place.capacity, Place.opening_hours, Place.slot_minutes,
    Place.min_minutes, Place.max_minutes, Place.buffer_minutes,
).where(Place.id == sa.bindparam("place_id"), Place.deleted_at.is_(None))
_BY_IDEMPOTENCY_KEY = sa.select(Reservation).where(
    Reservation.user_id == sa.bindparam("user_id"), Reservation.idempotency_key == sa.bindparam("key"))
_reservations = Reservation.__table__
_CONFIRM_IF_PENDING = (
    sa.update(_reservations)
    .where(_reservations.c.id == sa.bindparam("reservation_id"), _reservations.c.status == Status.pending.value)
    .values(status=Status.confirmed.value, payment_id=sa.bindparam("payment_id"), hold_expires_at=None,
            # paid what it costs, by this one payment
            paid=_reservations.c.amount, payment_ids=sa.bindparam("payment_ids", type_=sa.JSON),
            updated_at=sa.bindparam("now")))
_CONFIRMED_BY = sa.select(_reservations.c.id).where(
    _reservations.c.id == sa.bindparam("reservation_id"), _reservations.c.status == Status.confirmed.value,
    _reservations.c.payment_id == sa.bindparam("payment_id"))


def _occupied_query(excluding):
    """The query of `occupied_windows`, with or without a reservation left out."""
    place_id, start, end, now = (sa.bindparam(name) for name in ("place_id", "start", "end", "now"))
    held = sa.select(Reservation.start, Reservation.end, Reservation.quantity, Reservation.id).where(
        Reservation.place_id == place_id, Reservation.status.in_(_BLOCKING),
        Reservation.start < end, Reservation.end > start)
    rescheduling = sa.select(
        Reservation.pending_start, Reservation.pending_end, Reservation.quantity, Reservation.id,
    ).where(
        Reservation.place_id == place_id, Reservation.pending_start < end,
        Reservation.pending_end > start, Reservation.pending_expires_at > now,
        Reservation.status == Status.confirmed.value)
    if excluding:
        held, rescheduling = (query.where(Reservation.id != sa.bindparam("exclude_id"))
                              for query in (held, rescheduling))
    return sa.union_all(held, rescheduling)


_OCCUPIED = {excluding: _occupied_query(excluding) for excluding in (False, True)}


class ProcessedEvents(common_events.ProcessedEvents):
    """Events this service has applied (see common.storage.outbox.ProcessedEvents)."""

    def __init__(self, session):
        super().__init__(session, ProcessedEvent)
