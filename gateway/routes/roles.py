"""/v1/roles and /v1/permissions: roles as data, editable at runtime."""
from common.contracts.auth import PermissionSchema, RoleCreateSchema, RoleSchema, RoleUpdateSchema
from common.permissions import requires
from common.runtime.rpc import TimedClient
from common.schemas import PageQuery, page_of
from gateway.principals import Authentication
from gateway.routing import route


class RoleRoutes:
    # What this group uses; the gateway service class provides it (tests/unit/test_gateway_groups.py).
    auth: TimedClient
    authentication: Authentication

    @route("GET", "/v1/roles", tag="roles", query=PageQuery, response=page_of(RoleSchema))
    @requires("roles:read")
    def list_roles(self, call):
        """Roles with their permissions and number of holders, by id."""
        return self.auth.list_roles(call.query)

    @route("POST", "/v1/roles", tag="roles", status=201, body=RoleCreateSchema, response=RoleSchema,
           errors=(409,))
    @requires("roles:manage")
    def create_role(self, call):
        """Create a role with a category and permissions."""
        return self._changed_role(self.auth.create_role(call.body, call.principal.as_actor()))

    @route("PATCH", "/v1/roles/{role_id}", tag="roles", body=RoleUpdateSchema, response=RoleSchema,
           errors=(409,))
    @requires("roles:manage")
    def update_role(self, call, role_id):
        """Rename a role or replace its permissions; applies from the next request."""
        return self._changed_role(self.auth.update_role(role_id, call.body, call.principal.as_actor()))

    @route("DELETE", "/v1/roles/{role_id}", tag="roles", status=204, errors=(409,))
    @requires("roles:manage")
    def delete_role(self, call, role_id):
        """Delete a role; 409 while users still hold it."""
        self.auth.delete_role(role_id, call.principal.as_actor())
        self._changed_role(None)
        return 204, ""

    @route("GET", "/v1/permissions", tag="roles", query=PageQuery, response=page_of(PermissionSchema))
    @requires("roles:read")
    def list_permissions(self, call):
        """The permission names a route can demand, by name."""
        return self.auth.list_permissions(call.query)

    def _changed_role(self, role):
        # This instance forgets at once; the others on auth's role_changed event.
        self.authentication.cache.clear()
        return role
