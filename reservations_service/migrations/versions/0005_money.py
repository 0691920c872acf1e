"""money: the terms a reservation was booked at, and what was paid and refunded for it

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0005'
down_revision: Union[str, Sequence[str], None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema, then fill the new columns of existing reservations:
    the place's current unit and price (the best record of what they were booked at);
    paid = amount and payment_ids = [payment_id] for card bookings that were paid;
    refunded = what their cancellation sent; partner bookings owe no refund (Bookify
    never took the money)."""
    with op.batch_alter_table('reservations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('unit', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('unit_price', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('quantity', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('paid', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('refunded', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('payment_ids', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('refund_plan', sa.JSON(), nullable=True))

    bind = op.get_bind()
    bind.execute(sa.text(
        "UPDATE reservations SET "
        "unit = (SELECT places.unit FROM places WHERE places.id = reservations.place_id), "
        "unit_price = (SELECT places.unit_price FROM places WHERE places.id = reservations.place_id)"))
    paid = "payment_id IS NOT NULL AND partner IS NULL AND status IN ('confirmed', 'cancelled')"
    listed = ("'[' || payment_id || ']'" if bind.dialect.name == "sqlite"
              else "CONCAT('[', payment_id, ']')")
    bind.execute(sa.text(f"UPDATE reservations SET paid = amount, payment_ids = {listed} WHERE {paid}"))
    bind.execute(sa.text(
        "UPDATE reservations SET refunded = CASE WHEN refund_amount - refund_due > paid THEN paid "
        "WHEN refund_amount - refund_due < 0 THEN 0 ELSE refund_amount - refund_due END "
        f"WHERE {paid} AND status = 'cancelled'"))
    bind.execute(sa.text("UPDATE reservations SET payment_ids = '[]' WHERE payment_ids IS NULL"))
    bind.execute(sa.text(
        "UPDATE reservations SET refund_amount = 0, refund_due = 0 WHERE partner IS NOT NULL"))

    with op.batch_alter_table('reservations', schema=None) as batch_op:
        batch_op.alter_column('unit', existing_type=sa.String(length=8), nullable=False)
        batch_op.alter_column('unit_price', existing_type=sa.BigInteger(), nullable=False)
        batch_op.alter_column('payment_ids', existing_type=sa.JSON(), nullable=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('reservations', schema=None) as batch_op:
        batch_op.drop_column('refund_plan')
        batch_op.drop_column('payment_ids')
        batch_op.drop_column('refunded')
        batch_op.drop_column('paid')
        batch_op.drop_column('quantity')
        batch_op.drop_column('unit_price')
        batch_op.drop_column('unit')
