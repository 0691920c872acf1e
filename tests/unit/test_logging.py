"""Structured logs and the correlation id: the JSON line, which ids are accepted from callers,
one id per greenthread, the id a worker gets and passes on, and the id stored with an event."""
import json
import logging
import sys
from types import SimpleNamespace

import eventlet
import sqlalchemy as sa
from nameko.rpc import Rpc

from common.contracts.events import variants_of
from common.logs import (
    HEADER,
    ContextFilter,
    JsonFormatter,
    bound,
    correlation_headers,
    correlation_id_from,
    current_correlation_id,
    valid_correlation_id,
)
from common.runtime import logging as observability
from common.runtime.logging import RequestContext
from common.runtime.outbox_relay import OutboxRelay
from common.storage.outbox import EventRecorder
from reservations_service.models import OutboxMessage


def _record(message="booked %s", *args, level=logging.INFO, **extra):
    record = logging.LogRecord("reservations_service.booking", level, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    return record


def _json(record):
    return json.loads(JsonFormatter().format(record))


def test_a_json_line_has_time_level_service_correlation_id_logger_message_and_extra_fields():
    with bound("req-1", "reservations"):
        line = _json(_record("booked %s", 12, reservation_id=12))
    assert line["level"] == "INFO" and line["service"] == "reservations" and line["correlation_id"] == "req-1"
    assert line["logger"] == "reservations_service.booking" and line["message"] == "booked 12"
    assert line["reservation_id"] == 12 and line["time"].endswith("+00:00")
    assert "args" not in line and "msg" not in line and "levelno" not in line


def test_a_json_line_is_one_line_even_with_a_traceback_and_newlines_in_the_message():
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "two\nlines", (), sys.exc_info())
    text = JsonFormatter().format(record)
    assert "\n" not in text
    line = json.loads(text)
    assert line["message"] == "two\nlines" and "ValueError: boom" in line["exception"]


def test_outside_a_request_the_correlation_id_is_null_and_an_explicit_one_wins():
    assert _json(_record())["correlation_id"] is None
    with bound("from-context", "gateway"):
        assert _json(_record(correlation_id="passed-in"))["correlation_id"] == "passed-in"


def test_the_plain_format_gets_the_same_context_through_the_filter():
    formatter = logging.Formatter("%(service)s [%(correlation_id)s] %(message)s")
    record = _record("hello")
    with bound("abc", "payments"):
        ContextFilter().filter(record)
    assert formatter.format(record) == "payments [abc] hello"


def test_only_short_ids_of_safe_characters_are_accepted():
    assert valid_correlation_id("a" * 128) == "a" * 128
    assert valid_correlation_id("req-1.2_3:4/5+6=7@host") == "req-1.2_3:4/5+6=7@host"
    assert valid_correlation_id(b"bytes-ok") == "bytes-ok"
    for bad in ("a" * 129, "", "has space", "quote\"", "new\nline", "tab\t", "é", None, 12):
        assert valid_correlation_id(bad) is None, bad


def test_the_callers_header_is_kept_when_valid_and_replaced_when_not():
    assert correlation_id_from({"X-Request-ID": "abc"}) == "abc"
    assert correlation_id_from({"X-Correlation-ID": "def"}) == "def"
    assert correlation_id_from({"X-Request-ID": "abc", "X-Correlation-ID": "def"}) == "abc"
    assert correlation_id_from({"X-Request-ID": "bad one", "X-Correlation-ID": "def"}) == "def"
    fresh = correlation_id_from({"X-Request-ID": "x" * 500})
    assert len(fresh) == 32 and int(fresh, 16) >= 0
    assert correlation_id_from({}) != correlation_id_from({})


def test_each_greenthread_sees_only_its_own_id():
    seen = {}

    def work(name):
        with bound(name, "reservations"):
            eventlet.sleep(0)  # let the other greenthread bind its id in between
            seen[name] = current_correlation_id()

    threads = [eventlet.spawn(work, name) for name in ("first", "second")]
    for thread in threads:
        thread.wait()
    assert seen == {"first": "first", "second": "second"}
    assert current_correlation_id() is None


def _worker(data, method="create_reservation"):
    entrypoint = Rpc()
    entrypoint.method_name = method  # what binding to a service would set
    return _Worker(data=data, service_name="reservations", entrypoint=entrypoint)


class _Worker(SimpleNamespace):
    __hash__ = object.__hash__  # like nameko's WorkerContext: one key per worker


def _provider():
    provider = RequestContext()
    provider.container = SimpleNamespace(service_name="reservations")
    provider.setup()
    return provider


