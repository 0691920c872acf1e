"""RPC round trips per second: plain kombu request/reply (the baseline: what the broker gives
with no framework), our service-to-service RPC (bench_caller -> bench_echo through
common.runtime.rpc.TimedServiceRpc), and gateway -> service over HTTP."""
from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp
from kombu import Connection, Consumer, Producer, Queue

from bench.load import latency_summary

ROOT = Path(__file__).resolve().parent.parent
ECHO_SERVICES = ["bench.echo_service", "bench.caller_service"]
GATEWAY_ROUTE = "GET /v1/places/{id}"
GATEWAY_ROUTE_NOTE = ("signed in, permission cache warm: one RPC (reservations.get_place, "
                      "a primary-key read); no public route makes exactly one cheap RPC")


def _rate_summary(calls: int, elapsed: float, latencies: list[float], in_flight: int) -> dict:
    return {"in_flight": in_flight, "calls": calls, "elapsed_s": round(elapsed, 3),
            "per_second": round(calls / elapsed, 1) if elapsed > 0 else 0.0,
            **latency_summary(sorted(latencies))}


# -- the plain kombu baseline -----------------------------------------------------------------

class KombuEcho:
    """The echo server process, on a queue of its own."""

    def __init__(self, amqp_uri: str, log_path: Path):
        self.amqp_uri = amqp_uri
        self.queue = f"bench.kombu_echo.{uuid.uuid4().hex[:8]}"
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> KombuEcho:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w+")
        self.process = subprocess.Popen([sys.executable, "-m", "bench.kombu_echo", self.amqp_uri, self.queue],
                                        cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while "ready" not in self.log_path.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"kombu echo server did not start:\n{self.log_path.read_text()}")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc_info) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._log.close()


def kombu_round_trips(amqp_uri: str, queue: str, calls: int, in_flight: int) -> dict:
    """`calls` request/reply round trips with up to `in_flight` outstanding, over one
    connection: default publish (no confirms), an exclusive reply queue consumed without acks."""
    latencies: list[float] = []
    pending: dict[str, float] = {}
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        producer = Producer(channel)
        replies = Queue(f"bench.kombu_reply.{uuid.uuid4().hex[:8]}", exclusive=True, auto_delete=True,
                        durable=False)
        sent = 0

        def send():
            nonlocal sent
            correlation_id = str(sent)
            pending[correlation_id] = time.perf_counter()
            producer.publish({"n": sent}, routing_key=queue, reply_to=replies.name,
                             correlation_id=correlation_id, serializer="json")
            sent += 1

        def on_reply(body, message):
            latencies.append(time.perf_counter() - pending.pop(message.properties["correlation_id"]))

        with Consumer(channel, queues=[replies], callbacks=[on_reply], no_ack=True, accept=["json"]):
            started = time.perf_counter()
            while len(latencies) < calls:
                while sent < calls and len(pending) < in_flight:
                    send()
                connection.drain_events(timeout=10)
            elapsed = time.perf_counter() - started
    return _rate_summary(calls, elapsed, latencies, in_flight)


# -- our RPC, service to service --------------------------------------------------------------

class RpcPair:
    """bench_echo and bench_caller as two more `nameko run` processes of the stack."""

    def __init__(self, stack):
        self.stack = stack
        self.port = None

    def __enter__(self) -> RpcPair:
        from bench.stack import free_port

        self.port = free_port()
        self.stack.start_extra("rpc-pair", ECHO_SERVICES, GATEWAY_ADDRESS=f"127.0.0.1:{self.port}")
        return self

    def __exit__(self, *exc_info) -> None:
        self.stack.stop_extra("rpc-pair")

    async def wait_ready(self, session: aiohttp.ClientSession, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.stack.check()
            try:
                async with session.get(f"http://127.0.0.1:{self.port}/drive", params={"calls": 1}) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("bench_caller/bench_echo did not answer")
            await asyncio.sleep(0.3)

    async def round_trips(self, session: aiohttp.ClientSession, calls: int, in_flight: int) -> dict:
        """`in_flight` parallel drives of calls // in_flight sequential RPCs each, started together."""
        each = max(1, calls // in_flight)
        start_at = time.time() + 0.3

        async def drive():
            async with session.get(f"http://127.0.0.1:{self.port}/drive",
                                   params={"calls": each, "start_at": f"{start_at:.6f}"}) as response:
                if response.status != 200:
                    raise RuntimeError(f"drive failed: HTTP {response.status} {await response.text()}")
                return await response.json(content_type=None)

        drives = await asyncio.gather(*(drive() for _ in range(in_flight)))
        elapsed = max(d["finished"] for d in drives) - min(d["started"] for d in drives)
        latencies = [latency for d in drives for latency in d["latencies"]]
        return _rate_summary(len(latencies), elapsed, latencies, in_flight)
