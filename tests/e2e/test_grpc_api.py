"""The gRPC API end to end: grpcio stubs generated from proto/bookify/v1 against a stack
started as `make run` starts it (gateway.grpc_server among the services)."""
import json
import os
import shutil
import subprocess
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import grpc
import grpc.experimental
import jwt
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from gateway.grpc_generated import auth_pb2, auth_pb2_grpc, reservations_pb2, reservations_pb2_grpc

Status = reservations_pb2.ReservationStatus
NODE_CLIENT = Path(__file__).resolve().parents[2] / "clients" / "node"


def at(days, hour):
    """A moment `days` from today at `hour` UTC: far enough ahead to book and refund."""
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return today + timedelta(days=days, hours=hour)


def ts(moment):
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def bearer(token):
    return (("authorization", f"Bearer {token}"),)


# The test process is eventlet-patched (tests/conftest.py), so grpcio's helper threads are
# greenlets that block the hub in C; a single-threaded stream polls on the caller's own thread.
CHANNEL_OPTIONS = [(grpc.experimental.ChannelOptions.SingleThreadedUnaryStream, 1)]


@pytest.fixture
def channel(api):
    with grpc.insecure_channel(f"127.0.0.1:{api.grpc_port}", options=CHANNEL_OPTIONS) as channel:
        # The HTTP gateway's /ready says nothing of the gRPC process: wait for its port.
        grpc.channel_ready_future(channel).result(timeout=30)
        yield channel


@pytest.fixture
def reservations(channel):
    return reservations_pb2_grpc.ReservationsStub(channel)


@pytest.fixture
def customer(api, channel):
    """A fresh customer signed in over gRPC: its access token."""
    user, _ = api.customer()
    tokens = auth_pb2_grpc.AuthStub(channel).login(
        auth_pb2.LoginRequest(email=user["email"], password=user["password"]), timeout=15)
    assert tokens.token_type == "Bearer" and tokens.expires_in > 0 and tokens.refresh_token
    return tokens.access_token


def _code(call, *args, **kwargs):
    with pytest.raises(grpc.RpcError) as raised:
        call(*args, timeout=15, **kwargs)
    return raised.value.code(), raised.value.details()


def _book(reservations, token, place_id, start, end, payment_method="pm_card_visa", timeout=30):
    return reservations.create_reservation(reservations_pb2.CreateReservationRequest(
        place_id=place_id, start=ts(start), end=ts(end), payment_method=payment_method),
        metadata=bearer(token), timeout=timeout)


def test_grpc_booking_journey(api, reservations, customer):
    place = api.place(unit="hour", unit_price=2500)
    start, end = at(5, 10), at(5, 12)

    free = reservations.check_availability(reservations_pb2.AvailabilityRequest(
        place_id=place["id"], **{"from": ts(at(5, 0)), "to": ts(at(6, 0))}), metadata=bearer(customer), timeout=15)
    assert free.place_id == place["id"] and not free.booked
    assert free.free[0].start.ToDatetime(tzinfo=timezone.utc) == at(5, 0)

    booked = _book(reservations, customer, place["id"], start, end)
    assert booked.status == Status.RESERVATION_STATUS_CONFIRMED
    assert (booked.amount, booked.currency, booked.place_id) == (5000, "usd", place["id"])
    assert booked.start.ToDatetime(tzinfo=timezone.utc) == start
    assert booked.end.ToDatetime(tzinfo=timezone.utc) == end

    taken = reservations.check_availability(reservations_pb2.AvailabilityRequest(
        place_id=place["id"], **{"from": ts(at(5, 0)), "to": ts(at(6, 0))}), metadata=bearer(customer), timeout=15)
    assert [(w.start.ToDatetime(tzinfo=timezone.utc), w.end.ToDatetime(tzinfo=timezone.utc))
            for w in taken.booked] == [(start, end)]

    got = reservations.get_reservation(reservations_pb2.GetReservationRequest(id=booked.id),
                                       metadata=bearer(customer), timeout=15)
    assert got == booked

    page = reservations.list_reservations(reservations_pb2.ListReservationsRequest(place_id=place["id"]),
                                          metadata=bearer(customer), timeout=15)
    assert page.total == 1 and [item.id for item in page.items] == [booked.id]
    confirmed_only = reservations.list_reservations(reservations_pb2.ListReservationsRequest(
        status=Status.RESERVATION_STATUS_CANCELLED), metadata=bearer(customer), timeout=15)
    assert confirmed_only.total == 0

    watch = reservations.watch_reservations(reservations_pb2.WatchReservationsRequest(place_id=place["id"]),
                                            metadata=bearer(customer), timeout=30)
    try:
        current = next(watch)  # the current state first: the watch is live from here on
        assert (current.id, current.status) == (booked.id, Status.RESERVATION_STATUS_CONFIRMED)

        cancelled = reservations.cancel_reservation(reservations_pb2.CancelReservationRequest(
            id=booked.id, reason="plans changed"), metadata=bearer(customer), timeout=30)
        assert cancelled.status == Status.RESERVATION_STATUS_CANCELLED
        assert cancelled.cancel_reason == "plans changed" and cancelled.refund_amount == 5000

        began = time.monotonic()
        change = next(watch)
        assert time.monotonic() - began < 5
        assert (change.id, change.status, change.refund_amount) == (
            booked.id, Status.RESERVATION_STATUS_CANCELLED, 5000)
    finally:
        watch.cancel()


