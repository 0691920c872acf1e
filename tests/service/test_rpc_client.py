"""Our RPC client and entrypoint (common/runtime/rpc.py) between real containers on the real
broker: typed errors, unknown services, deadlines, correlation under concurrency, the reply
queue declared once rather than per call, connections dropped by the broker, and
interworking with stock nameko on either side."""
import random
import socket
import time
from urllib.parse import quote, urlparse

import amqp.channel
import eventlet
import kombu
import nameko
import pytest
import requests
from eventlet.event import Event
from kombu import Queue
from nameko.exceptions import IncorrectSignature, RemoteError
from nameko.extensions import DependencyProvider, Entrypoint
from nameko.rpc import RpcConsumer, ServiceRpc
from nameko.rpc import rpc as stock_rpc
from nameko.standalone.rpc import ServiceRpcClient
from nameko.testing.services import entrypoint_hook
from nameko.testing.utils import get_extension

from common import errors
from common.runtime.rpc import RpcPublisher, StartupSafeReplyListener, TimedServiceRpc, rpc

MANAGEMENT = "http://127.0.0.1:15672/api"
MANAGEMENT_AUTH = ("guest", "guest")


class WorkerData(DependencyProvider):
    def get_dependency(self, worker_ctx):
        return worker_ctx.data


class Echo:
    name = "echo"
    data = WorkerData()

    @rpc
    def context(self, key):
        return self.data.get(key)

    @rpc
    def echo(self, value, delay=0):
        eventlet.sleep(delay)
        return value

    @rpc
    def missing(self, thing_id):
        raise errors.NotFound("No such thing", {"id": thing_id})

    @rpc
    def broken(self):
        raise KeyError("not one of ours")

    @rpc
    def unserializable(self):
        return object()


class StockEcho:
    name = "stock_echo"

    @stock_rpc
    def echo(self, value):
        return value


class Caller:
    name = "caller"

    echo = TimedServiceRpc("echo")
    ghost = TimedServiceRpc("ghost")
    stock_echo = TimedServiceRpc("stock_echo")

    @rpc
    def call(self, service, method, *args, deadline=None, **kwargs):
        client = getattr(self, service)
        if deadline is not None:
            client = client.within(deadline)
        return getattr(client, method)(*args, **kwargs)

    @rpc
    def fan_out(self, values, delay=None):
        """Many calls at once from one worker, each taking `delay` (random if None)."""
        pool = eventlet.GreenPool(len(values))
        return list(pool.imap(lambda v: self.echo.echo(v, delay=random.uniform(0, 0.05) if delay is None else delay),
                              values))


class Mixed:
    """nameko's @rpc and ours in one class (e.g. an inherited method still on nameko's)."""

    name = "mixed"

    @stock_rpc
    def a_stock(self):
        return "stock"

    @rpc
    def b_ours(self):
        return "ours"

    @stock_rpc
    def c_stock(self):
        return "stock"


class StockCaller:
    """The same caller on nameko's own ServiceRpc: shows what the declaration test measures."""

    name = "stock_caller"
    echo = ServiceRpc("echo")

    @rpc
    def call(self, value):
        return self.echo.echo(value)


@pytest.fixture
def rpc_config(rabbit_config):
    """A test vhost, short deadlines and room for 50 workers."""
    config = {"AMQP_URI": nameko.config["AMQP_URI"], "RPC_TIMEOUT": 5, "max_workers": 50,
              "serializer": "json"}
    with nameko.config.patch(config, clear=True):
        yield config


@pytest.fixture
def start(rpc_config, container_factory):
    def start(*services):
        containers = [container_factory(service, rpc_config) for service in services]
        for container in containers:
            container.start()
        return containers

    return start


def call(container, *args, **kwargs):
    with entrypoint_hook(container, "call") as hook:
        return hook(*args, **kwargs)


def vhost_connections(amqp_uri):
    vhost = urlparse(amqp_uri).path.lstrip("/")
    response = requests.get(f"{MANAGEMENT}/vhosts/{quote(vhost, safe='')}/connections",
                            auth=MANAGEMENT_AUTH, timeout=10)
    response.raise_for_status()
    return [connection["name"] for connection in response.json()]


def listed_connections(amqp_uri, at_least):
    """The vhost's connections, once the management API lists `at_least` of them (its
    list lags the broker by a few seconds)."""
    deadline = time.monotonic() + 15
    while len(names := vhost_connections(amqp_uri)) < at_least and time.monotonic() < deadline:
        eventlet.sleep(0.25)
    return names


