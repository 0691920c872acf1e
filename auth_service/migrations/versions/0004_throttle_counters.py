"""throttle counters per account and per client address; stored emails normalised

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04

"""
import logging
import unicodedata
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

from common.storage.base import UtcDateTimeColumn as UtcDateTime


# revision identifiers, used by Alembic.
revision: str = '0004'
down_revision: Union[str, Sequence[str], None] = '0003'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

log = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'throttle_counters',
        sa.Column('scope', sa.String(length=16), nullable=False),
        sa.Column('subject', sa.String(length=254), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('window_started_at', UtcDateTime(), nullable=False),
        sa.Column('locked_until', UtcDateTime(), nullable=True),
        sa.Column('expires_at', UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('scope', 'subject'),
    )
    op.create_index(op.f('ix_throttle_counters_expires_at'), 'throttle_counters', ['expires_at'], unique=False)
    op.drop_table('login_throttle')  # its counts are short-lived: nothing worth carrying over
    _normalise_stored_emails()


def _normalise_stored_emails():
    """Emails are keyed NFKC + lower-case from now on; existing accounts follow. An account
    whose normalised email another already holds keeps its email (and is logged for an
    operator to settle): two accounts never merge silently."""
    users = sa.table('users', sa.column('id', sa.Integer), sa.column('email', sa.String))
    connection = op.get_bind()
    rows = connection.execute(sa.select(users.c.id, users.c.email)).all()
    taken = {email for _, email in rows}
    for user_id, email in rows:
        normal = unicodedata.normalize("NFKC", email).strip().lower()
        if normal == email:
            continue
        if normal in taken:
            log.warning("user %s: email %r normalises to one another account holds; left as is", user_id, email)
            continue
        connection.execute(users.update().where(users.c.id == user_id).values(email=normal))
        taken.add(normal)


def downgrade() -> None:
    """Downgrade schema (normalised emails stay normalised)."""
    op.create_table(
        'login_throttle',
        sa.Column('email', sa.String(length=254), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('window_started_at', UtcDateTime(), nullable=False),
        sa.Column('locked_until', UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('email'),
    )
    op.drop_index(op.f('ix_throttle_counters_expires_at'), table_name='throttle_counters')
    op.drop_table('throttle_counters')