def test_a_worker_keeps_the_callers_id_in_its_context_data_and_binds_it_for_its_duration():
    provider, worker = _provider(), _worker({"correlation_id": "from-gateway"})
    provider.worker_setup(worker)
    assert current_correlation_id() == "from-gateway" and correlation_headers() == {HEADER: "from-gateway"}
    provider.worker_teardown(worker)
    assert current_correlation_id() is None and correlation_headers() == {}


def test_a_worker_without_a_usable_id_gets_a_new_one_that_its_calls_carry_on():
    provider = _provider()
    for data in ({}, {"correlation_id": "bad id"}):
        worker = _worker(data)
        provider.worker_setup(worker)
        # nameko encodes the worker's context data into the headers of every RPC call and event.
        assert worker.data["correlation_id"] == current_correlation_id() != "bad id"
        provider.worker_teardown(worker)


def test_a_grpc_callers_request_id_is_kept_and_its_credentials_go_no_further():
    provider = _provider()
    worker = _worker({"x-request-id": "grpc-client-7", "authorization": "Bearer secret.jwt.token"})
    provider.worker_setup(worker)
    assert current_correlation_id() == "grpc-client-7"
    # What nameko copies into the headers of every RPC call and event this worker makes:
    assert worker.data == {"correlation_id": "grpc-client-7"}
    provider.worker_teardown(worker)


class _Lines(logging.Handler):
    """Keeps each record as the JSON line the services write."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines = []

    def emit(self, record):
        self.lines.append(json.loads(self.format(record)))


def test_a_worker_logs_one_json_line_for_its_call_with_its_correlation_id():
    logger, handler = logging.getLogger(observability.__name__), _Lines()
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.DEBUG)  # setLevel, not .level =: it also clears the enabled-for cache
    try:
        provider = _provider()
        for method in ("create_reservation", "ping"):
            worker = _worker({"correlation_id": "c-1"}, method)
            provider.worker_setup(worker)
            provider.worker_result(worker, result={})
            provider.worker_teardown(worker)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    [call, ping] = handler.lines
    assert call["message"] == "rpc reservations.create_reservation ok" and call["level"] == "INFO"
    assert (call["service"], call["correlation_id"], call["outcome"]) == ("reservations", "c-1", "ok")
    assert call["duration_ms"] >= 0
    assert ping["level"] == "DEBUG"  # probes would drown the log at INFO


class _Producer:
    def __init__(self):
        self.published = []

    def publish(self, body, **kwargs):
        self.published.append((body, kwargs))


def example_fields(event_type):
    """The fields of the first example of a reservations event, without its envelope."""
    body = variants_of("reservations", event_type)[0].body
    return {k: v for k, v in body.items() if k not in ("event_id", "occurred_at")}


def test_an_event_carries_the_id_of_the_request_that_recorded_it_through_the_outbox(reservations_db):
    recorder = EventRecorder(OutboxMessage)
    with bound("req-42", "reservations"), reservations_db.transaction() as session:
        body = recorder.record(session, "reservation_confirmed", **example_fields("reservation_confirmed"))
    with reservations_db.transaction() as session:
        recorder.record(session, "reservation_expired", **example_fields("reservation_expired"))  # outside any request
    assert "_headers" not in body

    relay = OutboxRelay(reservations_db, OutboxMessage, "amqp://unused", "reservations")
    producer = _Producer()
    relay._producer = lambda: producer
    assert relay.relay_pending() == 2
    [(confirmed, confirmed_options), (expired, expired_options)] = producer.published
    assert confirmed == body and confirmed_options["headers"] == {"nameko.correlation_id": "req-42"}
    assert "_headers" not in expired and expired_options["headers"] == {}
    with reservations_db.transaction() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)
                              .where(OutboxMessage.published_at.is_(None))) == 0


def test_an_expected_error_is_one_line_and_a_bug_keeps_its_traceback():
    from common.logs import ExpectedErrorFilter
    try:
        raise ValueError("caller's mistake")
    except ValueError:
        exc_info = sys.exc_info()
    expected = logging.LogRecord("nameko.containers", logging.WARNING, __file__, 1,
                                 "(expected) error handling worker %s: %s", ("w", "e"), exc_info)
    bug = logging.LogRecord("nameko.containers", logging.ERROR, __file__, 1,
                            "error handling worker %s: %s", ("w", "e"), exc_info)
    assert ExpectedErrorFilter().filter(expected) and ExpectedErrorFilter().filter(bug)
    assert "exception" not in _json(expected) and "ValueError" in _json(bug)["exception"]
