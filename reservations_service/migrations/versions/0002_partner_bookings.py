"""partner bookings

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 18:03:14.706390

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0002'
down_revision: Union[str, Sequence[str], None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""

    with op.batch_alter_table('reservations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('partner', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('partner_ref', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('guest_name', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('guest_email', sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column('guest_phone', sa.String(length=32), nullable=True))
        batch_op.alter_column('user_id',
               existing_type=sa.BIGINT(),
               nullable=True)
        batch_op.create_unique_constraint('uq_reservations_partner_ref', ['partner', 'partner_ref'])




def downgrade() -> None:
    """Downgrade schema."""

    with op.batch_alter_table('reservations', schema=None) as batch_op:
        batch_op.drop_constraint('uq_reservations_partner_ref', type_='unique')
        batch_op.alter_column('user_id',
               existing_type=sa.BIGINT(),
               nullable=False)
        batch_op.drop_column('guest_phone')
        batch_op.drop_column('guest_email')
        batch_op.drop_column('guest_name')
        batch_op.drop_column('partner_ref')
        batch_op.drop_column('partner')


