"""The stack under test: every Bookify service as `make run` starts it (scripts.launcher.Stack,
separate `nameko run` processes, localstripe for payments), on MariaDB, in databases and a
RabbitMQ vhost of its own (unique names, removed afterwards), on free ports, so a benchmark
never meets another stack on the same machine."""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import sqlalchemy as sa

from scripts import localstripe_server
from scripts.launcher import LOCALSTRIPE, SERVICES, Stack, register_stripe_webhook

ROOT = Path(__file__).resolve().parent.parent
GRPC_SERVICE = "gateway.grpc_server:GrpcGatewayService"
# Everything but the gRPC gateway, which bench/grpc.py starts for its own section.
MAIN_SERVICES = [service for service in SERVICES if service != GRPC_SERVICE]
DATABASES = ["auth", "reservations", "payments", "notifications"]
ADMIN = {"email": "bench-admin@bookify.test", "password": "bench-admin-password"}
WEBHOOK_SECRET = "whsec_bench_local"

MARIADB_SERVER = os.environ.get("BOOKIFY_BENCH_MARIADB",
                                os.environ.get("BOOKIFY_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306"))
AMQP_SERVER = os.environ.get("BOOKIFY_BENCH_AMQP", "amqp://guest:guest@127.0.0.1:5672")
RABBIT_API = os.environ.get("BOOKIFY_BENCH_RABBIT_API", "http://guest:guest@127.0.0.1:15672/api")

