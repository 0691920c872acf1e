"""Never more booked than a place holds: many customers race for one window through the gateway
while two instances of the reservations service take requests side by side, for places of
capacity 1, 3 and 8, asking for one each or for mixed quantities."""
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


@pytest.fixture(scope="module")
def racers(two_instance_api):
    """RACERS customers' access tokens, shared by the races of the module."""
    return [two_instance_api.customer()[1]["access_token"] for _ in range(RACERS)]


@pytest.mark.parametrize("capacity, quantities", [
    (1, [1]),
    (3, [1]),
    (8, [1]),
    (3, [2, 1]),
    (8, [3, 1, 2, 5]),
], ids=["capacity-1", "capacity-3", "capacity-8", "capacity-3-mixed", "capacity-8-mixed"])
def test_one_window_many_bookers_exactly_as_many_win_as_fit(two_instance_api, racers, capacity, quantities):
    """RACERS bookers ask at once for one window of a place holding `capacity`, each for a
    quantity taken in turn from `quantities`: the winners' quantities never sum past the
    capacity, and every loser asked for more than was left once the race was over (so, with
    1s among the askers, the place ends full)."""
    api = two_instance_api
    place = api.place(capacity=capacity)
    start = datetime.now(timezone.utc).replace(microsecond=0, second=0, minute=0) + timedelta(days=2)
    asks = [(token, quantities[index % len(quantities)]) for index, token in enumerate(racers)]

    def book(ask):
        token, quantity = ask
        return api.book(token, place["id"], start, start + timedelta(hours=2), quantity=quantity)

    with ThreadPoolExecutor(max_workers=RACERS) as pool:
        responses = list(pool.map(book, asks))

    unexpected = [r.text for r in responses if r.status_code not in (201, 409)]
    assert unexpected == []
    assert all(r.json()["error"]["code"] == "slot_unavailable" for r in responses if r.status_code == 409)
    won = [quantity for (_, quantity), r in zip(asks, responses, strict=True) if r.status_code == 201]
    lost = [quantity for (_, quantity), r in zip(asks, responses, strict=True) if r.status_code == 409]
    assert sum(won) <= capacity
    assert all(quantity > capacity - sum(won) for quantity in lost), (won, lost)
    if 1 in quantities:
        assert sum(won) == capacity
    admin = api.admin_token()
    booked = api.get("/v1/reservations", token=admin, params={"place_id": place["id"], "limit": 100}).json()
    assert sorted(r["quantity"] for r in booked["items"]) == sorted(won)
    assert {r["status"] for r in booked["items"]} == {"confirmed"}
    shown = api.get(f"/v1/places/{place['id']}/availability", token=admin,
                    params={"from": start.isoformat(), "to": (start + timedelta(hours=2)).isoformat()}).json()
    assert [slot["remaining"] for slot in shown["slots"]] == [capacity - sum(won)] * 2
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
