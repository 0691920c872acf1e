"""The auth service in a real nameko container on the real broker: RPC calls, typed
errors across the wire, the user_registered event, and throttling across instances."""
import jwt
import pytest
from nameko.standalone.rpc import ServiceRpcClient

import common.runtime.rpc  # noqa: F401  (registers our errors so they arrive typed)
from auth_service.service import AuthService
from common.errors import Conflict, RateLimited, Unauthenticated, ValidationError
from common.permissions import PERMISSIONS
from tests.service.amqp_probe import EventProbe

ANN = {"email": "ann@example.com", "password": "password-123", "name": "Ann", "phone": "+14155550100"}


@pytest.fixture
def auth(auth_db, service_config, container_factory):
    container = container_factory(AuthService, service_config)
    container.start()
    with ServiceRpcClient("auth", timeout=10) as client:
        yield client


def test_register_login_and_principal_over_rpc(auth, service_config):
    probe = EventProbe(service_config["AMQP_URI"], "auth", "user_registered")
    user = auth.register(ANN)
    assert user["roles"] == [{"id": 4, "name": "Free", "category": "customer"}]
    assert "password" not in user and "password_hash" not in user

    [(kind, event)] = probe.drain(timeout=5)
    assert kind == "user_registered"
    assert {k: event[k] for k in ("user_id", "email", "name", "phone")} == {
        "user_id": user["id"], "email": "ann@example.com", "name": "Ann", "phone": "+14155550100"}
    probe.close()

    tokens = auth.login({"email": "ann@example.com", "password": "password-123"})
    assert tokens["token_type"] == "Bearer"


def test_errors_arrive_as_our_typed_exceptions(auth):
    auth.register(ANN)
    with pytest.raises(Conflict):
        auth.register(ANN)
    with pytest.raises(ValidationError) as invalid:
        auth.register({"email": "not-an-email", "password": "short"})
    assert set(invalid.value.details) == {"email", "password"}
    with pytest.raises(Unauthenticated):
        auth.login({"email": "ann@example.com", "password": "wrong-password"})


def test_operator_console_methods_manage_roles(auth):
    role = auth.create_role({"name": "Support", "category": "admin", "permissions": ["users:read"]})
    role = auth.grant_permission(role["id"], "roles:read")
    assert role["permissions"] == ["roles:read", "users:read"]
    role = auth.revoke_permission(role["id"], "users:read")
    assert role["permissions"] == ["roles:read"]
    assert "Support" in [r["name"] for r in auth.list_roles({"limit": 100})["items"]]
    auth.delete_role(role["id"])
    assert "Support" not in [r["name"] for r in auth.list_roles({"limit": 100})["items"]]


def test_roles_and_permissions_are_listed_page_by_page(auth):
    first = auth.list_roles({"limit": 2})
    assert [role["name"] for role in first["items"]] == ["Super Admin", "Admin"] and first["total"] == 7
    assert [role["name"] for role in auth.list_roles({"limit": 2, "offset": 6})["items"]] == ["Enterprise"]
    assert auth.list_roles()["total"] == 7  # default page: 20
    permissions = auth.list_permissions({"limit": 3, "offset": 1})
    assert [p["name"] for p in permissions["items"]] == sorted(PERMISSIONS)[1:4]
    assert permissions["total"] == len(PERMISSIONS)
    for bad in ({"limit": 0}, {"limit": 101}, {"offset": -1}, {"limit": "x"}, {"page": 2}, "all"):
        for listing in (auth.list_roles, auth.list_permissions):
            with pytest.raises(ValidationError):
                listing(bad)


