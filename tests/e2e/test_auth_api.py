"""The auth part of the HTTP API, end to end against running services."""
import base64
import json
import time
import uuid

import jwt
import pytest

from tests.e2e.conftest import REFRESH_GRACE_SECONDS, SECRET


def _error(response, status, code):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and isinstance(body["error"]["details"], dict)
    return body["error"]


# -- registration and login ------------------------------------------------------------

def test_register_returns_the_user_without_secrets(api):
    user = api.register(name="Ann", phone="+14155550100")
    assert user["name"] == "Ann" and user["phone"] == "+14155550100"
    assert [role["name"] for role in user["roles"]] == ["Free"]
    assert not {"password", "password_hash"} & set(api.get("/v1/users/me", token=api.login(
        user["email"], user["password"])["access_token"]).json())


def test_duplicate_email_is_409(api):
    user = api.register()
    _error(api.post("/v1/auth/register", json={"email": user["email"].upper(), "password": "password-123"}),
           409, "conflict")


def test_self_registration_cannot_pick_roles(api):
    email = f"sneaky-{uuid.uuid4().hex[:8]}@example.com"
    error = _error(api.post("/v1/auth/register", json={
        "email": email, "password": "password-123", "roles": [{"name": "Super Admin"}]}),
        400, "validation_error")
    assert error["details"] == {"roles": ["Unknown field."]}
    # …and nothing was created: the same email still registers, as a plain customer.
    response = api.post("/v1/auth/register", json={"email": email, "password": "password-123"})
    assert response.status_code == 201 and [r["name"] for r in response.json()["roles"]] == ["Free"]


def test_validation_errors_name_each_field(api):
    error = _error(api.post("/v1/auth/register", json={"email": "nope", "password": "short", "phone": 12}),
                   400, "validation_error")
    assert set(error["details"]) == {"email", "password", "phone"}


def test_login_and_wrong_password(api):
    user = api.register()
    tokens = api.login(user["email"], user["password"])
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] > 0 and tokens["refresh_token"]
    me = api.get("/v1/users/me", token=tokens["access_token"]).json()
    assert me["id"] == user["id"] and me["permissions"] == ["reservations:create"]
    _error(api.post("/v1/auth/login", json={"email": user["email"], "password": "wrong-password"}),
           401, "unauthenticated")


def test_cookie_login(api):
    import requests

    user = api.register()
    browser = requests.Session()
    response = browser.post(api.base_url + "/v1/auth/login",
                            json={"email": user["email"], "password": user["password"]})
    assert "HttpOnly" in response.headers["Set-Cookie"] and "SameSite=Lax" in response.headers["Set-Cookie"]
    me = browser.get(api.base_url + "/v1/users/me")
    assert me.status_code == 200 and me.json()["email"] == user["email"]
    # A browser sends its page's Origin; a state-changing request by cookie must (docs/security.md).
    assert browser.post(api.base_url + "/v1/auth/logout", json={},
                        headers={"Origin": api.base_url}).status_code == 204
    assert browser.get(api.base_url + "/v1/users/me").status_code == 401


def test_brute_force_login_gets_429(api):
    user = api.register()
    for _ in range(5):
        _error(api.post("/v1/auth/login", json={"email": user["email"], "password": "guess-guess"}),
               401, "unauthenticated")
    response = api.post("/v1/auth/login", json={"email": user["email"], "password": user["password"]})
    error = _error(response, 429, "rate_limited")
    assert int(response.headers["Retry-After"]) == error["details"]["retry_after"] > 0
    # Another account is not affected.
    other = api.register()
    assert api.login(other["email"], other["password"])["access_token"]


# -- refresh and logout ----------------------------------------------------------------

