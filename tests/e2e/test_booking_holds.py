"""A hold whose payment never completes (the payments service is down) answers 503 and
keeps the slot only until the hold runs out; then the sweeper frees it."""
import time
from datetime import datetime, timedelta, timezone

import pytest

from scripts.launcher import SERVICES
from tests.conftest import BACKENDS
from tests.e2e.conftest import running_stack


@pytest.fixture(params=BACKENDS)
def api_without_payments(request, tmp_path):
    services = [s for s in SERVICES if not s.startswith("payments_service")]
    with running_stack(request.param, tmp_path, services=services, ready_path="/health",
                       BOOKING_HOLD_SECONDS="3", BOOKING_SWEEP_INTERVAL="0.5", RPC_TIMEOUT="2") as api:
        deadline = time.monotonic() + 30  # /ready stays 503 without payments: wait for the rest
        while not all(api.get("/ready").json()["services"][name] == "ok" for name in ("auth", "reservations")):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        yield api


def test_hold_expiry_frees_the_window(api_without_payments):
    api = api_without_payments
    place = api.place()
    _, tokens = api.customer()
    token = tokens["access_token"]
    start = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
    end = start + timedelta(hours=1)
    span = {"from": start.isoformat(), "to": end.isoformat()}

    response = api.book(token, place["id"], start, end)
    assert response.status_code == 503, response.text
    held = response.json()["error"]["details"]["reservation_id"]
    assert api.get(f"/v1/reservations/{held}", token=token).json()["status"] == "pending"
    assert api.get(f"/v1/places/{place['id']}/availability", token=token, params=span).json()["free"] == []

    deadline = time.monotonic() + 15
    while api.get(f"/v1/reservations/{held}", token=token).json()["status"] == "pending":
        assert time.monotonic() < deadline, "the hold never expired"
        time.sleep(0.5)
    assert api.get(f"/v1/reservations/{held}", token=token).json()["status"] == "expired"
    free = api.get(f"/v1/places/{place['id']}/availability", token=token, params=span).json()["free"]
    assert free == [{"start": start.isoformat(), "end": end.isoformat()}]
