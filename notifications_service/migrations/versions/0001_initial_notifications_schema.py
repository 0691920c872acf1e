"""initial notifications schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-25 18:05:38.663234

"""
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from alembic import op

# UTC times with microseconds (MySQL DATETIME would drop them).
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")

# revision identifiers, used by Alembic.
revision: str = '0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""

    op.create_table('contacts',
    sa.Column('user_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('name', sa.String(length=100), nullable=True),
    sa.Column('phone', sa.String(length=20), nullable=True),
    sa.Column('notify_email', sa.Boolean(), nullable=False),
    sa.Column('notify_sms', sa.Boolean(), nullable=False),
    sa.Column('as_of', Timestamp, nullable=False),
    sa.Column('updated_at', Timestamp, nullable=False),
    sa.PrimaryKeyConstraint('user_id')
    )
    op.create_table('notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('template', sa.String(length=64), nullable=False),
    sa.Column('recipient', sa.String(length=254), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('html', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('provider_message_id', sa.String(length=255), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('sending_until', Timestamp, nullable=True),
    sa.Column('created_at', Timestamp, nullable=False),
    sa.Column('updated_at', Timestamp, nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('event_id', 'channel')
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notifications_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_notifications_user_id'), ['user_id'], unique=False)

    op.create_table('outbox',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('event_type', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('created_at', Timestamp, nullable=False),
    sa.Column('published_at', Timestamp, nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('event_id')
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_published_at'), ['published_at'], unique=False)

    op.create_table('processed_events',
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('processed_at', Timestamp, nullable=False),
    sa.PrimaryKeyConstraint('event_id')
    )


def downgrade() -> None:
    """Downgrade schema."""

    op.drop_table('processed_events')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_published_at'))

    op.drop_table('outbox')
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notifications_user_id'))
        batch_op.drop_index(batch_op.f('ix_notifications_status'))

    op.drop_table('notifications')
    op.drop_table('contacts')
