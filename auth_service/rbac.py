"""Roles and permissions as data: role references resolved to roles, role CRUD, and the
rule that nobody hands out a permission they do not hold themselves."""
from sqlalchemy.exc import IntegrityError

from auth_service.models import Permission, Role, RolePermission
from auth_service.repository import PermissionRepository, RoleRepository
from common.errors import Conflict, Forbidden, NotFound, ValidationError
from common.permissions import PERMISSIONS

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

    def listing(self):
        counts = self.roles.holder_counts()
        return [(role, counts.get(role.id, 0)) for role in self.roles.all()]

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
