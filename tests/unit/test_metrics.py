"""Prometheus metrics without a broker: what the `Metrics` provider counts per call, the
outbox backlog read at scrape time, its own listener, and the gateway's /metrics switch."""
import logging
import math
import socket
from types import SimpleNamespace

import eventlet
import nameko
import pytest
import requests
from nameko.events import EventHandler
from nameko.rpc import Rpc
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from common.errors import NotFound
from common.runtime.http import route_label
from common.runtime.metrics import REGISTRY, Metrics, count_notification, count_sweep_failure
from common.runtime.outbox_relay import Outbox
from gateway.routes.system import SystemRoutes


def _value(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


class _Worker(SimpleNamespace):
    __hash__ = object.__hash__  # like nameko's WorkerContext: one key per worker


def _entrypoint(entrypoint, method, expected=()):
    entrypoint.method_name = method  # what binding to a service would set
    entrypoint.expected_exceptions = expected
    return entrypoint


def _container(service, *dependencies):
    return SimpleNamespace(service_name=service, dependencies=set(dependencies), spawn_managed_thread=
                           lambda fn, identifier=None: eventlet.spawn(fn))


def _metrics(service="payments", *dependencies, **settings):
    provider = Metrics()
    provider.container = _container(service, *dependencies)
    with nameko.config.patch({"METRICS": settings}):
        provider.setup()
    return provider


def _call(provider, entrypoint, error=None):
    worker = _Worker(service_name=provider.container.service_name, entrypoint=entrypoint)
    provider.worker_setup(worker)
    exc_info = (type(error), error, None) if error else None
    provider.worker_result(worker, None, exc_info)
    provider.worker_teardown(worker)


def test_every_call_is_counted_by_method_and_outcome_and_timed():
    provider = _metrics("metrics-test-calls")
    charge = _entrypoint(Rpc(), "charge", expected=(NotFound,))
    labels = dict(service="metrics-test-calls", kind="rpc", method="charge")
    _call(provider, charge)
    _call(provider, charge)
    _call(provider, charge, NotFound("no such payment"))
    _call(provider, charge, RuntimeError("a bug"))
    assert _value("bookify_calls_total", outcome="ok", **labels) == 2
    assert _value("bookify_calls_total", outcome="expected_error", **labels) == 1
    assert _value("bookify_calls_total", outcome="error", **labels) == 1
    assert _value("bookify_call_duration_seconds_count", **labels) == 4


def test_events_handled_are_counted_by_source_and_type():
    provider = _metrics("metrics-test-events")
    handler = _entrypoint(EventHandler("reservations", "reservation_confirmed"), "on_reservation_confirmed")
    _call(provider, handler)
    _call(provider, handler, RuntimeError("database down"))
    labels = dict(service="metrics-test-events", source="reservations", event_type="reservation_confirmed")
    assert _value("bookify_events_handled_total", outcome="ok", **labels) == 1
    assert _value("bookify_events_handled_total", outcome="error", **labels) == 1
    assert _value("bookify_calls_total", service="metrics-test-events", kind="event",
                  method="on_reservation_confirmed", outcome="ok") == 1


def test_notifications_are_counted_by_channel_and_status():
    before = _value("bookify_notifications_total", channel="sms", status="retrying")
    count_notification("sms", "retrying")
    assert _value("bookify_notifications_total", channel="sms", status="retrying") == before + 1


def _outbox(pending):
    outbox = Outbox(model=None)
    outbox.relay = SimpleNamespace(pending_count=pending)
    return outbox


def test_the_outbox_backlog_is_read_when_scraped_and_unknown_while_the_database_is_down():
    backlog = [3]
    _metrics("metrics-test-outbox", _outbox(lambda: backlog[0]))
    assert _value("bookify_outbox_pending", service="metrics-test-outbox") == 3
    backlog[0] = 0
    assert _value("bookify_outbox_pending", service="metrics-test-outbox") == 0

    def down():
        raise ConnectionError("database unreachable")

    _metrics("metrics-test-outbox-down", _outbox(down))
    assert math.isnan(REGISTRY.get_sample_value("bookify_outbox_pending", {"service": "metrics-test-outbox-down"}))


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_service_serves_the_text_format_on_its_own_port():
    port = _free_port()
    provider = _metrics("metrics-test-port", address="127.0.0.1", ports={"metrics-test-port": port})
    provider.start()
    try:
        _call(provider, _entrypoint(Rpc(), "ping"))
        response = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    finally:
        provider.stop()
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")
    assert 'bookify_calls_total{kind="rpc",method="ping",outcome="ok",service="metrics-test-port"} 1.0' \
        in response.text
    with pytest.raises(requests.ConnectionError):  # stopped: the port is free again
        requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)


def test_a_taken_port_is_logged_and_the_service_runs_on_without_metrics(caplog):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        provider = _metrics("metrics-test-taken", address="127.0.0.1", ports={"metrics-test-taken": port})
        with caplog.at_level(logging.ERROR, logger="common.runtime.metrics"):
            provider.start()
        provider.stop()
    assert f"cannot listen on 127.0.0.1:{port}" in caplog.text


def test_without_a_port_a_service_opens_no_listener():
    provider = _metrics("metrics-test-off", ports={"metrics-test-off": 0})
    provider.start()
    assert provider._socket is None


def test_route_labels_are_the_declared_paths_not_the_requested_ones():
    assert route_label("/v1/reservations") == "/v1/reservations"
    assert route_label("/v1/reservations/<int(min=1, max=9223372036854775807):reservation_id>/cancel") == \
        "/v1/reservations/{reservation_id}/cancel"
    assert route_label("/v1/users/<user_id>") == "/v1/users/{user_id}"


def _get(path):
    return Request(EnvironBuilder(path=path).get_environ())


def test_the_gateways_metrics_route_can_be_turned_off():
    with nameko.config.patch({"METRICS": {"gateway_route": True}}):
        response = SystemRoutes.prometheus(object(), _get("/metrics"))
    assert response.status_code == 200 and b"bookify_http_requests_total" in response.get_data()
    with nameko.config.patch({"METRICS": {"gateway_route": False}}), pytest.raises(NotFound):
        SystemRoutes.prometheus(object(), _get("/metrics"))


def test_sweep_failures_are_counted_per_service_and_task():
    def value():
        return REGISTRY.get_sample_value("bookify_sweep_failures_total",
                                         {"service": "reservations", "task": "pay_refunds_due"}) or 0

    before = value()
    count_sweep_failure("reservations", "pay_refunds_due")
    assert value() == before + 1
