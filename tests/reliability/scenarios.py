"""The fault scenarios, each a load of bookings with one fault injected part-way, returning
its figures. Used by the test suite (scaled down, asserting) and by
`python -m tests.reliability.campaign` (full size, printing the figures)."""
from __future__ import annotations

import time
from collections import Counter

import eventlet

from tests.reliability.harness import BookingLoad, FaultStack


def _figures(stack: FaultStack, report, marks, **extra):
    figures = {**report.summary(), **extra}
    try:
        figures["settled_after_load_s"] = round(stack.settle(), 1)
    except TimeoutError as error:
        figures["settled_after_load_s"] = None
        figures["unsettled"] = str(error)
    figures["violations"] = [str(v) for v in stack.violations(report.created)]
    figures["died"] = stack.died()
    figures["dead_letters"] = stack.dead_letters()
    figures["state"] = stack.counts()
    restored = marks.get("restored")
    if restored is not None:
        first = report.first_success_after(restored)
        figures["recovered_s"] = None if first is None else round(first - restored, 1)
        figures["answers_during_fault"] = dict(report.between(marks["cut"] + 0.2, restored))
        figures["new_requests_during_fault"] = marks["probe"]
    return figures


def kill_instances(stack: FaultStack, load: BookingLoad, bookings=1000, concurrency=8):
    """Point 1: kill -9 one reservations instance at ~40% of the load, one payments
    instance at ~60%; the other instances carry on, redelivered requests included."""
    killed = {}
    at = {int(bookings * 0.4): lambda: killed.setdefault("reservations", stack.kill("reservations")),
          int(bookings * 0.6): lambda: killed.setdefault("payments", stack.kill("payments"))}
    report = load.run(bookings, concurrency, at)
    return _figures(stack, report, {}, killed_pids=killed)


def _outage(stack, load, bookings, concurrency, cut, restore, seconds, at=0.3, during=None):
    marks = {"probe": {}}

    def probe():
        """New requests while the fault lasts, one every half second (a read that needs the
        reservations service): how they are answered, and how fast."""
        while "restored" not in marks:
            status, took = load.probe()
            if "restored" in marks:
                break  # answered after the fault ended: it says nothing about the fault
            count, slowest = marks["probe"].get(str(status), (0, 0.0))
            marks["probe"][str(status)] = (count + 1, round(max(slowest, took), 1))
            eventlet.sleep(0.5)

    def fault():
        marks["cut"] = time.monotonic()
        cut()
        prober = eventlet.spawn(probe)
        eventlet.sleep(seconds)
        if during is not None:
            marks["during"] = during()
        restore()
        marks["restored"] = time.monotonic()
        prober.wait()

    report = load.run(bookings, concurrency, {int(bookings * at): fault})
    return report, marks


def broker_outage(stack: FaultStack, load: BookingLoad, bookings=1000, concurrency=8, seconds=15):
    """Point 2: every connection of the stack to RabbitMQ dies and new ones are refused for
    `seconds`, then the broker is reachable again."""
    report, marks = _outage(stack, load, bookings, concurrency, stack.rabbit.cut, stack.rabbit.restore,
                            seconds, during=stack.outbox_backlog)
    return _figures(stack, report, marks, outage_s=seconds, outbox_backlog_during_outage=marks["during"])


def database_outage(stack: FaultStack, load: BookingLoad, bookings=1000, concurrency=8, seconds=8):
    """Point 3: every connection of the stack to MariaDB dies and new ones are refused."""
    report, marks = _outage(stack, load, bookings, concurrency, stack.mariadb.cut, stack.mariadb.restore, seconds)
    return _figures(stack, report, marks, outage_s=seconds)


def stripe_outage(stack: FaultStack, load: BookingLoad, bookings=1000, concurrency=8, seconds=8):
    """Point 4: localstripe unreachable (connections in flight cut, new ones refused). The
    clients of odd-numbered bookings never retry, so their holds must end on their own:
    confirmed (the charge did reach Stripe: webhook) or expired by the sweeper."""
    load.gives_up = lambda number: number % 2 == 1
    try:
        report, marks = _outage(stack, load, bookings, concurrency, stack.stripe.cut, stack.stripe.restore, seconds)
    finally:
        load.gives_up = lambda number: False
    abandoned = [o for o in report.outcomes if o.number % 2 == 1 and o.final == 503]
    figures = _figures(stack, report, marks, outage_s=seconds)
    figures["abandoned_503"] = len(abandoned)
    return figures


def slow_service(stack: FaultStack, load: BookingLoad, bookings=200, concurrency=8, seconds=None):
    """Point 5: every reservations instance stops answering (SIGSTOP) for longer than the
    RPC deadline, then carries on (SIGCONT) with what queued up meanwhile."""
    seconds = seconds or float(stack.settings["RPC_TIMEOUT"]) + 4
    report, marks = _outage(stack, load, bookings, concurrency, lambda: stack.pause("reservations"),
                            lambda: stack.resume("reservations"), seconds)
    timed_out = [o for o in report.outcomes if 504 in o.attempts]
    figures = _figures(stack, report, marks, pause_s=seconds)
    figures["bookings_answered_504"] = len(timed_out)
    figures["their_final_answers"] = dict(Counter(str(o.final) for o in timed_out))
    return figures


SCENARIOS = {
    "kill": kill_instances,
    "broker": broker_outage,
    "database": database_outage,
    "stripe": stripe_outage,
    "slow": slow_service,
}
