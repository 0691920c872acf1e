"""RPC between services: our typed errors cross the wire as themselves, every call has a
deadline, and neither side pays for AMQP set-up per call.

A stopped or stuck service becomes ServiceUnavailable / ServiceTimeout (503/504 at the
gateway) instead of a hang.

Why not nameko's `ServiceRpc` and `@rpc` as they are: for every request and every reply
nameko builds a new kombu `Connection` object and goes through kombu's global pools,
sends a persistent message (the queues they go to are not durable anyway), and for every
request re-declares the reply queue with its exchange and binding: the reply queue carries
`x-expires`, so kombu never caches its declaration. That capped a caller at a few hundred
calls a second. Also, a callee whose reply could not be published died (the error
escaped its worker), and a caller whose reply queue was lost in a broker restart died too.

The pieces:

* `RpcPublisher` - a per-container pool of long-lived publishing connections, shared by
  the requests of every `TimedServiceRpc`.
  Publisher confirms stay on, and requests stay `mandatory`, so a call to a service that
  nobody serves fails at once instead of waiting; but confirms are read as they arrive,
  not waited for, so a publish is one socket write.
* `StartupSafeReplyListener` - nameko's one long-lived reply consumer per container
  (one queue, replies matched to waiting calls by correlation id), made safe at startup,
  after a broker restart and at stop.
* `TimedServiceRpc` / `TimedClient` / `call_with_deadline` - the dependency services
  declare, and the deadline and error mapping around each call.
* `rpc` - nameko's `@rpc` entrypoint, replying on the request's own channel before
  acking it, and surviving a reply that cannot be sent; our typed errors are its
  expected exceptions unless a method names others.

Wire format, exchange, routing keys, headers and error serialisation are nameko's, so
either side may be stock nameko (e.g. `nameko shell`, or a service still on
`nameko.rpc.rpc`).
"""
import inspect
import logging
import sys
import uuid
from functools import partial

import eventlet
import kombu
import kombu.serialization
import nameko
from eventlet.queue import LifoQueue
from kombu.exceptions import OperationalError
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY,
    AMQP_URI_CONFIG_KEY,
    DEFAULT_AMQP_URI,
    LOGIN_METHOD_CONFIG_KEY,
    MAX_WORKERS_CONFIG_KEY,
    NON_PERSISTENT,
)
from nameko.exceptions import (
    ContainerBeingKilled,
    IncorrectSignature,
    MalformedRequest,
    ReplyQueueExpiredWithPendingReplies,
    UnknownService,
    UnserializableValueError,
    deserialize,
    deserialize_to_instance,
    serialize,
)
from nameko.extensions import DependencyProvider, SharedExtension
from nameko.messaging import decode_from_headers, encode_to_headers
from nameko.rpc import ReplyListener, RpcConsumer, get_rpc_exchange
from nameko.rpc import Rpc as NamekoRpc

from common import errors
from common.runtime.consumers import _CONNECTION_ERRORS, TolerantConsumer

_log = logging.getLogger(__name__)

for _error in errors.ANSWERS:
    deserialize_to_instance(_error)


class Outgoing:
    """One message to publish, kept until the broker confirms it, so that it can be
    published again if the connection it went out on is lost first.

    `on_returned()`: a `mandatory` message no queue took (basic.return).
    `on_failed(error)`: the broker refused it (nack), or it could not be published again
    after its connection was lost.
    `wanted()`: False once nobody waits for the outcome (a call that gave up); such a
    message is not published again.
    """

    __slots__ = ("payload", "kwargs", "declare", "on_returned", "on_failed", "wanted")

    def __init__(self, payload, kwargs, *, declare=(), on_returned=None, on_failed=None, wanted=None):
        self.payload = payload
        self.kwargs = kwargs
        self.declare = declare
        self.on_returned = on_returned or _ignore
        self.on_failed = on_failed or _ignore
        self.wanted = wanted or (lambda: True)

    @property
    def correlation_id(self):
        return self.kwargs.get("correlation_id")


def _ignore(*args):
    return None


