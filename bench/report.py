"""The benchmark's report: the targets, the printed table and the JSON kept for comparing runs.
Pure functions of the results dict that bench/__main__.py fills, so they are unit-tested."""
from __future__ import annotations

import json
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path


def dig(results: dict, path: str):
    """results["a"]["b"]… for the dotted path "a.b…", or None where any part is missing."""
    node = results
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def ratio(numerator, denominator):
    if numerator is None or not denominator:
        return None
    return numerator / denominator


@dataclass(frozen=True)
class Target:
    name: str
    value: Callable[[dict], float | None]
    op: str  # ">=" or "<="
    threshold: float
    unit: str = ""

    def check(self, results: dict) -> dict:
        value = self.value(results)
        passed = None if value is None else {">=": operator.ge, "<=": operator.le}[self.op](value, self.threshold)
        return {"name": self.name, "value": value, "op": self.op, "threshold": self.threshold,
                "unit": self.unit, "passed": passed}


TARGETS = [
    Target("service->service RPC / plain kombu, sequential",
           lambda r: ratio(dig(r, "rpc.service_to_service.sequential.per_second"),
                           dig(r, "rpc.kombu.sequential.per_second")), ">=", 0.70, "x"),
    Target("service->service RPC / plain kombu, 10 in flight",
           lambda r: ratio(dig(r, "rpc.service_to_service.in_flight_10.per_second"),
                           dig(r, "rpc.kombu.in_flight_10.per_second")), ">=", 0.70, "x"),
    Target("booking p50 at 16 concurrent", lambda r: dig(r, "booking.c16.p50_ms"), "<=", 30, "ms"),
    Target("booking p99 at 16 concurrent", lambda r: dig(r, "booking.c16.p99_ms"), "<=", 120, "ms"),
    Target("booking throughput at 8 concurrent", lambda r: dig(r, "booking.c8.per_second"), ">=", 230, "/s"),
    Target("availability p99 with 100k reservations (8 concurrent)",
           lambda r: dig(r, "availability.100k.c8.p99_ms"), "<=", 20, "ms"),
    Target("booking p50 at 100k / at 1k reservations (1 concurrent)",
           lambda r: ratio(dig(r, "availability.100k.booking_c1.p50_ms"),
                           dig(r, "availability.1k.booking_c1.p50_ms")), "<=", 1.2, "x"),
    Target("gRPC unary p50", lambda r: dig(r, "grpc.ours.p50_ms"), "<=", 3, "ms"),
]


def evaluate(results: dict, targets: Iterable[Target] = TARGETS) -> list[dict]:
    return [target.check(results) for target in targets]


