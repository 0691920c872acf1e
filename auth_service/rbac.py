"""Roles and permissions as data: role references resolved to roles, role CRUD, and two
rules: nobody hands out a permission they do not hold themselves, and no change leaves the
system without an active user who can still manage roles and users' roles (`Keyholders`)."""
from contextlib import contextmanager

from sqlalchemy.exc import IntegrityError

from auth_service.models import Permission, Role, RolePermission
from auth_service.repository import PermissionRepository, RoleRepository, UserRepository
from common.errors import Conflict, Forbidden, NotFound, ValidationError
from common.permissions import PERMISSIONS
from common.storage.repository import Page

SEEDED_ROLES = {
    "Super Admin": ("admin", sorted(PERMISSIONS)),
    "Admin": ("admin", [
        "users:create", "users:read", "users:manage_roles", "roles:read", "places:manage",
        "reservations:create", "reservations:read_any", "reservations:manage_any",
        "payments:read_any", "notifications:read_any",
    ]),
    "Moderator": ("admin", [
        "users:read", "roles:read", "reservations:read_any", "payments:read_any",
        "notifications:read_any",
    ]),
    "Free": ("customer", ["reservations:create"]),
    "Pro": ("customer", ["reservations:create"]),
    "Premium": ("customer", ["reservations:create"]),
    "Enterprise": ("customer", ["reservations:create"]),
}
SUPER_ADMIN = "Super Admin"
# Whoever holds both can repair any other mistake in roles over the API.
KEY_PERMISSIONS = ("roles:manage", "users:manage_roles")


class Keyholders:
    """The rule that someone can always administer roles: a change to roles, their
    permissions or who holds them must not take the last active user holding every
    KEY_PERMISSIONS away (Conflict). A system that has no such user already (before its
    first admin is seeded, or repaired by hand) takes any change, so an operator can mend
    it one step at a time.

    Every change that could take keys away runs inside `kept()`, which first locks one
    row that all of them share, so two changes that are each fine alone cannot both pass
    the check against what the other has not committed yet: MariaDB serialises them on
    that row (READ COMMITTED: the second one's count, taken after the lock, sees the
    first one's commit); SQLite's BEGIN IMMEDIATE has serialised every write already."""

    def __init__(self, session):
        self.session = session
        self.users = UserRepository(session)
        self.permissions = PermissionRepository(session)

    def count(self):
        return self.users.count_active_holding(KEY_PERMISSIONS)

    @contextmanager
    def kept(self):
        """Run a change; raises Conflict (rolling it back) if it took the last keyholder away.
        Enter it before reading what the change is about."""
        self.permissions.lock(KEY_PERMISSIONS[0])
        before = self.count()
        yield
        self.session.flush()
        if before and not self.count():
            raise Conflict(
                "This change would leave no active user who can manage roles and users' roles",
                {"permissions": list(KEY_PERMISSIONS), "holders_before": before, "holders_after": 0,
                 "hint": "Give both permissions to another active user first."})