class _PublishChannel:
    """One long-lived publishing connection and channel, with publisher confirms read by a
    greenthread of its own instead of waited for.

    Publishing is a socket write and nothing more: the publisher goes on at once, and the
    confirms, returns and the connection's end arrive at the reader. Until its confirm
    arrives a message stays in `unconfirmed` (by delivery tag); if the connection is lost
    first, `on_lost` gets those messages to publish again. A `mandatory` message no queue
    took comes back as basic.return, before its confirm, and its `on_returned` runs.

    Only the reader reads the socket. So nothing that waits for an answer from the broker
    may run once it has started: `confirm_select` runs before it, and queues are declared
    with `nowait` (once per connection: `declared`; a new connection starts empty, so after
    a broker restart a queue is declared again before the first message that needs it).
    Writes come from the one greenthread that has borrowed this channel from the pool.
    """

    def __init__(self, connection_factory, on_lost):
        self._connection_factory = connection_factory
        self._on_lost = on_lost
        self.connection = self.channel = self.producer = None
        self._reader = None
        self.declared = set()
        self.unconfirmed = {}
        self._delivery_tag = 0

    @property
    def alive(self):
        return self.producer is not None

    def _open(self):
        connection = self._connection_factory()
        # One attempt: kombu's connect() sleeps 2 s and tries again, and the publisher's own
        # retries (RpcPublisher.retry_delays) already pace reconnection during an outage.
        connection.ensure_connection(max_retries=0)
        channel = connection.channel()
        channel.confirm_select()
        channel.events["basic_return"].add(self._on_return)
        channel.events["basic_ack"].add(self._on_ack)
        channel.events["basic_nack"].add(self._on_nack)
        self.connection, self.channel = connection, channel
        self.producer = kombu.Producer(channel, auto_declare=False)
        self.declared, self.unconfirmed, self._delivery_tag = set(), {}, 0
        self._reader = eventlet.spawn(self._read, connection)

    def _read(self, connection):
        try:
            while True:
                connection.drain_events()
        except BaseException as error:  # noqa: BLE001 - any end of the connection, GreenletExit too
            if connection is self.connection:  # not closed on purpose
                self.close(error)

    def _confirmed(self, delivery_tag, multiple):
        if not multiple:
            outgoing = self.unconfirmed.pop(delivery_tag, None)
            return [outgoing] if outgoing is not None else []
        done = [tag for tag in self.unconfirmed if tag <= delivery_tag]
        return [self.unconfirmed.pop(tag) for tag in done]

    def _on_ack(self, delivery_tag, multiple):
        self._confirmed(delivery_tag, multiple)

    def _on_nack(self, delivery_tag, multiple):
        for outgoing in self._confirmed(delivery_tag, multiple):
            outgoing.on_failed(OperationalError("The broker refused the message"))

    def _on_return(self, exc, exchange, routing_key, message):
        correlation_id = message.properties.get("correlation_id")
        for outgoing in self.unconfirmed.values():
            if outgoing.correlation_id == correlation_id:
                outgoing.on_returned()
                break

    def publish(self, outgoing):
        """Write one message (opening the connection first if need be); raises on a
        connection error, and the message is then not among `unconfirmed`: retrying it is
        the caller's."""
        if not self.alive:
            self._open()
        for queue in outgoing.declare:
            if queue.name not in self.declared:
                queue.bind(self.channel).declare(nowait=True)  # its exchange and binding too
                self.declared.add(queue.name)
        self._delivery_tag += 1
        delivery_tag = self._delivery_tag
        self.producer.publish(outgoing.payload, retry=False, **outgoing.kwargs)
        # Kept only once written: a write that fails is the caller's to retry, and must not
        # also be published again by `on_lost` if the reader finds the connection dead
        # meanwhile. Its confirm cannot come before this line: nothing yields in between,
        # and the broker confirms only what it has received.
        self.unconfirmed[delivery_tag] = outgoing

    def close(self, error=None):
        """Close the connection; messages still unconfirmed go to `on_lost`."""
        connection, reader = self.connection, self._reader
        self.connection = self.channel = self.producer = self._reader = None
        unconfirmed, self.unconfirmed = list(self.unconfirmed.values()), {}
        if connection is not None:
            try:
                connection.collect()  # no close handshake: it may be dead already
            except Exception:  # noqa: BLE001 - closing a broken connection must not raise
                pass
        if reader is not None and reader is not eventlet.getcurrent():
            reader.kill()
        if unconfirmed:
            self._on_lost(unconfirmed, error)


