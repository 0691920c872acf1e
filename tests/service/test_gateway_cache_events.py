"""Every gateway instance evicts cached permissions when auth announces a change: the
events reach each instance's own broadcast queue."""
import pytest
from nameko.standalone.events import event_dispatcher
from nameko.testing.services import entrypoint_waiter
from nameko.testing.utils import get_extension

from common.permissions import Principal
from common.storage.outbox import envelope
from gateway.principals import Authentication
from gateway.service import GatewayService
from tests.e2e.conftest import free_port


@pytest.fixture
def gateways(service_config, container_factory):
    """Two gateway instances, as two deployments would run them."""
    containers = []
    for _ in range(2):
        config = dict(service_config, WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}")
        container = container_factory(GatewayService, config)
        container.start()
        containers.append(container)
    return containers


def _cache(container):
    return get_extension(container, Authentication).cache


@pytest.mark.parametrize("event_type,payload,evicted,kept", [
    ("role_changed", {"role_id": 3}, [(1, "a"), (2, "b")], []),
    ("user_roles_changed", {"user_id": 1}, [(1, "a")], [(2, "b")]),
    ("session_revoked", {"user_id": 2, "session_id": "b"}, [(2, "b")], [(1, "a")]),
])
def test_auth_events_evict_on_every_instance(gateways, service_config, event_type, payload, evicted, kept):
    for container in gateways:
        _cache(container).put(Principal(1, "a", frozenset({"users:read"})))
        _cache(container).put(Principal(2, "b", frozenset()))
    dispatch = event_dispatcher()
    handler = {"role_changed": "forget_all_permissions", "user_roles_changed": "forget_user_permissions",
               "session_revoked": "forget_session"}[event_type]
    with entrypoint_waiter(gateways[0], handler), entrypoint_waiter(gateways[1], handler):
        dispatch("auth", event_type, envelope(payload))  # as auth's outbox publishes it
    for container in gateways:
        assert all(_cache(container).get(*key) is None for key in evicted)
        assert all(_cache(container).get(*key) is not None for key in kept)
