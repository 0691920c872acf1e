"""Prometheus metrics: every series Bookify exports, and the `Metrics` provider that counts
each call a service answers and serves the text format on the service's own port.

Every `nameko run` process is one service, so one process-wide registry serves it; the
`service` label keeps series apart when tests run several containers in one process.
"""
import logging
import time

import eventlet
import eventlet.wsgi
import nameko
from nameko.extensions import DependencyProvider
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest, make_wsgi_app

from common.config import section
from common.runtime.logging import entrypoint_kind
from common.runtime.outbox_relay import Outbox

log = logging.getLogger(__name__)

CALLS = Counter("bookify_calls_total", "Calls a service answered, by entrypoint and outcome "
                "(ok, expected_error: a typed error such as NotFound, error: a bug or an outage).",
                ["service", "kind", "method", "outcome"])
CALL_SECONDS = Histogram("bookify_call_duration_seconds", "Time a service took to answer a call.",
                         ["service", "kind", "method"])
EVENTS_HANDLED = Counter("bookify_events_handled_total", "Events a service consumed, by source and outcome.",
                         ["service", "source", "event_type", "outcome"])
OUTBOX_PENDING = Gauge("bookify_outbox_pending", "Events recorded but not yet published (read at scrape).",
                       ["service"])
NOTIFICATIONS = Counter("bookify_notifications_total", "Delivery attempts of notifications, by what became "
                        "of them: sent, retrying (a temporary failure), failed (gave up).",
                        ["channel", "status"])
MESSAGES_PARKED = Counter("bookify_messages_parked_total", "Messages a consumer could not handle and moved to "
                          "its dead-letter queue, by queue.", ["service", "queue"])
SWEEP_FAILURES = Counter("bookify_sweep_failures_total", "Rows a background sweep could not handle this "
                         "round (logged; retried on the next), by task.", ["service", "task"])
HTTP_METHOD_LABELS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"  # one label for every method outside HTTP_METHOD_LABELS
HTTP_REQUESTS = Counter("bookify_http_requests_total", "HTTP requests the gateway answered.",
                        ["method", "route", "status"])
HTTP_SECONDS = Histogram("bookify_http_request_duration_seconds", "Time the gateway took to answer.",
                         ["method", "route"])


def count_notification(channel, status):
    NOTIFICATIONS.labels(channel, status).inc()


def count_parked(service, queue):
    MESSAGES_PARKED.labels(service, queue).inc()
def count_sweep_failure(service, task):
    SWEEP_FAILURES.labels(service, task).inc()


def method_label(method):
    """The `method` label of an HTTP request: its name for the methods HTTP defines that an
    API uses, `other` for anything else. A client may send any token as its method; one label
    per made-up method would let junk traffic grow every scrape without limit."""
    return method if method in HTTP_METHOD_LABELS else OTHER_METHOD


def observe_http(method, route, status, seconds):
    """Counts and times one answered request; `route` must already be a bounded label (the
    declared route, or one label for every unknown path)."""
    method = method_label(method)
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_SECONDS.labels(method, route).observe(seconds)


def exposition():
    """(body, content type) of every metric of this process, for an HTTP route to answer."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def outcome_of(worker_ctx, exc_info):
    if not exc_info:
        return "ok"
    return "expected_error" if isinstance(exc_info[1], worker_ctx.entrypoint.expected_exceptions) else "error"


class Metrics(DependencyProvider):
    """Counts and times every call the service answers, reports its outbox backlog, and
    serves /metrics on METRICS.ports.<service> (0 or absent: no listener of its own).

    Declared once per service: `metrics = Metrics()`."""

    def setup(self):
        service = self.container.service_name
        settings = section(nameko.config, "METRICS")
        self.address = str(settings.get("address") or "0.0.0.0")
        self.port = int((settings.get("ports") or {}).get(service) or 0)
        self._started = {}
        self._server = self._socket = None
        outbox = next((d for d in self.container.dependencies if isinstance(d, Outbox)), None)
        if outbox is not None:
            OUTBOX_PENDING.labels(service).set_function(lambda: self._backlog(outbox))

    def start(self):
        if not self.port:
            return
        try:
            self._socket = eventlet.listen((self.address, self.port))
        except OSError as error:
            # Metrics are for watching the service; a taken port must not stop it serving.
            log.error("metrics: cannot listen on %s:%s (%s); this process exports no metrics",
                      self.address, self.port, error)
            return
        app = make_wsgi_app(REGISTRY)
        self._server = self.container.spawn_managed_thread(
            lambda: eventlet.wsgi.server(self._socket, app, log_output=False), identifier="metrics")
        log.info("metrics on http://%s:%s/metrics", self.address, self.port)

    def stop(self):
        if self._server is not None:
            self._server.kill()
            self._server = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def kill(self):
        self.stop()

    def worker_setup(self, worker_ctx):
        self._started[worker_ctx] = time.perf_counter()

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        started = self._started.pop(worker_ctx, None)
        if started is None:
            return
        service, entrypoint = worker_ctx.service_name, worker_ctx.entrypoint
        kind, outcome = entrypoint_kind(entrypoint), outcome_of(worker_ctx, exc_info)
        CALLS.labels(service, kind, entrypoint.method_name, outcome).inc()
        CALL_SECONDS.labels(service, kind, entrypoint.method_name).observe(time.perf_counter() - started)
        if kind == "event":
            EVENTS_HANDLED.labels(service, entrypoint.source_service, entrypoint.event_type, outcome).inc()

    def worker_teardown(self, worker_ctx):
        self._started.pop(worker_ctx, None)

    @staticmethod
    def _backlog(outbox):
        try:
            return outbox.relay.pending_count()
        except Exception:  # the database is down: say "unknown", don't fail the whole scrape
            log.debug("metrics: outbox backlog unavailable", exc_info=True)
            return float("nan")