class RpcPublisher(SharedExtension):
    """Publishes RPC requests over a pool of long-lived connections (one pool
    per container), without waiting for the broker's confirms.

    A py-amqp connection cannot take writes from two greenthreads at once, so each publish
    borrows a connection for its write and hands it back. The pool opens connections on
    demand, up to `max_workers`; beyond that, publishers wait greenly for a free one.

    Confirms are on, but read by each connection's own reader (`_PublishChannel`), so a
    publish costs one socket write, as with plain kombu, and no round trip to the broker.
    What a waited-for confirm gave is kept: a message is kept until confirmed, and if its
    connection is lost first it is published again on another one; a nack or a message that
    cannot be published again reaches its `on_failed`.

    Messages are transient: the reply queue is not durable, so a persisted request could
    never get its reply through a broker restart anyway.

    Broker trouble: a connection that fails - or whose write was interrupted, e.g. by the
    caller's deadline, leaving its state unknown - is closed and replaced. A failed write
    is retried on a fresh connection after each delay in `retry_delays` (the first at once:
    after a broker restart a pooled connection is simply stale), then OperationalError is
    raised.
    """

    retry_delays = (0, 0.5, 1.0)

    def __init__(self):
        super().__init__()
        self._slots = None

    def setup(self):
        config = nameko.config
        self.amqp_uri = config.get(AMQP_URI_CONFIG_KEY, DEFAULT_AMQP_URI)
        self.ssl = config.get(AMQP_SSL_CONFIG_KEY)
        self.login_method = config.get(LOGIN_METHOD_CONFIG_KEY)
        self.exchange = get_rpc_exchange()
        self.size = max(1, int(config.get(MAX_WORKERS_CONFIG_KEY, 10)))
        # LIFO: the connection used last is reused first, so a sequential caller keeps one
        # connection, and more are opened only while that many publishes overlap
        self._slots = LifoQueue()
        for _ in range(self.size):
            self._slots.put(None)  # a free slot, no connection opened yet

    def _new_connection(self):
        return kombu.Connection(self.amqp_uri, ssl=self.ssl, login_method=self.login_method)

    def publish(self, payload, *, routing_key, correlation_id, declare=(), on_returned=None,
                on_failed=None, wanted=None, **kwargs):
        """Publish one message to the RPC exchange; returns once it is written.

        `declare`: queues to declare first (once per connection). A `mandatory` message no
        queue takes calls `on_returned()`; a message the broker refuses, or that is lost
        with its connection and cannot be published again, calls `on_failed(error)`."""
        outgoing = Outgoing(payload, dict(kwargs, correlation_id=correlation_id, exchange=self.exchange,
                                          routing_key=routing_key, delivery_mode=NON_PERSISTENT),
                            declare=declare, on_returned=on_returned, on_failed=on_failed, wanted=wanted)
        self._publish(outgoing)

    def _publish(self, outgoing):
        failure = None
        for delay in self.retry_delays:
            if delay:
                eventlet.sleep(delay)
            slot = self._slots.get() or _PublishChannel(self._new_connection, self._republish)
            try:
                slot.publish(outgoing)
            except _CONNECTION_ERRORS as error:
                self._discard(slot, error)
                failure = error
                continue
            except BaseException:
                self._discard(slot)  # interrupted mid-write: the channel's state is unknown
                raise
            self._slots.put(slot)
            return
        raise OperationalError(f"Could not publish to the broker: {failure!r}") from failure

    def _republish(self, lost, error):
        """Messages whose connection was lost before they were confirmed: publish those
        still wanted again, each in its own greenthread (the broker may have them already;
        what a duplicate means is for the receiver, as with any redelivery)."""
        _log.warning("A broker connection was lost with %d unconfirmed message(s): %r", len(lost), error)
        for outgoing in lost:
            if outgoing.wanted():
                eventlet.spawn_n(self._publish_again, outgoing)

    def _publish_again(self, outgoing):
        try:
            self._publish(outgoing)
        except Exception as error:  # noqa: BLE001 - reported to whoever waits for it
            outgoing.on_failed(error)

    def _discard(self, slot, error=None):
        slot.close(error)
        self._slots.put(None)

    def stop(self):
        """Close the pooled connections (the container's workers are done by now)."""
        if self._slots is None:
            return
        free = 0
        while not self._slots.empty():
            slot = self._slots.get()
            if slot is not None:
                slot._on_lost = _ignore  # stopping: nothing is published again
                slot.close()
            free += 1
        for _ in range(free):
            self._slots.put(None)

    def kill(self):
        self.stop()


