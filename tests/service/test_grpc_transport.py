"""common/runtime/grpc_transport.py on a real HTTP/2 connection: responses go out when they are
ready, not at the connection's next poll; streamed messages arrive as they are produced; a
call's deadline is one timer that ends it with DEADLINE_EXCEEDED.

The client is nameko-grpc's own, which runs on the same eventlet hub as the server under test
(grpcio's blocks the thread, and with it the server)."""
import logging
import time

import eventlet
import eventlet.event
import nameko
import pytest
from grpc import StatusCode
from nameko_grpc.client import Client
from nameko_grpc.errors import GrpcError
from nameko_grpc.streams import ReceiveStream

from common import errors
from common.runtime.grpc_transport import Grpc, Refused, WakingGrpcServer, WakingSendStream
from gateway.grpc_generated import reservations_pb2, reservations_pb2_grpc
from tests.fakes.localstripe import free_port

reservations_api = Grpc.implementing(reservations_pb2_grpc.ReservationsStub)
POLL_SECONDS = 5  # a connection left to its poll would answer nothing sooner than this


class TransportUnderTest:
    name = "grpc_transport_test"

    @reservations_api
    def get_reservation(self, request, context):
        return reservations_pb2.Reservation(id=request.id)

    @reservations_api
    def watch_reservations(self, request, context):
        for number in range(1, 4):
            yield reservations_pb2.Reservation(id=number)
            eventlet.sleep(0.3)


@pytest.fixture
def client(rabbit_config, container_factory):
    port = free_port()
    config = {"AMQP_URI": nameko.config["AMQP_URI"], "GRPC_BIND_PORT": port, "GRPC_POLL_SECONDS": POLL_SECONDS}
    with nameko.config.patch(config, clear=True):
        container = container_factory(TransportUnderTest, config)
        container.start()
        with Client(f"//127.0.0.1:{port}", reservations_pb2_grpc.ReservationsStub) as client:
            yield client


def test_responses_go_out_when_ready_not_at_the_next_poll(client):
    started = time.monotonic()
    for number in range(1, 21):
        assert client.get_reservation(reservations_pb2.GetReservationRequest(id=number)).id == number
    # 20 calls left to a 5 s poll would take at least 100 s
    assert time.monotonic() - started < POLL_SECONDS


def test_streamed_messages_arrive_as_they_are_produced(client):
    arrivals = []
    started = time.monotonic()
    for message in client.watch_reservations(reservations_pb2.WatchReservationsRequest()):
        arrivals.append((message.id, time.monotonic() - started))
    assert [number for number, _ in arrivals] == [1, 2, 3]
    assert arrivals[0][1] < 0.25  # the first did not wait for the two after it (0.3 s apart)
    assert arrivals[-1][1] < POLL_SECONDS


def test_a_response_stream_wakes_its_connection_on_every_message_and_at_close():
    wakes = []
    stream = WakingSendStream(1, lambda: wakes.append(stream.queue.qsize()))
    stream.populate(iter(["a", "b"]))
    # after each message is queued, then at close (which queues the end marker)
    assert wakes == [1, 2, 3]
    assert stream.done.ready()


def test_a_deadline_closes_the_response_with_deadline_exceeded():
    request, response = ReceiveStream(1), WakingSendStream(1, lambda: None)
    started = time.monotonic()
    WakingGrpcServer.timeout(None, request, response, 0.2)
    assert 0.15 < time.monotonic() - started < 2
    assert request.closed and response.closed
    error = response.queue.get_nowait()
    assert isinstance(error, GrpcError) and error.code == StatusCode.DEADLINE_EXCEEDED


def test_a_call_done_before_its_deadline_ends_its_timer_at_once():
    request, response = ReceiveStream(1), WakingSendStream(1, lambda: None)
    eventlet.spawn_after(0.05, response.populate, iter(["answer"]))
    started = time.monotonic()
    WakingGrpcServer.timeout(None, request, response, 30)
    assert time.monotonic() - started < 2
    assert response.queue.get_nowait() == "answer"
    assert not isinstance(response.queue.get_nowait(), GrpcError)  # the end marker, no error


class FewWorkers:
    """One worker only: an open stream that held it would leave none for anything else."""

    name = "grpc_transport_few_workers"

    @reservations_api
    def watch_reservations(self, request, context):
        ended = eventlet.event.Event()
        context.response_stream.on_close(lambda: ended.ready() or ended.send())
        return _until(ended)

    @reservations_api
    def get_reservation(self, request, context):
        return reservations_pb2.Reservation(id=request.id)

    @reservations_api
    def cancel_reservation(self, request, context):
        return Refused(GrpcError(StatusCode.NOT_FOUND, "not_found: No such reservation"),
                       errors.NotFound("No such reservation"))


def _until(ended):
    yield reservations_pb2.Reservation(id=1)
    ended.wait()


@pytest.fixture
def few_workers(rabbit_config, container_factory):
    port = free_port()
    config = {"AMQP_URI": nameko.config["AMQP_URI"], "GRPC_BIND_PORT": port, "max_workers": 1}
    with nameko.config.patch(config, clear=True):
        container = container_factory(FewWorkers, config)
        container.start()
        with Client(f"//127.0.0.1:{port}", reservations_pb2_grpc.ReservationsStub) as client:
            yield container, client


def test_open_streams_hold_no_worker(few_workers):
    container, client = few_workers
    started = time.monotonic()
    with eventlet.Timeout(5):
        streams = [client.watch_reservations(reservations_pb2.WatchReservationsRequest()) for _ in range(3)]
        assert [next(stream).id for stream in streams] == [1, 1, 1]  # all three are open and sending
        assert client.get_reservation(reservations_pb2.GetReservationRequest(id=4)).id == 4
    assert time.monotonic() - started < 1
    assert container._worker_threads == {}  # the streams are not workers


def test_a_refused_call_ends_with_its_status_and_no_traceback(few_workers, caplog):
    _, client = few_workers
    with pytest.raises(GrpcError) as raised:
        client.cancel_reservation(reservations_pb2.CancelReservationRequest(id=1))
    assert raised.value.code == StatusCode.NOT_FOUND
    assert raised.value.message == "not_found: No such reservation"
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING or record.exc_info]


def test_a_stream_tells_who_asked_once_it_is_closed():
    """How a watch learns that its client cancelled or went away (nameko-grpc closes the
    response stream then) and frees its place."""
    heard = []
    stream = WakingSendStream(1, lambda: None)
    stream.on_close(lambda: heard.append("first"))
    stream.close(GrpcError(StatusCode.CANCELLED, "cancelled"))
    stream.close()
    stream.on_close(lambda: heard.append("late"))  # already closed: told at once
    assert heard == ["first", "late"]