def test_refresh_rotates_and_reuse_is_refused(api):
    user, first = api.customer()
    response = api.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert response.status_code == 200
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert api.get("/v1/users/me", token=second["access_token"]).status_code == 200

    time.sleep(REFRESH_GRACE_SECONDS + 0.5)  # past the grace window a replay is a theft
    reused = api.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    _error(reused, 401, "unauthenticated")
    # Reuse means theft: the whole session ends, the newer tokens too.
    _error(api.post("/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}),
           401, "unauthenticated")
    _error(api.get("/v1/users/me", token=second["access_token"]), 401, "unauthenticated")


def test_parallel_refreshes_of_one_token_all_get_the_same_working_pair(api):
    """Two tabs, or a client retrying after a lost answer: nobody is logged out."""
    from concurrent.futures import ThreadPoolExecutor

    _, first = api.customer()
    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(
            lambda _: api.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}),
            range(6)))
    assert [r.status_code for r in responses] == [200] * 6, [r.text for r in responses]
    pairs = [r.json() for r in responses]
    assert all(pair == pairs[0] for pair in pairs)
    assert api.get("/v1/users/me", token=pairs[0]["access_token"]).status_code == 200
    after = api.post("/v1/auth/refresh", json={"refresh_token": pairs[0]["refresh_token"]})
    assert after.status_code == 200, after.text
    assert api.get("/v1/users/me", token=after.json()["access_token"]).status_code == 200


def test_an_admin_deactivates_a_user_and_every_session_ends_at_once(api):
    admin = api.admin_token()
    user, first = api.customer()
    second = api.login(user["email"], user["password"])
    for pair in (first, second):  # both sessions are in use (and cached by the gateway)
        assert api.get("/v1/users/me", token=pair["access_token"]).status_code == 200

    for bad in ({"is_active": "no"}, {"is_active": 0}, {}, {"is_active": False, "reason": "\x00"},
                {"is_active": False, "x": 1}):
        _error(api.request("PATCH", f"/v1/users/{user['id']}", token=admin, json=bad), 400, "validation_error")
    assert api.get("/v1/users/me", token=first["access_token"]).status_code == 200  # nothing changed
    _error(api.request("PATCH", "/v1/users/999999", token=admin, json={"is_active": False}), 404, "not_found")

    response = api.request("PATCH", f"/v1/users/{user['id']}", token=admin,
                           json={"is_active": False, "reason": "chargeback fraud"})
    assert response.status_code == 200, response.text
    assert response.json()["is_active"] is False
    for pair in (first, second):
        _error(api.get("/v1/users/me", token=pair["access_token"]), 401, "unauthenticated")
        _error(api.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}),
               401, "unauthenticated")
    _error(api.post("/v1/auth/login", json={"email": user["email"], "password": user["password"]}),
           401, "unauthenticated")

    response = api.request("PATCH", f"/v1/users/{user['id']}", token=admin, json={"is_active": True})
    assert response.status_code == 200 and response.json()["is_active"] is True
    assert api.get("/v1/users/me", token=api.login(user["email"], user["password"])["access_token"]).status_code == 200


def test_the_last_keyholder_cannot_be_deactivated(api):
    admin = api.admin_token()
    me = api.get("/v1/users/me", token=admin).json()
    error = _error(api.request("PATCH", f"/v1/users/{me['id']}", token=admin, json={"is_active": False}),
                   409, "conflict")
    assert error["details"]["permissions"] == ["roles:manage", "users:manage_roles"]
    assert api.get("/v1/users/me", token=admin).status_code == 200


def test_logout_revokes_refresh_and_access_tokens(api):
    user, tokens = api.customer()
    assert api.post("/v1/auth/logout", token=tokens["access_token"]).status_code == 204
    refreshed = api.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    _error(refreshed, 401, "unauthenticated")
    _error(api.get("/v1/users/me", token=tokens["access_token"]), 401, "unauthenticated")


# -- forged tokens ---------------------------------------------------------------------

def _claims(api, tokens):
    return jwt.decode(tokens["access_token"], SECRET, algorithms=["HS256"], audience="bookify-api")


