"""Persistence of the payments domain behind repositories (SQLAlchemy implementation)."""
import sqlalchemy as sa
import sqlalchemy.orm

from common.storage.repository import SqlRepository
from payments_service.models import Payment, Refund, StripeCustomer, StripeEvent


class PaymentRepository(SqlRepository[Payment]):
    model = Payment

    def lock(self, payment_id, with_refunds=True):
        """The payment row-locked until commit, re-read even if this session holds it already.
        `with_refunds=False` skips reading its refunds, for a caller that never looks at them
        (one round trip less)."""
        options = [] if with_refunds else [sa.orm.noload(Payment.refunds)]
        return self.session.get(Payment, payment_id, with_for_update=True, populate_existing=True,
                                options=options)

    def lock_by_intent(self, intent_id):
        """The payment of a Stripe PaymentIntent, row-locked until commit, without its refunds."""
        return self.session.scalar(_LOCK_BY_INTENT, {"intent_id": intent_id})

    def by_idempotency_key(self, key):
        return self.session.scalar(_BY_IDEMPOTENCY_KEY, {"key": key})

    def for_reservation(self, reservation_id):
        return self.session.scalars(
            sa.select(Payment).where(Payment.reservation_id == reservation_id).order_by(Payment.id)).all()


# Statements every charge or webhook runs, built once with their values as parameters.
_LOCK_BY_INTENT = (
    sa.select(Payment).where(Payment.stripe_intent_id == sa.bindparam("intent_id"))
    .options(sa.orm.noload(Payment.refunds)).with_for_update()
    .execution_options(populate_existing=True))
_BY_IDEMPOTENCY_KEY = sa.select(Payment).where(Payment.idempotency_key == sa.bindparam("key"))


class RefundRepository(SqlRepository[Refund]):
    model = Refund


class StripeEventRepository(SqlRepository[StripeEvent]):
    model = StripeEvent


class StripeCustomerRepository(SqlRepository[StripeCustomer]):
    model = StripeCustomer
