"""nameko-grpc's server, sending each response the moment a worker has it.

nameko-grpc runs one loop per HTTP/2 connection: send what the workers queued, then wait in
select() for the socket up to `SELECT_TIMEOUT`, and again. A response queued during that wait
waited for the select() to time out: 10 ms as shipped, so a unary call took the poll interval
plus its own work. Polling every millisecond shortened that but woke the loop a thousand times
a second per open connection, busy or not. And a call with a deadline (`grpc-timeout`, which
gRPC clients send by default) got a greenthread sleeping 1 ms at a time until the call ended.

Here:

* `WakingSendStream` - a response stream that wakes its connection whenever a worker queues a
  message on it or closes it. Its `done` event fires when it is closed.
* `WakingServerConnection` - waits in select() on its socket *and* a wake-up socket, so it
  sends a response as soon as it is queued. The poll interval (`GRPC_POLL_SECONDS`) is now
  only a safety net, and an idle connection sleeps.
* `WakingGrpcServer` - nameko-grpc's server with these connections, and a deadline that is
  one timer per call instead of a 1 ms polling loop.
* `Grpc` - nameko-grpc's entrypoint on that server: `Grpc.implementing(stub)` as usual, with
  two changes to how a call ends:
  - A server-streaming method's worker ends when the method returns its iterable; the
    messages are then sent from a thread of their own. nameko-grpc iterated the stream inside
    the worker, so every open stream held one of the service's `max_workers` until it ended,
    and a dozen open streams left no worker for any other call.
  - A method may return `Refused(status, error)` instead of raising a client's mistake: the
    call ends with that status, and the worker's outcome is `error` (an expected one) for the
    metrics and the log, but nameko does not log it with a traceback as a failure.

The HTTP/2 handling itself (h2 events, flow control, trailers, errors) is nameko-grpc's.
"""
import logging
import select
import socket
import weakref
from functools import partial

import nameko_grpc.connection
from eventlet.event import Event
from grpc import StatusCode
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RemoteSettingsChanged,
    RequestReceived,
    ResponseReceived,
    SettingsAcknowledged,
    StreamEnded,
    StreamReset,
    TrailersReceived,
    WindowUpdated,
)
from nameko import config
from nameko_grpc import entrypoint as grpc_entrypoint
from nameko_grpc.channel import ServerChannel, ServerConnectionPool
from nameko_grpc.compression import SUPPORTED_ENCODINGS, select_algorithm
from nameko_grpc.constants import Cardinality
from nameko_grpc.errors import GrpcError
from nameko_grpc.ssl import SslConfig
from nameko_grpc.streams import ReceiveStream, SendStream

from common.errors import EXPECTED_ERRORS
from common.logs import CONTEXT_KEY, bound

log = logging.getLogger(__name__)

# How long a connection waits in select() when nothing wakes it. Every response wakes it, so
# this bounds only what could change without a wake-up; nothing known does.
DEFAULT_POLL_SECONDS = 0.05


class WakingSendStream(SendStream):
    """A response stream that calls `wake()` when a message is queued on it or it is closed."""

    def __init__(self, stream_id, wake):
        super().__init__(stream_id)
        self._wake = wake
        self.done = Event()
        self._on_close = []

    def on_close(self, callback):
        """Call `callback()` once the stream is closed, however that happens: the method's
        messages ran out, the client cancelled or went away, the deadline passed."""
        if self.closed:
            callback()
        else:
            self._on_close.append(callback)

    def populate(self, iterable):
        super().populate(self._waking(iterable))

    def _waking(self, iterable):
        for message in iterable:
            yield message
            self._wake()  # populate() has queued `message` and asks for the next one

    def close(self, error=None):
        super().close(error)
        self._wake()
        if not self.done.ready():
            self.done.send(True)
        callbacks, self._on_close = self._on_close, []
        for callback in callbacks:
            callback()


