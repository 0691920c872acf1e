"""The benchmark's arithmetic and reporting (bench/load.py, bench/report.py, bench/seed_load.py
layout): percentiles, the target checks, the table and the JSON files. No timing here."""
import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from bench import make_run_growth, report
from bench.__main__ import parse_args
from bench.load import OK, LoadResult, closed_loop, latency_summary, median_run, percentile
from bench.pace import python_pace
from bench.seed_load import STRIDE, SeedLayout, slot_order, slots_per_place, status_of


def test_percentile_interpolates_between_closest_ranks():
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 50) == 2.5
    assert percentile(values, 25) == pytest.approx(1.75)
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile(values, 101)


def test_the_median_run_is_the_middle_rate_with_its_own_latencies():
    runs = [{"per_second": rate, "p50_ms": rate / 100} for rate in (900.0, 700.0, 1100.0)]
    assert median_run(runs) == {"per_second": 900.0, "p50_ms": 9.0, "rounds": 3}
    assert median_run(runs[:2])["per_second"] == 700.0  # even count: the lower middle
    assert median_run(runs[:1])["rounds"] == 1


def test_latency_summary_is_in_milliseconds():
    summary = latency_summary([0.001 * n for n in range(1, 101)])
    assert summary["p50_ms"] == pytest.approx(50.5)
    assert summary["p99_ms"] == pytest.approx(99.01)
    assert summary["max_ms"] == 100.0
    assert latency_summary([])["p50_ms"] is None


def test_load_result_counts_only_ok_latencies_and_rates():
    result = LoadResult(concurrency=2, elapsed=2.0, latencies=[0.01, 0.02])
    result.outcomes.update({OK: 2, "409": 1})
    summary = result.summary()
    assert (summary["ok"], summary["errors"], summary["per_second"]) == (2, 1, 1.0)
    assert summary["outcomes"] == {"ok": 2, "409": 1}


def test_closed_loop_sends_total_requests_with_distinct_numbers_and_counts_failures():
    seen = []

    async def request(number):
        seen.append(number)
        await asyncio.sleep(0)
        if number % 5 == 0:
            raise ConnectionError("refused")
        return OK if number % 2 else "500"

    result = asyncio.run(closed_loop(request, 3, total=20, first=100))
    assert sorted(seen) == list(range(100, 120))
    assert sum(result.outcomes.values()) == 20
    assert result.outcomes["ConnectionError"] == 4
    assert result.ok == len(result.latencies)


def test_closed_loop_needs_a_bound():
    with pytest.raises(ValueError):
        asyncio.run(closed_loop(lambda n: None, 1))


def sample_results():
    summary = {"per_second": 100.0, "p50_ms": 10.0, "p95_ms": 20.0, "p99_ms": 30.0, "errors": 0}
    return {
        "rpc": {"kombu": {"sequential": {"per_second": 1000.0}, "in_flight_10": {"per_second": 2000.0}},
                "service_to_service": {"sequential": {"per_second": 800.0}, "in_flight_10": {"per_second": 1000.0}},
                "gateway_to_service": {"route": "GET /v1/places/{id}", "sequential": summary}},
        "booking": {"c8": {**summary, "per_second": 240.0}, "c16": {**summary, "p50_ms": 31.0}},
        "availability": {"1k": {"reservations": 1000, "booking_c1": {**summary, "p50_ms": 10.0}},
                         "100k": {"reservations": 100_000, "c8": {**summary, "p99_ms": 19.0},
                                  "booking_c1": {**summary, "p50_ms": 12.5}}},
        "cpu": {"booking c8": {"wall_s": 10.0, "requests": 2400, "groups": {"gateway": {"cpu_s": 5.0, "cores": 0.5},
                                                            "rabbitmq": {"cpu_s": 3.0, "cores": 0.3}}}},
    }


def test_targets_pass_fail_and_missing():
    checked = {t["name"]: t for t in report.evaluate(sample_results())}
    assert checked["service->service RPC / plain kombu, sequential"]["value"] == pytest.approx(0.8)
    assert checked["service->service RPC / plain kombu, sequential"]["passed"] is True
    assert checked["service->service RPC / plain kombu, 10 in flight"]["passed"] is False  # 0.5
    assert checked["booking p50 at 16 concurrent"]["passed"] is False  # 31 > 30
    assert checked["booking p99 at 16 concurrent"]["passed"] is True
    assert checked["booking throughput at 8 concurrent"]["passed"] is True
    assert checked["availability p99 with 100k reservations (8 concurrent)"]["passed"] is True
    growth = checked["booking p50 at 100k / at 1k reservations (1 concurrent)"]
    assert growth["value"] == pytest.approx(1.25) and growth["passed"] is False
    assert checked["gRPC unary p50"] == {
        "name": "gRPC unary p50", "value": None, "op": "<=", "threshold": 3,
        "unit": "ms", "passed": None}