class StartupSafeReplyListener(ReplyListener):
    """nameko's reply listener - one consumer per container on one reply queue, replies
    matched to waiting calls by correlation id - with these fixes:

    * Startup: a call made before the reply queue was first declared made the 'lost
      replies' check look for a queue that did not exist yet, and
      ReplyQueueExpiredWithPendingReplies killed the whole container. On the first
      consume nothing can have been lost; on reconnects the check stands.
    * Reconnect: when the check does find replies lost (a broker restart deletes the
      queue), the calls waiting for them fail with ServiceUnavailable instead of the
      exception killing the container. (If a request re-created the queue first, the
      check cannot tell; those calls end at their deadline.) A connection that merely
      dropped loses nothing: the queue outlives it and unacked replies come back.
    * Calls that gave up (deadline, failed publish) are forgotten, so `pending` does not
      grow; at stop, calls still waiting fail instead of hanging.
    """

    _declared = False

    def setup(self):
        super().setup()
        self.consumer.check_for_lost_replies = self._check_after_connect

    def check_for_lost_replies(self):
        if not self._declared:
            self._declared = True
            return
        super().check_for_lost_replies()

    def _check_after_connect(self):
        """Run by the reply consumer on every (re)connection, before it consumes."""
        try:
            self.check_for_lost_replies()
        except ReplyQueueExpiredWithPendingReplies:
            _log.warning("The reply queue was lost (broker restart?): failing %d waiting call(s)",
                         len(self.pending))
            self.fail_pending("The message broker lost the reply")

    def fail_pending(self, reason):
        """Fail every call still waiting for a reply with ServiceUnavailable."""
        pending, self.pending = self.pending, {}
        for event in pending.values():
            if not event.ready():
                event.send_exception(errors.ServiceUnavailable(reason))

    def fail(self, correlation_id, error):
        """End the call waiting for this reply with `error` (e.g. its request was returned
        as unroutable)."""
        event = self.pending.pop(correlation_id, None)
        if event is not None and not event.ready():
            event.send_exception(error)

    def waits_for(self, correlation_id):
        return correlation_id in self.pending

    def forget(self, correlation_id):
        """Stop waiting for the reply to a call that gave up; a late reply is dropped."""
        self.pending.pop(correlation_id, None)

    def handle_message(self, body, message):
        """Hand the reply to its caller, then ack it - in a moment, not now.

        nameko acked each reply before handing it over: a socket write on the way to every
        caller (its cost: docs/performance.md). Here the ack runs in a greenthread scheduled
        after the woken caller, and acks every reply received so far at once (multiple=True;
        replies are handed over in delivery order, so all of them have been). Until acked,
        a reply is still redelivered if the connection drops, as before.
        """
        event = self.pending.pop(message.properties.get("correlation_id"), None)
        if event is not None and not event.ready():
            event.send(body)
        self._last_received = message
        if not self._ack_scheduled:
            self._ack_scheduled = True
            eventlet.spawn_n(self._ack_received)

    _last_received = None
    _ack_scheduled = False

    def _ack_received(self):
        self._ack_scheduled = False
        message, self._last_received = self._last_received, None
        if message is None or not message.channel.connection:
            return  # that connection is gone; the broker redelivers what it had not seen acked
        try:
            message.ack(multiple=True)
        except Exception:  # noqa: BLE001 - the connection is going; unacked replies come back
            _log.debug("Could not ack replies", exc_info=True)

    def stop(self):
        super().stop()
        self.fail_pending("The caller is stopping")

    def kill(self):
        self.stop()


class PendingCall:
    """One request on its way: `result()` waits for the reply, then returns its result or
    raises its error (our typed errors as themselves, others as nameko's RemoteError)."""

    _response = None

    def __init__(self, correlation_id, wait, forget):
        self.correlation_id = correlation_id
        self._wait = wait
        self._forget = forget

    def result(self):
        if self._response is None:
            try:
                self._response = self._wait()
            finally:
                if self._response is None:  # deadline, stop, lost reply: stop waiting
                    self._forget(self.correlation_id)
        error = self._response.get("error")
        if error:
            raise deserialize(error)
        return self._response["result"]


