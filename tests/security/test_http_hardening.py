"""The HTTP edge: security headers on every response (errors and unknown routes too), the
body size limit (413) and the JSON nesting limit (400), always in the documented error shape."""
import json

import pytest

import gateway.service  # noqa: F401  (declares every route)
from common.runtime.http import SECURITY_HEADERS, nests_deeper_than, security_headers
from gateway.routing import PATH_PARAMETER, ROUTES
from tests.security.conftest import HSTS_MAX_AGE, error_of

EXPECTED_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Strict-Transport-Security": f"max-age={HSTS_MAX_AGE}; includeSubDomains",
}


def assert_hardened(response):
    missing = {name: value for name, value in EXPECTED_HEADERS.items()
               if response.headers.get(name) != value}
    assert not missing, (response.request.method, response.request.url, response.status_code,
                         dict(response.headers))
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


# -- units -------------------------------------------------------------------------------

def test_hsts_only_when_configured():
    assert "Strict-Transport-Security" not in security_headers({})
    assert "Strict-Transport-Security" not in security_headers({"hsts_max_age_seconds": 0})
    assert security_headers({"hsts_max_age_seconds": "600"})["Strict-Transport-Security"] == (
        "max-age=600; includeSubDomains")
    assert set(SECURITY_HEADERS) <= set(security_headers({}))


@pytest.mark.parametrize("text, deeper", [
    ("{}", False),
    (json.dumps({"roles": [{"name": "x"}]}), False),
    ("[" * 32 + "]" * 32, False),
    ("[" * 33 + "]" * 33, True),
    ('{"a":' * 33 + "1" + "}" * 33, True),
    (json.dumps({"text": "[" * 5000}), False),             # brackets inside a string
    (json.dumps({"text": '\\"' + "{" * 5000}), False),     # …after an escaped quote
    ("[]" * 100_000, False),                              # many, but flat
    ("[" * 100_000, True),                                # unbalanced, not even JSON
])
def test_nesting_is_measured_outside_strings(text, deeper):
    assert nests_deeper_than(text.encode(), 32) is deeper


# -- end to end --------------------------------------------------------------------------

def _every_route_once(stack, token):
    # logout last: it ends the session the other requests use
    for route in sorted(ROUTES, key=lambda r: r.path == "/v1/auth/logout"):
        path = PATH_PARAMETER.sub("1", route.path)
        yield stack.request(route.method, path, token=token)


def test_every_route_and_every_kind_of_error_carries_the_headers(stack):
    _, tokens = stack.customer()
    responses = [
        *_every_route_once(stack, None),                       # 401s, public 200s and 400s
        *_every_route_once(stack, tokens["access_token"]),     # 200s, 403s, 404s, 400s
        stack.get("/v1/nothing-here"),                           # unknown route
        stack.request("DELETE", "/health"),                      # method not allowed
        stack.get("/v1/reservations/0", token=stack.admin_token()),  # id out of range
        stack.post("/v1/auth/login", data="{not json", headers={"Content-Type": "application/json"}),
        stack.post("/v1/auth/register", data=b"x" * (1024 * 1024 + 1)),  # too large
        stack.post("/v1/auth/login", data="[" * 40 + "]" * 40),          # too deep
    ]
    statuses = {response.status_code for response in responses}
    assert {200, 204, 400, 401, 403, 404, 413} <= statuses, statuses
    for response in responses:
        assert_hardened(response)
    assert len(responses) >= 2 * len(ROUTES)


@pytest.mark.parametrize("chunked", [False, True])
def test_body_over_the_limit_is_413_in_the_error_shape(stack, chunked):
    body = json.dumps({"email": "a@example.com", "password": "x" * (1024 * 1024)}).encode()
    data = (body[i:i + 65536] for i in range(0, len(body), 65536)) if chunked else body
    response = stack.post("/v1/auth/register", data=data, headers={"Content-Type": "application/json"})
    error_of(response, 413, "payload_too_large")
    assert_hardened(response)


@pytest.mark.parametrize("depth", [33, 1000, 200_000])
def test_json_nested_too_deep_is_400_never_500(stack, depth):
    body = '{"email": ' + "[" * depth + "]" * depth + ', "password": "password-123"}'
    for path in ("/v1/auth/login", "/v1/auth/register", "/v1/webhooks/stripe"):
        response = stack.post(path, data=body, headers={"Content-Type": "application/json"})
        error = error_of(response, 400, "validation_error")
        assert error["details"] == {"body": ["Nested deeper than 32 levels."]}, path


def test_json_within_the_depth_limit_reaches_validation(stack):
    body = '{"email": ' + "[" * 31 + "]" * 31 + ', "password": "password-123"}'
    error = error_of(stack.post("/v1/auth/login", data=body), 400, "validation_error")
    assert "email" in error["details"]
