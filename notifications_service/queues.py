"""The delivery topology on RabbitMQ, and the moves between its queues.

    notifications.delivery  (direct exchange, durable)
      ├─ "deliver.email"       → notifications.deliveries.email   work queue of emails
      ├─ "deliver.sms"         → notifications.deliveries.sms     work queue of SMS
      ├─ "retry.<ch>.<N>ms"    → notifications.retry.<ch>.<N>ms   no consumer; each message expires
      │                                                           after N ms (its per-message TTL)
      │                                                           and is dead-lettered back to
      │                                                           "deliver.<ch>"
      ├─ "dead_letter"         → notifications.dead_letter        parked for operators (x-reason,
      │                                                           x-notification-id headers)
      └─ "deliver"             → notifications.deliveries         the single work queue of earlier
                                                                  releases: still consumed, each
                                                                  message forwarded to its channel

One work queue per channel, each with its own consumer and its own bound on deliveries in
flight (the consumer's prefetch), so a slow email provider never holds up an SMS. One retry
queue per channel and delay keeps every message in a queue on the same TTL, so a long wait
never holds up a short one behind it (RabbitMQ expires only at the head). Every queue is
durable and every message persistent: retries survive restarts of the service and of the
broker. Messages carry only {"notification_id": id}; the database holds the rest.

The retry queues of earlier releases (`notifications.retry.<N>ms`) dead-letter to
"deliver", so whatever was waiting in them at an upgrade comes back through
`notifications.deliveries` and is forwarded; once they are empty they can be deleted.
"""
import json
import logging

import kombu
from nameko.amqp.publish import Publisher

from common.clock import utcnow
from common.contracts.notifications import CHANNELS
from common.logs import correlation_headers
from notifications_service.delivery import KEEP_PARKED

log = logging.getLogger(__name__)

EXCHANGE = kombu.Exchange("notifications.delivery", type="direct", durable=True)
# Where earlier releases sent every delivery; kept (and consumed) so nothing in flight is lost.
WORK_QUEUE = kombu.Queue("notifications.deliveries", exchange=EXCHANGE, routing_key="deliver", durable=True)
DEAD_LETTER_QUEUE = kombu.Queue("notifications.dead_letter", exchange=EXCHANGE, routing_key="dead_letter",
                                durable=True)
PUBLISH_TIMEOUT = 5  # seconds to wait for the broker's confirm


def work_queue(channel):
    """The work queue of one channel's deliveries."""
    return kombu.Queue(f"notifications.deliveries.{channel}", exchange=EXCHANGE, routing_key=f"deliver.{channel}",
                       durable=True)


CHANNEL_QUEUES = {channel: work_queue(channel) for channel in CHANNELS}


def delay_queue(seconds, channel):
    """The retry queue for `channel`'s messages that wait `seconds` before going back to work."""
    millis = max(1, round(seconds * 1000))
    return kombu.Queue(
        f"notifications.retry.{channel}.{millis}ms", exchange=EXCHANGE, routing_key=f"retry.{channel}.{millis}ms",
        durable=True, queue_arguments={"x-dead-letter-exchange": EXCHANGE.name,
                                       "x-dead-letter-routing-key": CHANNEL_QUEUES[channel].routing_key})


