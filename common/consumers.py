"""A nameko consumer that hands the worker the raw message: for queues fed by outside
systems, where a body that is not JSON must reach our code (to be dead-lettered with a
reason) instead of failing inside kombu before any of our code runs."""
from dataclasses import dataclass, field

from nameko.amqp.consume import Consumer as ConsumerCore
from nameko.messaging import Consumer


@dataclass(frozen=True)
class RawMessage:
    body: bytes
    routing_key: str | None
    headers: dict = field(default_factory=dict)
    content_type: str | None = None
    redelivered: bool = False


class _RawConsumerCore(ConsumerCore):
    def get_consumers(self, consumer_cls, channel):
        # kombu skips decoding when on_message is given: the body reaches us as bytes.
        consumer = consumer_cls(queues=self.queues, on_message=self._raw, **self.consumer_options)
        consumer.qos(prefetch_count=self.prefetch_count)
        return [consumer]

    def _raw(self, message):
        body = message.body if isinstance(message.body, bytes) else str(message.body).encode()
        raw = RawMessage(body, message.delivery_info.get("routing_key"), dict(message.headers or {}),
                         message.content_type, bool(message.delivery_info.get("redelivered")))
        self.on_message(raw, message)


class RawConsumer(Consumer):
    """Like nameko's @consume, but the method gets a `RawMessage` (bytes, routing key, headers)."""

    consumer_cls = _RawConsumerCore


raw_consume = RawConsumer.decorator
