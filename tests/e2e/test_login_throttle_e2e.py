"""Throttling end to end (HTTP and gRPC doors, auth in its own process, SQLite and MariaDB):
the gateway passes the client's address, so one client meets 429 across many emails and
registrations; look-alike emails cannot register; and a real login's latency while 30
threads spray wrong passwords (a figure for docs/security.md, not a timed assertion)."""
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
import requests

from gateway.grpc_generated import auth_pb2, auth_pb2_grpc
from tests.e2e.conftest import running_stack
from tests.security.conftest import error_of

LOGIN_LIMIT, REGISTER_LIMIT = 12, 4


@pytest.fixture(params=["sqlite", "mariadb"])
def api(request, tmp_path):
    """A stack with small per-address limits: every client here is 127.0.0.1."""
    with running_stack(request.param, tmp_path, LOGIN_LIMIT_PER_ADDRESS=str(LOGIN_LIMIT),
                       REGISTER_LIMIT_PER_ADDRESS=str(REGISTER_LIMIT), AUTH_METRICS_PORT="0",
                       GATEWAY_METRICS_PORT="0", GRPC_GATEWAY_METRICS_PORT="0", RESERVATIONS_METRICS_PORT="0",
                       PAYMENTS_METRICS_PORT="0", NOTIFICATIONS_METRICS_PORT="0") as api:
        api.backend = request.param
        yield api


def login(api, email, password):
    started = time.perf_counter()
    response = requests.post(api.base_url + "/v1/auth/login", json={"email": email, "password": password},
                             timeout=60)
    return response, time.perf_counter() - started


def test_one_client_is_throttled_across_emails_and_registrations(api):
    registered = [api.register() for _ in range(2)]
    ann, bob = registered

    # A real login's latency, quiet and while 30 threads spray wrong passwords at ann.
    quiet = statistics.median(login(api, bob["email"], bob["password"])[1] for _ in range(10))
    spraying = True

    def spray():
        answers = []
        while spraying:
            answers.append(login(api, ann["email"], "wrong-password")[0].status_code)
        return answers

    with ThreadPoolExecutor(30) as pool:
        sprays = [pool.submit(spray) for _ in range(30)]
        time.sleep(1)
        under_spray = [login(api, bob["email"], bob["password"]) for _ in range(10)]
        spraying = False
        answers = [status for spray_ in sprays for status in spray_.result()]
    assert all(response.status_code == 200 for response, _ in under_spray)
    loud = statistics.median(seconds for _, seconds in under_spray)
    assert answers.count(401) == 5 and set(answers) == {401, 429}  # LOGIN_MAX_FAILURES, then no hash
    print(f"\n[{api.backend}] real login median {quiet * 1000:.0f} ms quiet, {loud * 1000:.0f} ms while "
          f"30 threads sprayed ({len(answers)} attempts, {answers.count(401)} password checks)")

    # The address has 5 failures; failures on other emails take it to the limit, then 429.
    statuses = [login(api, f"nobody-{n}@example.com", "wrong-password")[0].status_code
                for n in range(LOGIN_LIMIT - 5)]
    assert statuses == [401] * (LOGIN_LIMIT - 5)
    refused = error_of(login(api, "nobody-x@example.com", "wrong-password")[0], 429, "rate_limited")
    assert 3500 < refused["details"]["retry_after"] <= 3601
    with grpc.insecure_channel(f"127.0.0.1:{api.grpc_port}") as channel:  # the gRPC door: same address
        with pytest.raises(grpc.RpcError) as grpc_refused:
            auth_pb2_grpc.AuthStub(channel).login(
                auth_pb2.LoginRequest(email="nobody-y@example.com", password="wrong-password"), timeout=15)
    assert grpc_refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

    # Registrations: two are spent above; look-alikes of ann are refused without an account.
    fullwidth = ann["email"].translate({ord(c): ord(c) + 0xFEE0 for c in "abcdefghijklmnopqrstuvwxyz"})
    conflict = requests.post(api.base_url + "/v1/auth/register", timeout=15,
                             json={"email": fullwidth, "password": "password-123"})
    error_of(conflict, 409)
    invisible = requests.post(api.base_url + "/v1/auth/register", timeout=15,
                              json={"email": "zw\u200bsp@example.com", "password": "password-123"})
    assert set(error_of(invisible, 400, "validation_error")["details"]) == {"email"}
    api.register()  # the fourth counted (the 400 never reached auth's count)
    refused = error_of(requests.post(api.base_url + "/v1/auth/register", timeout=15, json={
        "email": f"late-{uuid.uuid4().hex[:6]}@example.com", "password": "password-123"}), 429, "rate_limited")
    assert 0 < refused["details"]["retry_after"] <= 3601
