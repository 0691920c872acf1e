"""the end_at side of the overlap index covers the query: start_at and quantity in it

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05

"""
from typing import Sequence, Union

from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0007'
down_revision: Union[str, Sequence[str], None] = '0006'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Availability and the booking's overlap check read start_at, end_at and quantity of the
    rows ending after a window starts: with all three in the index, no row is read."""
    with op.batch_alter_table('reservations', schema=None) as batch_op:
        batch_op.drop_index('ix_reservations_place_ending')
        batch_op.create_index('ix_reservations_place_ending',
                              ['place_id', 'status', 'end_at', 'start_at', 'quantity'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('reservations', schema=None) as batch_op:
        batch_op.drop_index('ix_reservations_place_ending')
        batch_op.create_index('ix_reservations_place_ending', ['place_id', 'status', 'end_at'], unique=False)
