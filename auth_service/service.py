"""The `auth` service: thin RPC entrypoints over the account and role use-cases.
Operators call them from the console (common.runtime.service says how)."""
import eventlet.tpool
import nameko

from auth_service.accounts import AccountPolicy, Accounts
from auth_service.models import OperatorCall, OutboxMessage
from auth_service.passwords import Passwords
from auth_service.roles import Roles
from auth_service.throttling import ThrottlePolicy
from common.config import require_jwt_secret, section
from common.contracts.actors import load_actor
from common.contracts.auth import (
    ClientAddressSchema,
    LoginSchema,
    PermissionChangeSchema,
    PermissionSchema,
    RefreshSchema,
    RegisterSchema,
    RoleCreateSchema,
    RoleIdSchema,
    RoleSchema,
    RoleUpdateSchema,
    SessionRefSchema,
    UserAdminUpdateSchema,
    UserCreateSchema,
    UserDeactivateSchema,
    UserFilterSchema,
    UserRefSchema,
    UserRolesSchema,
    UserSchema,
    UserUpdateSchema,
)
from common.runtime import service  # modules: `nameko run <module>` would run their classes as services
from common.runtime.rpc import rpc
from common.runtime.timers import configured_timer
from common.schemas import PageQuery, argument, query_or_empty
from common.tokens import TokenCodec, TokenSettings

users_out = UserSchema()
roles_out = RoleSchema()


class AuthComponents(service.Components):
    """Reads the JWT and AUTH config once; hands workers the token codec, hasher and policy."""

    def setup(self):
        config = nameko.config
        auth = section(config, "AUTH")
        require_jwt_secret(section(config, "JWT"))
        self.tokens = TokenCodec(TokenSettings.from_config(section(config, "JWT")))
        self.passwords = Passwords(offload=eventlet.tpool.execute)
        self.policy = AccountPolicy(
            default_role=auth.get("default_role", "Free"),
            refresh_ttl_seconds=int(section(config, "JWT").get("refresh_ttl_seconds", 2592000)),
            refresh_grace_seconds=int(section(config, "JWT").get("refresh_grace_seconds", 10)),
            throttle=ThrottlePolicy(
                max_failures=int(auth.get("login_max_failures", 5)),
                window_seconds=int(auth.get("login_failure_window_seconds", 900)),
                lockout_seconds=int(auth.get("login_lockout_seconds", 300)),
                login_limit_per_address=int(auth.get("login_limit_per_address", 50)),
                register_limit_per_address=int(auth.get("register_limit_per_address", 10)),
            ),
        )


