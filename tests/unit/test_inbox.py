"""The consumer policy's decisions (common/runtime/inbox.py), one class at a time: how long to wait,
when to give up, how bodies are judged, and that a broker refusing to take a parked message
makes the consumer back off, never requeue it straight back."""
import json
from types import SimpleNamespace

import pytest

from common.errors import ServiceUnavailable
from common.runtime.inbox import ATTEMPTS, PolicyEventHandler, RetryPolicy, UnprocessableEvent, decode


def test_waits_double_up_to_the_ceiling():
    policy = RetryPolicy(base_delay=0.5, max_delay=30)
    assert [policy.delay(n) for n in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 30, 30]


def test_a_bug_gives_up_sooner_than_an_absent_dependency_and_a_bad_shape_at_once():
    policy = RetryPolicy(max_attempts=5, transient_attempts=30)
    assert not policy.gives_up(RuntimeError(), 4) and policy.gives_up(RuntimeError(), 5)
    assert not policy.gives_up(ServiceUnavailable("db"), 29) and policy.gives_up(ServiceUnavailable("db"), 30)
    assert policy.gives_up(UnprocessableEvent("no"), 1)


@pytest.mark.parametrize("body,content_type,reason", [
    (b"\xff\xfe", "application/json", "body is not JSON"),
    (b"{}", "text/plain", "content type 'text/plain' is not JSON"),
    (b"[1]", "application/json", "body is a JSON list, not an object"),
    (b"null", None, "body is a JSON NoneType, not an object"),
])
def test_bodies_that_are_not_json_objects_are_unprocessable(body, content_type, reason):
    with pytest.raises(UnprocessableEvent, match=reason):
        decode(body, content_type)


def test_json_objects_decode_from_bytes_and_str():
    assert decode(b'{"a": 1}', "application/json") == decode('{"a": 1}', None) == {"a": 1}


class _Consumer:
    def __init__(self):
        self.acked, self.requeued = [], []

    def ack_message(self, message):
        self.acked.append(message)

    def requeue_message(self, message):
        self.requeued.append(message)


def _handler(put):
    """A policy handler with its broker-facing parts replaced: `put` plays the dead-letter queue."""
    handler = PolicyEventHandler("reservations", "reservation_confirmed")
    handler.method_name = "on_reservation_confirmed"
    handler.retry = RetryPolicy(base_delay=0.5, max_delay=4)
    handler.consumer = _Consumer()
    handler.queue = SimpleNamespace(name="evt-reservations-reservation_confirmed--notifications.on")
    handler.dead_letters = SimpleNamespace(put=put, queue=SimpleNamespace(name="notifications.event_dead_letter"))
    handler.container = SimpleNamespace(service_name="notifications")
    handler.waits = []
    handler._later = lambda delay, action, *args: (handler.waits.append(delay), action(*args))
    return handler


def _message(body, **headers):
    return SimpleNamespace(body=body, headers=headers, content_type="application/json",
                           delivery_info={"exchange": "reservations.events", "routing_key": "reservation_confirmed"})


def test_a_broker_refusing_the_dead_letter_is_backed_off_from_then_the_message_is_parked_and_acked():
    kept = []

    def put(body, reason, exchange, routing_key, content_type):
        if len(handler.waits) < 4:
            raise ConnectionRefusedError("broker away")
        kept.append((body, reason, exchange, routing_key))

    handler = _handler(put)
    message = _message('{"event_id": "e1"}')  # a str body, as some transports hand it over
    handler.handle_message(message.body, message)
    assert handler.waits == [1.0, 2.0, 4.0, 4.0]  # backed off, up to the ceiling
    assert handler.consumer.requeued == []  # never straight back to the queue
    assert handler.consumer.acked == [message]
    [(body, reason, exchange, routing_key)] = kept
    assert body == b'{"event_id": "e1"}' and reason.startswith("reservations.reservation_confirmed fails its schema")
    assert (exchange, routing_key) == ("reservations.events", "reservation_confirmed")


def test_a_failed_handler_is_redelivered_later_with_its_attempt_count_and_parked_at_the_limit():
    handler = _handler(lambda *args: parked.append(args))
    parked, published = [], []
    handler._publish_then_ack = lambda message, what, publish, delay=None: published.append((message, what))
    message = _message(json.dumps({"event_id": "e2"}), **{ATTEMPTS: 3})
    handler.handle_message_processed(message, exc_info=(RuntimeError, RuntimeError("boom"), None))
    assert handler.waits == [4.0] and published == [(message, "queue the retry")]  # delivery 4 of 5
    message = _message(json.dumps({"event_id": "e2"}), **{ATTEMPTS: 4})
    del handler._publish_then_ack
    handler.handle_message_processed(message, exc_info=(RuntimeError, RuntimeError("boom"), None))
    assert parked[0][1] == "failed 5 times: RuntimeError: boom" and handler.consumer.acked == [message]