class DeliveryQueues:
    def __init__(self, amqp_uri, delays=()):
        self.amqp_uri = amqp_uri
        self.delays = sorted(set(delays))
        self.publisher = Publisher(amqp_uri, use_confirms=True, serializer="json", delivery_mode=2,
                                   retry=True, retry_policy={"max_retries": 3, "interval_start": 0.2,
                                                             "interval_step": 0.5, "interval_max": 2})

    def declare(self):
        """Declare the exchange and every queue (idempotent; the arguments never change).
        A retry queue for a longer `Retry-After` is declared when first used."""
        with kombu.Connection(self.amqp_uri, connect_timeout=5) as connection:
            channel = connection.channel()
            retry_queues = [delay_queue(delay, name) for name in CHANNELS for delay in self.delays]
            for queue in (WORK_QUEUE, *CHANNEL_QUEUES.values(), DEAD_LETTER_QUEUE, *retry_queues):
                queue(channel).declare()

    def enqueue(self, deliveries):
        """Each (notification id, channel) onto its channel's work queue."""
        for notification_id, channel in deliveries:
            self._publish(notification_id, CHANNEL_QUEUES[channel])

    def retry_later(self, notification_id, channel, delay):
        queue = delay_queue(delay, channel)
        self._publish(notification_id, queue, expiration=max(1, round(delay * 1000)) / 1000)

    def park(self, notification_id, reason):
        self._publish(notification_id, DEAD_LETTER_QUEUE, headers={
            "x-reason": reason or "unknown", "x-notification-id": notification_id,
            "x-dead-lettered-at": utcnow().isoformat()})

    def _publish(self, notification_id, queue, headers=None, **kwargs):
        # The correlation id rides along (and survives the retry queues' dead-lettering), so
        # the delivery's log lines name the request that caused the notification.
        self.publisher.publish({"notification_id": notification_id}, exchange=EXCHANGE,
                               routing_key=queue.routing_key, declare=[queue], timeout=PUBLISH_TIMEOUT,
                               headers={**correlation_headers(), **(headers or {})}, **kwargs)

    # -- the dead letter queue, for operators ------------------------------------------------

    def dead_letters(self, limit):
        """The first `limit` dead letters, left in the queue: [{notification_id, reason, …}]."""
        found = []
        with self._dead_letter_reader() as read:
            for message in read():
                found.append(_describe(message))
                if len(found) >= limit:
                    break
        return found

    def replay(self, accept, notification_ids=None):
        """Move dead letters (all, or those of `notification_ids`) back to their channel's work
        queue. `accept(id, named)` makes the notification sendable again and answers its
        channel; None when it no longer needs sending (already sent, say): that dead letter is
        dropped; KEEP_PARKED: it stays. `named` says the caller asked for that id.
        Returns how many moved."""
        wanted = None if notification_ids is None else set(notification_ids)
        moved = 0
        with self._dead_letter_reader() as read:
            for message in read():
                notification_id = _describe(message)["notification_id"]
                if wanted is not None and notification_id not in wanted:
                    continue  # stays parked: requeued when the reader closes
                channel = accept(notification_id, wanted is not None) if notification_id is not None else None
                if channel == KEEP_PARKED:
                    continue  # stays parked: requeued when the reader closes
                if channel is not None:
                    self.enqueue([(notification_id, channel)])  # confirmed before the dead letter goes
                    moved += 1
                else:
                    log.info("dead letter for notification %s dropped: nothing left to send", notification_id)
                message.ack()
        return moved

    def _dead_letter_reader(self):
        return _QueueReader(self.amqp_uri, DEAD_LETTER_QUEUE)


class _QueueReader:
    """Reads a queue without consuming it: every message fetched stays unacknowledged
    (so it is fetched once) until the reader closes, when the ones not acked go back."""

    def __init__(self, amqp_uri, queue):
        self.connection = kombu.Connection(amqp_uri, connect_timeout=5)
        self.queue = queue
        self.held = []

    def __enter__(self):
        self.bound = self.queue(self.connection.channel())
        self.bound.declare()
        return self._messages

    def _messages(self):
        while True:
            message = self.bound.get(no_ack=False)
            if message is None:
                return
            self.held.append(message)
            yield message

    def __exit__(self, *exc_info):
        try:
            for message in self.held:
                if not message.acknowledged:
                    message.requeue()
        finally:
            self.connection.release()


def _describe(message):
    headers = message.headers or {}
    try:
        notification_id = int(json.loads(message.body)["notification_id"])
    except (ValueError, KeyError, TypeError):
        notification_id = headers.get("x-notification-id")
    return {"notification_id": notification_id, "reason": headers.get("x-reason", "unknown"),
            "dead_lettered_at": headers.get("x-dead-lettered-at")}
