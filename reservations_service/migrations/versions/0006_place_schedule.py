"""place schedule: capacity, opening hours, slot grid, length limits, buffer

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0006'
down_revision: Union[str, Sequence[str], None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema. Existing places keep today's behaviour: capacity 1, no buffer, and NULL
    for the rest (always open, the unit's grid, no length limits)."""
    with op.batch_alter_table('places', schema=None) as batch_op:
        batch_op.add_column(sa.Column('capacity', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('opening_hours', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('slot_minutes', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('min_minutes', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('max_minutes', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('buffer_minutes', sa.Integer(), nullable=False, server_default='0'))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('places', schema=None) as batch_op:
        batch_op.drop_column('buffer_minutes')
        batch_op.drop_column('max_minutes')
        batch_op.drop_column('min_minutes')
        batch_op.drop_column('slot_minutes')
        batch_op.drop_column('opening_hours')
        batch_op.drop_column('capacity')
