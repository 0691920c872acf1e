"""Permissions: the catalogue of names routes can demand, the caller's identity, and the
`requires` mark for gateway routes. Which roles hold which permission is data (auth DB)."""
from dataclasses import dataclass, field

from common.errors import Forbidden

PERMISSIONS = {
    "users:create": "Create users and give them roles",
    "users:read": "List and read any user",
    "users:manage_roles": "Replace a user's roles",
    "users:manage": "Deactivate or reactivate users and end their sessions",
    "roles:read": "List roles and permissions",
    "roles:manage": "Create, change and delete roles",
    "places:manage": "Create, change and delete places",
    "reservations:create": "Book a place",
    "reservations:read_any": "Read anyone's reservations",
    "reservations:manage_any": "Reschedule or cancel anyone's reservation",
    "payments:read_any": "Read anyone's payments",
    "notifications:read_any": "Read anyone's notification log",
}


@dataclass(frozen=True)
class Principal:
    """Who is calling: the authenticated user, their session and what they may do."""

    user_id: int
    session_id: str
    permissions: frozenset = field(default_factory=frozenset)

    def can(self, permission):
        return permission in self.permissions

    def as_actor(self):
        """The JSON-safe form passed to services over RPC."""
        return {"user_id": self.user_id, "permissions": sorted(self.permissions)}


def requires(permission):
    """Mark a gateway route as demanding `permission` (checked before the handler runs)."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}; add it to PERMISSIONS")

    def mark(handler):
        handler.required_permission = permission
        return handler

    return mark


def may_see(actor, owner_id, permission):
    """The one visibility rule: `actor` (an RPC actor dict; None for an operator at the
    console) may see or act on what `owner_id` owns when it is theirs or they hold
    `permission` (e.g. "payments:read_any"). Callers answer NotFound otherwise, never
    Forbidden: someone else's things are not revealed to exist."""
    return actor is None or actor["user_id"] == owner_id or permission in actor.get("permissions", ())


def owner_filter(actor, requested_user_id, permission):
    """The user a listing is limited to by the same rule: whoever was asked for, for an operator
    or a holder of `permission`; the actor themself otherwise, whatever they asked for."""
    if actor is None or permission in actor.get("permissions", ()):
        return requested_user_id
    return actor["user_id"]


def authorize(principal, permission):
    """Raise Forbidden unless `principal` holds `permission`."""
    if permission and not principal.can(permission):
        raise Forbidden(f"This needs the '{permission}' permission", {"permission": permission})
