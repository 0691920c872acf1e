"""/v1/users: the caller's own profile, and user administration."""
from common.contracts.auth import (
    UserAdminUpdateSchema,
    UserCreateSchema,
    UserFilterSchema,
    UserRolesSchema,
    UserSchema,
    UserUpdateSchema,
)
from common.permissions import requires
from common.runtime.rpc import TimedClient
from common.schemas import page_of
from gateway.principals import Authentication
from gateway.routing import route


class UserRoutes:
    # What this group uses; the gateway service class provides it (tests/unit/test_gateway_groups.py).
    auth: TimedClient
    authentication: Authentication

    @route("GET", "/v1/users/me", tag="users", response=UserSchema)
    def me(self, call):
        """The caller, with roles and permissions."""
        return self.auth.get_user(call.principal.user_id)

    @route("PATCH", "/v1/users/me", tag="users", body=UserUpdateSchema, response=UserSchema)
    def update_me(self, call):
        """Change the caller's name, phone or notification choices."""
        return self.auth.update_profile(call.principal.user_id, call.body)

    @route("POST", "/v1/users", tag="users", status=201, body=UserCreateSchema, response=UserSchema,
           errors=(409,))
    @requires("users:create")
    def create_user(self, call):
        """Create a user with roles given by id, or by name (created when missing)."""
        return self.auth.create_user(call.body, call.principal.as_actor())

    @route("GET", "/v1/users", tag="users", query=UserFilterSchema, response=page_of(UserSchema))
    @requires("users:read")
    def list_users(self, call):
        """List users, filterable by email fragment or role name."""
        return self.auth.list_users(call.query)

    @route("PUT", "/v1/users/{user_id}/roles", tag="users", body=UserRolesSchema, response=UserSchema,
           errors=(409,))
    @requires("users:manage_roles")
    def set_user_roles(self, call, user_id):
        """Replace a user's roles."""
        user = self.auth.set_user_roles(user_id, call.body, call.principal.as_actor())
        self.authentication.cache.forget_user(user_id)
        return user

    @route("PATCH", "/v1/users/{user_id}", tag="users", body=UserAdminUpdateSchema, response=UserSchema,
           errors=(404, 409))
    @requires("users:manage")
    def update_user(self, call, user_id):
        """Deactivate a user (`{"is_active": false}`: they cannot log in or refresh and every
        session of theirs ends at once) or reactivate one; 409 if it would leave nobody able
        to manage roles."""
        user = self.auth.update_user(user_id, call.body, call.principal.as_actor())
        self.authentication.cache.forget_user(user_id)
        return user
