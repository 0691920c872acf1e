"""A Bookify stack to break on purpose, and a load to run through it.

`FaultStack`: every service as `make run` starts it (separate `nameko run` processes), by
default two instances of each (the second set behind a second HTTP gateway), on MariaDB, in
a RabbitMQ vhost and databases of its own, with localstripe. RabbitMQ, MariaDB and localstripe
are reached through TCP proxies (tests/fakes/tcp_proxy.py) that can be cut and restored:
an outage for this stack only, with connections dying mid-flight, while the shared servers
keep running for everyone else. Processes can be killed (-9) or paused (SIGSTOP/SIGCONT).

`BookingLoad`: customers booking over HTTP from green threads, as a careful client does:
each booking has its own Idempotency-Key, and an answer that says "not now" (503, 504, a
dropped connection, 409 "still in progress") is retried with that same key for a while.

The process using these must run eventlet.monkey_patch() first (the test suite's root
conftest does; `python -m tests.reliability.campaign` does)."""
from __future__ import annotations

import json
import os
import random
import secrets
import signal
import socket
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import eventlet
import requests
import sqlalchemy as sa
from eventlet.greenpool import GreenPool

from bench.stack import BENCH_SETTINGS, MAIN_SERVICES
from scripts import localstripe_server
from scripts.launcher import Stack, register_stripe_webhook
from tests.conftest import MARIADB_SERVER
from tests.fakes.tcp_proxy import TcpProxy
from tests.reliability import invariants

ROOT = Path(__file__).resolve().parents[2]
DATABASES = ["auth", "reservations", "payments", "notifications"]
RABBIT = ("127.0.0.1", 5672)
RABBIT_API = os.environ.get("BOOKIFY_TEST_RABBIT_API", "http://127.0.0.1:15672/api")
ADMIN = {"email": "reliability-admin@bookify.test", "password": "reliability-admin-password"}
WEBHOOK_SECRET = "whsec_reliability_known_to_the_tests"
SERVICE_MODULES = {
    "auth": "auth_service.service",
    "reservations": "reservations_service.service",
    "payments": "payments_service.service",
    "notifications": "notifications_service.service",
    "gateway": "gateway.service:GatewayService",
}

