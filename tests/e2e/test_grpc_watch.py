"""gRPC `watch_reservations` end to end (docs/grpc.md): a watch sees changes as reservations
announces them, ends when its caller's session or permission lapses and then sends nothing
more, at most 2 are open per user, and open watches never starve other calls. Also: a
caller's mistake is a WARNING in the gRPC gateway's log, never an ERROR with a traceback.

One SQLite stack for the module: the watch rules do not depend on the database."""
import json
import time
import uuid

import grpc
import pytest

from gateway.grpc_generated import auth_pb2, auth_pb2_grpc, reservations_pb2, reservations_pb2_grpc
from tests.e2e.conftest import running_stack
from tests.e2e.test_grpc_api import CHANNEL_OPTIONS, _book, at, bearer

Status = reservations_pb2.ReservationStatus
GRPC_LOG = "gateway.grpc_server:GrpcGatewayService"
SOON = 3  # seconds within which an event reaches an open watch (it takes well under one)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with running_stack("sqlite", tmp_path_factory.mktemp("grpc-watch")) as api:
        yield api


@pytest.fixture(scope="module")
def channel(api):
    with grpc.insecure_channel(f"127.0.0.1:{api.grpc_port}", options=CHANNEL_OPTIONS) as channel:
        grpc.channel_ready_future(channel).result(timeout=30)
        yield channel


@pytest.fixture(scope="module")
def reservations(channel):
    return reservations_pb2_grpc.ReservationsStub(channel)


def grpc_login(channel, email, password="password-123"):
    return auth_pb2_grpc.AuthStub(channel).login(auth_pb2.LoginRequest(email=email, password=password),
                                                 timeout=15).access_token


def user_with_role(api, role):
    """A new user holding `role` (created by the admin): (user id, email)."""
    email = f"{role.lower()}-{uuid.uuid4().hex[:8]}@example.com"
    created = api.post("/v1/users", token=api.admin_token(),
                       json={"email": email, "password": "password-123", "roles": [{"name": role}]})
    assert created.status_code == 201, created.text
    return created.json()["id"], email


def watch(reservations, token, place_id=0, timeout=60):
    return reservations.watch_reservations(reservations_pb2.WatchReservationsRequest(place_id=place_id),
                                           metadata=bearer(token), timeout=timeout)


def next_within(stream, seconds):
    """The stream's next message (or its ending error), and how long it took."""
    started = time.monotonic()
    message = next(stream)
    waited = time.monotonic() - started
    assert waited < seconds, f"waited {waited:.1f} s"
    return message


def ending(stream):
    """The status the stream ends with, and how long that took; fails on any message first."""
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as raised:
        message = next(stream)
        pytest.fail(f"the stream sent a message after it should have ended: {message}")
    return raised.value.code(), raised.value.details(), time.monotonic() - started


def test_a_demoted_moderator_who_logs_out_sees_nothing_more(api, channel, reservations):
    """The issue's case: a Moderator's watch of everyone's reservations ends PERMISSION_DENIED
    as soon as the admin takes read_any away, and nothing booked after that reaches it."""
    place = api.place()
    customer, customer_tokens = api.customer()
    first = _book(reservations, customer_tokens["access_token"], place["id"], at(10, 9), at(10, 10))
    moderator_id, email = user_with_role(api, "Moderator")
    token = grpc_login(channel, email)
    stream = watch(reservations, token, place["id"])
    current = next_within(stream, SOON)  # the current state first: the watch is live from here
    assert (current.id, current.user_id) == (first.id, first.user_id)

    _, other_tokens = api.customer()
    booked = _book(reservations, other_tokens["access_token"], place["id"], at(10, 11), at(10, 12))
    seen = next_within(stream, SOON)  # someone else's new reservation, as it happens
    assert (seen.id, seen.status) == (booked.id, Status.RESERVATION_STATUS_CONFIRMED)

    demoted = api.request("PUT", f"/v1/users/{moderator_id}/roles", token=api.admin_token(),
                          json={"roles": [{"name": "Free"}]})
    assert demoted.status_code == 200, demoted.text
    after_demotion = _book(reservations, other_tokens["access_token"], place["id"], at(10, 13), at(10, 14))
    assert api.post("/v1/auth/logout", token=token).status_code == 204
    _book(reservations, customer_tokens["access_token"], place["id"], at(10, 15), at(10, 16))

    code, details, _ = ending(stream)  # not after_demotion, nor the booking after the logout
    assert code == grpc.StatusCode.PERMISSION_DENIED, details
    assert "reservations:read_any" in details
    assert after_demotion.id not in (first.id, booked.id)


def test_a_watch_ends_unauthenticated_at_logout(api, channel, reservations):
    place = api.place()
    user, _ = api.customer()
    token = grpc_login(channel, user["email"], user["password"])
    mine = _book(reservations, token, place["id"], at(11, 9), at(11, 10))
    stream = watch(reservations, token)
    assert next_within(stream, SOON).id == mine.id
    assert api.post("/v1/auth/logout", token=token).status_code == 204
    code, details, waited = ending(stream)
    assert code == grpc.StatusCode.UNAUTHENTICATED, details
    assert waited < SOON


