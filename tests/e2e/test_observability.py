"""Observability end to end, on a whole stack: one correlation id follows a booking from the
gateway through reservations and payments to the notification it causes, in every service's
JSON log; each service's Prometheus metrics move with the traffic; /ready names each check."""
import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import BACKENDS
from tests.e2e.conftest import free_port, running_stack

SERVICES = ("auth", "reservations", "payments", "notifications")
WAIT = 30  # seconds a step may take on a loaded machine before the test gives up


@pytest.fixture(scope="module", params=BACKENDS)
def observed_api(request, tmp_path_factory):
    ports = {name: free_port() for name in SERVICES}
    env = {f"{name.upper()}_METRICS_PORT": str(port) for name, port in ports.items()}
    # Another stack on this host may hold the default ports: this one must scrape its own.
    env.update(GATEWAY_METRICS_PORT=str(free_port()), GRPC_GATEWAY_METRICS_PORT=str(free_port()),
               LOG_FORMAT="json")
    with running_stack(request.param, tmp_path_factory.mktemp(f"observability-{request.param}"), **env) as api:
        yield api, ports


def _booking(api, key=None, request_id=None):
    place = api.place()
    _, tokens = api.customer()
    start = datetime.now(timezone.utc).replace(microsecond=0, second=0, minute=0) + timedelta(days=3)
    headers = {"X-Request-ID": request_id} if request_id else {}
    response = api.request("POST", "/v1/reservations", token=tokens["access_token"], headers=headers, json={
        "place_id": place["id"], "start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat(),
        "payment_method": "pm_card_visa"})
    assert response.status_code == 201, response.text
    return response


def _log_lines(path):
    """The JSON log lines of one service (other output, e.g. interpreter warnings, skipped)."""
    lines = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))  # a line that looks like JSON must be JSON
    return lines


def _wait_for(condition, what):
    deadline = time.monotonic() + WAIT
    while not (result := condition()):
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.2)
    return result


def test_one_correlation_id_follows_a_booking_into_every_service_and_its_notification(observed_api):
    api, _ = observed_api
    request_id = f"trace-{uuid.uuid4().hex}"
    response = _booking(api, request_id=request_id)
    assert response.headers["X-Request-ID"] == request_id
    logs = api.stack.logs

    def traced(module):
        return [line for line in _log_lines(logs[module]) if line.get("correlation_id") == request_id]

    # The notification is sent after the request returned: outbox → event → delivery queue.
    sent = _wait_for(lambda: [line for line in traced("notifications_service.service")
                              if line["logger"] == "notifications_service.delivery" and " sent " in line["message"]],
                     "the confirmation to be sent")
    assert sent[0]["service"] == "notifications" and "reservation_confirmed" in sent[0]["message"]

    gateway = traced("gateway.service:GatewayService")
    assert [(line["method"], line["route"], line["status"]) for line in gateway
            if line["logger"] == "gateway.access"] == [("POST", "/v1/reservations", 201)]
    reservations = traced("reservations_service.service")
    assert {"rpc reservations.create_reservation ok"} <= {line["message"] for line in reservations}
    payments = traced("payments_service.service")
    assert {"rpc payments.charge ok"} <= {line["message"] for line in payments}
    handled = {line["message"] for line in traced("notifications_service.service")}
    assert {"event notifications.on_reservation_confirmed ok", "consume notifications.deliver_email ok"} <= handled
    for module, service in [("reservations_service.service", "reservations"), ("payments_service.service", "payments"),
                            ("gateway.service:GatewayService", "gateway")]:
        assert {line["service"] for line in traced(module)} == {service}
        assert all({"time", "level", "logger", "message"} <= set(line) for line in traced(module))


def test_an_unusable_request_id_is_replaced_and_a_missing_one_is_made(observed_api):
    api, _ = observed_api
    for headers in ({"X-Request-ID": "no spaces or quotes\" allowed"}, {"X-Request-ID": "x" * 129}, {}):
        echoed = api.get("/health", headers=headers).headers["X-Request-ID"]
        assert echoed != headers.get("X-Request-ID") and len(echoed) == 32 and int(echoed, 16) >= 0
    assert api.get("/health", headers={"X-Correlation-ID": "from-upstream.1"}).headers["X-Request-ID"] == \
        "from-upstream.1"


def _scrape(url):
    response = requests.get(url, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def _value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_of_the_gateway_and_every_service_move_with_a_booking(observed_api):
    api, ports = observed_api

    def scrape_all():
        return {"gateway": _scrape(f"{api.base_url}/metrics"),
                **{name: _scrape(f"http://127.0.0.1:{port}/metrics") for name, port in ports.items()}}

    email_sent = dict(channel="email", status="sent")
    before = scrape_all()
    _booking(api)
    # Two emails: the new customer's welcome and the booking's confirmation.
    _wait_for(lambda: _value(_scrape(f"http://127.0.0.1:{ports['notifications']}/metrics"),
                             "bookify_notifications_total", **email_sent)
              >= _value(before["notifications"], "bookify_notifications_total", **email_sent) + 2,
              "the welcome and confirmation emails to be counted")
    after = scrape_all()

    def moved(process, name, **labels):
        return _value(after[process], name, **labels) - _value(before[process], name, **labels)

    post = dict(method="POST", route="/v1/reservations")
    assert moved("gateway", "bookify_http_requests_total", status="201", **post) == 1
    assert moved("gateway", "bookify_http_request_duration_seconds_count", **post) == 1
    assert moved("gateway", "bookify_http_requests_total", method="POST", route="/v1/auth/register",
                 status="201") == 1
    assert moved("reservations", "bookify_calls_total", service="reservations", kind="rpc",
                 method="create_reservation", outcome="ok") == 1
    assert moved("reservations", "bookify_call_duration_seconds_count", service="reservations", kind="rpc",
                 method="create_reservation") == 1
    assert moved("payments", "bookify_calls_total", service="payments", kind="rpc", method="charge",
                 outcome="ok") == 1
    assert moved("auth", "bookify_calls_total", service="auth", kind="rpc", method="register", outcome="ok") == 1
    assert moved("notifications", "bookify_events_handled_total", service="notifications",
                 source="reservations", event_type="reservation_confirmed", outcome="ok") == 1
    assert moved("notifications", "bookify_notifications_total", **email_sent) == 2
    for service in SERVICES:
        # Read from the service's database at scrape time: a number, not NaN (which fails >= 0).
        assert after[service][("bookify_outbox_pending", (("service", service),))] >= 0


def test_ready_reports_the_broker_and_each_service_with_its_database(observed_api):
    api, _ = observed_api
    response = api.get("/ready")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"] == {"broker": "ok", **{name: {"status": "ok", "database": "ok"} for name in SERVICES}}
    assert body["services"] == {name: "ok" for name in SERVICES}
