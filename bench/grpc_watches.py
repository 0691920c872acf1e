"""What open gRPC watches cost: `python -m bench.grpc_watches [--watches 50] [--seconds 10]`

Starts the stack `make run` starts (scripts.launcher.Stack, SQLite, localstripe, free ports
and a RabbitMQ vhost of its own), creates `--watches / 2` Moderators (2 watches each, the
per-user limit), each on a gRPC channel of its own, and opens their watches of everyone's
reservations. Then it measures, with psutil, the CPU of the gRPC gateway process over
`--seconds` of idleness, and the latency of 20 `Auth.login`s over gRPC (another user), first
with no watch open and then with all of them open. Figures: docs/grpc.md."""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import psutil

from bench.make_run_growth import Client, metrics_port_variables
from bench.stack import _rabbit_api, free_port
from gateway.grpc_generated import auth_pb2, auth_pb2_grpc, reservations_pb2, reservations_pb2_grpc
from scripts.launcher import Stack
from scripts.run_local import DEV_ADMIN, local_secrets

ROOT = Path(__file__).resolve().parent.parent
AMQP_SERVER = "amqp://guest:guest@127.0.0.1:5672"
GRPC_GATEWAY = "gateway.grpc_server:GrpcGatewayService"
PASSWORD = "watch-password-1"


def cpu_percent(process: psutil.Process, seconds: float) -> float:
    """Percent of one core the process used over the next `seconds`."""
    before = sum(process.cpu_times()[:2])
    time.sleep(seconds)
    return round((sum(process.cpu_times()[:2]) - before) / seconds * 100, 2)


def grpc_login(channel, email: str) -> str:
    stub = auth_pb2_grpc.AuthStub(channel)
    return stub.login(auth_pb2.LoginRequest(email=email, password=PASSWORD), timeout=15).access_token


def run(args, work: Path) -> dict:
    config_text = (ROOT / "config.yaml").read_text()
    vhost = f"bookify_watches_{uuid.uuid4().hex[:8]}"
    port, grpc_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "BOOKIFY_ADMIN_EMAIL": DEV_ADMIN[0], "BOOKIFY_ADMIN_PASSWORD": DEV_ADMIN[1],
        "BOOKIFY_DB_URL": f"sqlite:///{work}/bookify_<service>.db",
        "AMQP_URI": f"{AMQP_SERVER}/{vhost}",
        "GATEWAY_ADDRESS": f"127.0.0.1:{port}",
        "GRPC_PORT": str(grpc_port),
        **{name: str(free_port()) for name in metrics_port_variables(config_text)},
        **local_secrets(work, {}),  # as make run: generated once, kept in the run's folder
    }
    _rabbit_api("PUT", f"/vhosts/{vhost}")
    _rabbit_api("PUT", f"/permissions/{vhost}/guest", {"configure": ".*", "write": ".*", "read": ".*"})
    stack = Stack(ROOT, env=env, log_dir=work / "log", localstripe_port=free_port())
    channels, streams = [], []
    try:
        print(f"starting make run's stack in {work} ...", flush=True)
        stack.prepare()
        stack.start()
        stack.wait_ready(f"{base}/ready", timeout=120)
        stack.register_stripe_webhook(base, env["STRIPE_WEBHOOK_SECRET"])
        client = Client(base)
        admin = client.login(*DEV_ADMIN)
        place = client.call("POST", "/v1/places", 201, token=admin, json={
            "name": "Watched room", "unit": "hour", "unit_price": 2500, "currency": "usd"})
        start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=3)
        client.book(admin, place["id"], start, start + timedelta(hours=1))  # what every watch shows first
        emails = []
        for _ in range((args.watches + 1) // 2 + 1):  # the watchers, and one more who logs in
            email = f"watcher-{uuid.uuid4().hex[:8]}@example.com"
            client.call("POST", "/v1/users", 201, token=admin,
                        json={"email": email, "password": PASSWORD, "roles": [{"name": "Moderator"}]})
            emails.append(email)
        gateway = psutil.Process(stack.procs[GRPC_GATEWAY].pid)
        address = f"127.0.0.1:{grpc_port}"
        probe = grpc.insecure_channel(address)
        grpc.channel_ready_future(probe).result(timeout=30)
        time.sleep(2)  # let the start-up settle
        idle = cpu_percent(gateway, args.seconds)
        logins_before = login_times(probe, emails[-1])

        for number in range(args.watches):
            if number % 2 == 0:
                channel = grpc.insecure_channel(address)
                channels.append(channel)
                token = grpc_login(channel, emails[number // 2])
            stream = reservations_pb2_grpc.ReservationsStub(channel).watch_reservations(
                reservations_pb2.WatchReservationsRequest(), metadata=(("authorization", f"Bearer {token}"),),
                timeout=args.seconds * 10 + 120)
            next(stream)  # the current state: the watch is open
            streams.append(stream)
        time.sleep(2)
        watching = cpu_percent(gateway, args.seconds)

        logins = login_times(probe, emails[-1])
        stack.check()
    finally:
        for stream in streams:
            stream.cancel()
        for channel in channels:
            channel.close()
        stack.stop()
        _rabbit_api("DELETE", f"/vhosts/{vhost}")
    return {"time": datetime.now(UTC).isoformat(timespec="seconds"), "watches": args.watches,
            "channels": len(channels), "seconds": args.seconds,
            "grpc_gateway_cpu_percent": {"no_watch": idle, "watches_open": watching},
            "login_ms": {"no_watch": summary(logins_before), "watches_open": summary(logins)}}


def login_times(channel, email: str, count: int = 20) -> list[float]:
    """Milliseconds of `count` logins over gRPC, one after another."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        grpc_login(channel, email)
        times.append((time.perf_counter() - started) * 1000)
    return times


def summary(times: list[float]) -> dict:
    return {"p50": round(statistics.median(times), 1), "max": round(max(times), 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.grpc_watches", description=__doc__.split("\n\n")[1])
    parser.add_argument("--watches", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bookify-watches-") as work:
        result = run(args, Path(work))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
