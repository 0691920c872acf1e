"""AMQP consumers and event handlers that survive the broker dropping a connection
mid-ack."""
from kombu.exceptions import OperationalError
from kombu.transport.pyamqp import Transport as PyAmqpTransport
from nameko.amqp.consume import Consumer
from nameko.events import EventHandler as NamekoEventHandler

# "This connection is broken; use another one": socket errors, connection.close from the
# broker, a channel used after its connection died, a connection kombu could not open.
_CONNECTION_ERRORS = tuple(dict.fromkeys((OSError, OperationalError, *PyAmqpTransport.connection_errors,
                                         *PyAmqpTransport.recoverable_connection_errors)))


class TolerantConsumer(Consumer):
    """nameko's consumer, but an ack or requeue on a connection that just died is a no-op
    for any connection error, not only amqp's (the broker redelivers the message)."""

    def ack_message(self, message):
        try:
            super().ack_message(message)
        except _CONNECTION_ERRORS:
            pass

    def requeue_message(self, message):
        try:
            super().requeue_message(message)
        except _CONNECTION_ERRORS:
            pass


class EventHandler(NamekoEventHandler):
    """nameko's `@event_handler`, acking through `TolerantConsumer`: nameko's consumer let
    a BrokenPipeError from acking on a connection the broker had just dropped escape the
    worker, which killed the whole container. The broker redelivers the event instead."""

    consumer_cls = TolerantConsumer


event_handler = EventHandler.decorator
