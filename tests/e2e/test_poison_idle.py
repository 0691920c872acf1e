"""Poison on every exchange a service consumes, against the stack `make run` starts: each
message is parked within seconds, every queue drains, and every service process is idle
afterwards (CPU read from /proc through psutil), with its log no longer growing; and the same
for poison already waiting in a durable queue when its service starts. A partner booking
reaches its guest first, as an outsider would try it (docs/partners.md)."""
import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import kombu
import psutil
import pytest
import requests

from tests.e2e.conftest import RABBIT_API, running_stack

SETTLE = 30          # seconds a poison message may take to be parked on a loaded machine
IDLE_WINDOW = 10     # seconds of CPU measured afterwards
IDLE_CPU = 0.10      # of one core, per service process: an idle service polls, it never spins
LOG_GROWTH = 20_000  # bytes a service may log while idle (a looping consumer logs megabytes)

WRONG_SHAPE = {"event_id": "poison-1", "amount": "lots"}
# (exchange, routing key, body, content type): what no producer of ours would send.
POISON = [
    ("auth.events", "user_registered", json.dumps(WRONG_SHAPE), "application/json"),
    ("auth.events", "role_changed", b"\x00\xff not json", "application/json"),
    ("auth.events", "session_revoked", json.dumps([1, 2]), "application/json"),
    ("reservations.events", "reservation_confirmed", json.dumps({**WRONG_SHAPE, "user_id": None}),
     "application/json"),
    ("reservations.events", "reservation_cancelled", "<cancel/>", "application/xml"),
    ("payments.events", "payment_succeeded", json.dumps({  # valid JSON, no payment_id
        "event_id": str(uuid.uuid4()), "occurred_at": "2027-01-01T00:00:00+00:00", "reservation_id": 1,
        "user_id": 1, "amount": 100, "currency": "usd"}), "application/json"),
    ("payments.events", "payment_refunded", json.dumps(WRONG_SHAPE), "application/json"),
    ("partners.events", "reservation_requested", b"{not json", "application/json"),
    ("partners.events", "reservation_cancel_requested", json.dumps({"partner": 5}), "application/json"),
    ("notifications.delivery", "deliver", json.dumps({"notification_id": "one"}), "application/json"),
]
CONSUMED_QUEUES = ("evt-", "reservations.partner_requests", "notifications.deliveries")


def _queues(vhost):
    response = requests.get(f"{RABBIT_API}/queues/{quote(vhost, safe='')}", auth=("guest", "guest"), timeout=10)
    response.raise_for_status()
    return {q["name"]: q for q in response.json()}


def _publish(uri, exchange, routing_key, body, content_type):
    kind = "direct" if exchange == "notifications.delivery" else "topic"
    target = kombu.Exchange(exchange, type=kind, durable=True)
    with kombu.Connection(uri) as connection:
        kombu.Producer(connection).publish(
            body.encode() if isinstance(body, str) else body, exchange=target, routing_key=routing_key,
            content_type=content_type, content_encoding="binary", declare=[target])


def _parked(vhost):
    return sum(q.get("messages", 0) for name, q in _queues(vhost).items() if "dead_letter" in name)


def _wait_until_drained(vhost, parked_at_least):
    """Every consumed queue empty (nothing ready, nothing unacked) and the dead letters in."""
    deadline = time.monotonic() + SETTLE
    while time.monotonic() < deadline:
        queues = _queues(vhost)
        busy = {n: q.get("messages", 0) for n, q in queues.items()
                if n.startswith(CONSUMED_QUEUES) and q.get("messages", 0)}
        if not busy and _parked(vhost) >= parked_at_least:
            return time.monotonic()
        time.sleep(0.5)
    raise AssertionError(f"not drained after {SETTLE}s: {busy}, parked {_parked(vhost)}")


