"""A caller that gets requests while it is still starting must come up, not die: nameko 3's
reply listener could take a not-yet-declared reply queue for a lost one and kill the
container (ReplyQueueExpiredWithPendingReplies)."""
import uuid

import eventlet
import pytest
import requests
from kombu import Queue
from nameko.exceptions import ReplyQueueExpiredWithPendingReplies
from nameko.rpc import get_rpc_exchange

from common.runtime.rpc import StartupSafeReplyListener
from gateway.service import GatewayService
from tests.e2e.conftest import free_port


def test_the_first_consume_does_not_count_an_undeclared_queue_as_lost(rabbit_config):
    listener = StartupSafeReplyListener()
    listener.queue = Queue(f"rpc.reply-test-{uuid.uuid4()}", exchange=get_rpc_exchange())
    listener.pending = {"a-call-made-during-startup": object()}
    listener.check_for_lost_replies()  # first consume: the queue is about to be declared
    with pytest.raises(ReplyQueueExpiredWithPendingReplies):
        listener.check_for_lost_replies()  # a reconnect finding no queue: replies were lost


def test_requests_during_startup_do_not_kill_the_gateway(service_config, container_factory):
    port = free_port()
    container = container_factory(GatewayService, dict(service_config, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}"))
    answers = []

    def hammer():
        with eventlet.Timeout(8, False):
            while len(answers) < 20:
                try:
                    answers.append(requests.get(f"http://127.0.0.1:{port}/ready", timeout=5).status_code)
                except requests.ConnectionError:
                    eventlet.sleep(0.001)

    hammering = eventlet.spawn(hammer)
    with eventlet.Timeout(15):
        container.start()
        hammering.wait()
    # No service answers in this test, so /ready is 503 — but from a live gateway.
    assert answers and set(answers) == {503}
    assert not container._died.ready()
    assert requests.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
