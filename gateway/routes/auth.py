"""/v1/auth: register, login (bearer tokens and the Authentication cookie), refresh, logout.
Login and registration pass the client's address to auth, which throttles per address: the
connection's peer, or behind TRUSTED_PROXY_HOPS proxies what they forwarded (common/runtime/http.py,
docs/security.md, Throttling)."""
from common.contracts.auth import LoginSchema, RefreshSchema, RegisterSchema, TokenPairSchema, UserSchema
from common.runtime.http import json_response
from common.runtime.rpc import TimedClient
from gateway.principals import Authentication
from gateway.routing import route


class AuthRoutes:
    # What this group uses; the gateway service class provides it (tests/unit/test_gateway_groups.py).
    auth: TimedClient
    authentication: Authentication

    @route("POST", "/v1/auth/register", tag="auth", status=201, public=True,
           body=RegisterSchema, response=UserSchema, errors=(409,))
    def register(self, call):
        """Create a customer account (default customer role)."""
        return self.auth.register(call.body, client_address=call.request.remote_addr)

    @route("POST", "/v1/auth/login", tag="auth", public=True, body=LoginSchema, response=TokenPairSchema,
           errors=(401, 429))
    def login(self, call):
        """Exchange email and password for tokens; also sets the Authentication cookie."""
        tokens = self.auth.login(call.body, client_address=call.request.remote_addr)
        response = json_response(tokens)
        self.authentication.set_cookie(response, tokens["access_token"], tokens["expires_in"])
        return response

    @route("POST", "/v1/auth/refresh", tag="auth", public=True, body=RefreshSchema, response=TokenPairSchema,
           errors=(401,))
    def refresh(self, call):
        """Rotate the refresh token: a new pair, and the old refresh token stops working."""
        tokens = self.auth.refresh(call.body)
        response = json_response(tokens)
        self.authentication.set_cookie(response, tokens["access_token"], tokens["expires_in"])
        return response

    @route("POST", "/v1/auth/logout", tag="auth", status=204)
    def logout(self, call):
        """End this session: its refresh token and access token stop working."""
        principal = call.principal
        self.auth.logout(principal.user_id, principal.session_id)
        self.authentication.cache.forget_session(principal.session_id)
        response = json_response(None, status=204)
        response.set_data(b"")
        self.authentication.clear_cookie(response)
        return response
