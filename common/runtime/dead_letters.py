"""Dead-letter queues operators can see into and replay: a message that cannot be
handled is kept whole, with the reason in its headers, never dropped."""
import kombu

REASON = "x-reason"
ORIGINAL_EXCHANGE = "x-original-exchange"
ORIGINAL_ROUTING_KEY = "x-original-routing-key"


class DeadLetterQueue:
    """A durable queue (and its fanout exchange) named `name`."""

    def __init__(self, amqp_uri, name):
        self.amqp_uri = amqp_uri
        self.exchange = kombu.Exchange(name, type="fanout", durable=True)
        self.queue = kombu.Queue(name, exchange=self.exchange, durable=True)

    def put(self, body, reason, exchange, routing_key, content_type=None):
        """Keep `body` (bytes as received; a str is kept as its UTF-8 bytes) with why it could not
        be handled. kombu refuses a str with content_encoding "binary"."""
        if isinstance(body, str):
            body = body.encode("utf-8")
        with kombu.Connection(self.amqp_uri, transport_options={"confirm_publish": True}) as connection:
            kombu.Producer(connection).publish(
                body, exchange=self.exchange, routing_key=routing_key or "", declare=[self.queue],
                content_type=content_type or "application/octet-stream", content_encoding="binary",
                delivery_mode=2, retry=True, retry_policy={"max_retries": 3},
                headers={REASON: reason[:1000], ORIGINAL_EXCHANGE: exchange, ORIGINAL_ROUTING_KEY: routing_key})

    def peek(self, limit=50):
        """The waiting messages, oldest first, left in the queue: [{reason, routing_key, body}]."""
        seen = []
        with kombu.Connection(self.amqp_uri) as connection:
            channel = connection.channel()
            bound = self.queue(channel)
            bound.declare()
            while len(seen) < limit:
                message = bound.get(no_ack=False)
                if message is None:
                    break
                seen.append({"reason": message.headers.get(REASON),
                             "routing_key": message.headers.get(ORIGINAL_ROUTING_KEY),
                             "body": message.body.decode("utf-8", "replace") if isinstance(message.body, bytes)
                             else str(message.body)})
            channel.close()  # unacked messages go back to the queue, in order
        return seen

    def replay(self, limit=1000):
        """Send waiting messages back where they came from; returns how many."""
        replayed = 0
        with kombu.Connection(self.amqp_uri, transport_options={"confirm_publish": True}) as connection:
            channel = connection.channel()
            bound = self.queue(channel)
            bound.declare()
            producer = kombu.Producer(channel)
            while replayed < limit:
                message = bound.get(no_ack=False)
                if message is None:
                    break
                headers = {k: v for k, v in message.headers.items() if k not in (REASON,)}
                producer.publish(message.body, exchange=message.headers.get(ORIGINAL_EXCHANGE, ""),
                                 routing_key=message.headers.get(ORIGINAL_ROUTING_KEY) or "",
                                 content_type=message.content_type, content_encoding="binary",
                                 delivery_mode=2, headers=headers)
                message.ack()
                replayed += 1
            channel.close()
        return replayed
