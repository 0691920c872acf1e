"""End to end: the services started as `make run` starts them (separate `nameko run`
processes, migrations and seed first), each stack on its own RabbitMQ vhost and its own
databases, driven over HTTP. One stack per backend: SQLite and MariaDB."""
import socket
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from scripts.launcher import Stack
from tests.conftest import BACKENDS, database_template, drop_databases

ROOT = Path(__file__).resolve().parents[2]
RABBIT_API = "http://127.0.0.1:15672/api"
SECRET = "e2e-secret-known-to-the-tests-0123456789abcdef"
ADMIN = {"email": "root@bookify.test", "password": "root-password-e2e"}
WEBHOOK_SECRET = "whsec_e2e_known_to_the_tests"
ALL_DATABASES = ["auth", "reservations", "payments", "notifications"]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Api:
    """A thin HTTP client for the gateway, with helpers for the common journeys."""

    def __init__(self, base_url, stack, grpc_port=None):
        self.base_url = base_url
        self.stack = stack
        self.grpc_port = grpc_port  # the gRPC API (gateway.grpc_server) of the same stack

    def request(self, method, path, token=None, **kwargs):
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return requests.request(method, self.base_url + path, headers=headers, timeout=15, **kwargs)

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, **kwargs):
        return self.request("POST", path, **kwargs)

    def register(self, **fields):
        body = {"email": f"user-{uuid.uuid4().hex[:10]}@example.com", "password": "password-123", **fields}
        response = self.post("/v1/auth/register", json=body)
        assert response.status_code == 201, response.text
        return dict(response.json(), password=body["password"])

    def login(self, email, password):
        response = self.post("/v1/auth/login", json={"email": email, "password": password})
        assert response.status_code == 200, response.text
        return response.json()

    def customer(self):
        """A fresh self-registered customer: (user, tokens)."""
        user = self.register()
        return user, self.login(user["email"], user["password"])

    def admin_token(self):
        return self.login(ADMIN["email"], ADMIN["password"])["access_token"]

    def place(self, unit="hour", unit_price=2500, currency="usd", **settings):
        """A fresh place, created by the admin; `settings`: capacity, opening_hours, timezone, …"""
        response = self.post("/v1/places", token=self.admin_token(), json={
            "name": f"Place {uuid.uuid4().hex[:6]}", "unit": unit, "unit_price": unit_price,
            "currency": currency, **settings})
        assert response.status_code == 201, response.text
        return response.json()

    def book(self, token, place_id, start, end, payment_method="pm_card_visa", key=None, quantity=None):
        headers = {"Idempotency-Key": key} if key else {}
        body = {"place_id": place_id, "start": start.isoformat(), "end": end.isoformat(),
                "payment_method": payment_method}
        if quantity is not None:
            body["quantity"] = quantity
        return self.post("/v1/reservations", token=token, headers=headers, json=body)


def _vhost(method, name):
    response = requests.request(method, f"{RABBIT_API}/vhosts/{name}", auth=("guest", "guest"), timeout=10)
    response.raise_for_status()
    if method == "PUT":
        requests.put(f"{RABBIT_API}/permissions/{name}/guest", auth=("guest", "guest"), timeout=10,
                     json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()


REFRESH_GRACE_SECONDS = 2


@contextmanager
def running_stack(backend, tmp, services=None, ready_path="/ready", **env):
    """A whole Bookify stack on its own vhost, databases and localstripe, started as
    `make run` does. `env` overrides settings (BOOKING_HOLD_SECONDS="3", …)."""
    template = database_template(backend, tmp)
    vhost = f"bookify_e2e_{uuid.uuid4().hex[:8]}"
    _vhost("PUT", vhost)
    port = free_port()
    grpc_port = free_port()
    stack = Stack(ROOT, env={
        "BOOKIFY_DB_URL": template,
        "AMQP_URI": f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
        "GATEWAY_ADDRESS": f"127.0.0.1:{port}",
        "GRPC_PORT": str(grpc_port),
        "JWT_SECRET": SECRET,
        "BOOKIFY_ADMIN_EMAIL": ADMIN["email"],
        "BOOKIFY_ADMIN_PASSWORD": ADMIN["password"],
        "LOGIN_MAX_FAILURES": "5",
        # Every test client calls from 127.0.0.1: the per-address limits (50 failed logins,
        # 10 registrations an hour) would refuse a test run's many users. Raised here, not off;
        # a test of those limits starts its own stack with small ones.
        "LOGIN_LIMIT_PER_ADDRESS": "100000",
        "REGISTER_LIMIT_PER_ADDRESS": "100000",
        # Short, so a test can wait past it to replay a spent refresh token as a thief would.
        "JWT_REFRESH_GRACE_SECONDS": str(REFRESH_GRACE_SECONDS),
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        **env,
    }, services=services, log_dir=tmp / "log", localstripe_port=free_port())
    try:
        stack.prepare()
        stack.start()
        stack.wait_ready(f"http://127.0.0.1:{port}{ready_path}", timeout=60)
        stack.register_stripe_webhook(f"http://127.0.0.1:{port}", WEBHOOK_SECRET)
        yield Api(f"http://127.0.0.1:{port}", stack, grpc_port)
    finally:
        stack.stop()
        _vhost("DELETE", vhost)
        drop_databases(template, ALL_DATABASES)


@pytest.fixture(scope="session", params=BACKENDS)
def api(request, tmp_path_factory):
    """One stack per backend, shared by the tests that leave it usable for the next."""
    with running_stack(request.param, tmp_path_factory.mktemp(f"e2e-{request.param}")) as api:
        yield api


@pytest.fixture(params=BACKENDS)
def fresh_api(request, tmp_path):
    """A stack of this test's own, for tests that may break things for others."""
    with running_stack(request.param, tmp_path) as api:
        yield api
