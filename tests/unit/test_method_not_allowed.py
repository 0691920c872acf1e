"""A known path with a method it does not have: 405 `method_not_allowed` in the one error shape,
with `Allow`; an unknown path stays 404. Driven through the gateway's real WSGI app and URL map
(every declared route), without a running stack."""
import json

import pytest
from werkzeug.exceptions import MethodNotAllowed

from common import errors
from common.runtime.http_errors import STATUS, error_response
from gateway.openapi import build_spec
from gateway.routing import ROUTES


def body_of(response):
    return json.loads(response.get_data(as_text=True))


@pytest.mark.parametrize("method, path, allowed", [
    ("DELETE", "/v1/auth/login", ["POST"]),
    ("GET", "/v1/auth/login", ["POST"]),
    ("PUT", "/v1/places", ["GET", "HEAD", "POST"]),
    ("POST", "/v1/places/1/availability", ["GET", "HEAD"]),
    ("DELETE", "/v1/reservations/7", ["GET", "HEAD", "PATCH"]),
    ("PUT", "/v1/reservations/7", ["GET", "HEAD", "PATCH"]),
    ("GET", "/v1/reservations/7/cancel", ["POST"]),
    ("POST", "/v1/places/12", ["GET", "HEAD", "PATCH", "DELETE"]),
    ("DELETE", "/health", ["GET", "HEAD"]),
    ("POST", "/openapi.json", ["GET", "HEAD"]),
    ("OPTIONS", "/v1/users/me", ["GET", "HEAD", "PATCH"]),
])
def test_a_known_path_with_a_wrong_method_is_405_with_allow(client, method, path, allowed):
    response = client.open(path, method=method, json={"email": "a@example.com", "password": "x" * 12})
    assert response.status_code == 405
    assert response.headers["Allow"] == ", ".join(allowed)
    assert response.mimetype == "application/json"
    assert body_of(response) == {"error": {
        "code": "method_not_allowed", "message": f"This endpoint accepts {', '.join(allowed)} only",
        "details": {"allowed": allowed}}}
    assert response.headers["X-Content-Type-Options"] == "nosniff"  # the edge's headers, as on any answer


@pytest.mark.parametrize("method, path", [
    ("DELETE", "/v1/nothing-here"),
    ("GET", "/v1/auth/login/extra"),
    ("DELETE", "/v1/reservations/abc"),
    ("DELETE", "/v1/reservations/0"),            # the shape of a route, but no id any method takes
    ("GET", "/v1/places/0"),                      # werkzeug named PATCH, DELETE here (another rule)
    ("POST", "/v1/places/9223372036854775808"),
    ("POST", "/v1/reservations/99999999999999999999"),
    ("GET", "/v1/reservations/0/cancel"),
])
def test_an_unknown_path_stays_404_whatever_the_method(client, method, path):
    response = client.open(path, method=method)
    assert response.status_code == 404
    assert "Allow" not in response.headers
    assert body_of(response)["error"]["code"] == "not_found"


def test_the_status_comes_from_the_one_table():
    assert STATUS[errors.MethodNotAllowed] == 405
    response = error_response(MethodNotAllowed(valid_methods={"PATCH", "HEAD", "GET"}))
    assert (response.status_code, response.headers["Allow"]) == (405, "GET, HEAD, PATCH")
    assert body_of(response)["error"]["details"] == {"allowed": ["GET", "HEAD", "PATCH"]}


def test_every_operation_of_the_openapi_document_refers_to_the_405_answer():
    spec = build_spec()
    answer = spec["components"]["responses"]["MethodNotAllowed"]
    assert answer["headers"]["Allow"]["schema"] == {"type": "string"}
    assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert answer["content"]["application/json"]["example"]["error"]["code"] == "method_not_allowed"
    operations = [operation for path in spec["paths"].values() for operation in path.values()]
    assert len(operations) == len(ROUTES)
    for operation in operations:
        assert operation["responses"]["405"] == {"$ref": "#/components/responses/MethodNotAllowed"}