class RoleDirectory:
    """Role use-cases inside one transaction. `actor` is None for operators and the seed
    (full trust), else {"user_id", "permissions"} from the gateway."""

    def __init__(self, session, protected=()):
        self.roles = RoleRepository(session)
        self.permissions = PermissionRepository(session)
        # Roles the service itself relies on by name (the one sign-ups get): they can be
        # edited, but not renamed or deleted, or registration would have no role to give.
        self.protected = {name.casefold() for name in protected}

    def _refuse_if_protected(self, role, doing):
        if role.name.casefold() in self.protected:
            raise Conflict(f"The role '{role.name}' is given at sign-up and cannot be {doing}",
                           {"id": role.id, "name": role.name})

    def resolve(self, refs, actor, now):
        """Roles for refs like {"id": 3} (must exist) or {"name": "X"} (created when missing)."""
        resolved = []
        for index, ref in enumerate(refs):
            if "id" in ref:
                role = self.roles.get(ref["id"])
                if role is None:
                    detail = {index: [f"No role with id {ref['id']}."]}
                    raise ValidationError("Unknown role", {"roles": detail})
            else:
                role = self.roles.by_name(ref["name"]) or self.roles.add_unique(
                    Role(name=ref["name"], category=ref.get("category", "customer"), created_at=now))
            if role not in resolved:
                resolved.append(role)
        for role in resolved:
            self.assert_grantable(role.permissions, actor)
        return resolved

    def create(self, name, category, permissions, actor, now):
        self._check_known(permissions)
        self.assert_grantable(permissions, actor)
        if self.roles.by_name(name) is not None:
            raise Conflict("A role with this name exists", {"name": [f"'{name}' is taken."]})
        role = Role(name=name, category=category, created_at=now,
                    grants=[RolePermission(permission=p) for p in sorted(set(permissions))])
        return self.roles.add_unique(role)

    def update(self, role_id, changes, actor):
        with Keyholders(self.roles.session).kept():
            return self._update(role_id, changes, actor)

    def grant(self, role_id, permission, actor):
        """Add one permission to a role (in the same transaction as reading what it has)."""
        with Keyholders(self.roles.session).kept():
            role = self.get(role_id)
            return self._update(role_id, {"permissions": sorted(set(role.permissions) | {permission})}, actor)

    def revoke(self, role_id, permission, actor):
        """Remove one permission from a role."""
        with Keyholders(self.roles.session).kept():
            role = self.get(role_id)
            return self._update(role_id, {"permissions": sorted(set(role.permissions) - {permission})}, actor)

    def _update(self, role_id, changes, actor):
        role = self.get(role_id)
        self.assert_grantable(role.permissions, actor)  # no editing roles above your own rights
        if "name" in changes and changes["name"].casefold() != role.name.casefold():
            self._refuse_if_protected(role, "renamed")
            if self.roles.by_name(changes["name"]) is not None:
                raise Conflict("A role with this name exists", {"name": [f"'{changes['name']}' is taken."]})
            try:
                with self.roles.session.begin_nested():
                    role.name = changes["name"]
                    self.roles.session.flush()
            except IntegrityError:  # the collation deems it taken, or a concurrent rename won
                raise Conflict("A role with this name exists", {"name": [f"'{changes['name']}' is taken."]}) from None
        if "category" in changes:
            role.category = changes["category"]
        if "permissions" in changes:
            wanted = set(changes["permissions"])
            self._check_known(wanted)
            self.assert_grantable(wanted, actor)
            role.grants = [g for g in role.grants if g.permission in wanted] + [
                RolePermission(permission=p) for p in sorted(wanted - set(role.permissions))]
        self.roles.session.flush()
        return role

    def delete(self, role_id, actor):
        # A role anybody holds cannot go (below), so this cannot take keys away today; the
        # rule still guards it, so it holds whatever deletion comes to mean.
        with Keyholders(self.roles.session).kept():
            role = self.get(role_id)
            self.assert_grantable(role.permissions, actor)
            self._refuse_if_protected(role, "deleted")
            holders = self.roles.holder_count(role.id)
            if holders:
                raise Conflict("Users still hold this role", {"user_count": holders})
            self.roles.delete(role)
            return role

    def get(self, role_id):
        role = self.roles.get(role_id)
        if role is None:
            raise NotFound("Role not found", {"id": role_id})
        return role

    def listing(self, limit, offset):
        """A page of (role, how many users hold it), by id."""
        page = self.roles.page(limit, offset)
        counts = self.roles.holder_counts()
        return Page([(role, counts.get(role.id, 0)) for role in page.items], page.total)

    def permission_listing(self, limit, offset):
        """A page of the permission catalogue, by name."""
        return self.permissions.page(limit, offset, order_by=Permission.name)

    def ensure_seeded(self, now):
        """Catalogue permissions and seeded roles exist; Super Admin holds every permission.
        Other seeded roles keep whatever admins changed since."""
        known = self.permissions.names()
        for name, description in PERMISSIONS.items():
            if name not in known:
                self.permissions.add(Permission(name=name, description=description))
        for name, (category, granted) in SEEDED_ROLES.items():
            role = self.roles.by_name(name)
            if role is None:
                self.create(name, category, granted, None, now)
            elif name == SUPER_ADMIN:
                missing = set(PERMISSIONS) - set(role.permissions)
                role.grants += [RolePermission(permission=p) for p in sorted(missing)]
        self.roles.session.flush()

    def _check_known(self, permissions):
        unknown = sorted(set(permissions) - set(PERMISSIONS))
        if unknown:
            raise ValidationError("Unknown permissions", {"permissions": [f"Unknown: {', '.join(unknown)}."]})

    @staticmethod
    def assert_grantable(permissions, actor):
        if actor is None:
            return
        beyond = sorted(set(permissions) - set(actor["permissions"]))
        if beyond:
            raise Forbidden("You cannot grant permissions you do not hold", {"permissions": beyond})
