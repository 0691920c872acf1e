"""Tables of the auth database: users, roles and their permissions, refresh-token
sessions, login throttling and the outbox."""
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from common.storage.audit import OperatorAuditMixin
from common.storage.base import Base as CommonBase
from common.storage.base import Timestamps, UtcDateTimeColumn
from common.storage.outbox import OutboxMixin


class Base(CommonBase):
    __abstract__ = True
    metadata = sa.MetaData()


user_roles = sa.Table(
    "user_roles",
    Base.metadata,
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    # RESTRICT: a role that users still hold cannot disappear under them.
    sa.Column("role_id", sa.ForeignKey("roles.id", ondelete="RESTRICT"), primary_key=True),
)


class Permission(Base):
    __tablename__ = "permissions"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    description: Mapped[str] = mapped_column(sa.String(255), default="")


class RolePermission(Base):
    __tablename__ = "role_permissions"

    role_id: Mapped[int] = mapped_column(sa.ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True)
    permission: Mapped[str] = mapped_column(
        sa.ForeignKey("permissions.name", ondelete="CASCADE"), primary_key=True)


class Role(Base):
    __tablename__ = "roles"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64), unique=True)
    category: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTimeColumn)

    grants: Mapped[list[RolePermission]] = relationship(
        cascade="all, delete-orphan", lazy="selectin")

    @property
    def permissions(self):
        return sorted(grant.permission for grant in self.grants)


class User(Timestamps, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    name: Mapped[str | None] = mapped_column(sa.String(100))
    phone: Mapped[str | None] = mapped_column(sa.String(32))
    notify_email: Mapped[bool] = mapped_column(default=True)
    notify_sms: Mapped[bool] = mapped_column(default=True)  # opt-out: SMS goes to users with a phone
    is_active: Mapped[bool] = mapped_column(default=True)

    roles: Mapped[list[Role]] = relationship(secondary=user_roles, lazy="selectin", order_by=Role.id)

    @property
    def permissions(self):
        return sorted({grant.permission for role in self.roles for grant in role.grants})


class RefreshToken(Base):
    """One refresh token of a session (`family_id`); each refresh replaces it with a new one."""

    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    family_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTimeColumn)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTimeColumn)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTimeColumn)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTimeColumn)
    # The pair this token was spent for, sealed with a key derived from the raw token (which
    # is never stored): a replay within the grace window can be answered with it again.
    successor_sealed: Mapped[str | None] = mapped_column(sa.Text)


class ThrottleCounter(Base):
    """One throttling counter (auth_service.throttling): attempts of one kind (`scope`) by one
    account or client address (`subject`) in the current window, shared by every auth
    instance through the database. Deleted once `expires_at` has passed."""

    __tablename__ = "throttle_counters"

    scope: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    subject: Mapped[str] = mapped_column(sa.String(254), primary_key=True)
    count: Mapped[int] = mapped_column(default=0)
    window_started_at: Mapped[datetime] = mapped_column(UtcDateTimeColumn)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTimeColumn)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTimeColumn, index=True)


class OutboxMessage(OutboxMixin, Base):
    pass


class OperatorCall(OperatorAuditMixin, Base):
    """One console call to this service (common.runtime.audit)."""
