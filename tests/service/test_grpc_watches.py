"""The gRPC gateway's watches with everything around them on a real broker: auth and
reservations are small stand-in services answering the RPCs the gateway makes (so a test can
end a session without auth telling anyone), events are published as the services publish them.
Shows what the end-to-end tests cannot arrange: a partner booking (no user) reaching a watch of
everyone's, and the periodic re-check ending a watch whose session ended without an event."""
import time
import uuid

import eventlet
import nameko
import pytest
from grpc import StatusCode
from nameko.standalone.events import event_dispatcher
from nameko_grpc.client import Client
from nameko_grpc.errors import GrpcError

from common import config as bookify_config
from common.errors import NotFound, Unauthenticated
from common.runtime.rpc import rpc
from common.storage.outbox import envelope
from common.tokens import TokenCodec, TokenSettings
from gateway.grpc_generated import reservations_pb2, reservations_pb2_grpc
from gateway.grpc_server import GrpcGatewayService
from tests.conftest import with_test_secrets
from tests.fakes.localstripe import free_port

SESSIONS = {}  # session id -> permissions; absent: the session has ended
RESERVATIONS = {}  # id -> the reservation as reservations returns it
RECHECK_SECONDS = 0.5  # for the test of the periodic re-check; the others leave it at 60 s


class StandInAuth:
    name = "auth"

    @rpc
    def principal(self, user_id, session_id):
        if session_id not in SESSIONS:
            raise Unauthenticated("Session has ended")
        return {"user_id": user_id, "session_id": session_id, "permissions": SESSIONS[session_id]}


class StandInReservations:
    name = "reservations"

    @rpc
    def list_reservations(self, query=None, actor=None):
        items = [item for item in RESERVATIONS.values()
                 if "reservations:read_any" in actor["permissions"] or item["user_id"] == actor["user_id"]]
        return {"items": items, "total": len(items)}

    @rpc
    def get_reservation(self, reservation_id, actor=None):
        if reservation_id not in RESERVATIONS:
            raise NotFound("Reservation not found")
        return RESERVATIONS[reservation_id]


def reservation(id, user_id, status="confirmed", minute=0):
    stamp = f"2027-01-01T10:{minute:02d}:00+00:00"
    return {"id": id, "place_id": 1, "user_id": user_id, "start": "2027-03-02T10:00:00+00:00",
            "end": "2027-03-02T11:00:00+00:00", "status": status, "amount": 5000, "currency": "usd",
            "payment_id": None, "refund_amount": None, "cancel_reason": None, "hold_expires_at": None,
            "created_at": "2027-01-01T10:00:00+00:00", "updated_at": stamp}


def event_of(item, **extra):
    return envelope({"reservation_id": item["id"], "user_id": item["user_id"], "place_id": item["place_id"],
                     "start": item["start"], "end": item["end"], "amount": item["amount"],
                     "currency": item["currency"], **extra})


@pytest.fixture
def recheck_seconds():
    return 60


@pytest.fixture
def gateway(rabbit_config, container_factory, recheck_seconds):
    SESSIONS.clear()
    RESERVATIONS.clear()
    port = free_port()
    config = with_test_secrets(bookify_config.load())
    config.update(AMQP_URI=nameko.config["AMQP_URI"], GRPC_BIND_PORT=port,
                  GRPC_WATCH={"max_per_user": 2, "recheck_seconds": recheck_seconds})
    config["METRICS"] = {"ports": {}}
    with nameko.config.patch(config, clear=True):
        containers = [container_factory(service, config) for service in
                      (StandInAuth, StandInReservations, GrpcGatewayService)]
        for container in containers:
            container.start()
        codec = TokenCodec(TokenSettings.from_config(config["JWT"]))
        with Client(f"//127.0.0.1:{port}", reservations_pb2_grpc.ReservationsStub) as client:
            client.container = containers[-1]
            yield client, codec


