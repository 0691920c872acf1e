"""Persistence of the auth domain behind repositories (SQLAlchemy implementation)."""
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from auth_service.models import (
    Permission,
    RefreshToken,
    Role,
    RolePermission,
    ThrottleCounter,
    User,
    user_roles,
)
from common.errors import Conflict
from common.storage.repository import SqlRepository


class UserRepository(SqlRepository[User]):
    model = User

    def by_email(self, email):
        return self.session.scalar(sa.select(User).where(User.email == email.lower()))

    def search(self, limit, offset, email=None, role=None):
        where = []
        if email:
            where.append(User.email.contains(email.lower(), autoescape=True))
        if role:
            where.append(User.roles.any(Role.name == role))
        return self.page(limit, offset, where=where)

    def count_active_holding(self, permissions):
        """How many active users hold every one of `permissions`, through any of their roles."""
        def holds(permission):
            return sa.exists().where(
                user_roles.c.user_id == User.id,
                user_roles.c.role_id == RolePermission.role_id,
                RolePermission.permission == permission)

        return self.session.scalar(
            sa.select(sa.func.count()).select_from(User).where(
                User.is_active.is_(True), *(holds(p) for p in permissions)))


class RoleRepository(SqlRepository[Role]):
    model = Role

    def by_name(self, name):
        """Names match case-insensitively. Compared in Python: SQLite's lower() folds ASCII
        only, and MariaDB's collation folds accents too; roles are few."""
        wanted = name.casefold()
        return next((role for role in self.all() if role.name.casefold() == wanted), None)

    def add_unique(self, role):
        """Add a role; Conflict when the database deems its name taken (a concurrent
        create, or a collation that also folds accents)."""
        try:
            with self.session.begin_nested():
                return self.add(role)
        except IntegrityError:
            raise Conflict("A role with this name exists", {"name": [f"'{role.name}' is taken."]}) from None

    def all(self):
        return self.session.scalars(sa.select(Role).order_by(Role.id)).all()

    def holder_counts(self):
        rows = self.session.execute(
            sa.select(user_roles.c.role_id, sa.func.count()).group_by(user_roles.c.role_id))
        return dict(rows.all())

    def holder_count(self, role_id):
        return self.session.scalar(
            sa.select(sa.func.count()).select_from(user_roles).where(user_roles.c.role_id == role_id))


class PermissionRepository(SqlRepository[Permission]):
    model = Permission

    def all(self):
        return self.session.scalars(sa.select(Permission).order_by(Permission.name)).all()

    def names(self):
        return set(self.session.scalars(sa.select(Permission.name)).all())

    def lock(self, name):
        """Lock one permission's row until the transaction ends (MariaDB: FOR UPDATE; SQLite
        has taken its write lock at BEGIN IMMEDIATE already)."""
        self.session.execute(sa.select(Permission.name).where(Permission.name == name).with_for_update())


class RefreshTokenRepository(SqlRepository[RefreshToken]):
    model = RefreshToken

    def by_hash_for_update(self, token_hash):
        return self.session.scalar(
            sa.select(RefreshToken).where(RefreshToken.token_hash == token_hash).with_for_update())

    def revoke_family(self, family_id, at: datetime):
        self.session.execute(
            sa.update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=at))

    def live_families_of(self, user_id, now: datetime):
        """Ids of the user's sessions that are neither revoked nor expired, oldest first."""
        return self.session.scalars(
            sa.select(RefreshToken.family_id).where(
                RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None),
                RefreshToken.expires_at > now)
            .group_by(RefreshToken.family_id).order_by(sa.func.min(RefreshToken.id))).all()

    def family_is_active(self, family_id, user_id, now: datetime):
        """A session of `user_id` lives while its newest token is neither revoked nor expired.
        Another user's session never counts: a token naming one user and another's session
        is refused."""
        return self.session.scalar(
            sa.select(sa.func.count()).select_from(RefreshToken).where(
                RefreshToken.family_id == family_id,
                RefreshToken.user_id == user_id,
                RefreshToken.revoked_at.is_(None),
                RefreshToken.used_at.is_(None),
                RefreshToken.expires_at > now,
            )) > 0


class ThrottleRepository(SqlRepository[ThrottleCounter]):
    model = ThrottleCounter

    def locked(self, scope, subject, now):
        """The counter row, locked until the transaction ends; created when missing (race-safe:
        a concurrent creator wins the insert, and this one then waits on its row lock)."""
        key = {"scope": scope, "subject": subject}
        row = self.session.get(ThrottleCounter, key, with_for_update=True)
        if row is not None:
            return row
        try:
            with self.session.begin_nested():
                row = ThrottleCounter(scope=scope, subject=subject, count=0, window_started_at=now,
                                      expires_at=now)
                self.session.add(row)
        except IntegrityError:  # another instance created it first
            row = self.session.get(ThrottleCounter, key, with_for_update=True, populate_existing=True)
        return row

    def delete_key(self, scope, subject):
        self.session.execute(sa.delete(ThrottleCounter).where(
            ThrottleCounter.scope == scope, ThrottleCounter.subject == subject))

    def give_back(self, scope, subject):
        """One reserved attempt returned (one UPDATE: atomic without a read)."""
        self.session.execute(sa.update(ThrottleCounter).where(
            ThrottleCounter.scope == scope, ThrottleCounter.subject == subject, ThrottleCounter.count > 0,
        ).values(count=ThrottleCounter.count - 1))

    def delete_expired(self, now):
        return self.session.execute(sa.delete(ThrottleCounter).where(
            ThrottleCounter.expires_at < now, sa.or_(
                ThrottleCounter.locked_until.is_(None), ThrottleCounter.locked_until < now))).rowcount
