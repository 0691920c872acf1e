import pytest
from werkzeug.test import Client

from common.runtime.http import JsonWebServer, JsonWsgiApp
from gateway.routing import ROUTES
from gateway.service import GatewayService  # declares every route
from tests.unit.auth_fixtures import accounts, clock, tokens  # noqa: F401  (fixtures)


@pytest.fixture(scope="module")
def client():
    """The gateway's WSGI app with every route, and no service behind it: for what the HTTP
    edge answers on its own (405s, 404s, metrics labels)."""
    server = JsonWebServer()
    for name in {route.name for route in ROUTES}:
        for entrypoint in getattr(GatewayService, name).nameko_entrypoints:
            server.register_provider(entrypoint)
    return Client(JsonWsgiApp(server))