def test_grpc_rejects_missing_and_forged_tokens(api, reservations):
    request = reservations_pb2.ListReservationsRequest()
    assert _code(reservations.list_reservations, request)[0] == grpc.StatusCode.UNAUTHENTICATED
    forged = jwt.encode({"sub": "1", "sid": uuid.uuid4().hex, "iss": "bookify", "aud": "bookify-api",
                         "exp": int(time.time()) + 600}, "not-the-secret-" * 4, algorithm="HS256")
    code, _ = _code(reservations.list_reservations, request, metadata=bearer(forged))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    code, _ = _code(reservations.list_reservations, request, metadata=(("authorization", "Basic abc"),))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    watch = reservations.watch_reservations(reservations_pb2.WatchReservationsRequest(), timeout=15)
    with pytest.raises(grpc.RpcError) as raised:
        next(watch)
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_grpc_wrong_password_is_unauthenticated(channel):
    code, _ = _code(auth_pb2_grpc.AuthStub(channel).login,
                    auth_pb2.LoginRequest(email=f"nobody-{uuid.uuid4().hex[:8]}@example.com", password="x" * 10))
    assert code == grpc.StatusCode.UNAUTHENTICATED


def test_grpc_hides_another_users_reservation(api, reservations, customer):
    place = api.place()
    theirs = _book(reservations, customer, place["id"], at(6, 10), at(6, 11))
    _, other = api.customer()
    request = reservations_pb2.GetReservationRequest(id=theirs.id)
    code, _ = _code(reservations.get_reservation, request, metadata=bearer(other["access_token"]))
    assert code == grpc.StatusCode.NOT_FOUND
    code, _ = _code(reservations.cancel_reservation, reservations_pb2.CancelReservationRequest(id=theirs.id),
                    metadata=bearer(other["access_token"]))
    assert code == grpc.StatusCode.NOT_FOUND
    code, _ = _code(reservations.get_reservation, reservations_pb2.GetReservationRequest(id=10**9),
                    metadata=bearer(customer))
    assert code == grpc.StatusCode.NOT_FOUND


def test_grpc_refuses_a_caller_without_the_permission(api, channel, reservations):
    """A signed-in user whose roles lack reservations:create: PERMISSION_DENIED, nothing booked."""
    email = f"no-booking-{uuid.uuid4().hex[:8]}@example.com"
    created = api.post("/v1/users", token=api.admin_token(), json={
        "email": email, "password": "password-123", "roles": [{"name": f"Viewer {uuid.uuid4().hex[:6]}"}]})
    assert created.status_code == 201, created.text
    tokens = auth_pb2_grpc.AuthStub(channel).login(
        auth_pb2.LoginRequest(email=email, password="password-123"), timeout=15)
    place = api.place()
    code, details = _code(_book, reservations, tokens.access_token, place["id"], at(9, 10), at(9, 11))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert details.startswith("forbidden")
    page = reservations.list_reservations(reservations_pb2.ListReservationsRequest(),
                                          metadata=bearer(tokens.access_token), timeout=15)
    assert page.total == 0


