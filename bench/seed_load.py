"""Existing reservations for the availability and growth measurements, bulk-inserted straight
into the reservations database (one executemany per batch: 100k rows in seconds, where booking
them through the API would take longer than the whole benchmark).

Layout, per place of the set: one-hour reservations every 90 minutes, `SLOTS_PER_PLACE` of
them ending `SEEDED_FUTURE` from now, so most are history and some are upcoming, as on a place
in use. The first 1k rows are every 100th slot across the whole span; later rows fill the slots
between, so at 1k and at 100k the same span is covered, only denser. One in ten is cancelled
and one in twenty expired (neither blocks a window). The benchmark's own bookings go after the
seeded span (`booking_window`), so each booking's overlap check sees every seeded row before it.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from reservations_service.models import Reservation

MAX_ROWS = 100_000  # the largest size measured; fixes the layout for every size
STRIDE = 100  # the first MAX_ROWS / STRIDE rows are spread over the whole span
SLOT = timedelta(minutes=90)
DURATION = timedelta(hours=1)
SEEDED_FUTURE = timedelta(days=30)
BATCH = 5_000


def slots_per_place(places: int) -> int:
    """Slots of each place: enough for MAX_ROWS over the set, a multiple of STRIDE."""
    return math.ceil(MAX_ROWS / places / STRIDE) * STRIDE


def slot_order(rank: int, slots: int) -> int:
    """The slot taken by a place's rank-th seeded row: 0, 100, 200, … then 1, 101, … so that
    any prefix of the order is spread evenly over the span."""
    per_pass = slots // STRIDE
    return (rank % per_pass) * STRIDE + rank // per_pass


def status_of(slot: int) -> str:
    if slot % 10 == 7:
        return "cancelled"
    if slot % 20 == 13:
        return "expired"
    return "confirmed"


class SeedLayout:
    """Where seeded row k goes; shared by the seeding, the availability queries and the bookings."""

    def __init__(self, place_ids: Sequence[int], user_ids: Sequence[int], now: datetime | None = None):
        if not place_ids or not user_ids:
            raise ValueError("a layout needs places and users")
        self.place_ids = list(place_ids)
        self.user_ids = list(user_ids)
        now = now or datetime.now(UTC)
        self.now = now.replace(minute=0, second=0, microsecond=0)
        self.slots = slots_per_place(len(self.place_ids))
        self.end = self.now + SEEDED_FUTURE
        self.start = self.end - self.slots * SLOT

    def row(self, k: int) -> dict:
        places = len(self.place_ids)
        slot = slot_order(k // places, self.slots)
        start = self.start + slot * SLOT
        status = status_of(slot)
        return {
            "place_id": self.place_ids[k % places], "user_id": self.user_ids[k % len(self.user_ids)],
            "start": start, "end": start + DURATION, "status": status, "amount": 2500, "currency": "usd",
            "unit": "hour", "unit_price": 2500, "quantity": 1, "paid": 0, "refunded": 0, "payment_ids": [],
            "refund_plan": None,
            "payment_method": "pm_card_visa", "payment_id": None, "hold_expires_at": None,
            "idempotency_key": None, "request_fingerprint": None, "pending_start": None,
            "pending_end": None, "pending_expires_at": None, "version": 0,
            "refund_amount": 2500 if status == "cancelled" else 0, "refund_due": 0,
            "cancel_reason": "seeded" if status == "cancelled" else None, "partner": None,
            "partner_ref": None, "guest_name": None, "guest_email": None, "guest_phone": None,
            "created_at": self.now, "updated_at": self.now,
        }

    def rows(self, first: int, last: int) -> Iterator[dict]:
        for k in range(first, last):
            yield self.row(k)

    def booking_window(self, number: int) -> tuple[int, datetime, datetime]:
        """The benchmark's number-th booking: (place id, start, end), distinct for every number,
        one hour, after the seeded span; spread round-robin over the place set."""
        places = len(self.place_ids)
        start = self.end + timedelta(days=1) + (number // places) * timedelta(hours=1)
        return self.place_ids[number % places], start, start + timedelta(hours=1)

    def availability_span(self, number: int) -> tuple[int, datetime, datetime]:
        """A one-day span inside the seeded upcoming days, varied per request."""
        places = len(self.place_ids)
        day = self.now + timedelta(days=1 + (number // places) % 28)
        return self.place_ids[number % places], day, day + timedelta(days=1)


def _column_rows(rows: Iterator[dict]) -> list[dict]:
    # Model attribute names -> column names (`start` is the `start_at` column, and so on).
    names = {attr.key: attr.columns[0].name for attr in sa.inspect(Reservation).column_attrs}
    return [{names[key]: value for key, value in row.items()} for row in rows]


def seed_reservations(database_url: str, layout: SeedLayout, first: int, last: int) -> float:
    """Insert seeded rows [first, last); returns the seconds it took."""
    import time

    table = Reservation.__table__
    engine = sa.create_engine(database_url)
    started = time.perf_counter()
    try:
        for batch_start in range(first, last, BATCH):
            rows = _column_rows(layout.rows(batch_start, min(last, batch_start + BATCH)))
            with engine.begin() as connection:
                connection.execute(table.insert(), rows)
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE TABLE reservations")  # fresh statistics for the planner
    finally:
        engine.dispose()
    return time.perf_counter() - started


def count_reservations(database_url: str, place_ids: Sequence[int]) -> int:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            table = Reservation.__table__
            return connection.scalar(sa.select(sa.func.count()).select_from(table)
                                     .where(table.c.place_id.in_(list(place_ids))))
    finally:
        engine.dispose()