def drop_connections(names):
    """Make the broker close these connections (all of this test's vhost, no others)."""
    for name in names:
        requests.delete(f"{MANAGEMENT}/connections/{quote(name, safe='')}", auth=MANAGEMENT_AUTH,
                        timeout=10)
    return names


@pytest.fixture
def declarations(monkeypatch):
    """Counts every queue and exchange declaration made through kombu, by name."""
    counted = []
    queue_declare, exchange_declare = Queue.declare, kombu.Exchange.declare

    def spy_queue(self, *args, **kwargs):
        counted.append(self.name)
        return queue_declare(self, *args, **kwargs)

    def spy_exchange(self, *args, **kwargs):
        counted.append(self.name)
        return exchange_declare(self, *args, **kwargs)

    monkeypatch.setattr(Queue, "declare", spy_queue)
    monkeypatch.setattr(kombu.Exchange, "declare", spy_exchange)
    return counted


def test_a_call_returns_the_result(start):
    _, caller = start(Echo, Caller)
    assert call(caller, "echo", "echo", {"a": [1, 2]}) == {"a": [1, 2]}


def test_the_worker_context_travels_with_the_call(start):
    _, caller = start(Echo, Caller)
    with entrypoint_hook(caller, "call", context_data={"correlation_id": "c-123"}) as hook:
        assert hook("echo", "context", "correlation_id") == "c-123"
        assert hook("echo", "context", "call_id_stack")[0].startswith("caller.call.")


def test_typed_errors_cross_as_themselves(start):
    _, caller = start(Echo, Caller)
    with pytest.raises(errors.NotFound) as raised:
        call(caller, "echo", "missing", 42)
    assert raised.value.details == {"id": 42}
    with pytest.raises(RemoteError) as raised:
        call(caller, "echo", "broken")
    assert raised.value.exc_type == "KeyError"
    with pytest.raises(RemoteError) as raised:
        call(caller, "echo", "unserializable")
    assert raised.value.exc_type == "UnserializableValueError"


def test_an_unknown_service_is_unavailable_at_once(start):
    (caller,) = start(Caller)
    started = time.monotonic()
    with pytest.raises(errors.ServiceUnavailable):
        call(caller, "ghost", "ping")
    assert time.monotonic() - started < 1


def test_unknown_service_does_not_confuse_the_next_call_on_the_same_connection(rpc_config, start):
    """A returned request must not leave its confirm (or its return) for the next publish."""
    _, caller = start(Echo, Caller)
    for n in range(20):
        with pytest.raises(errors.ServiceUnavailable):
            call(caller, "ghost", "ping")
        assert call(caller, "echo", "echo", n) == n


def test_a_missed_deadline_is_a_service_timeout_and_is_forgotten(start):
    _, caller = start(Echo, Caller)
    started = time.monotonic()
    with pytest.raises(errors.ServiceTimeout):
        call(caller, "echo", "echo", "late", delay=1, deadline=0.3)
    assert 0.3 <= time.monotonic() - started < 0.9
    listener = next(ext for ext in caller.shared_extensions.values()
                    if isinstance(ext, StartupSafeReplyListener))
    assert listener.pending == {}  # nothing left waiting for the late reply
    eventlet.sleep(1)  # the late reply arrives and is dropped
    assert call(caller, "echo", "echo", "next") == "next"


def test_fifty_concurrent_calls_each_get_their_own_answer(start):
    _, caller = start(Echo, Caller)
    values = [f"value-{n}" for n in range(50)]
    with entrypoint_hook(caller, "fan_out") as fan_out:
        assert fan_out(values) == values  # out-of-order replies (random delays) matched by id

    # and 50 workers of one container at once (entrypoint_hook waits for one worker only)
    entrypoint = get_extension(caller, Entrypoint, method_name="call")
    answers = [Event() for _ in range(50)]
    for n, answer in enumerate(answers):
        def handle_result(worker_ctx, result, exc_info, answer=answer):
            answer.send_exception(*exc_info) if exc_info else answer.send(result)
            return result, exc_info

        caller.spawn_worker(entrypoint, ("echo", "echo", n), {"delay": random.uniform(0, 0.05)},
                            handle_result=handle_result)
    with eventlet.Timeout(10):
        assert [answer.wait() for answer in answers] == list(range(50))


