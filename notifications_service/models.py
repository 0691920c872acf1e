"""Tables of the notifications database: the contacts learned from auth's events, the
delivery log (one row per message and channel), the events already consumed and the outbox."""
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


class Contact(Base):
    """How to reach a user, copied from auth.user_registered / user_profile_changed."""

    __tablename__ = "contacts"

    user_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    email: Mapped[str | None] = mapped_column(sa.String(254))
    name: Mapped[str | None] = mapped_column(sa.String(100))
    phone: Mapped[str | None] = mapped_column(sa.String(20))
    notify_email: Mapped[bool] = mapped_column(default=True)
    notify_sms: Mapped[bool] = mapped_column(default=True)
    # occurred_at of the event these values come from: an older event arriving late loses.
    as_of: Mapped[datetime] = mapped_column(UtcDateTimeColumn)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTimeColumn)


class Notification(Timestamps, Base):
    """One message to one recipient on one channel, rendered when its event arrived. A
    partner booking's guest has no user (user_id null); reservation_id is the reservation
    the message is about (null for a welcome)."""

    __tablename__ = "notifications"
    __table_args__ = (sa.UniqueConstraint("event_id", "channel"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(sa.BigInteger, index=True)
    reservation_id: Mapped[int | None] = mapped_column(sa.BigInteger, index=True)
    channel: Mapped[str] = mapped_column(sa.String(8))
    template: Mapped[str] = mapped_column(sa.String(64))
    recipient: Mapped[str] = mapped_column(sa.String(254))
    subject: Mapped[str | None] = mapped_column(sa.String(255))
    body: Mapped[str] = mapped_column(sa.Text)
    html: Mapped[str | None] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(16), index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    provider_message_id: Mapped[str | None] = mapped_column(sa.String(255))
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
    event_id: Mapped[str] = mapped_column(sa.String(64))
    # Set while a worker is talking to the provider; another delivery of the same
    # notification waits until it is cleared or has run out.
    sending_until: Mapped[datetime | None] = mapped_column(UtcDateTimeColumn)


class ProcessedEvent(ProcessedEventMixin, Base):
    pass


class OutboxMessage(OutboxMixin, Base):
    pass


class OperatorCall(OperatorAuditMixin, Base):
    """One console call to this service (common.runtime.audit)."""
