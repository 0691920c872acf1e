"""The gateway's readiness probe against a running stack: `/ready/gateway` depends on what the
gateway needs (the broker and auth), so a notifications restart does not take the gateway out
of service, while `/ready` stays the status of the whole system (docs/deployment.md#probes)."""
import time

import pytest

from tests.e2e.conftest import running_stack

AUTH = "auth_service.service"
NOTIFICATIONS = "notifications_service.service"
SERVICES = [AUTH, "reservations_service.service", "payments_service.service", NOTIFICATIONS,
            "gateway.service:GatewayService"]


def _until(api, path, status, timeout=30):
    """The response of GET path once it answers `status` (or the last one at the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        response = api.get(path)
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.5)


@pytest.fixture
def stack_api(tmp_path):
    # One backend: the probes never touch a database of their own.
    with running_stack("sqlite", tmp_path, services=SERVICES) as api:
        yield api


def test_the_gateway_stays_ready_without_notifications_and_not_without_auth(stack_api):
    api = stack_api
    both = api.get("/ready/gateway")
    assert both.status_code == 200, both.text
    assert both.json() == {"status": "ok", "checks": {"broker": "ok", "auth": "ok"}}

    api.stack.stop_service(NOTIFICATIONS)
    system = _until(api, "/ready", 503)
    assert system.status_code == 503, system.text
    assert system.json()["checks"]["notifications"]["status"].startswith("unavailable")
    gateway = api.get("/ready/gateway")
    assert gateway.status_code == 200, gateway.text
    _, tokens = api.customer()  # and the gateway does serve: sign-up and sign-in need only auth
    assert api.get("/v1/users/me", token=tokens["access_token"]).status_code == 200

    api.stack.stop_service(AUTH)
    gateway = _until(api, "/ready/gateway", 503)
    assert gateway.status_code == 503, gateway.text
    assert gateway.json()["checks"]["auth"].startswith("unavailable") and gateway.json()["checks"]["broker"] == "ok"

    api.stack.start_service(AUTH)
    assert _until(api, "/ready/gateway", 200, timeout=60).status_code == 200
