"""Event handlers that never loop on a message and never drop one silently.

nameko's `@event_handler(..., requeue_on_error=True)` puts a message whose handler raised
straight back at the head of its queue, so a message that always fails (a bug, a payload no
code expects) is redelivered forever, a busy loop that also holds up the events behind it.
And a body that is not valid JSON fails inside kombu, before any handler runs.

Here:
* an event whose handler says a dependency is away (ServiceUnavailable: the database is
  restarting) is requeued after a second, for as long as that lasts;
* any other failure is requeued once; failing again on its redelivery, the event goes to
  the dead-letter queue with the reason;
* an event the handler refuses (`UnprocessableEvent`: it fails its schema) goes there at once;
* a body that cannot be decoded goes there at once, bytes intact.
Operators list and replay that queue (`list_event_dead_letters`, `replay_event_dead_letters`).
"""
import logging

import eventlet
import nameko
from nameko.events import SERVICE_POOL

from common.dead_letters import DeadLetterQueue
from common.errors import ServiceUnavailable
from common.rpc import EventHandler

log = logging.getLogger(__name__)

EVENT_DEAD_LETTERS = "notifications.event_dead_letter"
TRANSIENT_RETRY_SECONDS = 1.0


class UnprocessableEvent(Exception):
    """The event can never be handled as it is (wrong shape or types): dead-letter it now."""


def event_dead_letters():
    return DeadLetterQueue(nameko.config["AMQP_URI"], EVENT_DEAD_LETTERS)


class DeadLetteringEventHandler(EventHandler):
    def __init__(self, source_service, event_type, **kwargs):
        kwargs.setdefault("handler_type", SERVICE_POOL)
        kwargs.setdefault("reliable_delivery", True)
        kwargs["requeue_on_error"] = True
        kwargs.setdefault("expected_exceptions", (UnprocessableEvent,))
        super().__init__(source_service, event_type, **kwargs)

    def setup(self):
        super().setup()
        self.dead_letters = event_dead_letters()
        # kombu calls this instead of the handler when the body cannot be decoded.
        self.consumer.consumer_options["on_decode_error"] = self._undecodable

    def _undecodable(self, message, error):
        self._park(message, f"body could not be decoded ({message.content_type}): {error}")

    def handle_message_processed(self, message, result=None, exc_info=None):
        if exc_info is None:
            self.consumer.ack_message(message)
            return
        error = exc_info[1]
        if isinstance(error, UnprocessableEvent):
            self._park(message, f"unprocessable: {error}")
        elif isinstance(error, ServiceUnavailable):
            # The database (or another dependency) is away: the event is fine and will be
            # handled once it is back. Requeued, not parked, but not in a hot loop either.
            eventlet.sleep(TRANSIENT_RETRY_SECONDS)
            self.consumer.requeue_message(message)
        elif message.delivery_info.get("redelivered"):
            self._park(message, f"failed twice: {type(error).__name__}: {error}")
        else:
            self.consumer.requeue_message(message)  # one more chance for a passing fault

    def _park(self, message, reason):
        routing_key = message.delivery_info.get("routing_key") or self.event_type
        exchange = message.delivery_info.get("exchange") or f"{self.source_service}.events"
        try:
            self.dead_letters.put(message.body, reason, exchange, routing_key, message.content_type)
        except Exception:  # noqa: BLE001 - the broker is away: keep the message, try again later
            log.exception("could not dead-letter a %s event; requeued", self.event_type)
            self.consumer.requeue_message(message)
            return
        log.error("%s event dead-lettered: %s", self.event_type, reason[:300])
        self.consumer.ack_message(message)


handles = DeadLetteringEventHandler.decorator