def _b64(data):
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_forged_tokens_are_refused(api):
    user, tokens = api.customer()
    claims = _claims(api, tokens)
    header, payload, signature = tokens["access_token"].split(".")
    admin_claims = dict(claims, sub="1")
    forged = {
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(admin_claims)}.",
        "tampered payload": f"{header}.{_b64(admin_claims)}.{signature}",
        "bad signature": jwt.encode(admin_claims, "another-secret-0123456789abcdef-0123", algorithm="HS256"),
        "expired": jwt.encode(dict(claims, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600),
                              SECRET, algorithm="HS256"),
        "garbage": "not.a.token",
    }
    for name, token in forged.items():
        response = api.get("/v1/users/me", token=token)
        assert response.status_code == 401, name
        assert response.json()["error"]["code"] == "unauthenticated", name
    assert api.get("/v1/users/me", token=tokens["access_token"]).status_code == 200


def test_a_session_cannot_be_borrowed_for_another_subject(api):
    """Even holding the signing secret, a user's own live session does not make them the
    admin: a token naming the admin but carrying the user's session is refused."""
    _, tokens = api.customer()
    admin_id = _claims(api, {"access_token": api.admin_token()})["sub"]
    claims = _claims(api, tokens)
    borrowed = jwt.encode(dict(claims, sub=admin_id), SECRET, algorithm="HS256")
    _error(api.get("/v1/users/me", token=borrowed), 401, "unauthenticated")
    _error(api.get("/v1/users", token=borrowed), 401, "unauthenticated")
    assert api.get("/v1/users/me", token=tokens["access_token"]).json()["id"] == int(claims["sub"])


def test_missing_or_malformed_authorization_is_401(api):
    _error(api.get("/v1/users/me"), 401, "unauthenticated")
    _error(api.get("/v1/users/me", headers={"Authorization": "Basic abc"}), 401, "unauthenticated")


# -- RBAC ------------------------------------------------------------------------------

ADMIN_ROUTES = [
    ("GET", "/v1/users", None), ("POST", "/v1/users", {"email": "x@example.com", "password": "password-123"}),
    ("PUT", "/v1/users/1/roles", {"roles": []}), ("GET", "/v1/roles", None),
    ("POST", "/v1/roles", {"name": "X", "category": "admin"}), ("PATCH", "/v1/roles/1", {"name": "X"}),
    ("DELETE", "/v1/roles/1", None), ("GET", "/v1/permissions", None),
    ("PATCH", "/v1/users/1", {"is_active": False}),
]


@pytest.mark.parametrize("method,path,body", ADMIN_ROUTES)
def test_customer_gets_403_on_admin_routes(api, method, path, body):
    _, tokens = api.customer()
    _error(api.request(method, path, token=tokens["access_token"], json=body), 403, "forbidden")


def test_admin_creates_user_with_existing_role_by_id_and_new_role_by_name(api):
    admin = api.admin_token()
    roles = api.get("/v1/roles", token=admin).json()["items"]
    moderator = next(role for role in roles if role["name"] == "Moderator")
    new_role = f"Night Shift {uuid.uuid4().hex[:6]}"
    response = api.post("/v1/users", token=admin, json={
        "email": f"mod-{uuid.uuid4().hex[:8]}@example.com", "password": "password-123",
        "roles": [{"id": moderator["id"]}, {"name": new_role}]})
    assert response.status_code == 201, response.text
    assert [role["name"] for role in response.json()["roles"]] == ["Moderator", new_role]
    created = next(r for r in api.get("/v1/roles", token=admin).json()["items"] if r["name"] == new_role)
    assert created["user_count"] == 1 and created["permissions"] == []


