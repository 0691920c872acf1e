"""Acking or requeueing on a connection the broker just dropped must not kill the container:
the broker redelivers the message. Our RPC and event entrypoints share that consumer."""
import pytest

from common.runtime.consumers import EventHandler, TolerantConsumer
from common.runtime.rpc import RpcResponder


class BrokenMessage:
    class channel:  # noqa: N801 - the attribute kombu's Message has
        connection = object()  # still looks alive

    def ack(self):
        raise BrokenPipeError(32, "Broken pipe")

    def requeue(self):
        raise ConnectionResetError(104, "Connection reset by peer")


@pytest.mark.parametrize("entrypoint", [EventHandler, RpcResponder])
def test_our_entrypoints_consume_through_the_tolerant_consumer(entrypoint):
    assert entrypoint.consumer_cls is TolerantConsumer


def test_a_broken_pipe_on_ack_or_requeue_is_not_an_error():
    consumer = TolerantConsumer("memory://")
    consumer.ack_message(BrokenMessage())
    consumer.requeue_message(BrokenMessage())
