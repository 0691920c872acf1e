"""The event contract, checked from both ends (common/contracts/events.py).

Every consumer any service declares is found by looking at the service classes themselves,
so a new consumer, or a new event type, without a case here fails `test_every_consumer...`.
Then every variant a producer can emit (customer booking, partner booking, free place,
operator cancel, expiry, reschedule up and down, refunds, ...) is published on the real
broker to every consumer bound to its type, and must be handled by the real consumer; a
malformed one must be parked in that consumer's dead-letter queue instead."""
import json
import time
import uuid

import kombu
import pytest
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.messaging import Consumer
from nameko.testing.services import entrypoint_waiter

from auth_service.service import AuthService
from common.contracts.events import EVENTS, VARIANTS, variants_of
from common.runtime.dead_letters import DeadLetterQueue
from common.runtime.inbox import PolicyConsumer, PolicyEventHandler, event_dead_letters
from gateway.grpc_server import GrpcGatewayService
from gateway.service import GatewayService
from notifications_service.service import NotificationsService
from payments_service.service import PaymentsService
from reservations_service.places import Places
from reservations_service.service import PARTNER_DEAD_LETTERS, ReservationsService
from tests.conftest import drop_databases, migrated
from tests.e2e.conftest import free_port

SERVICES = [AuthService, ReservationsService, PaymentsService, NotificationsService,
            GatewayService, GrpcGatewayService]
# the notifications work queues (the single one of earlier releases, one per channel): not events
INTERNAL_QUEUES = {"notifications.deliveries", "notifications.deliveries.email", "notifications.deliveries.sms"}


def consumers():
    """(service class, method name, source, event type) for every event any service consumes."""
    found = []
    for service in SERVICES:
        for name in dir(service):
            for entrypoint in getattr(getattr(service, name), ENTRYPOINT_EXTENSIONS_ATTR, ()):
                if isinstance(entrypoint, PolicyEventHandler):
                    found.append((service, name, entrypoint.source_service, entrypoint.event_type))
                elif isinstance(entrypoint, PolicyConsumer):
                    if entrypoint.queue.name in INTERNAL_QUEUES:
                        continue
                    for binding in entrypoint.queue.bindings:
                        source = binding.exchange.name.removesuffix(".events")
                        found.append((service, name, source, binding.routing_key))
    return found


def message_consumers():
    """Every entrypoint that takes messages off a queue, whatever its class."""
    return [(service.__name__, name, entrypoint)
            for service in SERVICES for name in dir(service)
            for entrypoint in getattr(getattr(service, name), ENTRYPOINT_EXTENSIONS_ATTR, ())
            if isinstance(entrypoint, Consumer)]


CONSUMERS = consumers()


def test_every_consumer_goes_through_the_one_policy_and_every_event_it_takes_is_declared():
    for service, method, entrypoint in message_consumers():
        assert isinstance(entrypoint, (PolicyEventHandler, PolicyConsumer)), f"{service}.{method}"
    for service, method, source, event_type in CONSUMERS:
        assert event_type in EVENTS.get(source, {}), f"{service.__name__}.{method}: {source}.{event_type}"
        assert variants_of(source, event_type), f"no variant of {source}.{event_type} to test it with"
    # What the services consume today; a new consumer shows up here and needs its case.
    assert {(s.name, m) for s, m, _, _ in CONSUMERS} == {
        ("notifications", "on_user_registered"), ("notifications", "on_user_profile_changed"),
        ("notifications", "on_reservation_confirmed"), ("notifications", "on_reservation_cancelled"),
        ("notifications", "on_reservation_expired"), ("notifications", "on_reservation_rescheduled"),
        ("notifications", "on_payment_failed"), ("notifications", "on_payment_refunded"),
        ("reservations", "on_payment_succeeded"), ("reservations", "on_payment_refunded"),
        ("reservations", "on_partner_message"),
        ("gateway", "forget_all_permissions"), ("gateway", "forget_user_permissions"),
        ("gateway", "forget_session"),
        ("grpc_gateway", "forget_all_permissions"), ("grpc_gateway", "forget_user_permissions"),
        ("grpc_gateway", "forget_session"),
        ("grpc_gateway", "on_reservation_event"),
    }


def test_every_variant_loads_with_its_producers_schema():
    for variant in VARIANTS:
        EVENTS[variant.source][variant.event_type]().load_or_raise(variant.body)


@pytest.fixture
def db_template(tmp_path):
    """Handling an event does not depend on the database kind here: SQLite only."""
    return f"sqlite:///{tmp_path}/bookify_<service>.db"


@pytest.fixture
def started(service_config, db_template, container_factory):
    """start(service class) -> a running container with its migrated database, if it has one."""
    made = []

    def start(service):
        config = dict(service_config, WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}", GRPC_PORT=free_port())
        package = {"reservations": "reservations_service", "notifications": "notifications_service",
                   "payments": "payments_service", "auth": "auth_service"}.get(service.name)
        if package:
            sessions = migrated(db_template, service.name, package)
            made.append((sessions, service.name))
            if service.name == "reservations":  # partner requests name place 1
                Places(sessions).create({"name": "Dock", "unit": "hour", "unit_price": 1500,
                                         "currency": "usd", "timezone": "UTC"})
        container = container_factory(service, config)
        container.start()
        return container

    yield start
    for sessions, name in made:
        sessions.dispose()
        drop_databases(db_template, [name])


def publish(amqp_uri, source, event_type, body):
    exchange = kombu.Exchange(f"{source}.events", type="topic", durable=True)
    with kombu.Connection(amqp_uri) as connection:
        kombu.Producer(connection).publish(
            json.dumps(body).encode(), exchange=exchange, routing_key=event_type,
            content_type="application/json", content_encoding="binary", declare=[exchange])


def _dead_letters(service, method):
    return event_dead_letters(service.name).queue.name if method != "on_partner_message" else PARTNER_DEAD_LETTERS


@pytest.mark.parametrize("service,method,source,event_type", CONSUMERS,
                         ids=[f"{s.name}.{m}<-{src}.{t}" for s, m, src, t in CONSUMERS])
def test_every_consumer_handles_every_variant_its_producer_emits_and_parks_a_malformed_one(
        started, service_config, service, method, source, event_type):
    container = started(service)
    uri = service_config["AMQP_URI"]
    for variant in variants_of(source, event_type):
        body = dict(variant.body, event_id=str(uuid.uuid4()))
        with entrypoint_waiter(container, method, timeout=20,
                               callback=lambda ctx, result, exc_info, body=body: _about(ctx, body)) as waited:
            publish(uri, source, event_type, body)
        waited.get()  # raises what the consumer raised, if it did
    # A body of the right type with the wrong shape: parked at once, with the reason.
    dead_letters = DeadLetterQueue(uri, _dead_letters(service, method))
    publish(uri, source, event_type, {"event_id": str(uuid.uuid4()), "unexpected": [1, 2]})
    deadline = time.monotonic() + 10
    while not (letters := dead_letters.peek()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [letter["routing_key"] for letter in letters] == [event_type]
    assert "fails its schema" in letters[0]["reason"]


def _about(worker_ctx, body):
    [received] = worker_ctx.args
    payload = getattr(received, "payload", received)  # a Delivery for multi-type queues
    return payload["event_id"] == body["event_id"]
