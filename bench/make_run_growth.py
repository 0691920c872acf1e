"""Does a long-running `make run` stay fast? `python -m bench.make_run_growth`

Starts the stack `make run` starts (scripts.launcher.Stack: every service as its own `nameko
run`, SQLite, localstripe for payments, its signed webhooks registered on the gateway), with
make run's settings except what lets it run beside another stack: free ports for the gateway,
gRPC and every metrics listener, SQLite files in a temp dir, a RabbitMQ vhost of its own, and
access tokens that outlive the run. Then one customer books 2,000 distinct one-hour windows
over a few places through HTTP, one booking after another, and the script compares the first
200 bookings with the last 200: bookings per second, and CPU per booking of the Stripe
emulator and of the services (psutil). Target: the last 200 at least 0.8x the rate of the
first 200. `--stock-localstripe` runs localstripe as shipped, for the before figure.
Writes var/bench/make_run_growth-<time>.json. Figures: docs/performance.md."""
from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import requests

from bench.pace import python_pace
from bench.stack import _rabbit_api, free_port
from scripts.launcher import LOCALSTRIPE, Stack
from scripts.run_local import DEV_ADMIN, local_secrets

ROOT = Path(__file__).resolve().parent.parent
OUTPUT_DIR = ROOT / "var" / "bench"
AMQP_SERVER = "amqp://guest:guest@127.0.0.1:5672"
TARGET = 0.8  # the last window's rate, as a fraction of the first's, at least
SERVICES_GROUP = "services"  # every `nameko run` of the stack together


@dataclass(frozen=True)
class Window:
    """A run of consecutive bookings: how many, how long, CPU seconds spent per group."""

    bookings: int
    seconds: float
    cpu_seconds: dict[str, float]

    def figures(self) -> dict:
        return {"bookings": self.bookings, "seconds": round(self.seconds, 2),
                "per_second": round(self.bookings / self.seconds, 2),
                "cpu_ms_per_booking": {group: round(cpu / self.bookings * 1000, 1)
                                       for group, cpu in self.cpu_seconds.items()}}


def metrics_port_variables(config_text: str) -> list[str]:
    """The *_METRICS_PORT environment variables config.yaml reads, in its order."""
    return list(dict.fromkeys(re.findall(r"\$\{(\w+_METRICS_PORT):", config_text)))


