"""notifications name their reservation; guests of partner bookings have no user

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

Rows written before this revision keep reservation_id null: their events are not stored.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | Sequence[str] | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reservation_id', sa.BigInteger(), nullable=True))
        batch_op.alter_column('user_id', existing_type=sa.BigInteger(), nullable=True)
        batch_op.create_index(batch_op.f('ix_notifications_reservation_id'), ['reservation_id'], unique=False)


def downgrade() -> None:
    # Guests' rows have no user to keep them by: they go with the column's constraint back.
    op.execute(sa.text("DELETE FROM notifications WHERE user_id IS NULL"))
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notifications_reservation_id'))
        batch_op.alter_column('user_id', existing_type=sa.BigInteger(), nullable=False)
        batch_op.drop_column('reservation_id')
