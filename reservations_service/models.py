"""Tables of the reservations database: places, reservations (with their hold and any
pending reschedule), consumed events, and the outbox."""
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from common.storage.audit import OperatorAuditMixin
from common.storage.base import Base as CommonBase
from common.storage.base import Timestamps, UtcDateTimeColumn
from common.storage.outbox import OutboxMixin, ProcessedEventMixin


class Base(CommonBase):
    __abstract__ = True
    metadata = sa.MetaData()


class Place(Timestamps, Base):
    __tablename__ = "places"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    description: Mapped[str | None] = mapped_column(sa.Text)
    unit: Mapped[str] = mapped_column(sa.String(8))
    unit_price: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    # The booking rules (reservations_service.schedule). NULL takes the default: always open,
    # the unit's grid (60 or 1440 minutes, following the unit if it changes), no length limit.
    capacity: Mapped[int] = mapped_column(default=1, server_default="1")
    opening_hours: Mapped[list | None] = mapped_column(sa.JSON)
    slot_minutes: Mapped[int | None] = mapped_column()
    min_minutes: Mapped[int | None] = mapped_column()
    max_minutes: Mapped[int | None] = mapped_column()
    buffer_minutes: Mapped[int] = mapped_column(default=0, server_default="0")
    # Places are retired, not erased: past reservations keep pointing at them.
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTimeColumn)


class Reservation(Timestamps, Base):
    __tablename__ = "reservations"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "idempotency_key", name="uq_reservations_idempotency"),
        sa.UniqueConstraint("partner", "partner_ref", name="uq_reservations_partner_ref"),
        # Overlap is `start < window.end AND end > window.start`: one index per bound, so the
        # database scans whichever side of the window holds fewer rows. Bookings are near the
        # future and history piles up in the past, so usually the `end_at` side: a booking then
        # costs the same with a thousand reservations behind it as with a million.
        sa.Index("ix_reservations_place_window", "place_id", "status", "start_at", "end_at"),
        # start_at and quantity ride along so that the usual side answers from the index alone,
        # without reading each row (docs/performance.md, the query plan of availability).
        sa.Index("ix_reservations_place_ending", "place_id", "status", "end_at", "start_at", "quantity"),
        # The new windows of reschedules in flight: NULL on almost every row, a tiny range.
        sa.Index("ix_reservations_place_pending", "place_id", "pending_start"),
        sa.Index("ix_reservations_hold", "status", "hold_expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    place_id: Mapped[int] = mapped_column(sa.ForeignKey("places.id"))
    # auth's user; no cross-DB key. None for a partner's guest.
    user_id: Mapped[int | None] = mapped_column(sa.BigInteger, index=True)
    # `start`/`end` are reserved words in SQL; the columns carry a suffix, Python does not.
    start: Mapped[datetime] = mapped_column("start_at", UtcDateTimeColumn)
    end: Mapped[datetime] = mapped_column("end_at", UtcDateTimeColumn)
    status: Mapped[str] = mapped_column(sa.String(16))
    amount: Mapped[int] = mapped_column(sa.BigInteger)  # the price of the window booked now
    currency: Mapped[str] = mapped_column(sa.String(3))
    # The terms it was booked at: a later change of the place's price never re-prices it.
    unit: Mapped[str] = mapped_column(sa.String(8))
    unit_price: Mapped[int] = mapped_column(sa.BigInteger)
    quantity: Mapped[int] = mapped_column(default=1)
    payment_method: Mapped[str] = mapped_column(sa.String(255))
    payment_id: Mapped[int | None] = mapped_column(sa.BigInteger)  # the first payment
    # Money as payments knows it (payments owns it; these follow its answers and events):
    # charged, refunded, and every payment made for it, first one first.
    paid: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    refunded: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    payment_ids: Mapped[list] = mapped_column(sa.JSON, default=list)
    hold_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTimeColumn)
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(255))
    request_fingerprint: Mapped[str | None] = mapped_column(sa.String(64))
    # A reschedule in flight holds its new window too, until it is paid or abandoned.
    pending_start: Mapped[datetime | None] = mapped_column(UtcDateTimeColumn)
    pending_end: Mapped[datetime | None] = mapped_column(UtcDateTimeColumn)
    pending_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTimeColumn)
    version: Mapped[int] = mapped_column(default=0)
    refund_amount: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    refund_due: Mapped[int] = mapped_column(sa.BigInteger, default=0)  # owed, not yet refunded
    # The cancellation's refund drawn on each payment: [[payment_id, amount], ...], sent
    # (and retried) one payment at a time, each with its own idempotency key.
    refund_plan: Mapped[list | None] = mapped_column(sa.JSON)
    cancel_reason: Mapped[str | None] = mapped_column(sa.String(500))
    # Booked by a partner system for its guest; the partner collected the payment.
    partner: Mapped[str | None] = mapped_column(sa.String(64))
    partner_ref: Mapped[str | None] = mapped_column(sa.String(128))
    guest_name: Mapped[str | None] = mapped_column(sa.String(100))
    guest_email: Mapped[str | None] = mapped_column(sa.String(254))
    guest_phone: Mapped[str | None] = mapped_column(sa.String(32))


class ProcessedEvent(ProcessedEventMixin, Base):
    pass


class OutboxMessage(OutboxMixin, Base):
    pass


class OperatorCall(OperatorAuditMixin, Base):
    """One console call to this service (common.runtime.audit)."""
