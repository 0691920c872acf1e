"""Liveness, readiness, metrics and the OpenAPI document."""
import kombu
import nameko
from werkzeug.wrappers import Response

from common.config import section
from common.errors import NotFound
from common.runtime.http import json_response
from common.runtime.metrics import exposition
from common.runtime.rpc import TimedClient
from gateway.openapi import build_spec
from gateway.routing import route

# Services whose answer makes the whole system ready (/ready); later services add themselves.
READY_SERVICES = ("auth", "reservations", "payments", "notifications")
# What this gateway cannot serve a request without: auth checks every signed-in caller. The
# others failing costs only their own routes (503 there), so they do not take the gateway
# out of service.
GATEWAY_NEEDS = ("auth",)
PING_TIMEOUT = 2


class SystemRoutes:
    # What this group uses; the gateway service class provides it (tests/unit/test_gateway_groups.py).
    auth: TimedClient
    reservations: TimedClient
    payments: TimedClient
    notifications: TimedClient

    @route("GET", "/health", tag="system", public=True)
    def health(self, call):
        """Liveness: the gateway process answers."""
        return {"status": "ok"}

    @route("GET", "/ready", tag="system", public=True)
    def ready(self, call):
        """Readiness: 200 only when RabbitMQ, every service and each one's database answer;
        `checks` says which did not."""
        checks = {"broker": self._broker()}
        checks.update((name, self._ping(name)) for name in READY_SERVICES)
        ready = all(_is_ok(check) for check in checks.values())
        # `services` (each one's status) predates `checks` and stays for existing clients.
        services = {name: _status(checks[name]) for name in READY_SERVICES}
        return json_response({"status": "ok" if ready else "unavailable", "checks": checks,
                              "services": services}, status=200 if ready else 503)

    @route("GET", "/ready/gateway", tag="system", public=True)
    def gateway_ready(self, call):
        """Readiness of this gateway: RabbitMQ and auth answer it (the load balancer's probe).

        200 whatever reservations, payments or notifications do: only their routes need them."""
        checks = {"broker": self._broker()}
        checks.update((name, self._answers(name)) for name in GATEWAY_NEEDS)
        ready = all(check == "ok" for check in checks.values())
        return json_response({"status": "ok" if ready else "unavailable", "checks": checks},
                             status=200 if ready else 503)

    @route("GET", "/metrics", tag="system", public=True, errors=(404,))
    def prometheus(self, call):
        """Prometheus metrics of the gateway (404 when METRICS.gateway_route is off)."""
        if not section(nameko.config, "METRICS").get("gateway_route", True):
            raise NotFound()
        body, content_type = exposition()
        return Response(body, status=200, content_type=content_type)

    @route("GET", "/openapi.json", tag="system", public=True)
    def openapi(self, call):
        """This API as an OpenAPI 3 document."""
        return build_spec()

    def _ping(self, service_name):
        """The service's own report of itself and its database, or why it did not answer."""
        try:
            report = getattr(self, service_name).within(PING_TIMEOUT).ping(deep=True)
        except Exception as error:  # any failure means not ready; the reason is reported
            return {"status": f"unavailable: {error}"}
        return report if isinstance(report, dict) else {"status": "ok"}

    def _answers(self, service_name):
        """'ok' when the service answers this gateway's own RPC client, else why not. Shallow:
        its database is /ready's business, and is the same for every gateway."""
        try:
            getattr(self, service_name).within(PING_TIMEOUT).ping()
        except Exception as error:  # any failure means not ready; the reason is reported
            return f"unavailable: {error}"
        return "ok"

    def _broker(self):
        """Whether the gateway itself can open a connection to RabbitMQ right now."""
        try:
            with kombu.Connection(nameko.config["AMQP_URI"], connect_timeout=PING_TIMEOUT) as connection:
                connection.ensure_connection(max_retries=1)
        except Exception as error:
            return f"unavailable: {type(error).__name__}"
        return "ok"


def _status(check):
    return check["status"] if isinstance(check, dict) else check


def _is_ok(check):
    return _status(check) == "ok"