def test_the_reply_queue_and_exchange_are_declared_once_not_per_call(start, declarations):
    _, caller = start(Echo, Caller)
    listener = next(ext for ext in caller.shared_extensions.values()
                    if isinstance(ext, StartupSafeReplyListener))
    call(caller, "echo", "echo", 0)
    declared_at_start = declarations.count(listener.queue.name)
    assert declared_at_start >= 1  # by the reply consumer, and by the first request
    declarations.clear()
    for n in range(20):
        assert call(caller, "echo", "echo", n) == n
    assert declarations == []


def test_stock_nameko_declares_the_reply_queue_with_every_call(start, declarations):
    """What the test above guards against (and proof that the spy sees declarations)."""
    _, caller = start(Echo, StockCaller)
    with entrypoint_hook(caller, "call") as hook:
        hook(0)
        declarations.clear()
        for n in range(20):
            hook(n)
    assert sum(name.startswith("rpc.reply-stock_caller") for name in declarations) == 20


def test_calls_succeed_after_the_broker_drops_every_connection(rpc_config, start, declarations):
    echo, caller = start(Echo, Caller)
    listener = next(ext for ext in caller.shared_extensions.values()
                    if isinstance(ext, StartupSafeReplyListener))
    assert call(caller, "echo", "echo", "before") == "before"
    # the callee's and the caller's consumers, and a publishing connection each
    dropped = drop_connections(listed_connections(rpc_config["AMQP_URI"], at_least=4))
    assert len(dropped) >= 4
    declarations.clear()
    for n in range(5):
        assert call(caller, "echo", "echo", n) == n
    # the new publishing connection declared the reply queue again, once
    assert declarations.count(listener.queue.name) >= 1
    declarations.clear()
    assert call(caller, "echo", "echo", "after") == "after"
    assert declarations.count(listener.queue.name) == 0
    assert not caller._died.ready() and not echo._died.ready()


def test_a_call_in_flight_when_connections_drop_ends_typed_never_hangs(rpc_config, start):
    _, caller = start(Echo, Caller)
    assert call(caller, "echo", "echo", "warm") == "warm"
    connections = listed_connections(rpc_config["AMQP_URI"], at_least=4)
    assert len(connections) >= 4
    in_flight = eventlet.spawn(call, caller, "echo", "echo", "slow", delay=0.5, deadline=4)
    eventlet.sleep(0.2)
    drop_connections(connections)
    with eventlet.Timeout(6):
        try:
            assert in_flight.wait() == "slow"
        except (errors.ServiceUnavailable, errors.ServiceTimeout):
            pass
    assert call(caller, "echo", "echo", "next") == "next"


def test_lost_replies_fail_the_waiting_calls_instead_of_the_container(rabbit_config):
    """After a broker restart the reply queue is gone; what waited for it must not hang,
    and the reconnecting consumer must not kill the container."""
    listener = StartupSafeReplyListener()
    listener.queue = Queue("rpc.reply-test-lost", exchange=kombu.Exchange("nameko-rpc", type="topic"))
    listener._declared = True  # past the first connection
    wait = listener.register_for_reply("waiting-call")
    listener._check_after_connect()  # the queue does not exist: replies were lost
    with pytest.raises(errors.ServiceUnavailable):
        wait()
    assert listener.pending == {}


def _replies_through(monkeypatch, fail):
    """Route every reply publish (its routing key is the caller's queue id, with no dot)
    through `fail(channel)` first."""
    publish = amqp.channel.Channel.basic_publish

    def basic_publish(self, msg, exchange="", routing_key="", *args, **kwargs):
        if "." not in routing_key:
            fail(self)
        return publish(self, msg, exchange, routing_key, *args, **kwargs)

    monkeypatch.setattr(amqp.channel.Channel, "basic_publish", basic_publish)


def test_a_reply_that_cannot_be_sent_does_not_kill_the_service(start, monkeypatch):
    echo, caller = start(Echo, Caller)

    def fail(channel):
        raise ValueError("cannot encode")

    _replies_through(monkeypatch, fail)
    with pytest.raises(errors.ServiceTimeout):
        call(caller, "echo", "echo", 1, deadline=0.5)
    monkeypatch.undo()
    assert not echo._died.ready()
    assert call(caller, "echo", "echo", 2) == 2