def test_granted_permission_works_on_the_next_request_with_the_same_token(api):
    admin = api.admin_token()
    user, tokens = api.customer()
    role = api.post("/v1/roles", token=admin, json={
        "name": f"Auditor {uuid.uuid4().hex[:6]}", "category": "customer", "permissions": []}).json()
    api.request("PUT", f"/v1/users/{user['id']}/roles", token=admin, json={"roles": [{"id": role["id"]}]})
    token = tokens["access_token"]
    _error(api.get("/v1/users", token=token), 403, "forbidden")

    api.request("PATCH", f"/v1/roles/{role['id']}", token=admin, json={"permissions": ["users:read"]})
    assert api.get("/v1/users", token=token).status_code == 200

    api.request("PATCH", f"/v1/roles/{role['id']}", token=admin, json={"permissions": []})
    _error(api.get("/v1/users", token=token), 403, "forbidden")


def test_role_in_use_cannot_be_deleted(api):
    admin = api.admin_token()
    user = api.register()
    role = api.post("/v1/roles", token=admin, json={
        "name": f"Temp {uuid.uuid4().hex[:6]}", "category": "admin", "permissions": ["users:read"]}).json()
    api.request("PUT", f"/v1/users/{user['id']}/roles", token=admin, json={"roles": [{"id": role["id"]}]})
    error = _error(api.request("DELETE", f"/v1/roles/{role['id']}", token=admin), 409, "conflict")
    assert error["details"] == {"user_count": 1}
    api.request("PUT", f"/v1/users/{user['id']}/roles", token=admin, json={"roles": [{"name": "Free"}]})
    assert api.request("DELETE", f"/v1/roles/{role['id']}", token=admin).status_code == 204


def test_roles_and_permissions_listing(api):
    admin = api.admin_token()
    roles = {r["name"]: r for r in api.get("/v1/roles", token=admin).json()["items"]}
    assert {"Super Admin", "Admin", "Moderator", "Free", "Pro", "Premium", "Enterprise"} <= set(roles)
    assert roles["Free"]["category"] == "customer" and roles["Admin"]["category"] == "admin"
    permissions = api.get("/v1/permissions", token=admin).json()
    assert "reservations:create" in [p["name"] for p in permissions["items"]]
    assert permissions["total"] == len(permissions["items"])


def test_roles_and_permissions_paginate_and_refuse_unknown_parameters(api):
    admin = api.admin_token()
    roles = api.get("/v1/roles?limit=2&offset=1", token=admin).json()
    assert [role["name"] for role in roles["items"]] == ["Admin", "Moderator"] and roles["total"] >= 7
    everything = api.get("/v1/permissions?limit=100", token=admin).json()
    page = api.get("/v1/permissions?limit=3&offset=2", token=admin).json()
    assert page == {"items": everything["items"][2:5], "total": everything["total"]}
    for path in ("/v1/roles", "/v1/permissions"):
        default = api.get(path, token=admin).json()  # 20 at most unless asked
        assert len(default["items"]) == min(20, default["total"])
        for query, field in (("limit=0", "limit"), ("limit=101", "limit"), ("offset=-1", "offset"),
                             ("limit=x", "limit"), ("page=2", "page"), ("limit=5&sort=name", "sort")):
            error = _error(api.get(f"{path}?{query}", token=admin), 400, "validation_error")
            assert list(error["details"]) == [field], (path, query, error)