def fmt(value, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "-"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "/s":
        return f"{value:,.0f}/s"
    text = f"{value:,.{digits}f}"
    return f"{text} {unit}" if unit else text


def mark(passed) -> str:
    return {True: "PASS", False: "FAIL", None: "n/a"}[passed]


def _latency_row(section: str, label: str, summary: dict | None, with_errors: bool = True) -> list[str]:
    if not summary:
        return [section, label, "-", "-", "-", "-", "-", "-"]
    return [section, label, fmt(summary.get("per_second"), "/s"), fmt(summary.get("p50_ms")),
            fmt(summary.get("p95_ms")), fmt(summary.get("p99_ms")),
            str(summary.get("errors", 0)) if with_errors else "-", summary.get("note", "")]


MEASUREMENT_HEADER = ["section", "measurement", "rate", "p50 ms", "p95 ms", "p99 ms", "errors", "note"]


def measurement_rows(results: dict) -> list[list[str]]:
    """One row per measured run, in the order the issue lists them."""
    rows = []
    for key, label in (("sequential", "sequential"), ("in_flight_10", "10 in flight")):
        rows.append(_latency_row("rpc baseline", f"plain kombu request/reply, {label}",
                                 dig(results, f"rpc.kombu.{key}"), with_errors=False))
    for key, label in (("sequential", "sequential"), ("in_flight_10", "10 in flight")):
        summary = dig(results, f"rpc.service_to_service.{key}")
        row = _latency_row("our rpc", f"service->service, {label}", summary, with_errors=False)
        if summary:
            row[-1] = f"{fmt(ratio(summary['per_second'], dig(results, f'rpc.kombu.{key}.per_second')), 'x')} of kombu"
            if summary.get("rounds", 1) > 1:
                row[-1] += f" (medians of {summary['rounds']} rounds)"
        rows.append(row)
    route = dig(results, "rpc.gateway_to_service.route")
    via = f" ({route})" if route else ""
    for key, label in (("sequential", "sequential"), ("in_flight_10", "10 in flight")):
        summary = dig(results, f"rpc.gateway_to_service.{key}")
        row = _latency_row("our rpc", f"gateway->service{via}, {label}", summary)
        if summary:
            row[-1] = f"{fmt(ratio(summary['per_second'], dig(results, f'rpc.kombu.{key}.per_second')), 'x')} of kombu"
            if summary.get("rounds", 1) > 1:
                row[-1] += f" (medians of {summary['rounds']} rounds)"
        rows.append(row)
    for key, label in (("sequential", "sequential"), ("in_flight_10", "10 in flight")):
        rows.append(_latency_row("reference", f"gateway alone (GET /health, no RPC), {label}",
                                 dig(results, f"rpc.gateway_alone.{key}")))
    for concurrency in (1, 8, 16, 32):
        rows.append(_latency_row("booking", f"POST /v1/reservations, {concurrency} concurrent",
                                 dig(results, f"booking.c{concurrency}")))
    for size in ("1k", "100k"):
        existing = dig(results, f"availability.{size}.reservations")
        where = f"{existing:,} reservations" if existing is not None else size
        for concurrency in (1, 8):
            rows.append(_latency_row("availability", f"GET availability, {where}, {concurrency} concurrent",
                                     dig(results, f"availability.{size}.c{concurrency}")))
        rows.append(_latency_row("growth", f"booking, {where}, 1 concurrent",
                                 dig(results, f"availability.{size}.booking_c1")))
    rows.append(_latency_row("grpc", "get_reservation unary, sequential", dig(results, "grpc.ours")))
    return rows


TARGET_HEADER = ["target", "measured", "goal", "result"]


def target_rows(checked: list[dict]) -> list[list[str]]:
    return [[t["name"], fmt(t["value"], t["unit"]), f"{t['op']} {fmt(t['threshold'], t['unit'])}", mark(t["passed"])]
            for t in checked]


# Column order of the CPU table; groups not listed here follow in the order first seen.
CPU_GROUP_ORDER = ["rabbitmq", "mariadb", "gateway", "auth", "reservations", "payments", "notifications",
                   "localstripe", "grpc_gateway", "caller_service", "echo_service", "kombu_echo", "bench client"]
CPU_SHORT = {"notifications": "notific.", "reservations": "reserv.", "localstripe": "lstripe",
             "grpc_gateway": "grpc_gw", "caller_service": "b_caller", "echo_service": "b_echo",
             "kombu_echo": "k_echo", "bench client": "client"}


def cpu_table(cpu: dict) -> tuple[list[str], list[list[str]]]:
    """Rows: measured runs; columns: process groups, in cores (CPU seconds per wall second)."""
    seen = []
    for sample in cpu.values():
        seen += [group for group in sample["groups"] if group not in seen]
    groups = [g for g in CPU_GROUP_ORDER if g in seen] + [g for g in seen if g not in CPU_GROUP_ORDER]
    rows = []
    for section, sample in cpu.items():
        cells = [f"{sample['groups'][g]['cores']:.2f}" if g in sample["groups"] else "-" for g in groups]
        total = sum(used["cores"] for used in sample["groups"].values())
        # CPU of every process per request served: less sensitive to a busy machine than rates.
        cpu_ms = sum(used["cpu_s"] for used in sample["groups"].values()) * 1000
        per_request = f"{cpu_ms / sample['requests']:.1f}" if sample.get("requests") else "-"
        rows.append([section, f"{sample['wall_s']:.0f}", *cells, f"{total:.2f}", per_request])
    return ["run", "wall s", *(CPU_SHORT.get(g, g) for g in groups), "total", "cpu ms/req"], rows


def render(header: list[str], rows: list[list[str]]) -> str:
    """A plain-text table; numbers right-aligned, text left-aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells):
        out = []
        for cell, width in zip(cells, widths, strict=True):
            cell = str(cell)
            numeric = cell[:1].isdigit() or cell == "-"
            out.append(cell.rjust(width) if numeric else cell.ljust(width))
        return "  ".join(out).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(row) for row in rows)])


def pace_line(meta: dict) -> str | None:
    """The machine's Python pace at the run's start and end (bench/pace.py), if recorded."""
    start, end = meta.get("python_pace_us_at_start"), meta.get("python_pace_us_at_end")
    if start is None:
        return None
    at_end = f", {end:.2f} at its end" if end is not None else ""
    return (f"Machine pace (bench/pace.py; lower is faster): {start:.2f} us per unit of Python work "
            f"at the run's start{at_end}")


def render_report(report: dict) -> str:
    results = report["results"]
    parts = [render(MEASUREMENT_HEADER, measurement_rows(results)), "",
             render(TARGET_HEADER, target_rows(report["targets"]))]
    pace = pace_line(report["meta"])
    if pace:
        parts += ["", pace]
    statements = dig(results, "booking.statements")
    if statements and statements.get("per_booking"):
        per = statements["per_booking"]
        parts += ["", f"Database statements per booking ({statements['bookings']:,} bookings, MariaDB's "
                  "general log): " + ", ".join(f"{service} {count:g}" for service, count in per.items())]
    if results.get("cpu"):
        cores = report["meta"].get("cpu_count", "?")
        parts += ["", f"CPU per process group, in cores (CPU seconds per wall second; the machine has {cores}); "
                  "rabbitmq and mariadb include anything else using them",
                  render(*cpu_table(results["cpu"]))]
    return "\n".join(parts)


def build_report(meta: dict, results: dict) -> dict:
    return {"meta": meta, "results": results, "targets": evaluate(results)}


def write_report(report: dict, directory: Path, stamp: str) -> Path:
    """var/bench/<stamp>.json and var/bench/latest.json; returns the first."""
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=2, default=str)  # insertion order: the order things ran
    path = directory / f"{stamp}.json"
    path.write_text(text)
    (directory / "latest.json").write_text(text)
    return path


def flatten(node, prefix: str = "") -> dict[str, float]:
    """Numeric leaves as {"a.b.c": value}; for comparing two runs."""
    flat = {}
    if isinstance(node, dict):
        for key, value in node.items():
            flat.update(flatten(value, f"{prefix}{key}."))
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        flat[prefix.rstrip(".")] = node
    return flat


COMPARED = ("per_second", "p50_ms", "p95_ms", "p99_ms", "errors")


def compare(before: dict, after: dict) -> str:
    """Rate, percentiles and errors of two reports side by side, with after/before."""
    old, new = flatten(before["results"]), flatten(after["results"])
    rows = []
    for key in sorted(set(old) | set(new)):
        if key.startswith("cpu.") or key.rsplit(".", 1)[-1] not in COMPARED:
            continue
        change = ratio(new.get(key), old.get(key))
        rows.append([key, fmt(old.get(key)), fmt(new.get(key)), "-" if change is None else f"{change:.2f}x"])
    for key in ("python_pace_us_at_start", "python_pace_us_at_end"):
        old_pace, new_pace = before["meta"].get(key), after["meta"].get(key)
        if old_pace is not None or new_pace is not None:
            change = ratio(new_pace, old_pace)
            rows.append([f"machine: {key} (lower is faster)", fmt(old_pace), fmt(new_pace),
                         "-" if change is None else f"{change:.2f}x"])
    header = ["measurement", before["meta"].get("started", "before"), after["meta"].get("started", "after"),
              "after/before"]
    return render(header, rows)