def test_grpc_is_unavailable_while_a_service_is_down(tmp_path):
    """reservations is not running: its methods answer UNAVAILABLE at once, login still works."""
    from scripts.launcher import SERVICES
    from tests.e2e.conftest import running_stack

    without = [name for name in SERVICES if not name.startswith("reservations_service")]
    with running_stack("sqlite", tmp_path, services=without, ready_path="/health") as api:
        with grpc.insecure_channel(f"127.0.0.1:{api.grpc_port}", options=CHANNEL_OPTIONS) as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            _wait_for_auth(api)  # /health says only that the gateway is up
            user, _ = api.customer()
            tokens = auth_pb2_grpc.AuthStub(channel).login(
                auth_pb2.LoginRequest(email=user["email"], password=user["password"]), timeout=15)
            stub = reservations_pb2_grpc.ReservationsStub(channel)
            code, details = _code(stub.get_reservation, reservations_pb2.GetReservationRequest(id=1),
                                  metadata=bearer(tokens.access_token))
    assert code == grpc.StatusCode.UNAVAILABLE
    assert details.startswith("service_unavailable")


def _wait_for_auth(api, timeout=30):
    deadline = time.monotonic() + timeout
    probe = {"email": "nobody@example.com", "password": "not-the-password"}
    while api.post("/v1/auth/login", json=probe).status_code == 503:
        assert time.monotonic() < deadline, "auth did not start"
        time.sleep(0.2)


def test_grpc_taken_slot_is_failed_precondition(api, reservations, customer):
    place = api.place()
    _book(reservations, customer, place["id"], at(7, 10), at(7, 12))
    _, other = api.customer()
    code, details = _code(_book, reservations, other["access_token"], place["id"], at(7, 11), at(7, 13))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert details.startswith("slot_unavailable")


@pytest.mark.parametrize("fields", [
    {"start": at(8, 12), "end": at(8, 10)},            # ends before it starts
    {"start": None, "end": at(8, 10)},                 # no start
    {"payment_method": "not a payment method!"},
    {"place_id": 0},
])
def test_grpc_bad_reservation_is_invalid_argument(api, reservations, customer, fields):
    place = api.place()
    values = {"place_id": place["id"], "start": at(8, 10), "end": at(8, 12), "payment_method": "pm_card_visa",
              **fields}
    request = reservations_pb2.CreateReservationRequest(
        place_id=values["place_id"], payment_method=values["payment_method"],
        **{name: ts(values[name]) for name in ("start", "end") if values[name] is not None})
    code, _ = _code(reservations.create_reservation, request, metadata=bearer(customer))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


def test_grpc_bad_login_and_listing_are_invalid_argument(channel, reservations, customer):
    code, _ = _code(auth_pb2_grpc.AuthStub(channel).login, auth_pb2.LoginRequest(email="", password=""))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    code, _ = _code(reservations.list_reservations, reservations_pb2.ListReservationsRequest(limit=1000),
                    metadata=bearer(customer))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


