"""The delivery topology on RabbitMQ, and the moves between its queues.

    notifications.delivery  (direct exchange, durable)
      ├─ "deliver"      → notifications.deliveries      work queue, consumed by the service
      ├─ "retry.<N>ms"  → notifications.retry.<N>ms     no consumer; each message expires after
      │                                                 N ms (its per-message TTL) and is
      │                                                 dead-lettered back to "deliver"
      └─ "dead_letter"  → notifications.dead_letter     parked for operators (x-reason,
                                                        x-notification-id headers)

One retry queue per delay (base * 2**(attempt-1)) keeps every message in a queue on the same
TTL, so a long wait never holds up a short one behind it (RabbitMQ expires only at the head).
Every queue is durable and every message persistent: retries survive restarts of the service
and of the broker. Messages carry only {"notification_id": id}; the database holds the rest.
"""
import json
import logging

import kombu
from nameko.amqp.publish import Publisher

from common.clock import utcnow
from common.logs import correlation_headers

log = logging.getLogger(__name__)

EXCHANGE = kombu.Exchange("notifications.delivery", type="direct", durable=True)
WORK_QUEUE = kombu.Queue("notifications.deliveries", exchange=EXCHANGE, routing_key="deliver", durable=True)
DEAD_LETTER_QUEUE = kombu.Queue("notifications.dead_letter", exchange=EXCHANGE, routing_key="dead_letter",
                                durable=True)
PUBLISH_TIMEOUT = 5  # seconds to wait for the broker's confirm


def delay_queue(seconds):
    """The retry queue for messages that wait `seconds` before going back to work."""
    millis = max(1, round(seconds * 1000))
    return kombu.Queue(
        f"notifications.retry.{millis}ms", exchange=EXCHANGE, routing_key=f"retry.{millis}ms", durable=True,
        queue_arguments={"x-dead-letter-exchange": EXCHANGE.name,
                         "x-dead-letter-routing-key": WORK_QUEUE.routing_key})


class DeliveryQueues:
    def __init__(self, amqp_uri, delays=()):
        self.amqp_uri = amqp_uri
        self.delays = list(delays)
        self.publisher = Publisher(amqp_uri, use_confirms=True, serializer="json", delivery_mode=2,
                                   retry=True, retry_policy={"max_retries": 3, "interval_start": 0.2,
                                                             "interval_step": 0.5, "interval_max": 2})

    def declare(self):
        """Declare the exchange and every queue (idempotent; the arguments never change)."""
        with kombu.Connection(self.amqp_uri, connect_timeout=5) as connection:
            channel = connection.channel()
            for queue in (WORK_QUEUE, DEAD_LETTER_QUEUE, *{delay_queue(d).name: delay_queue(d)
                                                           for d in self.delays}.values()):
                queue(channel).declare()

    def enqueue(self, notification_ids):
        for notification_id in notification_ids:
            self._publish(notification_id, WORK_QUEUE)

    def retry_later(self, notification_id, delay):
        queue = delay_queue(delay)
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
        """Move dead letters (all, or those of `notification_ids`) back to the work queue.
        `accept(id)` makes the notification sendable again and says whether it still needs
        sending; a dead letter it refuses (already sent, say) is dropped. Returns how many moved."""
        wanted = None if notification_ids is None else set(notification_ids)
        moved = 0
        with self._dead_letter_reader() as read:
            for message in read():
                notification_id = _describe(message)["notification_id"]
                if wanted is not None and notification_id not in wanted:
                    continue  # stays parked: requeued when the reader closes
                if notification_id is not None and accept(notification_id):
                    self.enqueue([notification_id])  # confirmed before the dead letter goes
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