def test_nobody_can_take_the_last_keys_to_roles_away(api):
    """PATCH /v1/roles/1 {"permissions": ["roles:read"]} used to answer 200 and leave nobody
    able to manage roles. Every change that would leave no active user holding both
    roles:manage and users:manage_roles is 409, and changes nothing."""
    admin = api.admin_token()
    me = api.get("/v1/users/me", token=admin).json()
    [super_admin] = [r for r in api.get("/v1/roles?limit=100", token=admin).json()["items"]
                     if r["name"] == "Super Admin"]
    refused = [
        api.request("PATCH", f"/v1/roles/{super_admin['id']}", token=admin, json={"permissions": ["roles:read"]}),
        api.request("PATCH", f"/v1/roles/{super_admin['id']}", token=admin,
                    json={"permissions": [p for p in super_admin["permissions"] if p != "users:manage_roles"]}),
        api.request("PUT", f"/v1/users/{me['id']}/roles", token=admin, json={"roles": [{"name": "Admin"}]}),
        api.request("PUT", f"/v1/users/{me['id']}/roles", token=admin, json={"roles": []}),
    ]
    for response in refused:
        error = _error(response, 409, "conflict")
        assert "manage roles" in error["message"]
        assert error["details"]["permissions"] == ["roles:manage", "users:manage_roles"]
        assert error["details"]["holders_after"] == 0
    assert api.get("/v1/users/me", token=admin).json()["permissions"] == me["permissions"]
    assert api.request("PATCH", f"/v1/roles/{super_admin['id']}", token=admin,
                       json={"name": "Super Admin"}).status_code == 200  # still in charge

    # With a second keyholder, the same kind of change is fine: the admin still holds the keys.
    keys = api.post("/v1/roles", token=admin, json={
        "name": f"Keys {uuid.uuid4().hex[:6]}", "category": "admin",
        "permissions": ["roles:manage", "users:manage_roles"]}).json()
    keeper = api.register()
    assert api.request("PUT", f"/v1/users/{keeper['id']}/roles", token=admin,
                       json={"roles": [{"id": keys["id"]}]}).status_code == 200
    assert api.request("PATCH", f"/v1/roles/{keys['id']}", token=admin,
                       json={"permissions": ["roles:read"]}).status_code == 200
    assert api.request("PUT", f"/v1/users/{keeper['id']}/roles", token=admin,
                       json={"roles": [{"name": "Free"}]}).status_code == 200
    assert api.request("DELETE", f"/v1/roles/{keys['id']}", token=admin).status_code == 204


def test_users_list_is_paginated(api):
    admin = api.admin_token()
    for _ in range(3):
        api.register()
    page = api.get("/v1/users?limit=2&offset=1", token=admin).json()
    assert len(page["items"]) == 2 and page["total"] >= 4
    _error(api.get("/v1/users?limit=1000", token=admin), 400, "validation_error")


def test_profile_update(api):
    user, tokens = api.customer()
    response = api.request("PATCH", "/v1/users/me", token=tokens["access_token"],
                           json={"name": "New Name", "notify_sms": False, "phone": "+447700900123"})
    assert response.status_code == 200
    assert (response.json()["name"], response.json()["notify_sms"]) == ("New Name", False)
    _error(api.request("PATCH", "/v1/users/me", token=tokens["access_token"], json={"email": "x@y.z"}),
           400, "validation_error")


# -- the HTTP edge ---------------------------------------------------------------------

def test_malformed_json_is_400(api):
    error = _error(api.post("/v1/auth/login", data="{not json", headers={"Content-Type": "application/json"}),
                   400, "validation_error")
    assert "body" in error["details"]
    _error(api.post("/v1/auth/login", json=[1, 2]), 400, "validation_error")


def test_body_over_one_mebibyte_is_413(api):
    big = json.dumps({"email": "a@example.com", "password": "x" * (1024 * 1024)})
    _error(api.post("/v1/auth/register", data=big, headers={"Content-Type": "application/json"}),
           413, "payload_too_large")


def test_unknown_route_is_a_json_404(api):
    _error(api.get("/v1/nothing-here"), 404, "not_found")


def test_health_ready_and_openapi(api):
    assert api.get("/health").json() == {"status": "ok"}
    ready = api.get("/ready").json()
    assert (ready["status"], ready["services"]) == (
        "ok", {"auth": "ok", "reservations": "ok", "payments": "ok", "notifications": "ok"})
    assert ready["checks"]["broker"] == "ok" and ready["checks"]["auth"] == {"status": "ok", "database": "ok"}
    spec = api.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert spec["paths"]["/v1/users"]["post"]["x-permission"] == "users:create"
    assert "#/components/schemas/Register" in json.dumps(spec["paths"]["/v1/auth/register"])
    register = spec["components"]["schemas"]["Register"]
    assert set(register["properties"]) == {"email", "password", "name", "phone"}
    assert spec["components"]["schemas"]["Error"]["properties"]["error"]
