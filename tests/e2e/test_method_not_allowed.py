"""A known path with the wrong method, on a running stack: 405 `method_not_allowed` with `Allow`,
before authentication and before any service is asked, so nothing changes."""
import pytest

from tests.e2e.conftest import ADMIN
from tests.e2e.test_grpc_api import at


def method_not_allowed(response, allowed):
    assert response.status_code == 405, response.text
    assert response.headers["Allow"] == ", ".join(allowed)
    assert response.json() == {"error": {
        "code": "method_not_allowed", "message": f"This endpoint accepts {', '.join(allowed)} only",
        "details": {"allowed": allowed}}}


@pytest.mark.parametrize("method, path, allowed", [
    ("DELETE", "/v1/auth/login", ["POST"]),
    ("PUT", "/v1/places", ["GET", "HEAD", "POST"]),
    ("POST", "/v1/places/1/availability", ["GET", "HEAD"]),
    ("DELETE", "/v1/reservations/7", ["GET", "HEAD", "PATCH"]),
    ("GET", "/v1/payments", None),  # no such path: 404, as before
])
def test_wrong_method_is_405_with_allow_and_unknown_path_stays_404(api, method, path, allowed):
    response = api.request(method, path, token=api.admin_token())
    if allowed is None:
        assert response.status_code == 404 and "Allow" not in response.headers
        assert response.json()["error"]["code"] == "not_found"
    else:
        method_not_allowed(response, allowed)


def test_a_wrong_method_changes_nothing(api):
    admin = api.admin_token()
    user, tokens = api.customer()
    token = tokens["access_token"]
    place = api.place()
    booked = api.book(token, place["id"], at(40, 9), at(40, 11))
    assert booked.status_code == 201, booked.text
    reservation = booked.json()
    path = f"/v1/reservations/{reservation['id']}"

    method_not_allowed(api.request("DELETE", path, token=token), ["GET", "HEAD", "PATCH"])
    method_not_allowed(api.request("PUT", path, token=token, json={
        "start": at(41, 9).isoformat(), "end": at(41, 11).isoformat()}), ["GET", "HEAD", "PATCH"])
    method_not_allowed(api.request("DELETE", path + "/cancel", token=token), ["POST"])
    method_not_allowed(api.request("PUT", f"/v1/places/{place['id']}", token=admin, json={"unit_price": 1}),
                       ["GET", "HEAD", "PATCH", "DELETE"])
    method_not_allowed(api.request("PUT", "/v1/users/me", token=token, json={"name": "Changed"}),
                       ["GET", "HEAD", "PATCH"])
    method_not_allowed(api.request("GET", "/v1/auth/logout", token=token), ["POST"])

    assert api.get(path, token=token).json() == reservation
    assert api.get(f"/v1/places/{place['id']}", token=token).json() == place
    assert api.get("/v1/users/me", token=token).json()["name"] == user.get("name")
    payments = api.get(f"/v1/payments/{reservation['payment_id']}", token=token).json()
    assert payments["refunded_amount"] == 0
    # The session the `GET /v1/auth/logout` named is still signed in.
    assert api.get("/v1/users/me", token=token).status_code == 200


def test_a_wrong_method_on_login_neither_signs_in_nor_counts_as_a_failure(api):
    user, _ = api.customer()
    wrong = {"email": user["email"], "password": "wrong-password"}
    for _ in range(6):  # more than LOGIN_MAX_FAILURES (5 on the e2e stacks)
        response = api.request("DELETE", "/v1/auth/login", json=wrong)
        method_not_allowed(response, ["POST"])
    right = api.request("PUT", "/v1/auth/login", json={"email": ADMIN["email"], "password": ADMIN["password"]})
    method_not_allowed(right, ["POST"])
    assert "Authentication" not in right.cookies
    assert api.post("/v1/auth/login", json={"email": user["email"], "password": user["password"]}).status_code == 200


def test_the_openapi_document_describes_405(api):
    spec = api.get("/openapi.json").json()
    assert "Allow" in spec["components"]["responses"]["MethodNotAllowed"]["headers"]
    assert spec["paths"]["/v1/auth/login"]["post"]["responses"]["405"] == {
        "$ref": "#/components/responses/MethodNotAllowed"}
