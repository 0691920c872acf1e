"""Operator calls are audited: who called what, with which (redacted) arguments, when and how
it ended, in the service's own operator_audit table, shown by `audit_log`."""
import time
from datetime import UTC, datetime, timedelta

import pytest
from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcClient

import common.runtime.rpc  # noqa: F401  (registers our errors so they arrive typed)
from auth_service.service import AuthService
from common.errors import ValidationError
from common.runtime.rpc import TimedServiceRpc


class ScriptedCaller:
    """Another service calling auth: service-to-service calls are not console work."""

    name = "scripted_caller"
    auth = TimedServiceRpc("auth")

    @rpc
    def list_roles_via_auth(self):
        return self.auth.list_roles()


@pytest.fixture
def cluster(auth_db, service_config, container_factory):
    for service in (AuthService, ScriptedCaller):
        container_factory(service, service_config).start()
    with ClusterRpcClient(context_data={"operator": "alice"}, timeout=10) as alice, \
            ClusterRpcClient(timeout=10) as anonymous:
        yield alice, anonymous


def settled(client, query=None):
    """audit_log once no entry is still `running`: one is completed just after its answer."""
    deadline = time.monotonic() + 5
    while True:
        log = client.auth.audit_log(query)
        if all(e["outcome"] != "running" for e in log["items"]) or time.monotonic() > deadline:
            return log
        time.sleep(0.05)


def test_console_calls_are_recorded_with_operator_method_and_outcome(cluster):
    alice, anonymous = cluster
    before = datetime.now(UTC) - timedelta(seconds=1)
    role = alice.auth.create_role({"name": "Support", "category": "admin", "permissions": []})
    with pytest.raises(ValidationError):
        alice.auth.grant_permission(role["id"], "no:such_permission")
    anonymous.auth.list_roles()

    log = settled(alice, {"since": before.isoformat()})
    assert log["total"] == 3
    newest, failed, created = log["items"]
    assert (created["operator"], created["method"], created["outcome"]) == ("alice", "create_role", "ok")
    assert created["arguments"] == {
        "args": [{"name": "Support", "category": "admin", "permissions": []}], "kwargs": {}}
    assert created["duration_ms"] >= 0 and created["error"] is None
    assert (failed["method"], failed["outcome"]) == ("grant_permission", "ValidationError")
    assert failed["error"].startswith("Unknown permissions")
    assert (newest["operator"], newest["method"]) == ("unnamed", "list_roles")


def test_secrets_in_arguments_are_redacted(cluster):
    alice, _ = cluster
    alice.auth.create_user({"email": "ops@example.com", "password": "super-secret-123"})
    [entry] = settled(alice, {"method": "create_user"})["items"]
    assert entry["arguments"]["args"] == [{"email": "ops@example.com", "password": "[redacted]"}]
    assert "super-secret-123" not in str(alice.auth.audit_log())


def test_filters_and_service_to_service_calls(cluster):
    alice, anonymous = cluster
    anonymous.scripted_caller.list_roles_via_auth()  # auth is called by a service, not the console
    alice.auth.ping()  # probes are not operator work
    alice.auth.list_permissions()
    anonymous.auth.list_roles()

    assert [e["method"] for e in alice.auth.audit_log()["items"]] == ["list_roles", "list_permissions"]
    assert [e["method"] for e in alice.auth.audit_log({"operator": "alice"})["items"]] == [
        "list_permissions"]
    assert alice.auth.audit_log({"limit": 1})["total"] == 2
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    assert alice.auth.audit_log({"since": later}) == {"items": [], "total": 0}
    with pytest.raises(ValidationError):
        alice.auth.audit_log({"limit": 0})