class RpcMethod:
    """`service.method`, bound to a worker. Call it, or `call_async` it."""

    def __init__(self, rpc, worker_ctx, service_name, method_name):
        self._rpc = rpc
        self._worker_ctx = worker_ctx
        self.service_name = service_name
        self.method_name = method_name

    def call_async(self, *args, **kwargs):
        """Send the request. If no one serves the service, or the broker refuses the
        request or loses it, the call's `result()` raises (UnknownService /
        OperationalError) as soon as the broker says so, without waiting for a reply."""
        listener = self._rpc.reply_listener
        correlation_id = str(uuid.uuid4())
        wait = listener.register_for_reply(correlation_id)
        service_name = self.service_name
        try:
            self._rpc.publisher.publish(
                {"args": args, "kwargs": kwargs}, routing_key=f"{service_name}.{self.method_name}",
                correlation_id=correlation_id, mandatory=True, declare=[listener.queue],
                reply_to=listener.routing_key, headers=encode_to_headers(self._worker_ctx.context_data),
                serializer=self._rpc.serializer,
                on_returned=lambda: listener.fail(correlation_id, UnknownService(service_name)),
                on_failed=lambda error: listener.fail(correlation_id, error),
                wanted=lambda: listener.waits_for(correlation_id))
        except BaseException:
            listener.forget(correlation_id)
            raise
        return PendingCall(correlation_id, wait, listener.forget)

    def __call__(self, *args, **kwargs):
        return self.call_async(*args, **kwargs).result()


class ServiceClient:
    """`client.method(...)` calls `method` of one service (no deadline of its own).

    The worker's context (call id stack, correlation id, ...) travels as headers, as with
    nameko, but read at call time: what the worker's other dependencies put there during
    its setup is included."""

    def __init__(self, rpc, worker_ctx, service_name):
        self._rpc = rpc
        self._worker_ctx = worker_ctx
        self.service_name = service_name

    def __getattr__(self, method_name):
        if method_name.startswith("__"):
            raise AttributeError(method_name)
        return RpcMethod(self._rpc, self._worker_ctx, self.service_name, method_name)

    __getitem__ = __getattr__


class TimedServiceRpc(DependencyProvider):
    """RPC client to one service, for a service to declare: `payments = TimedServiceRpc("payments")`.

    Calls raise ServiceTimeout after RPC_TIMEOUT seconds (config, default 10) and
    ServiceUnavailable when the service or the broker cannot be reached. All of a
    container's `TimedServiceRpc`s share one reply listener and one publisher pool.
    """

    reply_listener = StartupSafeReplyListener()
    publisher = RpcPublisher()

    def __init__(self, target_service):
        self.target_service = target_service

    def setup(self):
        self.timeout = float(nameko.config.get("RPC_TIMEOUT", 10))
        self.serializer = self.container.serializer

    def get_dependency(self, worker_ctx):
        client = ServiceClient(self, worker_ctx, self.target_service)
        return TimedClient(client, self.target_service, self.timeout)


class TimedClient:
    """A service client whose every call has a deadline (see `call_with_deadline`)."""

    def __init__(self, client, service_name, timeout):
        self._client = client
        self._service_name = service_name
        self._timeout = timeout

    def within(self, seconds):
        """The same client with another deadline (e.g. a short one for health checks)."""
        return TimedClient(self._client, self._service_name, seconds)

    def __getattr__(self, method_name):
        method = getattr(self._client, method_name)

        def call(*args, **kwargs):
            return call_with_deadline(method, self._service_name, self._timeout, *args, **kwargs)

        call.__name__ = method_name
        return call


def call_with_deadline(method, service_name, timeout, *args, **kwargs):
    """Call `method` (anything with nameko's `call_async(...).result()`) and map failures
    to our errors: no answer within `timeout` seconds, publishing included ->
    ServiceTimeout; nobody serves the service, or the broker is unreachable ->
    ServiceUnavailable. Errors raised by the service itself pass through."""
    deadline = errors.ServiceTimeout(f"The {service_name} service did not answer in time",
                                     {"service": service_name})
    try:
        with eventlet.Timeout(timeout, deadline):
            return method.call_async(*args, **kwargs).result()
    except UnknownService:
        raise errors.ServiceUnavailable(f"The {service_name} service is not running",
                                        {"service": service_name}) from None
    except (OperationalError, ConnectionError) as error:
        raise errors.ServiceUnavailable("The message broker is unreachable",
                                        {"service": service_name}) from error


