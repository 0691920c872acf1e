"""Never a double booking: many customers race for one window through the gateway while
two instances of the reservations service take requests side by side."""
import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest

from scripts.launcher import SERVICES
from tests.conftest import BACKENDS
from tests.e2e.conftest import running_stack

RACERS = 24


@pytest.fixture(scope="module", params=BACKENDS)
def two_instance_api(request, tmp_path_factory):
    """One stack per backend for the module: each test books a place of its own."""
    services = SERVICES + ["reservations_service.service"]  # a second instance on the same queue
    with running_stack(request.param, tmp_path_factory.mktemp(f"race-{request.param}"), services=services) as api:
        yield api


def test_one_window_many_bookers_exactly_one_wins(two_instance_api):
    api = two_instance_api
    place = api.place()
    tokens = [api.customer()[1]["access_token"] for _ in range(RACERS)]
    start = datetime.now(timezone.utc).replace(microsecond=0, second=0, minute=0) + timedelta(days=2)

    def book(token):
        return api.book(token, place["id"], start, start + timedelta(hours=2))

    with ThreadPoolExecutor(max_workers=RACERS) as pool:
        responses = list(pool.map(book, tokens))

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * (RACERS - 1), [r.text for r in responses if r.status_code >= 500]
    assert all(r.json()["error"]["code"] == "slot_unavailable" for r in responses if r.status_code == 409)
    admin = api.admin_token()
    booked = api.get("/v1/reservations", token=admin, params={"place_id": place["id"]}).json()
    assert [r["status"] for r in booked["items"]] == ["confirmed"]
    # Two instances really were consuming the reservations queue during the race
    # (rabbitmqctl counts consumers at once; the management API only every few seconds).
    vhost = api.stack.env["AMQP_URI"].rsplit("/", 1)[1]
    listing = subprocess.run(["rabbitmqctl", "list_queues", "-p", vhost, "name", "consumers", "-q",
                              "--no-table-headers"], capture_output=True, text=True, check=True, timeout=60)
    assert "rpc-reservations\t2" in listing.stdout, listing.stdout


def test_parallel_retries_with_one_idempotency_key_book_and_charge_once(two_instance_api):
    api = two_instance_api
    place = api.place()
    _, tokens = api.customer()
    token = tokens["access_token"]
    start = datetime.now(timezone.utc).replace(microsecond=0, second=0, minute=0) + timedelta(days=3)

    def book(_):
        return api.book(token, place["id"], start, start + timedelta(hours=1), key="same-click-five-times")

    with ThreadPoolExecutor(max_workers=5) as pool:
        responses = list(pool.map(book, range(5)))
    assert {r.status_code for r in responses} <= {201, 409}, [r.text for r in responses]
    created = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(created) == 1
    # 409s are "still in progress" for that same reservation, never a second booking.
    for response in responses:
        if response.status_code == 409:
            assert response.json()["error"]["details"].get("reservation_id") in created, response.text
    mine = api.get("/v1/reservations", token=token).json()
    assert mine["total"] == 1
    payment = api.get(f"/v1/payments/{mine['items'][0]['payment_id']}", token=token).json()
    assert payment["status"] == "succeeded"
