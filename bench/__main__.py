"""`make bench` / `python -m bench`: start the stack on MariaDB with localstripe, measure every
section in one run, print the table with the targets, and write var/bench/<time>.json and
var/bench/latest.json. What each section measures and how: docs/performance.md."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench import report
from bench.pace import python_pace
from bench.stack import ADMIN, BENCH_SETTINGS, DATABASES, MARIADB_SERVER, ROOT, BenchStack

SECTIONS = ["rpc", "grpc", "booking", "availability"]
OUTPUT_DIR = ROOT / "var" / "bench"


@dataclass(frozen=True)
class Sizes:
    """How much of each measurement; the full run stays within ~10 minutes on 2 cores."""

    # Concurrent clients share tokens (each booking has its own Idempotency-Key): creating a token
    # is an argon2 login, so a few customers keep the setup short.
    customers: int = 8
    places: int = 20  # bookings of one place serialise on its row lock: spread them
    kombu_sequential: int = 3000
    kombu_in_flight: int = 6000
    rpc_sequential: int = 1500
    rpc_in_flight: int = 3000
    rpc_rounds: int = 3
    gateway_seconds: float = 8
    booking_seconds: float = 15
    availability_seconds: float = 8
    growth_seconds: float = 10
    grpc_calls: int = 400
    warmup_seconds: float = 2
    profile_seconds: float = 8  # --profile: how long py-spy samples each section


QUICK = Sizes(kombu_sequential=1000, kombu_in_flight=2000, rpc_sequential=400, rpc_in_flight=1000, rpc_rounds=1,
              gateway_seconds=3, booking_seconds=4, availability_seconds=3, growth_seconds=4, grpc_calls=150,
              warmup_seconds=1, profile_seconds=4)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Start Bookify on MariaDB with localstripe (as `make run` does, on its own vhost, "
                    "databases and ports), measure RPC, booking, availability and gRPC, print a table "
                    "with the targets and write it as JSON to var/bench/. See docs/performance.md.")
    parser.add_argument("--quick", action="store_true", help="short runs (about 2 minutes in all)")
    parser.add_argument("--only", choices=SECTIONS, help="run one section only")
    parser.add_argument("--stock-localstripe", action="store_true",
                        help="run localstripe as shipped, saving its whole store to disk on every write "
                             "(payments get slower as the run goes on; see docs/performance.md)")
    parser.add_argument("--profile", action="store_true",
                        help="after each section's runs, run one of them again under py-spy (service->service "
                             "RPC, gRPC unary, availability at 100k and 8 concurrent, booking at 8 concurrent) "
                             "and show where each process spends its CPU (var/bench/profiles/)")
    parser.add_argument("--statements", action="store_true",
                        help="count the database statements each booking costs, per service, from MariaDB's "
                             "general log (slows MariaDB: use for the count, not the timings)")
    parser.add_argument("--compare", nargs=2, metavar=("BEFORE.json", "AFTER.json"),
                        help="print two saved reports side by side instead of running")
    return parser.parse_args(argv)


def _git(*args) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine_meta() -> dict:
    return {"cpu_count": os.cpu_count(), "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
            "platform": platform.platform(), "python": platform.python_version(),
            "git_commit": _git("rev-parse", "--short", "HEAD"),
            "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no"))}


class Bench:
    """One run: the stack, the customers, places and seeded rows shared by the sections."""

    def __init__(self, stack: BenchStack, sizes: Sizes, meter):
        self.stack = stack
        self.sizes = sizes
        self.meter = meter
        self.results: dict = {"cpu": {}}
        self.seeded = 0
        self.next_booking = 0  # bookings take distinct windows across the whole run
        self.profile_dir: Path | None = None  # where --profile puts py-spy's stacks
        self.statements = None  # bench.statements.Statements with --statements

    # -- plumbing -------------------------------------------------------------------------

    def measuring(self, label: str):
        """Context manager: CPU per process group of what runs inside, stored under `label`."""
        bench = self

        class _Window:
            requests = 0  # set by the caller: what the CPU was spent on, for CPU ms per request

            def __enter__(self):
                bench.meter.watch_all(bench.stack.process_groups())
                bench.meter.start()
                return self

            def __exit__(self, *exc_info):
                bench.results["cpu"][label] = {**bench.meter.sample(), "requests": self.requests}

        return _Window()

    def progress(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    async def setup(self) -> None:
        from bench.http_api import Gateway
        from bench.seed_load import SeedLayout

        self.gateway = Gateway(self.stack.base_url)
        admin = await self.gateway.login(ADMIN["email"], ADMIN["password"])
        self.progress(f"registering {self.sizes.customers} customers and {self.sizes.places} places")
        self.customers = await self.gateway.customers(self.sizes.customers)
        self.place_ids = await self.gateway.places(admin, self.sizes.places)
        self.layout = SeedLayout(self.place_ids, [c.user_id for c in self.customers])

    async def seed_to(self, rows: int) -> None:
        from bench.seed_load import seed_reservations

        if rows <= self.seeded:
            return
        self.progress(f"bulk-inserting reservations {self.seeded:,}..{rows:,}")
        seconds = await asyncio.to_thread(seed_reservations, self.stack.database_url("reservations"),
                                          self.layout, self.seeded, rows)
        self.results.setdefault("seeding", {})[f"{rows}"] = {"rows": rows - self.seeded, "seconds": round(seconds, 2)}
        self.seeded = rows

    async def reservation_count(self) -> int:
        from bench.seed_load import count_reservations

        return await asyncio.to_thread(count_reservations, self.stack.database_url("reservations"), self.place_ids)

    async def bookings(self, concurrency: int, seconds: float):
        from bench.load import closed_loop

        def request(number):
            place_id, start, end = self.layout.booking_window(number)
            return self.gateway.book(self.customers[number % len(self.customers)], place_id, start, end)

        result = await closed_loop(request, concurrency, duration=seconds, first=self.next_booking)
        self.next_booking += sum(result.outcomes.values())
        return result.summary()

    async def availability(self, concurrency: int, seconds: float):
        from bench.load import closed_loop

        def request(number):
            place_id, frm, to = self.layout.availability_span(number)
            return self.gateway.availability(self.customers[number % len(self.customers)], place_id, frm, to)

        return (await closed_loop(request, concurrency, duration=seconds)).summary()

    # -- sections -------------------------------------------------------------------------

    async def rpc(self) -> None:
        import aiohttp

        from bench.load import closed_loop, median_run
        from bench.rpc import GATEWAY_ROUTE, GATEWAY_ROUTE_NOTE, KombuEcho, RpcPair, kombu_round_trips

        sizes, section = self.sizes, self.results.setdefault("rpc", {})
        # Rounds of kombu then ours, taking each one's median round: on a shared machine the
        # broker's pace drifts by a quarter within minutes, and the ratio must compare like
        # with like.
        rounds = {"kombu": [], "service_to_service": []}
        self.progress(f"rpc: plain kombu request/reply against service -> service "
                      f"(common.runtime.rpc.TimedServiceRpc), {sizes.rpc_rounds} interleaved rounds")
        async with aiohttp.ClientSession() as session:
            with KombuEcho(self.stack.amqp_uri, self.stack.log_dir / "kombu_echo.log") as echo, \
                    RpcPair(self.stack) as pair:
                self.meter.watch("kombu_echo", [echo.process.pid])
                await asyncio.to_thread(kombu_round_trips, self.stack.amqp_uri, echo.queue, 200, 10)  # warm-up
                await pair.wait_ready(session)
                await pair.round_trips(session, 200, 10)  # warm-up: reply queues, connections
                for _ in range(sizes.rpc_rounds):
                    with self.measuring("rpc: kombu") as window:
                        rounds["kombu"].append({
                            "sequential": await asyncio.to_thread(
                                kombu_round_trips, self.stack.amqp_uri, echo.queue, sizes.kombu_sequential, 1),
                            "in_flight_10": await asyncio.to_thread(
                                kombu_round_trips, self.stack.amqp_uri, echo.queue, sizes.kombu_in_flight, 10)})
                        window.requests = sizes.kombu_sequential + sizes.kombu_in_flight
                    with self.measuring("rpc: service->service") as window:
                        rounds["service_to_service"].append({
                            "sequential": await pair.round_trips(session, sizes.rpc_sequential, 1),
                            "in_flight_10": await pair.round_trips(session, sizes.rpc_in_flight, 10)})
                        window.requests = sum(run["calls"] for run in rounds["service_to_service"][-1].values())
                await self.profiled("rpc service->service sequential",
                                    lambda: pair.round_trips(session, sizes.rpc_sequential, 1))
            for group in ("kombu_echo", "caller_service", "echo_service"):
                self.meter.forget(group)
        for kind, runs in rounds.items():
            section[kind] = {key: median_run([run[key] for run in runs]) for key in ("sequential", "in_flight_10")}
        section["rounds"] = {kind: [{key: run[key]["per_second"] for key in run} for run in runs]
                             for kind, runs in rounds.items()}

        self.progress(f"rpc: gateway -> service ({GATEWAY_ROUTE})")
        customer, place_id = self.customers[0], self.place_ids[0]
        await closed_loop(lambda n: self.gateway.get_place(customer, place_id), 10, duration=sizes.warmup_seconds)
        gateway_rpc = section["gateway_to_service"] = {"route": GATEWAY_ROUTE, "route_note": GATEWAY_ROUTE_NOTE}
        with self.measuring("rpc: gateway->service") as window:
            for key, concurrency in (("sequential", 1), ("in_flight_10", 10)):
                result = await closed_loop(lambda n: self.gateway.get_place(customer, place_id), concurrency,
                                           duration=sizes.gateway_seconds)
                gateway_rpc[key] = result.summary()
                window.requests += result.ok
        # The same gateway with no RPC at all: what HTTP and the gateway cost by themselves.
        gateway_alone = section["gateway_alone"] = {"route": "GET /health"}
        with self.measuring("rpc: gateway alone") as window:
            for key, concurrency in (("sequential", 1), ("in_flight_10", 10)):
                result = await closed_loop(self.gateway.health, concurrency, duration=sizes.gateway_seconds)
                gateway_alone[key] = result.summary()
                window.requests += result.ok

    async def grpc(self) -> None:
        from bench.grpc import connect, grpc_gateway, unary_latency

        await self.seed_to(1_000)
        reservation_id = await asyncio.to_thread(self._reservation_of, self.customers[0].user_id)
        section = self.results.setdefault("grpc", {"method": "Reservations.get_reservation (one RPC behind it)"})
        self.progress("grpc: get_reservation")
        with grpc_gateway(self.stack) as port:
            unary = await asyncio.to_thread(connect, port, self.customers[0].token, reservation_id)
            try:
                for _ in range(20):  # warm-up
                    await asyncio.to_thread(unary.call)
                with self.measuring("grpc: unary") as window:
                    section["ours"] = await asyncio.to_thread(unary_latency, unary, self.sizes.grpc_calls)
                    window.requests = section["ours"]["calls"] - section["ours"]["errors"]
                await self.profiled("grpc unary sequential",
                                    lambda: asyncio.to_thread(unary_latency, unary, self.sizes.grpc_calls))
            finally:
                unary.close()
        self.meter.forget("grpc_gateway")

    def _statements_since(self, started, bookings: int) -> dict:
        import sqlalchemy as sa

        from bench.statements import per_booking

        databases = {service: sa.engine.make_url(self.stack.database_url(service)).database
                     for service in DATABASES}
        counted = self.statements.count(databases, started, self.statements.now())
        return {"bookings": bookings, "per_booking": per_booking(counted, bookings), "counted": counted}

    def _reservation_of(self, user_id: int) -> int:
        import sqlalchemy as sa

        engine = sa.create_engine(self.stack.database_url("reservations"))
        try:
            with engine.connect() as connection:
                return connection.scalar(sa.text("SELECT MIN(id) FROM reservations WHERE user_id = :user"),
                                         {"user": user_id})
        finally:
            engine.dispose()

    async def scale(self, size: str, rows: int) -> None:
        """Availability at 1 and 8 concurrent, and booking latency at 1 concurrent, with `rows`
        seeded reservations on the place set (plus the bookings made so far)."""
        await self.seed_to(rows)
        section = self.results.setdefault("availability", {}).setdefault(size, {})
        section["reservations"] = await self.reservation_count()
        self.progress(f"availability with {section['reservations']:,} reservations on the place set")
        await self.availability(8, self.sizes.warmup_seconds)
        for concurrency in (1, 8):
            with self.measuring(f"availability {size} c{concurrency}") as window:
                section[f"c{concurrency}"] = await self.availability(concurrency, self.sizes.availability_seconds)
                window.requests = section[f"c{concurrency}"]["ok"]
        if size == "100k":
            await self.profiled("availability 100k c8", lambda: self.availability(8, self.sizes.availability_seconds))
        self.progress(f"booking latency with {section['reservations']:,} reservations")
        # Both sizes book against an empty Stripe emulator: the growth measured is ours.
        await asyncio.to_thread(self.stack.fresh_localstripe)
        await self.bookings(1, self.sizes.warmup_seconds)
        with self.measuring(f"growth {size}: booking c1") as window:
            section["booking_c1"] = await self.bookings(1, self.sizes.growth_seconds)
            window.requests = section["booking_c1"]["ok"]

    async def booking(self) -> None:
        await self.seed_to(1_000)
        section = self.results.setdefault("booking", {})
        section["reservations_before"] = await self.reservation_count()
        await self.bookings(8, self.sizes.warmup_seconds)
        started = self.statements.now() if self.statements else None
        for concurrency in (1, 8, 16, 32):
            self.progress(f"booking: {concurrency} concurrent for {self.sizes.booking_seconds:g} s")
            with self.measuring(f"booking c{concurrency}") as window:
                section[f"c{concurrency}"] = await self.bookings(concurrency, self.sizes.booking_seconds)
                window.requests = section[f"c{concurrency}"]["ok"]
            self.stack.check()
        if self.statements:
            await asyncio.sleep(2)  # the webhooks, events and emails of the last bookings
            section["statements"] = self._statements_since(
                started, sum(section[f"c{concurrency}"]["ok"] for concurrency in (1, 8, 16, 32)))
        await self.profiled("booking c8", lambda: self.bookings(8, self.sizes.booking_seconds),
                            self.sizes.booking_seconds)

    async def profiled(self, label: str, work, seconds: float | None = None) -> None:
        """With --profile: run `work()` again, and again until `seconds` (default: the
        profile's sampling time) are up, while py-spy samples every process of the stack.
        Not counted in the figures: sampling pauses the processes it samples."""
        from bench import profile

        if self.profile_dir is None:
            return
        if not profile.available():
            self.progress("--profile: py-spy is not installed (requirements/test.in)")
            return
        seconds = seconds or self.sizes.profile_seconds
        self.progress(f"{label} under py-spy for {seconds:g} s")
        out_dir = self.profile_dir / label.replace(" ", "_").replace(">", "")
        recorders = profile.start(self.stack.process_groups(), out_dir, seconds)
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            await work()
        await asyncio.to_thread(profile.finish, recorders)
        summary = self.results.setdefault("profile", {})[label] = profile.summarise(out_dir)
        print(profile.render(summary, f"While {label}: where each process spends its CPU"), flush=True)

    async def run(self, sections: list[str]) -> None:
        await self.setup()
        # Each step: (section it belongs to, coroutine factory); growth at 1k runs before the
        # booking section adds thousands of rows, growth at 100k after it.
        steps = [("rpc", self.rpc), ("grpc", self.grpc),
                 ("availability", lambda: self.scale("1k", 1_000)), ("booking", self.booking),
                 ("availability", lambda: self.scale("100k", 100_000))]
        try:
            for name, step in steps:
                if name not in sections:
                    continue
                try:
                    await step()
                    self.stack.check()
                except Exception as error:  # a report with a hole beats no report
                    self.progress(f"{name} failed: {error!r}")
                    traceback.print_exc()
                    self.results.setdefault("failures", []).append(f"{name}: {error!r}")
        finally:
            await self.gateway.close()


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.compare:
        before, after = (json.loads(Path(path).read_text()) for path in args.compare)
        print(report.compare(before, after))
        return 0
    sys.stdout.reconfigure(line_buffering=True)
    sizes = QUICK if args.quick else Sizes()
    sections = [args.only] if args.only else SECTIONS
    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    meta = {"started": started.isoformat(timespec="seconds"), "command": " ".join(["python -m bench", *sys.argv[1:]]),
            "quick": args.quick, "stock_localstripe": args.stock_localstripe, "sections": sections,
            "statements": args.statements,
            "sizes": asdict(sizes), "settings": BENCH_SETTINGS,
            **machine_meta(), "python_pace_us_at_start": round(python_pace(), 2)}
    from bench.cpu import CpuMeter  # psutil: needed to run, not to read --help or compare

    meter = CpuMeter()
    clock = time.monotonic()
    print(f"Starting the stack (logs in var/bench/logs/{stamp}/) ...", flush=True)
    with ExitStack() as running:
        if args.statements:
            from bench.statements import general_log

            statements = running.enter_context(general_log(MARIADB_SERVER))
        stack = running.enter_context(BenchStack(OUTPUT_DIR / "logs" / stamp,
                                                 stock_localstripe=args.stock_localstripe))
        bench = Bench(stack, sizes, meter)
        if args.statements:
            bench.statements = statements
        if args.profile:
            bench.profile_dir = OUTPUT_DIR / "profiles" / stamp
        asyncio.run(bench.run(sections))
        print("Stopping the stack ...", flush=True)
    meta["duration_s"] = round(time.monotonic() - clock, 1)
    meta["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    meta["python_pace_us_at_end"] = round(python_pace(), 2)
    full = report.build_report(meta, bench.results)
    path = report.write_report(full, OUTPUT_DIR, stamp)
    print()
    print(report.render_report(full))
    print(f"\n{meta['command']}: {meta['duration_s']:.0f} s; written to {os.path.relpath(path)} "
          f"and var/bench/latest.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