class RpcResponder(RpcConsumer):
    """nameko's RPC consumer (one per container, on `rpc-<service>`), replying on the
    channel the request came in on, as a plain kombu server does, instead of through a new
    kombu `Connection` per reply.

    The reply is published, then the request acked, on the same channel, which the broker
    handles in order. So a reply is lost only with its connection, and then the request's
    ack is lost too and the broker delivers the request again (to this or another
    instance), which answers it: the same at-least-once as nameko's, with no publisher
    confirm to read per reply. py-amqp writes each frame under its connection's lock, so
    workers replying at once, and the consumer's heartbeats, do not interleave.

    A reply that cannot be sent (the connection is gone) is logged and dropped, the
    request left to be delivered again; nameko let the error escape the worker, which
    killed the whole container.
    """

    consumer_cls = TolerantConsumer

    @property
    def sharing_key(self):
        """nameko's own key: a container has one consumer on `rpc-<service>`, even if its
        class mixes nameko's `@rpc` with ours (two would split the requests between them,
        and each would answer MethodNotFound for the other's methods). Whichever is bound
        first serves all of them."""
        return RpcConsumer

    def setup(self):
        super().setup()
        self.exchange_name = get_rpc_exchange().name

    def handle_result(self, message, result, exc_info):
        body, content_type, encoding, result, exc_info = _encode_reply(message, result, exc_info)
        try:
            channel = message.channel
            reply = channel.prepare_message(
                body, 0, content_type, encoding, {},
                {"correlation_id": message.properties.get("correlation_id"), "delivery_mode": NON_PERSISTENT})
            channel.basic_publish(reply, exchange=self.exchange_name, routing_key=message.properties["reply_to"])
        except Exception:  # noqa: BLE001 - see the class docstring
            _log.error("Could not send the reply to %s; the request stays unacked",
                       message.delivery_info.get("routing_key"), exc_info=True)
            return result, exc_info
        self.consumer.ack_message(message)
        return result, exc_info


def _encode_reply(message, result, exc_info):
    """nameko's reply body, encoded as the request was (encoded once: nameko encoded the
    result twice, once to check it can be). A result that cannot be encoded becomes an
    UnserializableValueError, as with nameko."""
    error = serialize(exc_info[1]) if exc_info is not None else None
    serializer = kombu.serialization.registry.type_to_name[message.properties["content_type"]]
    try:
        content_type, encoding, body = kombu.serialization.dumps({"result": result, "error": error}, serializer)
    except Exception:  # noqa: BLE001 - any serialisation failure
        exc_info = sys.exc_info()
        error = serialize(UnserializableValueError(result))
        result = None
        content_type, encoding, body = kombu.serialization.dumps({"result": None, "error": error}, serializer)
    return body, content_type, encoding, result, exc_info


class Rpc(NamekoRpc):
    """nameko's `@rpc` entrypoint, replying through `RpcResponder`.

    The arguments of each request are checked against the method's signature, as nameko
    does, but with the signature read once: nameko's `inspect.getcallargs` read it again
    for every request (what that cost: docs/performance.md)."""

    rpc_consumer = RpcResponder()

    def __init__(self, **kwargs):
        # Our typed errors (common.errors.ANSWERS) are the caller's mistakes or a designed
        # refusal: logged without a traceback, and not counted as errors in metrics.
        kwargs.setdefault("expected_exceptions", errors.EXPECTED_ERRORS)
        super().__init__(**kwargs)

    def handle_message(self, body, message):
        """nameko's, but the worker is spawned at once when the worker pool has room.

        nameko spawns a greenthread for every request only to wait for a free worker (so
        that a full pool cannot block the consumer), and that one spawns the worker: two
        greenthreads per request where one does. With the pool full, nameko's way stands."""
        if self.container._worker_pool.free() <= 0:
            return super().handle_message(body, message)
        try:
            args, kwargs = body["args"], body["kwargs"]
        except KeyError:
            raise MalformedRequest("Message missing `args` or `kwargs`") from None
        self.check_signature(args, kwargs)
        try:
            self.container.spawn_worker(self, args, kwargs, context_data=decode_from_headers(message.headers),
                                        handle_result=partial(self.handle_result, message))
        except ContainerBeingKilled:
            self.rpc_consumer.consumer.requeue_message(message)

    def setup(self):
        super().setup()
        self._signature = inspect.signature(getattr(self.container.service_cls, self.method_name))

    def check_signature(self, args, kwargs):
        try:
            self._signature.bind(None, *args, **kwargs)  # None: the service instance
        except TypeError as exc:
            raise IncorrectSignature(f"{self.method_name}(): {exc}") from None


rpc = Rpc.decorator