# Generous where a default would cut a benchmark short, default everywhere else: long-lived
# tokens (created once, argon2 is slow by design), a long booking horizon (thousands of distinct
# windows), an RPC deadline that reports slowness as latency rather than as 504s.
BENCH_SETTINGS = {
    "RPC_TIMEOUT": "30",
    "BOOKING_HORIZON_DAYS": "3650",
    "JWT_ACCESS_TTL": "7200",
    "BOOKIFY_DEMO_DATA": "0",
    # Every simulated client calls from 127.0.0.1: the per-address throttling limits would
    # refuse a benchmark's thousands of users (and the fault campaigns built on these settings).
    "LOGIN_LIMIT_PER_ADDRESS": "1000000",
    "REGISTER_LIMIT_PER_ADDRESS": "1000000",
    # Metrics listeners have fixed default ports, which another stack on the machine may hold:
    # off here (0), as the benchmark does not scrape them.
    **{f"{service}_METRICS_PORT": "0"
       for service in ("AUTH", "RESERVATIONS", "PAYMENTS", "NOTIFICATIONS", "GATEWAY", "GRPC_GATEWAY")},
}

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rabbit_api(method: str, path: str, body: dict | None = None) -> None:
    parts = urllib.parse.urlsplit(RABBIT_API)
    url = parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else "")).geturl()
    request = urllib.request.Request(f"{url}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    password = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    password.add_password(None, url, parts.username or "guest", parts.password or "guest")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                         urllib.request.HTTPBasicAuthHandler(password))
    with opener.open(request, timeout=10):
        pass


class BenchStack:
    """Start with `with BenchStack(log_dir) as stack:`; `stack.base_url` is the HTTP gateway.
    `stock_localstripe` runs localstripe as shipped (snapshot on every write, lists scan the
    whole store) instead of scripts.localstripe_server, which `make run` runs."""

    def __init__(self, log_dir: Path, stock_localstripe: bool = False):
        self.stock_localstripe = stock_localstripe
        self.localstripe_port = free_port()
        self.localstripe: subprocess.Popen | None = None
        self.run_id = uuid.uuid4().hex[:8]
        self.log_dir = Path(log_dir)
        self.vhost = f"bookify_bench_{self.run_id}"
        self.db_template = f"{MARIADB_SERVER}/bookify_bench_{self.run_id}_<service>?charset=utf8mb4"
        self.http_port = free_port()
        self.base_url = f"http://127.0.0.1:{self.http_port}"
        self.amqp_uri = f"{AMQP_SERVER}/{self.vhost}"
        self.env = {
            **BENCH_SETTINGS,
            "BOOKIFY_DB_URL": self.db_template,
            "AMQP_URI": self.amqp_uri,
            "GATEWAY_ADDRESS": f"127.0.0.1:{self.http_port}",
            "GRPC_PORT": str(free_port()),  # not served by the main stack; keeps 50051 free
            "BOOKIFY_ADMIN_EMAIL": ADMIN["email"],
            "BOOKIFY_ADMIN_PASSWORD": ADMIN["password"],
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "JWT_SECRET": secrets.token_urlsafe(48),  # no default: each run its own
            "STRIPE_API_BASE": f"http://127.0.0.1:{self.localstripe_port}",
        }
        self.main: Stack | None = None
        self.extras: dict[str, Stack] = {}

    def database_url(self, service: str) -> str:
        return self.db_template.replace("<service>", service)

    def __enter__(self) -> BenchStack:
        _rabbit_api("PUT", f"/vhosts/{self.vhost}")
        _rabbit_api("PUT", f"/permissions/{self.vhost}/guest", {"configure": ".*", "write": ".*", "read": ".*"})
        try:
            if not self.stock_localstripe:
                self._start_localstripe()
            self.main = Stack(ROOT, env=self.env, services=MAIN_SERVICES, log_dir=self.log_dir,
                              localstripe_port=self.localstripe_port if self.stock_localstripe else None,
                              stock_localstripe=self.stock_localstripe)
            self.main.prepare()
            self.main.start()
            self.main.wait_ready(f"{self.base_url}/ready", timeout=90)
            self._register_webhook()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _start_localstripe(self) -> None:
        self.localstripe = localstripe_server.spawn(self.localstripe_port, self.log_dir / "localstripe.log")

    def _register_webhook(self) -> None:
        register_stripe_webhook(self.localstripe_port, self.base_url, WEBHOOK_SECRET)

    def start_extra(self, name: str, services: list[str], **env: str) -> Stack:
        """More `nameko run` processes on this stack's broker and settings (the gRPC gateway
        on a port of its own, the benchmark's own RPC pair); logs in log_dir/<name>/."""
        self.stop_extra(name)
        stack = Stack(ROOT, env={**self.env, **env}, services=services, log_dir=self.log_dir / name)
        self.extras[name] = stack
        stack.start()
        return stack

    def stop_extra(self, name: str) -> None:
        stack = self.extras.pop(name, None)
        if stack is not None:
            stack.stop()

    def process_groups(self) -> dict[str, list[int]]:
        """{group name: pids} of every process this stack started, for bench.cpu."""
        groups = {}
        for stack in [self.main, *self.extras.values()]:
            if stack is None:
                continue
            for key, proc in stack.procs.items():
                groups[_group_name(key)] = [proc.pid]
        if self.localstripe is not None:
            groups[LOCALSTRIPE] = [self.localstripe.pid]
        return groups

    def check(self) -> None:
        for stack in [self.main, *self.extras.values()]:
            if stack is not None:
                stack.check()

    def fresh_localstripe(self) -> None:
        """Restart the emulator with an empty store, so that runs compared with each other
        start alike (localstripe as shipped costs more per payment the more it holds)."""
        if self.localstripe is None:
            return  # --stock-localstripe: the launcher runs it, as shipped
        self._stop_localstripe()
        self._start_localstripe()
        self._register_webhook()

    def _stop_localstripe(self) -> None:
        if self.localstripe is not None and self.localstripe.poll() is None:
            os.killpg(self.localstripe.pid, signal.SIGTERM)
            try:
                self.localstripe.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.localstripe.pid, signal.SIGKILL)

    def close(self) -> None:
        for name in list(self.extras):
            self.stop_extra(name)
        if self.main is not None:
            self.main.stop()
        self._stop_localstripe()
        try:
            _rabbit_api("DELETE", f"/vhosts/{self.vhost}")
        except OSError as error:
            print(f"warning: could not delete vhost {self.vhost}: {error}")
        drop_databases(self.db_template)


def _group_name(key: str) -> str:
    # "gateway.service:GatewayService" -> "gateway", "reservations_service.service" -> "reservations"
    module, _, cls = key.partition(":")
    if key == LOCALSTRIPE:
        return LOCALSTRIPE
    if module == "gateway.grpc_server":
        return "grpc_gateway"
    if module.startswith("bench."):
        return module.removeprefix("bench.")
    return module.split(".")[0].removesuffix("_service")


def drop_databases(template: str) -> None:
    engine = sa.create_engine(MARIADB_SERVER + "/", isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            for service in DATABASES:
                name = sa.engine.make_url(template.replace("<service>", service)).database
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        engine.dispose()
