"""A real RabbitMQ restart while a service runs and its outbox holds events: the service
survives, and every event goes out after the broker is back, once each."""
import subprocess
import time

import eventlet
import pytest
from nameko.standalone.rpc import ServiceRpcClient
from nameko.testing.services import entrypoint_hook

from auth_service.models import OutboxMessage
from auth_service.service import AuthService
from common.runtime.outbox_relay import OutboxRelay
from tests.service.amqp_probe import EventProbe


def rabbitmqctl(*args):
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=120)


@pytest.fixture
def broker_restart():
    """Stops the broker's application (connections drop, nothing is reachable) and starts it
    again; whatever happens, the broker is running when the test ends."""
    stopped = []

    def stop():
        rabbitmqctl("stop_app")
        stopped.append(True)

    def start():
        rabbitmqctl("start_app")
        rabbitmqctl("await_startup")
        stopped.clear()

    yield stop, start
    if stopped:
        start()


def test_events_recorded_during_a_broker_restart_go_out_once_after_it(
        auth_db, service_config, container_factory, broker_restart):
    stop, start = broker_restart
    container = container_factory(AuthService, service_config)
    container.start()
    with ServiceRpcClient("auth", timeout=10) as auth:
        auth.ping()
    # A durable subscriber, as a consuming service has: its queue outlives the restart.
    probe = EventProbe(service_config["AMQP_URI"], "auth", "user_registered", durable_name="restart-probe")

    stop()
    users = []
    with entrypoint_hook(container, "register") as register:
        for n in range(3):
            users.append(register({"email": f"restart{n}@example.com", "password": "password-123"})["id"])
    eventlet.sleep(1)  # relay attempts fail while the broker is away
    relay = OutboxRelay(auth_db, OutboxMessage, service_config["AMQP_URI"], "auth")
    assert relay.pending_count() == 3

    start()
    deadline = time.monotonic() + 30
    while relay.pending_count() and time.monotonic() < deadline:
        eventlet.sleep(0.2)
    assert relay.pending_count() == 0
    probe.reconnect()
    received = probe.drain(want=3, timeout=15)
    assert sorted(body["user_id"] for _, body in received) == sorted(users)
    assert probe.drain(timeout=1.5) == []  # once each
    probe.delete()
    probe.close()

    assert not container._died.ready()  # the service lived through it
    with ServiceRpcClient("auth", timeout=30) as auth:
        deadline = time.monotonic() + 30
        while True:  # its consumers reconnect with a back-off
            try:
                assert auth.ping() == "pong"
                break
            except Exception:
                assert time.monotonic() < deadline
                eventlet.sleep(1)