def booking_windows(count: int, places: int, first_start: datetime) -> list[tuple[int, datetime, datetime]]:
    """`count` one-hour bookings, round-robin over `places` (by index), each place's windows
    back to back from `first_start`: (place index, start, end), all distinct."""
    return [(number % places, first_start + (number // places) * timedelta(hours=1),
             first_start + (number // places + 1) * timedelta(hours=1)) for number in range(count)]


def growth_report(first: Window, last: Window, target: float = TARGET) -> dict:
    """The two ends compared: the rate ratio (last / first) and whether it meets `target`,
    and how CPU per booking moved per group (last / first)."""
    head, tail = first.figures(), last.figures()
    ratio = tail["per_second"] / head["per_second"]
    cpu_growth = {group: round(tail["cpu_ms_per_booking"][group] / ms, 2) if ms else None
                  for group, ms in head["cpu_ms_per_booking"].items()}
    return {"first": head, "last": tail, "rate_ratio": round(ratio, 2), "target": target,
            "met": ratio >= target, "cpu_growth": cpu_growth}


def format_report(report: dict) -> str:
    head, tail = report["first"], report["last"]
    groups = list(head["cpu_ms_per_booking"])
    lines = [f"{'':<28}{'first ' + str(head['bookings']):>12}{'last ' + str(tail['bookings']):>12}{'last/first':>12}",
             f"{'bookings/s':<28}{head['per_second']:>12.1f}{tail['per_second']:>12.1f}{report['rate_ratio']:>12.2f}"]
    for group in groups:
        growth = report["cpu_growth"][group]
        lines.append(f"{group + ' CPU ms/booking':<28}{head['cpu_ms_per_booking'][group]:>12.1f}"
                     f"{tail['cpu_ms_per_booking'][group]:>12.1f}{'-' if growth is None else f'{growth:.2f}':>12}")
    verdict = "met" if report["met"] else "NOT met"
    lines.append(f"target: last {tail['bookings']} at >= {report['target']:g}x the rate of the first "
                 f"{head['bookings']}: {verdict}")
    return "\n".join(lines)


class CpuClock:
    """CPU seconds so far of the stack's processes, by group: the emulator and the services."""

    def __init__(self, stack: Stack):
        self.groups: dict[str, list[psutil.Process]] = {LOCALSTRIPE: [], SERVICES_GROUP: []}
        for key, proc in stack.procs.items():
            self.groups[LOCALSTRIPE if key == LOCALSTRIPE else SERVICES_GROUP].append(psutil.Process(proc.pid))

    def read(self) -> dict[str, float]:
        return {group: sum(sum(p.cpu_times()[:2]) for p in procs) for group, procs in self.groups.items()}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.make_run_growth", description=__doc__.split("\n\n")[1])
    parser.add_argument("--bookings", type=int, default=2000)
    parser.add_argument("--window", type=int, default=200, help="bookings compared at each end")
    parser.add_argument("--places", type=int, default=4)
    parser.add_argument("--stock-localstripe", action="store_true",
                        help="localstripe as shipped (snapshot on every write, lists scan the store)")
    args = parser.parse_args(argv)
    if args.bookings < 2 * args.window or args.window < 1 or args.places < 1:
        parser.error("need --bookings >= 2 x --window, and at least one place")
    return args


class Client:
    """The customer's and the admin's HTTP calls, over one keep-alive session."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.session = requests.Session()
        self.session.trust_env = False  # local addresses: no proxy

    def call(self, method: str, path: str, expected: int, token: str | None = None, **kwargs) -> dict:
        headers = {**({"Authorization": f"Bearer {token}"} if token else {}), **kwargs.pop("headers", {})}
        response = self.session.request(method, self.base_url + path, headers=headers, timeout=60, **kwargs)
        if response.status_code != expected:
            raise RuntimeError(f"{method} {path}: HTTP {response.status_code} {response.text[:300]}")
        return response.json()

    def book(self, token: str, place_id: int, start: datetime, end: datetime) -> None:
        self.call("POST", "/v1/reservations", 201, token=token, headers={"Idempotency-Key": uuid.uuid4().hex},
                  json={"place_id": place_id, "start": start.isoformat(), "end": end.isoformat(),
                        "payment_method": "pm_card_visa"})

    def login(self, email: str, password: str) -> str:
        return self.call("POST", "/v1/auth/login", 200, json={"email": email, "password": password})["access_token"]


def run(args, work: Path) -> dict:
    config_text = (ROOT / "config.yaml").read_text()
    vhost = f"bookify_growth_{uuid.uuid4().hex[:8]}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "BOOKIFY_DEMO_DATA": "1",  # as make run
        # make run's dev admin, whatever the calling shell says
        "BOOKIFY_ADMIN_EMAIL": DEV_ADMIN[0], "BOOKIFY_ADMIN_PASSWORD": DEV_ADMIN[1],
        "BOOKIFY_DB_URL": f"sqlite:///{work}/bookify_<service>.db",
        "AMQP_URI": f"{AMQP_SERVER}/{vhost}",
        "GATEWAY_ADDRESS": f"127.0.0.1:{port}",
        "GRPC_PORT": str(free_port()),
        "JWT_ACCESS_TTL": "7200",  # one login for the whole run
        **{name: str(free_port()) for name in metrics_port_variables(config_text)},
        **local_secrets(work, {}),  # as make run: generated once, kept in the run's folder
    }
    _rabbit_api("PUT", f"/vhosts/{vhost}")
    _rabbit_api("PUT", f"/permissions/{vhost}/guest", {"configure": ".*", "write": ".*", "read": ".*"})
    stack = Stack(ROOT, env=env, log_dir=work / "log", localstripe_port=free_port(),
                  stock_localstripe=args.stock_localstripe)
    try:
        print(f"starting make run's stack in {work} ...", flush=True)
        stack.prepare()
        stack.start()
        stack.wait_ready(f"{base}/ready", timeout=120)
        stack.register_stripe_webhook(base, env["STRIPE_WEBHOOK_SECRET"])  # as make run does
        client = Client(base)
        admin = client.login(*DEV_ADMIN)
        email = f"growth-{uuid.uuid4().hex[:8]}@example.com"
        client.call("POST", "/v1/auth/register", 201, json={"email": email, "password": "growth-password-1"})
        token = client.login(email, "growth-password-1")
        place_ids = [client.call("POST", "/v1/places", 201, token=admin, json={
            "name": f"Growth room {n}", "unit": "hour", "unit_price": 2500, "currency": "usd"})["id"]
            for n in range(args.places)]
        first_start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
        windows = booking_windows(args.bookings, args.places, first_start)
        pace_before = python_pace()
        clock = CpuClock(stack)
        marks = {}  # booking number -> (time, cpu) just before it
        for number, (place, start, end) in enumerate(windows):
            if number in (0, args.window, args.bookings - args.window):
                marks[number] = (time.monotonic(), clock.read())
            client.book(token, place_ids[place], start, end)
            if (number + 1) % 200 == 0:
                print(f"  {number + 1} bookings", flush=True)
        marks[args.bookings] = (time.monotonic(), clock.read())
        pace_after = python_pace()
        stack.check()
    finally:
        stack.stop()
        _rabbit_api("DELETE", f"/vhosts/{vhost}")

    def window(begin: int, end: int) -> Window:
        (t0, cpu0), (t1, cpu1) = marks[begin], marks[end]
        return Window(end - begin, t1 - t0, {group: cpu1[group] - cpu0[group] for group in cpu0})

    report = growth_report(window(0, args.window), window(args.bookings - args.window, args.bookings))
    report.update(bookings=args.bookings, places=args.places, stock_localstripe=args.stock_localstripe,
                  whole_run=window(0, args.bookings).figures(), pace_us={"before": round(pace_before, 2),
                                                                       "after": round(pace_after, 2)})
    return report


def main(argv=None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bookify-growth-") as work:
        report = run(args, Path(work))
    print(format_report(report))
    print(f"python pace: {report['pace_us']['before']} -> {report['pace_us']['after']} us (bench/pace.py)")
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    out = OUTPUT_DIR / f"make_run_growth-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"written to {out.relative_to(ROOT)}")
    return 0 if report["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
