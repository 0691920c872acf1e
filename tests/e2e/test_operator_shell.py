"""Operators work from `nameko shell --config config.yaml`, as docs/operators.md shows."""
import os
import subprocess
import sys
import uuid

import pytest

from tests.e2e.conftest import ROOT


def nameko_shell(api, script):
    result = subprocess.run(
        [sys.executable, "-m", "nameko", "shell", "--config", "config.yaml"],
        input=script, capture_output=True, text=True, cwd=ROOT, timeout=60,
        env={**os.environ, **api.stack.env})
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_operator_manages_roles_and_users_from_the_shell(api):
    role = f"Shift {uuid.uuid4().hex[:6]}"
    email = f"ops-{uuid.uuid4().hex[:6]}@example.com"
    output = nameko_shell(api, "\n".join([
        "print('ping', n.rpc.auth.ping())",
        f"r = n.rpc.auth.create_role({{'name': '{role}', 'category': 'admin', "
        "'permissions': ['users:read']})",
        "r = n.rpc.auth.grant_permission(r['id'], 'roles:read')",
        "print('perms', ','.join(r['permissions']))",
        f"u = n.rpc.auth.create_user({{'email': '{email}', 'password': 'password-123', "
        f"'roles': [{{'id': r['id']}}]}})",
        "print('user roles', [x['name'] for x in u['roles']])",
    ]) + "\n")
    assert "ping pong" in output
    assert "perms roles:read,users:read" in output
    assert f"user roles ['{role}']" in output
    # …and the HTTP API sees the same data.
    login = api.login(email, "password-123")
    assert api.get("/v1/users", token=login["access_token"]).status_code == 200


@pytest.mark.parametrize("module,cls,prefix", [
    ("auth_service.service", "AuthService", "n.rpc.auth."),
    ("reservations_service.service", "ReservationsService", "n.rpc.reservations."),
    ("payments_service.service", "PaymentsService", "n.rpc.payments."),
])
def test_every_operator_rpc_method_has_a_docstring_with_an_example(module, cls, prefix):
    import importlib

    from nameko.rpc import Rpc

    service = getattr(importlib.import_module(module), cls)
    methods = [name for name, attr in vars(service).items()
               if any(isinstance(e, Rpc) for e in getattr(attr, "nameko_entrypoints", ()))]
    assert len(methods) >= 5
    missing = [name for name in methods if prefix not in (getattr(service, name).__doc__ or "")]
    assert missing == []