def _assert_idle(stack):
    """Every service process over IDLE_WINDOW seconds: CPU under IDLE_CPU, log barely growing."""
    processes = {key: psutil.Process(proc.pid) for key, proc in stack.procs.items()}
    cpu = {key: sum(p.cpu_times()[:2]) for key, p in processes.items()}
    logs = {key: os.path.getsize(stack.logs[key]) for key in processes}
    time.sleep(IDLE_WINDOW)
    used = {key: (sum(p.cpu_times()[:2]) - cpu[key]) / IDLE_WINDOW for key, p in processes.items()}
    grown = {key: os.path.getsize(stack.logs[key]) - logs[key] for key in processes}
    assert all(share < IDLE_CPU for share in used.values()), used
    assert all(size < LOG_GROWTH for size in grown.values()), grown
    return used


@pytest.fixture(scope="module")
def stack_api(tmp_path_factory):
    with running_stack("sqlite", tmp_path_factory.mktemp("poison")) as api:
        yield api


def _vhost_of(api):
    return api.stack.env["AMQP_URI"].rsplit("/", 1)[1]


def test_a_partner_booking_reaches_its_guest_then_poison_everywhere_is_parked_and_the_stack_idles(stack_api):
    api, uri = stack_api, stack_api.stack.env["AMQP_URI"]
    vhost = _vhost_of(api)
    place = api.place()
    start = (datetime.now(UTC) + timedelta(days=5)).replace(hour=10, minute=0, second=0, microsecond=0)
    guest_email = f"guest-{uuid.uuid4().hex[:6]}@example.com"
    _publish(uri, "partners.events", "reservation_requested", json.dumps({
        "event_id": str(uuid.uuid4()), "partner": "acme-travel", "partner_ref": uuid.uuid4().hex[:8],
        "place_id": place["id"], "start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat(),
        "guest": {"name": "Grace Guest", "email": guest_email, "phone": "+14155550177"}}), "application/json")
    admin = api.admin_token()
    deadline, told = time.monotonic() + SETTLE, []
    while not told and time.monotonic() < deadline:
        mine = api.get("/v1/reservations", token=admin, params={"place_id": place["id"]}).json()["items"]
        if mine:
            told = api.get("/v1/notifications", token=admin,
                           params={"reservation_id": mine[0]["id"]}).json()["items"]
        time.sleep(0.5)
    assert {(n["recipient"], n["template"]) for n in told} >= {(guest_email, "reservation_confirmed")}

    before = _parked(vhost)
    started = time.monotonic()
    for exchange, routing_key, body, content_type in POISON:
        _publish(uri, exchange, routing_key, body, content_type)
    drained = _wait_until_drained(vhost, before + len(POISON) + 1)  # role_changed: both gateways park it
    assert drained - started < SETTLE
    used = _assert_idle(api.stack)
    print(f"\npoison: {len(POISON)} messages parked and every queue drained in {drained - started:.1f} s; "
          f"CPU per service over the next {IDLE_WINDOW} s: {used}")  # docs/reliability.md
    assert all(proc.poll() is None for proc in api.stack.procs.values())


def test_poison_already_waiting_in_a_durable_queue_is_parked_when_its_service_starts(stack_api):
    api, uri = stack_api, stack_api.stack.env["AMQP_URI"]
    vhost = _vhost_of(api)
    for key in ("notifications_service.service", "reservations_service.service"):
        api.stack.stop_service(key)
    before = _parked(vhost)
    waiting = [p for p in POISON if p[0] in ("reservations.events", "payments.events", "partners.events")]
    for exchange, routing_key, body, content_type in waiting:
        _publish(uri, exchange, routing_key, body, content_type)
    deadline = time.monotonic() + SETTLE  # the management API's counts lag by a few seconds
    while _queues(vhost)["reservations.partner_requests"].get("messages", 0) < 2:
        assert time.monotonic() < deadline, "the partner queue did not keep the messages"
        time.sleep(0.5)
    for key in ("notifications_service.service", "reservations_service.service"):
        api.stack.start_service(key)
    api.stack.wait_ready(f"{api.base_url}/ready", timeout=60)
    _wait_until_drained(vhost, before + len(waiting))
    _assert_idle(api.stack)
