"""One policy for every queue a service consumes: nothing loops, nothing is dropped.

nameko's consumers requeue a message whose handler raised straight back to the head of its
queue: a message that always fails (a payload no code expects, a bug) comes back at once,
forever, at 100% of a core, holding up everything behind it, and the queue is durable, so it
survives restarts. A body that is not JSON fails inside kombu before any of our code runs.
Here, for every consumer (`handles` for events, `consumes` for a queue of several message
types such as partner requests, the notifications work queue):

* the body is decoded and loaded with the schema its producer owns (common.contracts.events);
  an undecodable body, or one that fails its schema (`UnprocessableEvent`), is parked at once:
  kept whole, with the reason, in the consumer's dead-letter queue;
* any other failure is retried with exponential backoff (a copy is published back to the
  consumer's own queue with its attempt count, after the delay), then parked; a dependency
  that is away (ServiceUnavailable, ServiceTimeout) gets more attempts than a bug does;
* a failure to park backs off and tries again; nothing is ever requeued immediately.

While a message waits for its retry it stays unacked, so a crash of the service hands it back
to the broker, never loses it. Operators list and replay dead letters through each service's
`list_event_dead_letters` / `replay_event_dead_letters` (docs/operators.md).
"""
import json
import logging
from dataclasses import dataclass

import eventlet
import kombu
import nameko
from nameko.events import BROADCAST, SERVICE_POOL
from nameko.messaging import Consumer as NamekoConsumer

from common.contracts.events import schema_of
from common.errors import ServiceTimeout, ServiceUnavailable, ValidationError
from common.runtime.consumers import EventHandler, TolerantConsumer
from common.runtime.dead_letters import ORIGINAL_EXCHANGE, ORIGINAL_ROUTING_KEY, DeadLetterQueue
from common.runtime.metrics import count_parked
from common.runtime.rpc import rpc
from common.schemas import LimitSchema

log = logging.getLogger(__name__)

ATTEMPTS = "x-bookify-attempts"  # header of a retried copy: deliveries so far
TRANSIENT = (ServiceUnavailable, ServiceTimeout)
JSON_TYPES = (None, "", "application/json", "text/json")


class UnprocessableEvent(Exception):
    """The message can never be handled as it is (wrong shape or types): park it now."""


@dataclass(frozen=True)
class RetryPolicy:
    """What to do with a message whose handler failed for the `attempts`-th time."""

    max_attempts: int = 5              # a handler that keeps failing: parked after 5 tries
    transient_attempts: int = 30       # a dependency that is away: ~13 minutes of tries
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempts):
        """Seconds to wait before delivery number `attempts + 1`."""
        return min(self.base_delay * 2 ** max(attempts - 1, 0), self.max_delay)

    def gives_up(self, error, attempts):
        if isinstance(error, UnprocessableEvent):
            return True
        limit = self.transient_attempts if isinstance(error, TRANSIENT) else self.max_attempts
        return attempts >= limit


