"""stripe customers: one Stripe Customer per user and the card that last paid

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

import common.storage.base


# revision identifiers, used by Alembic.
revision: str = '0003'
down_revision: Union[str, Sequence[str], None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('stripe_customers',
    sa.Column('user_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('customer_id', sa.String(length=255), nullable=False),
    sa.Column('payment_method', sa.String(length=255), nullable=True),
    sa.Column('created_at', common.storage.base.UtcDateTimeColumn(), nullable=False),
    sa.Column('updated_at', common.storage.base.UtcDateTimeColumn(), nullable=False),
    sa.PrimaryKeyConstraint('user_id'),
    sa.UniqueConstraint('customer_id')
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('stripe_customers')