def test_a_reply_lost_with_its_connection_is_answered_again(start, monkeypatch):
    """The reply goes out on the request's channel before its ack: if the connection dies
    under the reply, the ack dies too, the broker delivers the request again, and the
    caller gets its answer from the second delivery."""
    echo, caller = start(Echo, Caller)
    broken = []

    def first_reply_breaks_the_connection(channel):
        if not broken:
            broken.append(channel.connection)
            channel.connection.sock.shutdown(socket.SHUT_RDWR)
            raise ConnectionResetError("the connection died under the reply")

    _replies_through(monkeypatch, first_reply_breaks_the_connection)
    runs = []
    original = Echo.echo

    def counted(self, value, delay=0):
        runs.append(value)
        return original(self, value, delay)

    monkeypatch.setattr(Echo, "echo", counted)
    assert call(caller, "echo", "echo", "again", deadline=10) == "again"
    assert len(broken) == 1
    assert runs == ["again", "again"]
    assert not echo._died.ready()


def _waiter_threads(monkeypatch, container):
    """The names of the managed threads `container` spawns from now on that wait for a
    free worker (nameko's per-request waiter)."""
    waiters = []
    spawn_managed_thread = container.spawn_managed_thread

    def recording(fn, identifier=None):
        if "wait_for_worker_pool" in str(identifier):
            waiters.append(identifier)
        return spawn_managed_thread(fn, identifier)

    monkeypatch.setattr(container, "spawn_managed_thread", recording)
    return waiters


def test_a_request_spawns_its_worker_at_once_when_the_pool_has_room(start, monkeypatch):
    echo, caller = start(Echo, Caller)
    waiters = _waiter_threads(monkeypatch, echo)
    with entrypoint_hook(caller, "fan_out") as fan_out:
        assert fan_out(list(range(20))) == list(range(20))  # 20 at once, 50 workers
    assert waiters == []


def test_with_every_worker_busy_a_request_waits_for_one(rpc_config, container_factory, monkeypatch):
    echo = container_factory(Echo, dict(rpc_config, max_workers=2))
    echo.start()
    caller = container_factory(Caller, rpc_config)
    caller.start()
    waiters = _waiter_threads(monkeypatch, echo)
    started = time.monotonic()
    with entrypoint_hook(caller, "fan_out") as fan_out:
        assert fan_out(list(range(6)), delay=0.3) == list(range(6))
    assert time.monotonic() - started >= 0.9  # three rounds of two workers
    assert len(waiters) >= 4  # the requests that found both workers busy


def test_stock_nameko_on_either_side(start):
    _, _, caller = start(Echo, StockEcho, Caller)
    assert call(caller, "stock_echo", "echo", "to stock") == "to stock"
    with ServiceRpcClient("echo") as echo:  # e.g. `nameko shell`
        assert echo.echo("from stock") == "from stock"
        with pytest.raises(errors.NotFound):
            echo.missing(1)


def test_one_consumer_serves_a_class_that_mixes_both_entrypoints(start):
    (mixed,) = start(Mixed)
    assert len([ext for ext in mixed.subextensions if isinstance(ext, RpcConsumer)]) == 1
    with ServiceRpcClient("mixed") as client:
        for _ in range(5):  # with two consumers, some of these would be MethodNotFound
            assert [client.a_stock(), client.b_ours(), client.c_stock()] == ["stock", "ours", "stock"]


def test_stopping_the_container_closes_its_connections(rpc_config, start):
    echo, caller = start(Echo, Caller)
    assert call(caller, "echo", "echo", 1) == 1
    echo.stop()
    caller.stop()
    deadline = time.monotonic() + 15
    while vhost_connections(rpc_config["AMQP_URI"]) and time.monotonic() < deadline:
        eventlet.sleep(0.5)
    assert vhost_connections(rpc_config["AMQP_URI"]) == []


def test_arguments_that_do_not_fit_the_method_are_refused_before_it_runs(start):
    _, caller = start(Echo, Caller)
    with pytest.raises(IncorrectSignature) as raised:
        call(caller, "echo", "echo")  # `value` is missing
    assert "echo()" in str(raised.value) and "value" in str(raised.value)
    with pytest.raises(IncorrectSignature):
        call(caller, "echo", "echo", 1, colour="red")
    assert call(caller, "echo", "echo", 1, delay=0) == 1


# -- publishing without waiting for confirms ----------------------------------------------------

@pytest.fixture
def publisher(rpc_config):
    publisher = RpcPublisher()
    publisher.setup()
    yield publisher
    publisher.stop()


