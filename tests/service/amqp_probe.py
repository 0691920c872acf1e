"""Listen on an exchange the way a partner or another service would: a queue of our own
bound to `<service>.events`, drained with plain kombu."""
import json
import time

import kombu
from nameko.standalone.events import get_event_exchange


class EventProbe:
    def __init__(self, amqp_uri, service, routing_key="#", durable_name=None):
        """`durable_name`: a durable queue that outlives a broker restart (delete it after)."""
        self.connection = kombu.Connection(amqp_uri)
        if durable_name:
            self.queue = kombu.Queue(durable_name, durable=True, exchange=get_event_exchange(service),
                                     routing_key=routing_key)
        else:
            self.queue = kombu.Queue(exclusive=True, exchange=get_event_exchange(service),
                                     routing_key=routing_key)
        self.queue = self.queue(self.connection.default_channel)
        self.queue.declare()

    def drain(self, want=1, timeout=10.0):
        """Messages received until `want` arrived or `timeout` passed: [(type, body)]."""
        received, deadline = [], time.monotonic() + timeout
        while len(received) < want and time.monotonic() < deadline:
            message = self.queue.get(no_ack=True)
            if message is None:
                time.sleep(0.05)
                continue
            received.append((message.delivery_info["routing_key"], json.loads(message.body)))
        return received

    def reconnect(self):
        self.connection.release()
        self.connection = kombu.Connection(self.connection.as_uri(include_password=True))
        self.queue = self.queue(self.connection.default_channel)

    def delete(self):
        self.queue.delete()

    def close(self):
        self.connection.release()
