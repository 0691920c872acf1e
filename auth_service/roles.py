"""Role use-cases: each one transaction that changes roles through `RoleDirectory` (the rules,
auth_service/rbac.py) and records `role_changed` in the same commit, so every gateway drops its
cached permissions (docs/architecture.md)."""
from auth_service.rbac import RoleDirectory
from common.clock import utcnow


class Roles:
    def __init__(self, sessions, events, protected=(), clock=utcnow):
        self.sessions = sessions
        self.events = events
        self.protected = list(protected)  # the role sign-ups get: never renamed or deleted
        self.clock = clock

    def listing(self, limit, offset):
        """[(role, number of holders)] of one page, and the total."""
        with self.sessions.read() as session:
            page = RoleDirectory(session).listing(limit, offset)
            return list(page.items), page.total

    def permissions(self, limit, offset):
        with self.sessions.read() as session:
            return RoleDirectory(session).permission_listing(limit, offset)

    def create(self, fields, actor):
        return self._change(lambda roles: roles.create(
            fields["name"], fields["category"], fields["permissions"], actor, self.clock()))

    def update(self, role_id, changes, actor):
        return self._change(lambda roles: roles.update(role_id, changes, actor))

    def grant(self, role_id, permission, actor=None):
        return self._change(lambda roles: roles.grant(role_id, permission, actor))

    def revoke(self, role_id, permission, actor=None):
        return self._change(lambda roles: roles.revoke(role_id, permission, actor))

    def delete(self, role_id, actor):
        with self.sessions.transaction() as session:
            RoleDirectory(session, protected=self.protected).delete(role_id, actor)
            self.events.record(session, "role_changed", role_id=role_id)

    def _change(self, change):
        with self.sessions.transaction() as session:
            role = change(RoleDirectory(session, protected=self.protected))
            self.events.record(session, "role_changed", role_id=role.id)
            return role  # its grants are loaded with it (selectin): the caller dumps it after commit