@pytest.fixture
def bound_queue(rpc_config):
    """A queue of the test's own on the RPC exchange; yields (queue, read) where `read(n)`
    takes up to n messages' bodies from it."""
    exchange = kombu.Exchange("nameko-rpc", type="topic", durable=True)
    made = []

    def make(routing_key, **arguments):
        queue = Queue(f"test-publish-{routing_key}", exchange=exchange, routing_key=routing_key,
                      auto_delete=False, queue_arguments=arguments or None)
        with kombu.Connection(rpc_config["AMQP_URI"]) as connection:
            queue.bind(connection.channel()).declare()
        made.append(queue)

        def read(limit, wait=3):
            bodies = []
            deadline = time.monotonic() + wait
            with kombu.Connection(rpc_config["AMQP_URI"]) as connection:
                bound = queue.bind(connection.channel())
                while len(bodies) < limit and time.monotonic() < deadline:
                    message = bound.get(no_ack=True)
                    if message is None:
                        eventlet.sleep(0.05)
                    else:
                        bodies.append(message.payload)
            return bodies

        return read

    yield make
    with kombu.Connection(rpc_config["AMQP_URI"]) as connection:
        for queue in made:
            queue.bind(connection.channel()).delete()


def test_a_publish_returns_before_its_confirm_and_the_reader_takes_the_confirm(publisher, bound_queue):
    read = bound_queue("confirmed")
    publisher.publish({"n": 1}, routing_key="confirmed", correlation_id="c-1")
    slot = publisher._slots.get()
    try:
        assert [outgoing.correlation_id for outgoing in slot.unconfirmed.values()] == ["c-1"]
        deadline = time.monotonic() + 3
        while slot.unconfirmed and time.monotonic() < deadline:
            eventlet.sleep(0.01)
        assert slot.unconfirmed == {}
    finally:
        publisher._slots.put(slot)
    assert read(1) == [{"n": 1}]


def _black_hole(publisher):
    """Take the pooled connection and make it swallow what is written to it from now on,
    as a connection that died with the data in flight would: nothing reaches the broker and
    no confirm comes back."""
    publisher.publish({"warm": True}, routing_key="nowhere", correlation_id="warm")
    slot = publisher._slots.get()
    deadline = time.monotonic() + 3
    while slot.unconfirmed and time.monotonic() < deadline:
        eventlet.sleep(0.01)
    slot.connection.connection.frame_writer = lambda *args, **kwargs: None
    publisher._slots.put(slot)
    return slot


def test_messages_unconfirmed_when_their_connection_is_lost_are_published_again(publisher, bound_queue):
    read = bound_queue("lost")
    slot = _black_hole(publisher)
    failed = []
    for n in range(3):
        publisher.publish({"n": n}, routing_key="lost", correlation_id=f"c-{n}", on_failed=failed.append)
    assert sorted(outgoing.correlation_id for outgoing in slot.unconfirmed.values()) == ["c-0", "c-1", "c-2"]
    slot.close(ConnectionResetError("dropped"))  # as the reader does when the socket dies
    assert sorted(body["n"] for body in read(4, wait=2)) == [0, 1, 2]
    assert failed == []


def test_a_lost_message_nobody_waits_for_is_not_published_again(publisher, bound_queue):
    read = bound_queue("unwanted")
    slot = _black_hole(publisher)
    publisher.publish({"n": 0}, routing_key="unwanted", correlation_id="c-0", wanted=lambda: False)
    publisher.publish({"n": 1}, routing_key="unwanted", correlation_id="c-1")
    slot.close(ConnectionResetError("dropped"))
    assert [body["n"] for body in read(2, wait=1)] == [1]


def test_a_message_the_broker_refuses_reaches_on_failed(publisher, bound_queue):
    read = bound_queue("full", **{"x-max-length": 1, "x-overflow": "reject-publish"})
    failed = {}
    for n in range(2):
        publisher.publish({"n": n}, routing_key="full", correlation_id=f"c-{n}",
                          on_failed=lambda error, n=n: failed.setdefault(n, error))
    deadline = time.monotonic() + 3
    while not failed and time.monotonic() < deadline:
        eventlet.sleep(0.01)
    assert list(failed) == [1]
    assert isinstance(failed[1], kombu.exceptions.OperationalError)
    assert read(2) == [{"n": 0}]