def test_rendered_report_has_every_measurement_target_and_cpu_column():
    full = report.build_report({"cpu_count": 2, "started": "2026-01-01T00:00:00+00:00"}, sample_results())
    text = report.render_report(full)
    assert "plain kombu request/reply, sequential" in text and "1,000/s" in text
    assert "0.80x of kombu" in text
    assert "POST /v1/reservations, 32 concurrent" in text  # not measured: shown as "-"
    assert "100,000 reservations" in text
    assert "FAIL" in text and "PASS" in text and "n/a" in text
    header = next(line for line in text.splitlines() if line.startswith("run "))
    assert header.split()[:4] == ["run", "wall", "s", "rabbitmq"]  # broker first, then the services
    assert "gateway" in header and header.endswith("cpu ms/req")
    cpu_row = next(line for line in text.splitlines() if line.startswith("booking c8 "))
    assert cpu_row.split()[-2:] == ["0.80", "3.3"]  # 8 CPU s over 2400 bookings


def test_render_aligns_columns():
    lines = report.render(["name", "value"], [["a", "1"], ["long name", "1,234"]]).splitlines()
    assert len({len(line) for line in lines}) == 1
    assert lines[2].endswith("    1")


def test_write_report_keeps_a_timestamped_copy_and_latest(tmp_path):
    full = report.build_report({"started": "x"}, sample_results())
    path = report.write_report(full, tmp_path / "bench", "20260101T000000Z")
    assert path.name == "20260101T000000Z.json"
    assert json.loads(path.read_text()) == json.loads((tmp_path / "bench" / "latest.json").read_text())
    assert json.loads(path.read_text())["targets"][0]["name"].startswith("service->service")


def test_compare_lists_rates_and_percentiles_with_their_change():
    before = report.build_report({"started": "before"}, sample_results())
    faster = sample_results()
    faster["booking"]["c8"]["per_second"] = 480.0
    text = report.compare(before, report.build_report({"started": "after"}, faster))
    line = next(line for line in text.splitlines() if line.startswith("booking.c8.per_second"))
    assert line.split()[-1] == "2.00x"
    assert "cpu." not in text


def test_seed_layout_spreads_any_prefix_over_the_span_and_never_repeats_a_window():
    assert slots_per_place(20) == 5000 and slots_per_place(7) % STRIDE == 0
    assert [slot_order(rank, 5000) for rank in (0, 1, 49, 50)] == [0, 100, 4900, 1]
    assert sorted(slot_order(rank, 5000) for rank in range(5000)) == list(range(5000))
    layout = SeedLayout([11, 12], [5, 6, 7], now=datetime(2026, 1, 1, 12, 30, tzinfo=UTC))
    rows = list(layout.rows(0, 400))
    assert {(row["place_id"], row["start"]) for row in rows}.__len__() == 400
    assert all(layout.start <= row["start"] and row["end"] <= layout.end for row in rows)
    assert {row["status"] for row in rows} <= {"confirmed", "cancelled", "expired"}
    assert status_of(7) == "cancelled" and status_of(13) == "expired" and status_of(0) == "confirmed"


def test_booking_windows_are_distinct_and_after_the_seeded_span():
    layout = SeedLayout([1, 2, 3], [9], now=datetime(2026, 1, 1, tzinfo=UTC))
    windows = [layout.booking_window(n) for n in range(300)]
    assert len(set(windows)) == 300
    assert all(start > layout.end and end > start for _, start, end in windows)
    assert {place for place, _, _ in windows} == {1, 2, 3}


def test_command_line():
    assert parse_args(["--quick", "--only", "grpc"]).only == "grpc"
    assert parse_args([]).quick is False
    with pytest.raises(SystemExit):
        parse_args(["--only", "nothing"])


