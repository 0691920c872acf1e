"""Tables of the payments database: payments, their refunds, the Stripe events already
handled (webhooks arrive at least once) and the outbox."""
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from common.storage.audit import OperatorAuditMixin
from common.storage.base import Base as CommonBase
from common.storage.base import Timestamps, UtcDateTimeColumn
from common.storage.outbox import OutboxMixin


class Base(CommonBase):
    __abstract__ = True
    metadata = sa.MetaData()


class Refund(Timestamps, Base):
    """One refund of a payment; `sequence` numbers them per payment and keys Stripe's idempotency."""

    __tablename__ = "refunds"
    __table_args__ = (
        sa.UniqueConstraint("payment_id", "sequence"),
        sa.UniqueConstraint("payment_id", "idempotency_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(sa.ForeignKey("payments.id", ondelete="CASCADE"), index=True)
    sequence: Mapped[int]
    amount: Mapped[int]
    reason: Mapped[str | None] = mapped_column(sa.String(255))
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(255))
    status: Mapped[str] = mapped_column(sa.String(16))
    failure_reason: Mapped[str | None] = mapped_column(sa.String(255))
    stripe_refund_id: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    # Set while a worker is asking Stripe; a later attempt waits until it is cleared or stale.
    stripe_call_started_at: Mapped[datetime | None] = mapped_column(UtcDateTimeColumn)


class Payment(Timestamps, Base):
    """A card payment for a reservation, written before Stripe is asked so none is ever lost."""

    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(sa.String(255), unique=True)
    # Stripe metadata carries this too: payment ids repeat across databases sharing one
    # Stripe account (staging, dev, a reset), a random reference does not.
    reference: Mapped[str] = mapped_column(sa.String(32), unique=True)
    reservation_id: Mapped[int] = mapped_column(sa.BigInteger, index=True)
    user_id: Mapped[int] = mapped_column(sa.BigInteger, index=True)
    amount: Mapped[int]
    currency: Mapped[str] = mapped_column(sa.String(3))
    payment_method: Mapped[str] = mapped_column(sa.String(255))
    status: Mapped[str] = mapped_column(sa.String(24), index=True)
    failure_reason: Mapped[str | None] = mapped_column(sa.String(255))
    refunded_amount: Mapped[int] = mapped_column(default=0)
    stripe_intent_id: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    # Set while a worker is asking Stripe; a later attempt waits until it is cleared or stale.
    stripe_call_started_at: Mapped[datetime | None] = mapped_column(UtcDateTimeColumn)

    refunds: Mapped[list[Refund]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by=Refund.sequence)


class StripeCustomer(Timestamps, Base):
    """The Stripe Customer of one user, and the card that last paid: a later charge with no
    payment method (a dearer reschedule) is made off-session with that card."""

    __tablename__ = "stripe_customers"

    user_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    customer_id: Mapped[str] = mapped_column(sa.String(255), unique=True)
    # The PaymentMethod attached to the customer (its own id: attaching a test alias such
    # as pm_card_visa makes a new PaymentMethod); None until a charge with it succeeded.
    payment_method: Mapped[str | None] = mapped_column(sa.String(255))


class StripeEvent(Base):
    """A Stripe event already handled; its id is the primary key, so a redelivery is a no-op."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    type: Mapped[str] = mapped_column(sa.String(100))
    payment_id: Mapped[int | None]
    received_at: Mapped[datetime] = mapped_column(UtcDateTimeColumn)


class OutboxMessage(OutboxMixin, Base):
    pass


class OperatorCall(OperatorAuditMixin, Base):
    """One console call to this service (common.runtime.audit)."""