# Defaults of a stack under faults: short holds swept often (so "released later" is seen in
# seconds), fast outbox polling, an RPC deadline that reports a paused service quickly.
SETTINGS = {
    **BENCH_SETTINGS,
    "RPC_TIMEOUT": "8",
    "BOOKING_HOLD_SECONDS": "20",
    "BOOKING_SWEEP_INTERVAL": "2",
    "OUTBOX_POLL_INTERVAL": "0.5",
    "STRIPE_TIMEOUT": "5",
    "LOGIN_MAX_FAILURES": "1000",
    # Pools sized to the workers (max_workers + 2 each): 6 keeps two instances of every service
    # well within a shared MariaDB's connection limit, and is plenty for 8 concurrent clients.
    "MAX_WORKERS": "6",
    # Each notification channel's deliveries in flight must together stay below MAX_WORKERS.
    "NOTIFY_EMAIL_CONCURRENCY": "2",
    "NOTIFY_SMS_CONCURRENCY": "2",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rabbit(method, path, body=None):
    response = requests.request(method, f"{RABBIT_API}{path}", auth=("guest", "guest"), json=body, timeout=10)
    response.raise_for_status()


class FaultStack:
    def __init__(self, log_dir: Path, instances: int = 2, **settings: str):
        self.log_dir = Path(log_dir)
        self.instances = instances
        self.run_id = uuid.uuid4().hex[:8]
        self.vhost = f"bookify_rel_{self.run_id}"
        server = sa.engine.make_url(MARIADB_SERVER)
        self.db_host, self.db_port = server.host or "127.0.0.1", server.port or 3306
        self.db_name = f"bookify_rel_{self.run_id}_<service>"
        self.settings = {**SETTINGS, **settings}
        self.stacks: list[Stack] = []
        self.gateways: list[str] = []
        self.localstripe = None
        self.rabbit = self.mariadb = self.stripe = None
        self.killed = set()

    # -- life -----------------------------------------------------------------------------

    def __enter__(self) -> FaultStack:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _start(self):
        self.log_dir.mkdir(parents=True, exist_ok=True)
        _rabbit("PUT", f"/vhosts/{self.vhost}")
        _rabbit("PUT", f"/permissions/{self.vhost}/guest", {"configure": ".*", "write": ".*", "read": ".*"})
        self.localstripe_port = free_port()
        self._start_localstripe()
        self.rabbit = TcpProxy(*RABBIT)
        self.mariadb = TcpProxy(self.db_host, self.db_port)
        self.stripe = TcpProxy("127.0.0.1", self.localstripe_port)
        env = {
            **self.settings,
            "BOOKIFY_DB_URL": self.database_url("<service>", proxied=True),
            "AMQP_URI": f"amqp://guest:guest@127.0.0.1:{self.rabbit.port}/{self.vhost}",
            "STRIPE_API_BASE": f"http://127.0.0.1:{self.stripe.port}",
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "JWT_SECRET": secrets.token_urlsafe(48),  # no default: each run its own
            "BOOKIFY_ADMIN_EMAIL": ADMIN["email"],
            "BOOKIFY_ADMIN_PASSWORD": ADMIN["password"],
            "GRPC_PORT": str(free_port()),
        }
        for instance in range(1, self.instances + 1):
            port = free_port()
            stack = Stack(ROOT, env={**env, "GATEWAY_ADDRESS": f"127.0.0.1:{port}"}, services=MAIN_SERVICES,
                          log_dir=self.log_dir / f"instance-{instance}")
            if instance == 1:
                stack.prepare()  # migrations and seed, once
            stack.start()
            self.stacks.append(stack)
            self.gateways.append(f"http://127.0.0.1:{port}")
        for stack, url in zip(self.stacks, self.gateways, strict=True):
            stack.wait_ready(f"{url}/ready", timeout=120)
        self._register_webhook()

    def _start_localstripe(self):
        # make run's localstripe: the emulator minus its snapshot on every write and its store scans
        self.localstripe = localstripe_server.spawn(self.localstripe_port, self.log_dir / "localstripe.log")

    def _register_webhook(self):
        register_stripe_webhook(self.localstripe_port, self.gateways[0], WEBHOOK_SECRET)

    def close(self):
        for proxy in (self.rabbit, self.mariadb, self.stripe):
            if proxy is not None:
                proxy.restore()  # let the services stop cleanly
        for stack in self.stacks:
            self._resume_all(stack)
            stack.stop()
        if self.localstripe is not None and self.localstripe.poll() is None:
            os.killpg(self.localstripe.pid, signal.SIGTERM)
            self.localstripe.wait(10)
        for proxy in (self.rabbit, self.mariadb, self.stripe):
            if proxy is not None:
                proxy.close()
        try:
            _rabbit("DELETE", f"/vhosts/{self.vhost}")
        except requests.RequestException as error:
            print(f"warning: could not delete vhost {self.vhost}: {error}")
        engine = sa.create_engine(self.server_url() + "/", isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            for service in DATABASES:
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{self.db_name.replace('<service>', service)}`")
        engine.dispose()

    # -- where things are -----------------------------------------------------------------

    def server_url(self, proxied=False):
        port = self.mariadb.port if proxied else self.db_port
        return f"mysql+pymysql://root@{self.db_host if not proxied else '127.0.0.1'}:{port}"

    def database_url(self, service, proxied=False):
        return f"{self.server_url(proxied)}/{self.db_name.replace('<service>', service)}?charset=utf8mb4"

    @property
    def stripe_api(self):
        return f"http://127.0.0.1:{self.localstripe_port}"  # direct, not through the proxy

    def processes(self, service):
        """The live `nameko run` processes of a service, one per instance."""
        module = SERVICE_MODULES[service]
        return [stack.procs[module] for stack in self.stacks
                if module in stack.procs and stack.procs[module].poll() is None]

    # -- faults ---------------------------------------------------------------------------

    def kill(self, service, instance=0):
        """kill -9 one instance of a service."""
        process = self.processes(service)[instance]
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
        self.killed.add(process.pid)
        return process.pid

    def died(self):
        """Service processes that exited without being killed on purpose: (log, exit code)."""
        return [(str(stack.logs[key]), process.returncode) for stack in self.stacks
                for key, process in stack.procs.items()
                if process.poll() is not None and process.pid not in self.killed]

    def pause(self, service):
        for process in self.processes(service):
            os.kill(process.pid, signal.SIGSTOP)

    def resume(self, service):
        for process in self.processes(service):
            os.kill(process.pid, signal.SIGCONT)

    def _resume_all(self, stack):
        for process in stack.procs.values():
            if process.poll() is None:
                try:
                    os.kill(process.pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass

    # -- state ----------------------------------------------------------------------------

    def outbox_backlog(self):
        """Events recorded but not yet published, per service."""
        backlog = {}
        for service in DATABASES:
            with invariants._connect(self.database_url(service)) as connection:
                backlog[service] = connection.execute(
                    sa.text("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL")).scalar()
        return backlog

    def pending_holds(self):
        with invariants._connect(self.database_url("reservations")) as connection:
            return connection.execute(sa.text("SELECT COUNT(*) FROM reservations WHERE status = 'pending'")).scalar()

    def settle(self, timeout=120):
        """Wait until no hold is pending and every outbox is empty; the seconds it took."""
        started = time.monotonic()
        while True:
            if self.pending_holds() == 0 and not any(self.outbox_backlog().values()):
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"not settled after {timeout}s: {self.pending_holds()} holds pending, "
                                   f"outbox {self.outbox_backlog()}")
            eventlet.sleep(1)

    def dead_letters(self):
        """Messages waiting in each dead-letter queue of the stack (one not declared yet: 0)."""
        import amqp.exceptions
        import kombu

        found = {}
        with kombu.Connection(f"amqp://guest:guest@{RABBIT[0]}:{RABBIT[1]}/{self.vhost}") as connection:
            for name in ("notifications.event_dead_letter", "notifications.dead_letter", "partners.dead_letter"):
                channel = connection.channel()
                try:
                    found[name] = channel.queue_declare(name, passive=True).message_count
                except amqp.exceptions.NotFound:
                    found[name] = 0
                finally:
                    if channel.is_open:
                        channel.close()
        return found

    def violations(self, created):
        return invariants.check_stack(self.database_url("reservations"), self.database_url("payments"),
                                      self.stripe_api, created)

    def counts(self):
        return {"reservations": invariants.counts(self.database_url("reservations"), "reservations"),
                "payments": invariants.counts(self.database_url("payments"), "payments")}


# ------------------------------------------------------------------------------------ load

@dataclass
class Outcome:
    number: int
    key: str
    attempts: list = field(default_factory=list)  # status of each attempt (int or error name)
    reservation_id: int | None = None
    final_code: str | None = None  # the error code of the last answer, if an error
    started: float = 0.0
    finished: float = 0.0

    @property
    def first(self):
        return self.attempts[0]

    @property
    def final(self):
        return self.attempts[-1]


@dataclass
class LoadReport:
    outcomes: list
    elapsed: float
    answers: list  # (monotonic time, status, seconds it took) of every attempt, in order

    @property
    def created(self):
        return sorted({o.reservation_id for o in self.outcomes if o.reservation_id is not None})

    def summary(self):
        return {
            "bookings": len(self.outcomes),
            "created_201": sum(1 for o in self.outcomes if o.final == 201),
            "first_answers": dict(Counter(str(o.first) for o in self.outcomes)),
            "final_answers": dict(Counter(f"{o.final} {o.final_code}" if o.final_code else str(o.final)
                                          for o in self.outcomes)),
            "retried": sum(1 for o in self.outcomes if len(o.attempts) > 1),
            "attempts": sum(len(o.attempts) for o in self.outcomes),
            "server_errors_500": sum(1 for _, status, _ in self.answers if str(status).startswith("500")),
            "unshaped_errors": sum(1 for _, status, _ in self.answers if str(status).endswith("-unshaped")),
            "hangs": sum(1 for _, status, _ in self.answers if status == "ReadTimeout"),
            "elapsed_s": round(self.elapsed, 1),
        }

    def between(self, start, end):
        """{status: [answers, slowest in seconds]} of the answers given from `start` to `end`."""
        found = {}
        for at, status, took in self.answers:
            if start <= at <= end:
                count, slowest = found.get(str(status), (0, 0.0))
                found[str(status)] = (count + 1, round(max(slowest, took), 1))
        return found

    def first_success_after(self, moment):
        return min((at for at, status, _ in self.answers if at >= moment and status == 201), default=None)


class BookingLoad:
    """Customers and places on a FaultStack, and bookings sent over its gateways."""

    def __init__(self, stack: FaultStack, customers=8, places=6, seed=7, retry_for=60.0, http_timeout=None):
        self.stack = stack
        self.random = random.Random(seed)
        self.retry_for = retry_for
        rpc_timeout = float(stack.settings["RPC_TIMEOUT"])
        # Longer than any deadline the gateway has: an answer that does not come by then is a hang.
        self.http_timeout = http_timeout or rpc_timeout * 2 + 10
        self.base = stack.gateways[0]
        admin = self._login(ADMIN["email"], ADMIN["password"])
        self.places = [self._post("/v1/places", admin, {
            "name": f"Room {n}", "unit": "hour", "unit_price": 2500, "currency": "usd"})["id"]
            for n in range(places)]
        self.tokens = []
        for _ in range(customers):
            email = f"rel-{uuid.uuid4().hex[:10]}@example.com"
            self._post("/v1/auth/register", None, {"email": email, "password": "password-1234"})
            self.tokens.append(self._login(email, "password-1234"))
        self.first_day = (datetime.now(timezone.utc) + timedelta(days=2)).replace(
            hour=0, minute=0, second=0, microsecond=0)
        self.answers = []
        self.gives_up = lambda number: False  # which bookings a client does not retry

    def _post(self, path, token, body):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = requests.post(self.base + path, json=body, headers=headers, timeout=30)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def _login(self, email, password):
        return self._post("/v1/auth/login", None, {"email": email, "password": password})["access_token"]

    def probe(self):
        """One read through the gateway (GET /v1/places/<id>, an RPC to reservations):
        (status, seconds it took)."""
        sent = time.monotonic()
        try:
            response = requests.get(f"{self.stack.gateways[-1]}/v1/places/{self.places[0]}", timeout=self.http_timeout,
                                    headers={"Authorization": f"Bearer {self.tokens[0]}"})
            status = response.status_code
            if status >= 400 and "error" not in (response.json() if response.content else {}):
                status = f"{status}-unshaped"
        except requests.ReadTimeout:
            status = "ReadTimeout"
        except (requests.RequestException, ValueError) as error:
            status = type(error).__name__
        return status, time.monotonic() - sent

    def request_for(self, number):
        """The booking request number `number` sends: a random place and 1-3 hours within
        60 days, so some of them collide (409 slot_unavailable) as real traffic does."""
        rng = random.Random(f"{self.random.random()}-{number}")
        start = self.first_day + timedelta(hours=rng.randrange(0, 60 * 24))
        return {"place_id": rng.choice(self.places), "start": start.isoformat(),
                "end": (start + timedelta(hours=rng.randint(1, 3))).isoformat(), "payment_method": "pm_card_visa"}

    def book(self, number, run_id):
        outcome = Outcome(number, f"rel-{run_id}-{number}", started=time.monotonic())
        body = self.request_for(number)
        token = self.tokens[number % len(self.tokens)]
        gateway = self.stack.gateways[number % len(self.stack.gateways)]
        deadline = time.monotonic() + (0 if self.gives_up(number) else self.retry_for)
        delay = 0.5
        while True:
            sent = time.monotonic()
            status, answer = self._attempt(gateway, token, outcome.key, body)
            outcome.attempts.append(status)
            self.answers.append((time.monotonic(), status, time.monotonic() - sent))
            if status == 201:
                outcome.reservation_id = answer["id"]
            outcome.final_code = (answer or {}).get("error", {}).get("code") if isinstance(answer, dict) else None
            retry = status in (503, 504, "ConnectionError", "ReadTimeout") or (
                status == 409 and (answer or {}).get("error", {}).get("code") == "conflict")
            if not retry or time.monotonic() > deadline:
                break
            eventlet.sleep(delay)
            delay = min(delay * 1.5, 4)
            # the other gateway next: a client behind a load balancer would be sent there too
            gateway = self.stack.gateways[(self.stack.gateways.index(gateway) + 1) % len(self.stack.gateways)]
        outcome.finished = time.monotonic()
        return outcome

    def _attempt(self, gateway, token, key, body):
        try:
            response = requests.post(f"{gateway}/v1/reservations", json=body, timeout=self.http_timeout,
                                     headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key})
        except requests.ReadTimeout:
            return "ReadTimeout", None
        except requests.RequestException as error:
            return type(error).__name__, None
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.status_code >= 400 and not (isinstance(answer, dict) and "error" in answer):
            return f"{response.status_code}-unshaped", answer  # not our error shape
        return response.status_code, answer

    def run(self, total, concurrency=8, at=None):
        """Send `total` bookings from `concurrency` green threads. `at`: {booking number:
        callable}, each called (in its own green thread) when that booking is sent."""
        run_id = uuid.uuid4().hex[:6]
        at = dict(at or {})
        pool = GreenPool(concurrency)
        outcomes, faults = [], []
        started = time.monotonic()
        self.answers = []

        def one(number):
            if number in at:
                faults.append(eventlet.spawn(at.pop(number)))
            outcomes.append(self.book(number, run_id))

        for number in range(total):
            pool.spawn_n(one, number)
        pool.waitall()
        for fault in faults:
            fault.wait()
        outcomes.sort(key=lambda o: o.number)
        return LoadReport(outcomes, time.monotonic() - started, sorted(self.answers, key=lambda answer: answer[0]))


def dump(path, figures):
    Path(path).write_text(json.dumps(figures, indent=2, default=str))
