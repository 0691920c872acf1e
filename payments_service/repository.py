"""Persistence of the payments domain behind repositories (SQLAlchemy implementation)."""
import sqlalchemy as sa

from common.repository import SqlRepository
from payments_service.models import Payment, Refund, StripeEvent


class PaymentRepository(SqlRepository[Payment]):
    model = Payment

    def lock(self, payment_id):
        """The payment row-locked until commit, re-read even if this session holds it already."""
        return self.session.get(Payment, payment_id, with_for_update=True, populate_existing=True)

    def by_idempotency_key(self, key):
        return self.session.scalar(sa.select(Payment).where(Payment.idempotency_key == key))

    def by_intent(self, intent_id):
        return self.session.scalar(sa.select(Payment).where(Payment.stripe_intent_id == intent_id))

    def for_reservation(self, reservation_id):
        return self.session.scalars(
            sa.select(Payment).where(Payment.reservation_id == reservation_id).order_by(Payment.id)).all()


class RefundRepository(SqlRepository[Refund]):
    model = Refund


class StripeEventRepository(SqlRepository[StripeEvent]):
    model = StripeEvent