def signed_in(codec, user_id, permissions):
    session_id = uuid.uuid4().hex
    SESSIONS[session_id] = permissions
    return session_id, [("authorization", f"Bearer {codec.issue_access_token(user_id, session_id)}")]


def test_a_partner_booking_reaches_a_watch_of_everyones_and_not_a_customers(gateway):
    client, codec = gateway
    RESERVATIONS[1] = reservation(1, user_id=7)
    _, moderator = signed_in(codec, 8, ["reservations:read_any"])
    _, customer = signed_in(codec, 7, [])
    everyone = client.watch_reservations(reservations_pb2.WatchReservationsRequest(), metadata=moderator)
    own = client.watch_reservations(reservations_pb2.WatchReservationsRequest(), metadata=customer)
    with eventlet.Timeout(5):
        assert next(everyone).id == 1 and next(own).id == 1  # the current state first

        RESERVATIONS[2] = reservation(2, user_id=None)
        partner = {"partner": "acme", "partner_ref": "A-1",
                   "guest": {"name": "Gus Guest", "email": "gus@example.com", "phone": None}}
        RESERVATIONS[3] = reservation(3, user_id=7, minute=1)
        dispatch = event_dispatcher()
        dispatch("reservations", "reservation_confirmed", event_of(RESERVATIONS[2], **partner))
        dispatch("reservations", "reservation_confirmed", event_of(RESERVATIONS[3]))
        seen = [next(everyone), next(everyone)]
        assert sorted((item.id, item.user_id) for item in seen) == [(2, 0), (3, 7)]
        assert next(own).id == 3  # not the partner's


@pytest.mark.parametrize("recheck_seconds", [RECHECK_SECONDS])
def test_the_periodic_recheck_ends_a_watch_whose_session_ended_without_an_event(gateway):
    client, codec = gateway
    RESERVATIONS[1] = reservation(1, user_id=7)
    session_id, customer = signed_in(codec, 7, [])
    stream = client.watch_reservations(reservations_pb2.WatchReservationsRequest(), metadata=customer)
    with eventlet.Timeout(5):
        assert next(stream).id == 1
    del SESSIONS[session_id]  # auth says nothing: the session_revoked event was lost
    started = time.monotonic()
    with eventlet.Timeout(RECHECK_SECONDS * 6), pytest.raises(GrpcError) as ended:
        next(stream)
    assert ended.value.code == StatusCode.UNAUTHENTICATED
    assert time.monotonic() - started < RECHECK_SECONDS * 4


def test_a_role_change_ends_a_watch_of_everyones_whose_caller_lost_read_any(gateway):
    client, codec = gateway
    RESERVATIONS[1] = reservation(1, user_id=7)
    session_id, moderator = signed_in(codec, 8, ["reservations:read_any"])
    stream = client.watch_reservations(reservations_pb2.WatchReservationsRequest(), metadata=moderator)
    with eventlet.Timeout(5):
        assert next(stream).id == 1
    SESSIONS[session_id] = []
    event_dispatcher()("auth", "role_changed", envelope({"role_id": 3}))
    with eventlet.Timeout(2), pytest.raises(GrpcError) as ended:
        next(stream)
    assert ended.value.code == StatusCode.PERMISSION_DENIED


# nameko-grpc's test client tries to reconnect to the stopped server, and its thread says so.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_stopping_the_gateway_ends_open_watches_with_unavailable_at_once(gateway):
    client, codec = gateway
    RESERVATIONS[1] = reservation(1, user_id=7)
    _, customer = signed_in(codec, 7, [])
    stream = client.watch_reservations(reservations_pb2.WatchReservationsRequest(), metadata=customer)
    with eventlet.Timeout(5):
        assert next(stream).id == 1
    started = time.monotonic()
    stopping = eventlet.spawn(client.container.stop)
    with eventlet.Timeout(5), pytest.raises(GrpcError) as ended:
        next(stream)
    assert ended.value.code == StatusCode.UNAVAILABLE
    stopping.wait()
    assert time.monotonic() - started < 3  # not the 5 s a connection waits for streams to end