class AuthService(service.BookifyService, audit_table=OperatorCall, outbox_table=OutboxMessage):
    name = "auth"

    components = AuthComponents()

    # -- sessions -----------------------------------------------------------------------

    @rpc
    def register(self, payload, client_address=None):
        """Self-registration; the user gets the default customer role. `client_address` (the
        gateway passes the caller's) counts against REGISTER_LIMIT_PER_ADDRESS; None (the
        console) meets no per-address limit.
        Example: n.rpc.auth.register({"email": "ann@example.com", "password": "s3cret-pass"})"""
        fields = RegisterSchema().load_or_raise(payload)
        address = argument(ClientAddressSchema, client_address=client_address)
        return users_out.dump(self._accounts().register(fields, address))

    @rpc
    def login(self, payload, client_address=None):
        """Exchange email+password for tokens. 429 after repeated failures for the account,
        or from `client_address` (LOGIN_LIMIT_PER_ADDRESS; None: no per-address limit).
        Example: n.rpc.auth.login({"email": "ann@example.com", "password": "s3cret-pass"})"""
        fields = LoginSchema().load_or_raise(payload)
        address = argument(ClientAddressSchema, client_address=client_address)
        return self._accounts().login(fields["email"], fields["password"], address)

    @configured_timer("AUTH", "throttle_purge_seconds", default=300)
    def purge_throttling(self):
        """Delete throttling rows whose window and lockout are over."""
        self._accounts().purge_throttling()

    @rpc
    def refresh(self, payload):
        """Rotate a refresh token: returns a new pair; the old token stops working.
        Example: n.rpc.auth.refresh({"refresh_token": "…"})"""
        fields = RefreshSchema().load_or_raise(payload)
        return self._accounts().refresh(fields["refresh_token"])

    @rpc
    def logout(self, user_id, session_id):
        """Revoke a session (its refresh token and, at the gateway, its access token).
        Example: n.rpc.auth.logout(7, "5b0c…")"""
        ref = SessionRefSchema().load_or_raise({"user_id": user_id, "session_id": session_id})
        self._accounts().logout(ref["user_id"], ref["session_id"])

    @rpc
    def principal(self, user_id, session_id):
        """Permissions of a user's live session (the gateway caches this).
        Example: n.rpc.auth.principal(7, "5b0c…")"""
        ref = SessionRefSchema().load_or_raise({"user_id": user_id, "session_id": session_id})
        return self._accounts().principal(ref["user_id"], ref["session_id"])

    # -- users --------------------------------------------------------------------------

    @rpc
    def get_user(self, user_id):
        """A user with roles and permissions. Example: n.rpc.auth.get_user(1)"""
        return users_out.dump(self._accounts().get_user(argument(UserRefSchema, user_id=user_id)))

    @rpc
    def update_profile(self, user_id, payload):
        """Change name, phone or notification choices.
        Example: n.rpc.auth.update_profile(7, {"phone": "+14155550100", "notify_sms": True})"""
        user_id = argument(UserRefSchema, user_id=user_id)
        changes = UserUpdateSchema().load_or_raise(payload)
        return users_out.dump(self._accounts().update_profile(user_id, changes))

    @rpc
    def create_user(self, payload, actor=None):
        """Create a user with roles by id or by name (a missing name is created).
        Example: n.rpc.auth.create_user({"email": "mod@example.com", "password": "long-password",
                 "roles": [{"id": 3}, {"name": "Night Shift"}]})"""
        fields = UserCreateSchema().load_or_raise(payload)
        return users_out.dump(self._accounts().create_user(fields, load_actor(actor)))

    @rpc
    def set_user_roles(self, user_id, payload, actor=None):
        """Replace a user's roles. Example: n.rpc.auth.set_user_roles(7, {"roles": [{"name": "Pro"}]})"""
        user_id = argument(UserRefSchema, user_id=user_id)
        fields = UserRolesSchema().load_or_raise(payload)
        return users_out.dump(self._accounts().set_roles(user_id, fields["roles"], load_actor(actor)))

    @rpc
    def deactivate_user(self, user_id, reason=None, actor=None):
        """Deactivate a user: they cannot log in or refresh, and every session of theirs ends
        at once. Refused (409) if it would leave no active user holding roles:manage and
        users:manage_roles. Example: n.rpc.auth.deactivate_user(7, "left the company")"""
        fields = UserDeactivateSchema().load_or_raise({"user_id": user_id, "reason": reason})
        user = self._accounts().deactivate(fields["user_id"], fields.get("reason"), load_actor(actor))
        return users_out.dump(user)

    @rpc
    def reactivate_user(self, user_id, actor=None):
        """Let a deactivated user log in again (their old sessions stay ended).
        Example: n.rpc.auth.reactivate_user(7)"""
        user_id = argument(UserRefSchema, user_id=user_id)
        return users_out.dump(self._accounts().reactivate(user_id, load_actor(actor)))

    @rpc
    def update_user(self, user_id, payload, actor=None):
        """What an admin changes about an account (PATCH /v1/users/{id}): `is_active` false
        deactivates (see deactivate_user), true reactivates.
        Example: n.rpc.auth.update_user(7, {"is_active": False, "reason": "fraud"})"""
        user_id = argument(UserRefSchema, user_id=user_id)
        fields = UserAdminUpdateSchema().load_or_raise(payload)
        actor = load_actor(actor)
        if fields["is_active"]:
            return users_out.dump(self._accounts().reactivate(user_id, actor))
        return users_out.dump(self._accounts().deactivate(user_id, fields.get("reason"), actor))

    @rpc
    def end_sessions(self, user_id, actor=None):
        """End every session of a user now (a lost device, a leaked token); they may log in
        again. Returns how many ended. Example: n.rpc.auth.end_sessions(7)  # {"ended": 2}"""
        user_id = argument(UserRefSchema, user_id=user_id)
        return {"ended": self._accounts().end_sessions(user_id, load_actor(actor))}

    @rpc
    def list_users(self, query=None):
        """Users page by page, filterable by email fragment or role name.
        Example: n.rpc.auth.list_users({"limit": 20, "offset": 0, "role": "Super Admin"})"""
        filters = UserFilterSchema().load_or_raise(query_or_empty(query))
        page = self._accounts().list_users(**filters)
        return {"items": [users_out.dump(user) for user in page.items], "total": page.total}

    # -- roles and permissions ----------------------------------------------------------

    @rpc
    def list_roles(self, query=None):
        """Roles page by page, each with its permissions and how many users hold it.
        Example: n.rpc.auth.list_roles({"limit": 50, "offset": 0})"""
        page = PageQuery().load_or_raise(query_or_empty(query))
        roles, total = self._roles().listing(page["limit"], page["offset"])
        return {"items": [dict(roles_out.dump(role), user_count=count) for role, count in roles], "total": total}

    @rpc
    def create_role(self, payload, actor=None):
        """Example: n.rpc.auth.create_role({"name": "Support", "category": "admin",
                 "permissions": ["users:read", "reservations:read_any"]})"""
        fields = RoleCreateSchema().load_or_raise(payload)
        return roles_out.dump(self._roles().create(fields, load_actor(actor)))

    @rpc
    def update_role(self, role_id, payload, actor=None):
        """Rename a role or replace its permissions; applies on the caller's next request.
        Example: n.rpc.auth.update_role(3, {"permissions": ["users:read"]})"""
        role_id = argument(RoleIdSchema, role_id=role_id)
        changes = RoleUpdateSchema().load_or_raise(payload)
        return roles_out.dump(self._roles().update(role_id, changes, load_actor(actor)))

    @rpc
    def grant_permission(self, role_id, permission):
        """Add one permission to a role. Example: n.rpc.auth.grant_permission(3, "places:manage")"""
        fields = PermissionChangeSchema().load_or_raise({"role_id": role_id, "permission": permission})
        return roles_out.dump(self._roles().grant(fields["role_id"], fields["permission"]))

    @rpc
    def revoke_permission(self, role_id, permission):
        """Remove one permission from a role. Example: n.rpc.auth.revoke_permission(3, "places:manage")"""
        fields = PermissionChangeSchema().load_or_raise({"role_id": role_id, "permission": permission})
        return roles_out.dump(self._roles().revoke(fields["role_id"], fields["permission"]))

    @rpc
    def delete_role(self, role_id, actor=None):
        """Delete a role nobody holds (Conflict otherwise). Example: n.rpc.auth.delete_role(9)"""
        self._roles().delete(argument(RoleIdSchema, role_id=role_id), load_actor(actor))

    @rpc
    def list_permissions(self, query=None):
        """The permissions a route can demand, page by page, by name.
        Example: n.rpc.auth.list_permissions({"limit": 100})"""
        page = PageQuery().load_or_raise(query_or_empty(query))
        permissions = self._roles().permissions(page["limit"], page["offset"])
        return {"items": PermissionSchema(many=True).dump(permissions.items), "total": permissions.total}

    # -- internals ----------------------------------------------------------------------

    def _roles(self):
        """Role use-cases, with the role sign-ups get protected from rename and delete."""
        return Roles(self.db, self.events, protected=[self.components.policy.default_role])

    def _accounts(self):
        c = self.components
        return Accounts(self.db, self.events, c.tokens, c.passwords, c.policy)
