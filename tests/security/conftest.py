"""One running stack (SQLite) for the security tests, started as `make run` starts it, with
HSTS switched on and provider keys the log scan can recognise."""
import pytest

from tests.e2e.conftest import running_stack

# Stand-ins for real provider keys: the stack never sends them anywhere but localstripe.
STRIPE_KEY = "sk_test_security_scan_4f1c2b9e7d"
HSTS_MAX_AGE = 31536000


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    # Metrics listeners off: their fixed ports would clash with another stack on this host.
    metrics_off = {f"{name}_METRICS_PORT": "0" for name in
                   ("AUTH", "RESERVATIONS", "PAYMENTS", "NOTIFICATIONS", "GATEWAY", "GRPC_GATEWAY")}
    with running_stack("sqlite", tmp_path_factory.mktemp("security"), STRIPE_API_KEY=STRIPE_KEY,
                       HSTS_MAX_AGE=str(HSTS_MAX_AGE), **metrics_off) as api:
        yield api


def error_of(response, status, code=None):
    """The error body of `response`, checked to be the documented shape with this status."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    error = body["error"]
    assert isinstance(error["message"], str) and isinstance(error["details"], dict), body
    if code is not None:
        assert error["code"] == code, body
    return error