class WakingServerConnection(nameko_grpc.connection.ServerConnectionManager):
    """One HTTP/2 connection of the server, woken by its response streams (see the module)."""

    _EVENT_HANDLERS = (
        (RequestReceived, "request_received"), (ResponseReceived, "response_received"),
        (DataReceived, "data_received"), (StreamEnded, "stream_ended"), (StreamReset, "stream_reset"),
        (WindowUpdated, "window_updated"), (RemoteSettingsChanged, "settings_changed"),
        (SettingsAcknowledged, "settings_acknowledged"), (TrailersReceived, "trailers_received"),
        (ConnectionTerminated, "connection_terminated"),
    )

    def __init__(self, sock, handle_request, poll_seconds=DEFAULT_POLL_SECONDS):
        super().__init__(sock, handle_request)
        self.poll_seconds = poll_seconds
        self.peer_address = _peer_address(sock)
        self._alarm, self._alarm_clock = socket.socketpair()
        self._alarm.setblocking(False)
        self._awake = False

    def wake(self):
        """Have the loop send what is queued now, not at its next poll. Cheap to call often:
        one byte per wait, however many wake-ups come in meanwhile."""
        if not self._awake:
            self._awake = True
            try:
                self._alarm_clock.send(b"\0")
            except OSError:  # the connection has ended; nothing left to send
                pass

    def _snooze(self):
        try:
            while self._alarm.recv(512):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        self._awake = False

    def run_forever(self):
        """nameko-grpc's loop, waiting on the wake-up socket as well as the connection's."""
        self.conn.initiate_connection()
        with self.cleanup_on_exit():
            try:
                while self.run:
                    self.on_iteration()
                    if not self.run:
                        break
                    self.sock.sendall(self.conn.data_to_send())
                    readable, _, _ = select.select([self.sock, self._alarm], [], [], self.poll_seconds)
                    if self._alarm in readable:
                        self._snooze()
                    if self.sock not in readable:
                        continue
                    data = self.sock.recv(65535)
                    if not data:
                        break
                    for event in self.conn.receive_data(data):
                        self._dispatch(event)
            finally:
                self._alarm.close()
                self._alarm_clock.close()

    def _dispatch(self, event):
        for kind, handler in self._EVENT_HANDLERS:
            if isinstance(event, kind):
                getattr(self, handler)(event)
                return

    def stop(self):
        self.conn.close_connection()
        self.terminating = True
        self.wake()
        self.stopped.wait(5)

    def request_received(self, event):
        """nameko-grpc's, with a response stream that wakes this connection."""
        stream_id = event.stream_id
        request_stream = ReceiveStream(stream_id)
        response_stream = WakingSendStream(stream_id, self.wake)
        request_stream.peer_address = self.peer_address  # per-address throttling of logins
        self.receive_streams[stream_id] = request_stream
        self.send_streams[stream_id] = response_stream
        request_stream.headers.set(*event.headers, from_wire=True)
        compression = select_algorithm(request_stream.headers.get("grpc-accept-encoding"),
                                       request_stream.headers.get("grpc-encoding"))
        try:
            response_stream.headers.set(
                (":status", "200"), ("content-type", "application/grpc+proto"),
                ("grpc-accept-encoding", ",".join(SUPPORTED_ENCODINGS)), ("grpc-encoding", compression))
            response_stream.trailers.set(("grpc-status", "0"))
            self.handle_request(request_stream, response_stream)
        except GrpcError as error:
            response_stream.trailers.set((":status", "200"), *error.as_headers())
            self.end_stream(stream_id)


def _peer_address(sock):
    """The client's address (no port), what auth throttles logins by; None when unknown."""
    try:
        peer = sock.getpeername()
    except OSError:
        return None
    return peer[0] if isinstance(peer, tuple) else None


class _WakingConnectionPool(ServerConnectionPool):
    """nameko-grpc's accept loop, making `WakingServerConnection`s."""

    poll_seconds = DEFAULT_POLL_SECONDS

    def run(self):
        while self.is_accepting:
            sock, _ = self.listening_socket.accept()
            sock.settimeout(60)  # as nameko-grpc
            connection = WakingServerConnection(sock, self.handle_request, self.poll_seconds)
            self.connections.put(weakref.ref(connection))
            self.spawn_thread(target=connection.run_forever, name=f"grpc server connection [{sock}]")


