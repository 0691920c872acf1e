"""The plain-kombu side of the RPC baseline: answers every message on a request queue with a
reply to its `reply_to`, as an RPC server would, and nothing more. Run as its own process
(`python -m bench.kombu_echo AMQP_URI QUEUE`) so it does not share a GIL with the client,
as our services do not. Stops on SIGTERM."""
import signal
import sys

from kombu import Connection, Consumer, Producer, Queue


def serve(amqp_uri: str, queue_name: str) -> None:
    running = True

    def stop(*_):
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        producer = Producer(channel)  # the default exchange: routing key = queue name

        def answer(body, message):
            producer.publish(body, routing_key=message.properties["reply_to"], serializer="json",
                             correlation_id=message.properties["correlation_id"])
            message.ack()

        queue = Queue(queue_name, auto_delete=True, durable=False)
        with Consumer(channel, queues=[queue], callbacks=[answer], accept=["json"], prefetch_count=20):
            print("ready", flush=True)
            while running:
                try:
                    connection.drain_events(timeout=0.5)
                except TimeoutError:
                    pass


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