def test_the_console_cannot_take_the_last_keys_away(auth):
    """The operator's calls refuse what would leave nobody able to manage roles and users'
    roles, as the API does; with a second keyholder the same changes go through."""
    super_admin = next(r for r in auth.list_roles()["items"] if r["name"] == "Super Admin")
    admin = auth.list_users({"role": "Super Admin"})["items"][0]
    for change in (lambda: auth.revoke_permission(super_admin["id"], "roles:manage"),
                   lambda: auth.revoke_permission(super_admin["id"], "users:manage_roles"),
                   lambda: auth.update_role(super_admin["id"], {"permissions": ["roles:read"]}),
                   lambda: auth.set_user_roles(admin["id"], {"roles": [{"name": "Admin"}]}),
                   lambda: auth.set_user_roles(admin["id"], {"roles": []})):
        with pytest.raises(Conflict) as refused:
            change()
        assert refused.value.details["permissions"] == ["roles:manage", "users:manage_roles"]
        assert refused.value.details["holders_after"] == 0
    assert auth.get_user(admin["id"])["permissions"] == super_admin["permissions"]  # nothing changed

    keys = auth.create_role({"name": "Keys", "category": "admin",
                             "permissions": ["roles:manage", "users:manage_roles"]})
    auth.create_user({"email": "keeper@example.com", "password": "password-123", "roles": [{"id": keys["id"]}]})
    assert "roles:manage" not in auth.revoke_permission(super_admin["id"], "roles:manage")["permissions"]
    with pytest.raises(Conflict):  # the keeper is the last one now
        auth.update_role(keys["id"], {"permissions": ["users:manage_roles"]})
    auth.grant_permission(super_admin["id"], "roles:manage")
    auth.update_role(keys["id"], {"permissions": ["users:manage_roles"]})


def test_login_throttling_holds_across_two_instances(auth_db, service_config, container_factory):
    for _ in range(2):  # two auth instances consume the same queue, round robin
        container_factory(AuthService, service_config).start()
    with ServiceRpcClient("auth", timeout=10) as auth:
        auth.register(ANN)
        for _ in range(5):  # LOGIN_MAX_FAILURES default
            with pytest.raises(Unauthenticated):
                auth.login({"email": "ann@example.com", "password": "wrong-password"})
        with pytest.raises(RateLimited):
            auth.login({"email": "ann@example.com", "password": "password-123"})


def test_an_operator_deactivates_a_user_and_every_session_ends(auth, service_config):
    user = auth.register(ANN)
    credentials = {"email": "ann@example.com", "password": "password-123"}
    pairs = [auth.login(credentials) for _ in range(2)]
    sessions = sorted(auth.principal(user["id"], _sid(pair))["session_id"] for pair in pairs)
    probe = EventProbe(service_config["AMQP_URI"], "auth", "session_revoked")

    deactivated = auth.deactivate_user(user["id"], "left the company")
    assert deactivated["is_active"] is False
    revoked = probe.drain(want=2, timeout=5)
    probe.close()
    assert sorted(body["session_id"] for _, body in revoked) == sessions
    assert {body["user_id"] for _, body in revoked} == {user["id"]}
    for pair in pairs:
        with pytest.raises(Unauthenticated):
            auth.principal(user["id"], _sid(pair))
        with pytest.raises(Unauthenticated):
            auth.refresh({"refresh_token": pair["refresh_token"]})
    with pytest.raises(Unauthenticated):
        auth.login(credentials)
    with pytest.raises(ValidationError):
        auth.deactivate_user(user["id"], "\x00")

    assert auth.reactivate_user(user["id"])["is_active"] is True
    assert auth.login(credentials)["access_token"]


def test_end_sessions_ends_them_all_but_the_user_may_log_in_again(auth):
    user = auth.register(ANN)
    credentials = {"email": "ann@example.com", "password": "password-123"}
    pairs = [auth.login(credentials) for _ in range(3)]
    assert auth.end_sessions(user["id"]) == {"ended": 3}
    for pair in pairs:
        with pytest.raises(Unauthenticated):
            auth.refresh({"refresh_token": pair["refresh_token"]})
    assert auth.end_sessions(user["id"]) == {"ended": 0}
    fresh = auth.login(credentials)
    assert auth.principal(user["id"], _sid(fresh))["user_id"] == user["id"]


def test_deactivating_the_last_keyholder_is_refused(auth):
    admin = auth.list_users({"role": "Super Admin"})["items"][0]
    with pytest.raises(Conflict) as refused:
        auth.deactivate_user(admin["id"])
    assert refused.value.details["holders_after"] == 0
    assert auth.get_user(admin["id"])["is_active"] is True


def _sid(pair):
    """The session id inside an access token (read, not verified: auth checks it)."""
    return jwt.decode(pair["access_token"], options={"verify_signature": False})["sid"]