def decode(body, content_type):
    """The JSON object in a raw body; UnprocessableEvent when there is none."""
    if content_type not in JSON_TYPES:
        raise UnprocessableEvent(f"content type {content_type!r} is not JSON")
    try:
        data = json.loads(body.decode("utf-8") if isinstance(body, bytes) else body)
    except (ValueError, UnicodeDecodeError) as error:
        raise UnprocessableEvent(f"body is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise UnprocessableEvent(f"body is a JSON {type(data).__name__}, not an object")
    return data


def load(schema, data, what):
    try:
        return schema().load_or_raise(data)
    except ValidationError as error:
        details = json.dumps(error.details, sort_keys=True, default=str)
        raise UnprocessableEvent(f"{what} fails its schema: {details[:500]}") from None


class _RawConsumer(TolerantConsumer):
    """Hands the entrypoint the message undecoded: decoding is the policy's to judge."""

    def get_consumers(self, consumer_cls, channel):
        consumer = consumer_cls(queues=self.queues, on_message=self._raw, **self.consumer_options)
        consumer.qos(prefetch_count=self.prefetch_count)
        return [consumer]

    def _raw(self, message):
        self.on_message(message.body, message)


class _Policy:
    """Mixed into a nameko consumer entrypoint; subclasses say how to load a body."""

    consumer_cls = _RawConsumer

    def setup(self):
        super().setup()
        settings = nameko.config.get("INBOX") or {}
        self.retry = RetryPolicy(
            max_attempts=int(settings.get("max_attempts", 5)),
            transient_attempts=int(settings.get("transient_attempts", 30)),
            base_delay=float(settings.get("base_delay_seconds", 0.5)),
            max_delay=float(settings.get("max_delay_seconds", 30)))
        service = self.container.service_name
        self.dead_letters = (DeadLetterQueue(nameko.config["AMQP_URI"], self.dead_letter_queue)
                             if self.dead_letter_queue else event_dead_letters(service))
        self._republisher = kombu.Connection(nameko.config["AMQP_URI"],
                                             transport_options={"confirm_publish": True})

    def stop(self):
        super().stop()
        self._republisher.release()

    def handle_message(self, body, message):
        try:
            args = self.load(body, message)
        except UnprocessableEvent as error:
            self._park(message, str(error))
            return
        self.handle_message_args(args, message)

    def handle_message_processed(self, message, result=None, exc_info=None):
        if exc_info is None:
            self.consumer.ack_message(message)
            return
        error = exc_info[1]
        attempts = _attempts(message) + 1
        if self.retry.gives_up(error, attempts):
            reason = str(error) if isinstance(error, UnprocessableEvent) else \
                f"failed {attempts} times: {type(error).__name__}: {error}"
            self._park(message, reason)
            return
        delay = self.retry.delay(attempts)
        log.warning("%s failed (attempt %s: %s: %s); retried in %.1f s", self._label(message), attempts,
                    type(error).__name__, error, delay)
        self._later(delay, self._redeliver, message, attempts)

    # -- the moves ----------------------------------------------------------------------

    def _redeliver(self, message, attempts):
        """A copy back to this consumer's own queue with its attempt count; then the ack."""
        exchange, routing_key = _origin(message)

        def publish():
            with self._republisher.clone() as connection:
                kombu.Producer(connection).publish(
                    _raw_body(message), exchange="", routing_key=self.queue.name,
                    content_type=message.content_type or "application/json", content_encoding="binary",
                    delivery_mode=2, headers={**(message.headers or {}), ATTEMPTS: attempts,
                                              ORIGINAL_EXCHANGE: exchange, ORIGINAL_ROUTING_KEY: routing_key},
                    retry=False, timeout=5)

        self._publish_then_ack(message, "queue the retry", publish)

    def _park(self, message, reason):
        exchange, routing_key = _origin(message)

        def publish():
            self.dead_letters.put(_raw_body(message), reason, exchange, routing_key, message.content_type)
            log.error("%s dead-lettered to %s: %s", self._label(message), self.dead_letters.queue.name,
                      reason[:300])
            count_parked(self.container.service_name, self.queue.name)

        self._publish_then_ack(message, "dead-letter it", publish)

    def _publish_then_ack(self, message, what, publish, delay=None):
        """`publish()`, then ack the message. While the broker refuses, back off and try again:
        the message stays unacked meanwhile, so nothing is lost and nothing loops."""
        try:
            publish()
        except Exception as error:  # noqa: BLE001 - the broker is away: keep it, back off
            delay = min((delay or self.retry.base_delay) * 2, self.retry.max_delay)
            log.warning("%s: could not %s (%s); trying again in %.1f s", self._label(message), what, error, delay)
            self._later(delay, self._publish_then_ack, message, what, publish, delay)
            return
        self.consumer.ack_message(message)

    def _later(self, delay, action, *args):
        def run():
            eventlet.sleep(delay)
            action(*args)

        self.container.spawn_managed_thread(run, identifier=f"{type(self).__name__}.later")

    def _label(self, message):
        return f"{self.container.service_name}.{self.method_name} <- {_origin(message)[1]}"


class PolicyEventHandler(_Policy, EventHandler):
    """`@handles(source, event_type)`: the method gets the event loaded with its producer's
    schema. Durable per-service queues by default; `broadcast=True` for a queue per instance
    (the gateways' caches), which lives and dies with the instance."""

    def __init__(self, source_service, event_type, broadcast=False, dead_letter_queue=None, **kwargs):
        if broadcast:
            kwargs.update(handler_type=BROADCAST, reliable_delivery=False)
        kwargs.setdefault("handler_type", SERVICE_POOL)
        self.dead_letter_queue = dead_letter_queue
        self.schema = schema_of(source_service, event_type)
        super().__init__(source_service, event_type, **kwargs)

    def load(self, body, message):
        return (load(self.schema, decode(body, message.content_type), f"{self.source_service}.{self.event_type}"),)

    def handle_message_args(self, args, message):
        EventHandler.handle_message(self, args[0], message)


@dataclass(frozen=True)
class Delivery:
    routing_key: str
    payload: dict


class PolicyConsumer(_Policy, NamekoConsumer):
    """`@consumes(queue, schemas)`: one queue carrying several message types (by routing key);
    the method gets a `Delivery(routing_key, payload)`, the payload loaded with its type's schema."""

    def __init__(self, queue, schemas, dead_letter_queue=None, **kwargs):
        self.schemas = dict(schemas)
        self.dead_letter_queue = dead_letter_queue
        super().__init__(queue, **kwargs)

    def load(self, body, message):
        routing_key = _origin(message)[1]
        schema = self.schemas.get(routing_key)
        if schema is None:
            raise UnprocessableEvent(f"unknown message type {routing_key!r}")
        return (Delivery(routing_key, load(schema, decode(body, message.content_type), routing_key)),)

    def handle_message_args(self, args, message):
        NamekoConsumer.handle_message(self, args[0], message)


class EventDeadLetterOperations:
    """Adds the operator calls on `<service>.event_dead_letter` to a service that consumes events."""

    @rpc
    def list_event_dead_letters(self, limit=50):
        """Events this service could not handle (failing their producer's schema, or failing
        every retry), with the reason, oldest first, left in the queue.
        Example: n.rpc.notifications.list_event_dead_letters(10)"""
        fields = LimitSchema().load_or_raise({"limit": limit})
        return event_dead_letters(self.name).peek(fields["limit"])

    @rpc
    def replay_event_dead_letters(self, limit=1000):
        """Send dead-lettered events back to their exchange (after a fix); returns how many.
        Example: n.rpc.reservations.replay_event_dead_letters()"""
        fields = LimitSchema().load_or_raise({"limit": limit})
        return event_dead_letters(self.name).replay(fields["limit"])


def event_dead_letters(service):
    """The dead-letter queue of `service`'s event consumers (`<service>.event_dead_letter`)."""
    return DeadLetterQueue(nameko.config["AMQP_URI"], f"{service}.event_dead_letter")


def _origin(message):
    """(exchange, routing key) the message was first published to: a retried copy says it in
    its headers, since it travels straight to the queue."""
    headers = message.headers or {}
    info = message.delivery_info
    return (headers.get(ORIGINAL_EXCHANGE, info.get("exchange") or ""),
            headers.get(ORIGINAL_ROUTING_KEY, info.get("routing_key") or ""))


def _attempts(message):
    try:
        return max(int((message.headers or {}).get(ATTEMPTS, 0)), 0)
    except (TypeError, ValueError):
        return 0


def _raw_body(message):
    body = message.body
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


handles = PolicyEventHandler.decorator
consumes = PolicyConsumer.decorator