def test_profile_sums_collapsed_stacks_by_layer_and_hottest_function(tmp_path):
    from bench import profile

    # py-spy's collapsed format, with file names as it writes them (relative to sys.path).
    run, create = "run (nameko/containers.py:1)", "create (reservations_service/booking.py:90)"
    (tmp_path / "reservations-11.txt").write_text(
        f"{run};{create};execute (sqlalchemy/engine/base.py:5);read (pymysql/connections.py:7) 6\n"
        f"{run};{create} 2\n"
        f"{run};emit (logging/__init__.py:3);dumps (json/encoder.py:2) 2\n")
    (tmp_path / "reservations-12.txt").write_text(f"{run} 10\n")
    summary = profile.summarise(tmp_path)
    assert summary["reservations"]["samples"] == 20  # both processes of the group
    assert summary["reservations"]["layers"] == {"nameko": 50.0, "mysql driver": 30.0, "our code": 10.0,
                                                 "logging": 10.0}
    assert summary["reservations"]["hottest"][0] == ("run (containers.py)", 50.0)
    assert "reservations (20 samples)" in profile.render(summary)


def test_profiled_samples_the_stack_while_its_work_repeats(tmp_path):
    """--profile: py-spy (a test dependency) samples every process of the stack, here one
    spinning process, for as long as asked, while the work runs again and again."""
    import subprocess
    import sys
    from types import SimpleNamespace

    from bench.__main__ import QUICK, Bench

    spinner = subprocess.Popen([sys.executable, "-c", "while True: sum(range(1000))"])
    try:
        bench = Bench(SimpleNamespace(process_groups=lambda: {"spinner": [spinner.pid]}), QUICK, meter=None)
        bench.profile_dir = tmp_path
        runs = []

        async def work():
            runs.append(1)
            await asyncio.sleep(0.2)

        asyncio.run(bench.profiled("spin", work, seconds=1))
    finally:
        spinner.kill()
        spinner.wait()
    assert len(runs) >= 4
    summary = bench.results["profile"]["spin"]["spinner"]
    assert summary["samples"] > 0 and summary["hottest"]
    assert list(tmp_path.glob("spin/spinner-*.txt"))


def test_statements_are_counted_per_database_of_the_run_within_the_window():
    from datetime import datetime as dt

    from bench.statements import count_statements, per_booking

    at = lambda second: dt(2026, 1, 1, 12, 0, second)  # noqa: E731
    rows = [
        (1, "Connect", at(0), "root@localhost on bench_x_payments using TCP/IP"),
        (2, "Connect", at(0), "root@localhost on bench_x_reservations using TCP/IP"),
        (3, "Connect", at(0), "root@localhost on someone_elses using TCP/IP"),
        (1, "Query", at(5), "SELECT 1"), (1, "Query", at(6), "COMMIT"), (1, "Query", at(30), "SELECT late"),
        (2, "Query", at(5), "insert into outbox ..."), (2, "Query", at(1), "SELECT early"),
        (3, "Query", at(5), "SELECT theirs"), (4, "Query", at(5), "SELECT unknown connection"),
    ]
    counted = count_statements(rows, {"payments": "bench_x_payments", "reservations": "bench_x_reservations"},
                               at(2), at(20))
    assert counted == {"payments": {"total": 2, "by_kind": {"SELECT": 1, "COMMIT": 1}},
                       "reservations": {"total": 1, "by_kind": {"INSERT": 1}}}
    assert per_booking(counted, 2) == {"payments": 1.0, "reservations": 0.5, "all": 1.5}
    assert per_booking(counted, 0) == {}


def test_machine_pace_is_shown_in_the_report_and_compared():
    meta = {"started": "before", "python_pace_us_at_start": 11.7, "python_pace_us_at_end": 12.1}
    text = report.render_report(report.build_report(meta, sample_results()))
    assert "11.70 us per unit of Python work at the run's start, 12.10 at its end" in text
    after = report.build_report({"started": "after", "python_pace_us_at_start": 5.85}, sample_results())
    line = next(line for line in report.compare(report.build_report(meta, sample_results()), after).splitlines()
                if line.startswith("machine: python_pace_us_at_start"))
    assert line.split()[-1] == "0.50x"
    assert "Machine pace" not in report.render_report(report.build_report({}, sample_results()))


def test_machine_pace_is_per_unit_of_work_not_per_round():
    short, long = python_pace(rounds=3, iterations=50), python_pace(rounds=3, iterations=500)
    assert 0 < short and 0 < long
    assert 0.2 < long / short < 5  # ten times the work per round, about the same per unit