def test_node_client_from_the_protos_alone(api, channel):
    """A client in another language works from proto/ alone (clients/node, @grpc/grpc-js)."""
    # Not skipped when missing: ensure_infra.sh installs Node.js for make test.
    assert shutil.which("node") and shutil.which("npm"), "make test needs Node.js and npm"
    if not (NODE_CLIENT / "node_modules").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_CLIENT, check=True, timeout=300)
    place = api.place(unit="hour", unit_price=1500)
    user, _ = api.customer()
    start, end = at(9, 14), at(9, 16)
    env = {**os.environ, "BOOKIFY_GRPC": f"127.0.0.1:{api.grpc_port}", "BOOKIFY_EMAIL": user["email"],
           "BOOKIFY_PASSWORD": user["password"], "BOOKIFY_PLACE_ID": str(place["id"]),
           "BOOKIFY_START": start.isoformat(), "BOOKIFY_END": end.isoformat()}
    for name in ("http_proxy", "https_proxy", "grpc_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        env.pop(name, None)  # the stack is local
    done = subprocess.run(["node", "journey.js"], cwd=NODE_CLIENT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr + done.stdout
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["token_type"] == "Bearer"
    assert summary["free"][0][0] == at(9, 0).isoformat().replace("+00:00", ".000Z")
    created = summary["created"]
    assert (created["status"], created["amount"], created["currency"]) == ("RESERVATION_STATUS_CONFIRMED", 3000, "usd")
    assert summary["got"] == {"id": created["id"], "status": "RESERVATION_STATUS_CONFIRMED"}
    assert summary["watched"] == [
        {"id": created["id"], "status": "RESERVATION_STATUS_CONFIRMED"},
        {"id": created["id"], "status": "RESERVATION_STATUS_CANCELLED", "cancel_reason": "from node"}]


def test_grpc_books_a_free_place_without_a_payment_method(api, reservations, customer):
    place = api.place(unit_price=0)
    booked = _book(reservations, customer, place["id"], at(9, 10), at(9, 11), payment_method="")
    assert booked.status == Status.RESERVATION_STATUS_CONFIRMED and booked.amount == 0
    priced = api.place()
    code, details = _code(_book, reservations, customer, priced["id"], at(9, 10), at(9, 11), payment_method="")
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "payment_method" in details


def test_grpc_books_a_quantity_and_shows_what_is_left_per_slot(api, reservations, customer):
    place = api.place(capacity=3, timezone="Europe/Paris", slot_minutes=30)
    start = at(10, 10)
    booked = reservations.create_reservation(reservations_pb2.CreateReservationRequest(
        place_id=place["id"], start=ts(start), end=ts(start + timedelta(hours=1)), payment_method="pm_card_visa",
        quantity=2), metadata=bearer(customer), timeout=30)
    assert (booked.quantity, booked.amount) == (2, 2 * 2500)
    single = _book(reservations, customer, place["id"], at(10, 14), at(10, 15))
    assert single.quantity == 1  # unset: one
    shown = reservations.check_availability(reservations_pb2.AvailabilityRequest(
        place_id=place["id"], **{"from": ts(start), "to": ts(start + timedelta(hours=2))}),
        metadata=bearer(customer), timeout=15)
    assert (shown.timezone, shown.capacity) == ("Europe/Paris", 3)
    assert [(slot.start.ToDatetime(tzinfo=timezone.utc), slot.remaining) for slot in shown.slots] == [
        (start + timedelta(minutes=30 * k), 1 if k < 2 else 3) for k in range(4)]
    code, details = _code(reservations.create_reservation, reservations_pb2.CreateReservationRequest(
        place_id=place["id"], start=ts(at(11, 10)), end=ts(at(11, 11)), payment_method="pm_card_visa",
        quantity=4), metadata=bearer(customer))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "quantity" in details


def test_grpc_reads_a_place_and_its_rules_as_the_http_api_shows_them(api, reservations, customer):
    hours = [{"weekday": 0, "open": "09:00", "close": "12:30"}, {"weekday": 0, "open": "14:00", "close": "18:00"}]
    place = api.place(capacity=4, timezone="Europe/Paris", slot_minutes=30, opening_hours=hours,
                      min_minutes=60, buffer_minutes=15, description="Four desks")

    shown = reservations.get_place(reservations_pb2.GetPlaceRequest(id=place["id"]),
                                   metadata=bearer(customer), timeout=15)

    assert (shown.id, shown.name, shown.description, shown.unit, shown.unit_price, shown.currency) == (
        place["id"], place["name"], "Four desks", "hour", 2500, "usd")
    assert (shown.timezone, shown.capacity, shown.slot_minutes, shown.min_minutes, shown.max_minutes,
            shown.buffer_minutes) == ("Europe/Paris", 4, 30, 60, 0, 15)  # max 0: no limit
    assert [(h.weekday, h.open, h.close) for h in shown.opening_hours] == [(0, "09:00", "12:30"), (0, "14:00", "18:00")]
    assert shown.created_at.ToDatetime(tzinfo=timezone.utc) == datetime.fromisoformat(place["created_at"])

    page = reservations.list_places(reservations_pb2.ListPlacesRequest(limit=100), metadata=bearer(customer),
                                    timeout=15)
    listed = {item.id: item for item in page.items}
    assert page.total >= len(page.items) and listed[place["id"]] == shown

    assert api.request("DELETE", f"/v1/places/{place['id']}", token=api.admin_token()).status_code == 204
    code, _ = _code(reservations.get_place, reservations_pb2.GetPlaceRequest(id=place["id"]), metadata=bearer(customer))
    assert code == grpc.StatusCode.NOT_FOUND
    code, _ = _code(reservations.get_place, reservations_pb2.GetPlaceRequest(id=place["id"]))
    assert code == grpc.StatusCode.UNAUTHENTICATED
