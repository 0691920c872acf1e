"""Liveness, readiness and the OpenAPI document."""
from gateway.http import json_response
from gateway.openapi import build_spec
from gateway.routing import route

# Services whose answer makes the gateway ready; later services add themselves.
READY_SERVICES = ("auth", "reservations", "payments", "notifications")
PING_TIMEOUT = 2


class SystemRoutes:
    @route("GET", "/health", tag="system", public=True)
    def health(self, call):
        """Liveness: the gateway process answers."""
        return {"status": "ok"}

    @route("GET", "/ready", tag="system", public=True)
    def ready(self, call):
        """Readiness: 200 only when RabbitMQ and every service answer."""
        services = {name: self._ping(name) for name in READY_SERVICES}
        ready = all(state == "ok" for state in services.values())
        return json_response({"status": "ok" if ready else "unavailable", "services": services},
                             status=200 if ready else 503)

    @route("GET", "/openapi.json", tag="system", public=True)
    def openapi(self, call):
        """This API as an OpenAPI 3 document."""
        return build_spec()

    def _ping(self, service_name):
        try:
            getattr(self, service_name).within(PING_TIMEOUT).ping()
            return "ok"
        except Exception as error:  # any failure means not ready; the reason is reported
            return f"unavailable: {error}"