# -- bench/make_run_growth.py: the long-running make run, first bookings against last ----------

def test_growth_run_frees_every_metrics_port_config_yaml_reads():
    names = make_run_growth.metrics_port_variables((make_run_growth.ROOT / "config.yaml").read_text())
    assert names == ["AUTH_METRICS_PORT", "RESERVATIONS_METRICS_PORT", "PAYMENTS_METRICS_PORT",
                     "NOTIFICATIONS_METRICS_PORT", "GATEWAY_METRICS_PORT", "GRPC_GATEWAY_METRICS_PORT"]


def test_growth_bookings_are_distinct_hours_round_robin_over_the_places():
    first = datetime(2027, 1, 4, 9, tzinfo=UTC)
    windows = make_run_growth.booking_windows(2000, 4, first)
    assert len({(place, start) for place, start, _ in windows}) == 2000
    assert [place for place, _, _ in windows[:6]] == [0, 1, 2, 3, 0, 1]
    assert windows[0] == (0, first, first + timedelta(hours=1))
    assert windows[4] == (0, first + timedelta(hours=1), first + timedelta(hours=2))
    assert all(end - start == timedelta(hours=1) for _, start, end in windows)
    assert windows[-1][1] == first + timedelta(hours=499)  # 500 hours a place: well inside a year


def test_growth_report_compares_rates_and_cpu_per_booking_at_both_ends():
    first = make_run_growth.Window(200, 10.0, {"localstripe": 1.6, "services": 6.0})
    last = make_run_growth.Window(200, 11.0, {"localstripe": 2.0, "services": 6.6})
    result = make_run_growth.growth_report(first, last)
    assert result["first"] == {"bookings": 200, "seconds": 10.0, "per_second": 20.0,
                               "cpu_ms_per_booking": {"localstripe": 8.0, "services": 30.0}}
    assert result["last"]["per_second"] == 18.18
    assert result["last"]["cpu_ms_per_booking"] == {"localstripe": 10.0, "services": 33.0}
    assert (result["rate_ratio"], result["met"]) == (0.91, True)
    assert result["cpu_growth"] == {"localstripe": 1.25, "services": 1.1}

    slow = make_run_growth.Window(200, 50.0, {"localstripe": 42.0, "services": 6.0})
    failed = make_run_growth.growth_report(first, slow)
    assert (failed["rate_ratio"], failed["met"]) == (0.2, False)
    assert failed["cpu_growth"]["localstripe"] == 26.25
    idle = make_run_growth.growth_report(make_run_growth.Window(200, 10.0, {"localstripe": 0.0}),
                                         make_run_growth.Window(200, 10.0, {"localstripe": 0.5}))
    assert idle["cpu_growth"] == {"localstripe": None}  # nothing to compare with


def test_growth_report_is_printed_with_its_verdict():
    first = make_run_growth.Window(200, 10.0, {"localstripe": 1.6, "services": 6.0})
    text = make_run_growth.format_report(make_run_growth.growth_report(
        first, make_run_growth.Window(200, 40.0, {"localstripe": 16.0, "services": 6.0})))
    lines = text.splitlines()
    assert lines[1].split() == ["bookings/s", "20.0", "5.0", "0.25"]
    assert lines[2].split() == ["localstripe", "CPU", "ms/booking", "8.0", "80.0", "10.00"]
    assert lines[-1] == "target: last 200 at >= 0.8x the rate of the first 200: NOT met"


def test_growth_run_needs_room_for_both_windows():
    args = make_run_growth.parse_args([])
    assert (args.bookings, args.window, args.places, args.stock_localstripe) == (2000, 200, 4, False)
    for argv in (["--bookings", "300"], ["--window", "0"], ["--places", "0"]):
        with pytest.raises(SystemExit):
            make_run_growth.parse_args(argv)


def test_a_seeded_reservation_sets_every_column_but_its_id():
    """bench seeds reservations by bulk INSERT: a column added to the model without a value
    here fails `make bench` on MariaDB (no default), as the money columns once did."""
    from bench.seed_load import _column_rows
    from reservations_service.models import Reservation

    columns = {column.name for column in Reservation.__table__.columns} - {"id"}
    layout = SeedLayout([11, 12], [5, 6, 7], now=datetime(2026, 1, 1, 12, 30, tzinfo=UTC))
    [row] = _column_rows(iter([layout.row(0)]))
    assert set(row) == columns