def test_a_customers_watch_sees_their_new_reservations_and_not_others(api, channel, reservations):
    place = api.place()
    user, _ = api.customer()
    token = grpc_login(channel, user["email"], user["password"])
    first = _book(reservations, token, place["id"], at(12, 9), at(12, 10))
    stream = watch(reservations, token, place["id"])
    try:
        assert next_within(stream, SOON).id == first.id
        _, other = api.customer()
        _book(reservations, other["access_token"], place["id"], at(12, 11), at(12, 12))  # not theirs
        second = _book(reservations, token, place["id"], at(12, 13), at(12, 14))
        began = time.monotonic()
        seen = next(stream)
        assert time.monotonic() - began < SOON
        assert (seen.id, seen.status, seen.user_id) == (second.id, Status.RESERVATION_STATUS_CONFIRMED,
                                                        second.user_id)
    finally:
        stream.cancel()


def test_a_third_watch_of_one_user_is_resource_exhausted_and_a_cancelled_one_frees_its_place(
        api, channel, reservations):
    place = api.place()
    user, _ = api.customer()
    token = grpc_login(channel, user["email"], user["password"])
    _book(reservations, token, place["id"], at(13, 9), at(13, 10))
    first, second = watch(reservations, token), watch(reservations, token)
    next_within(first, SOON), next_within(second, SOON)
    code, details, _ = ending(watch(reservations, token))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details.startswith("rate_limited") and '"limit": 2' in details
    first.cancel()
    deadline = time.monotonic() + SOON
    while True:  # the server hears of the cancel a moment later
        again = watch(reservations, token)
        try:
            next(again)
            break
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and time.monotonic() < deadline
            time.sleep(0.1)
    again.cancel()
    second.cancel()


def test_open_watches_never_starve_other_calls(api, channel, reservations):
    """One customer opens 12 watches (2 stay open, 10 are refused) and five moderators two
    each: 12 open streams, more than the service's 10 workers. Another user's login and
    listing still answer within a second."""
    place = api.place()
    hoarder, _ = api.customer()
    token = grpc_login(channel, hoarder["email"], hoarder["password"])
    _book(reservations, token, place["id"], at(14, 9), at(14, 10))
    attempts = [watch(reservations, token) for _ in range(12)]
    outcomes = []
    for stream in attempts:
        try:
            next_within(stream, SOON)
            outcomes.append("open")
        except grpc.RpcError as error:
            outcomes.append(error.code())
    assert outcomes.count("open") == 2
    assert outcomes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 10
    streams = [stream for stream, outcome in zip(attempts, outcomes, strict=True) if outcome == "open"]
    for _ in range(5):
        moderator = grpc_login(channel, user_with_role(api, "Moderator")[1])
        for _ in range(2):
            stream = watch(reservations, moderator)
            next_within(stream, SOON)  # everyone's reservations: there is at least one
            streams.append(stream)
    assert len(streams) == 12

    someone, _ = api.customer()
    try:
        for _ in range(3):
            started = time.monotonic()
            other_token = grpc_login(channel, someone["email"], someone["password"])
            assert time.monotonic() - started <= 1.0
            started = time.monotonic()
            reservations.list_reservations(reservations_pb2.ListReservationsRequest(),
                                           metadata=bearer(other_token), timeout=15)
            assert time.monotonic() - started <= 1.0
    finally:
        for stream in streams:
            stream.cancel()


def test_a_callers_mistakes_are_warnings_without_traceback_in_the_grpc_log(api, channel, reservations):
    log_file = api.stack.logs[GRPC_LOG]
    offset = log_file.stat().st_size
    with pytest.raises(grpc.RpcError) as wrong_password:
        grpc_login(channel, f"nobody-{uuid.uuid4().hex[:8]}@example.com", "not-the-password")
    assert wrong_password.value.code() == grpc.StatusCode.UNAUTHENTICATED
    user, _ = api.customer()
    token = grpc_login(channel, user["email"], user["password"])
    assert api.post("/v1/auth/logout", token=token).status_code == 204
    with pytest.raises(grpc.RpcError) as ended:
        reservations.list_reservations(reservations_pb2.ListReservationsRequest(),
                                       metadata=bearer(token), timeout=15)
    assert ended.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as ended_watch:
        next(watch(reservations, token))
    assert ended_watch.value.code() == grpc.StatusCode.UNAUTHENTICATED

    time.sleep(0.5)  # the log is unbuffered; let the last lines land
    with open(log_file, encoding="utf-8") as lines:
        lines.seek(offset)
        records = [json.loads(line) for line in lines if line.startswith("{")]
    refusals = [r for r in records if r["level"] == "WARNING" and r["logger"] == "gateway.grpc_server"]
    assert [(r["entrypoint"], r["grpc_status"]) for r in refusals] == [
        ("login", "UNAUTHENTICATED"), ("list_reservations", "UNAUTHENTICATED"),
        ("watch_reservations", "UNAUTHENTICATED")]
    assert "Wrong email or password" in refusals[0]["message"]
    assert not [r for r in records if r["level"] in ("ERROR", "CRITICAL")]
    assert not [r for r in records if "exception" in r]