class _WakingChannel(ServerChannel):
    """nameko-grpc's server channel (its start and stop) around our connection pool."""

    def __init__(self, pool):  # not super().__init__: that would build the stock pool
        self.conn_pool = pool


class WakingGrpcServer(grpc_entrypoint.GrpcServer):
    """nameko-grpc's server on `WakingServerConnection`s, with one timer per call deadline."""

    def setup(self):
        seconds = float(config.get("GRPC_POLL_SECONDS") or DEFAULT_POLL_SECONDS)
        if seconds <= 0:  # select() with 0 would spin a core
            raise ValueError(f"GRPC_POLL_SECONDS must be positive, got {seconds}")

        def spawn_thread(target, args=(), kwargs=None, name=None):
            self.container.spawn_managed_thread(lambda: target(*args, **kwargs or {}), identifier=name)

        pool = _WakingConnectionPool(config.get("GRPC_BIND_HOST", "0.0.0.0"), config.get("GRPC_BIND_PORT", 50051),
                                     SslConfig(config.get("GRPC_SSL")), spawn_thread, self.handle_request)
        pool.poll_seconds = seconds
        self.channel = _WakingChannel(pool)

    def timeout(self, request_stream, response_stream, deadline):
        """End the call with DEADLINE_EXCEEDED if its response is not done within `deadline`
        seconds (nameko-grpc checked every millisecond until the call ended)."""
        if not response_stream.done.wait(timeout=deadline):
            request_stream.close()
            response_stream.close(GrpcError(code=StatusCode.DEADLINE_EXCEEDED, message="Deadline Exceeded"))


class Refused:
    """What a method returns instead of raising a mistake of its caller's (a wrong password,
    an ended session): the call ends with `status` (a GrpcError), and the worker's outcome is
    `error`, expected, with no traceback (see `Grpc.handle_result`)."""

    __slots__ = ("status", "error")

    def __init__(self, status, error):
        self.status = status
        self.error = error


STREAMING = (Cardinality.UNARY_STREAM, Cardinality.STREAM_STREAM)


class Grpc(grpc_entrypoint.Grpc):
    """nameko-grpc's entrypoint, served by `WakingGrpcServer`; streams do not hold a worker,
    and a `Refused` result ends the call with its status (see the module). Every other error
    leaves a handler as a GrpcError (gateway.grpc_server.translating_errors, which logs an
    unexpected one as ERROR itself), so the container logs it as an expected outcome (WARNING),
    as the HTTP door does: a wrong password or a malformed request is not an ERROR."""

    grpc_server = WakingGrpcServer()

    def __init__(self, stub, **kwargs):
        kwargs.setdefault("expected_exceptions", (*EXPECTED_ERRORS, GrpcError))
        super().__init__(stub, **kwargs)

    def handle_result(self, response_stream, worker_ctx, result, exc_info):
        if isinstance(result, Refused):
            response_stream.close(result.status)
            # nameko hands this to the dependencies (metrics, the call's log line) as the outcome.
            return None, (type(result.error), result.error, None)
        if exc_info is None and self.cardinality in STREAMING:
            # Its log lines keep the call's correlation id.
            context = bound(worker_ctx.data.get(CONTEXT_KEY), worker_ctx.service_name)
            self.container.spawn_managed_thread(partial(self._send_stream, response_stream, result, context),
                                                identifier=f"grpc stream {self.method_name}")
            return result, None
        return super().handle_result(response_stream, worker_ctx, result, exc_info)

    def _send_stream(self, response_stream, messages, context):
        """Send what the method's iterable yields until it ends, fails or the stream closes."""
        with context:
            try:
                response_stream.populate(messages)
            except GrpcError as error:
                response_stream.close(error)
            except Exception:  # noqa: BLE001 - a bug: the client gets INTERNAL, the log the traceback
                log.exception("stream of %s failed", self.method_name)
                response_stream.close(GrpcError(StatusCode.INTERNAL, "Something went wrong on our side"))
            finally:
                close = getattr(messages, "close", None)
                if close is not None:  # a generator left unfinished (the client went away) cleans up now
                    close()
