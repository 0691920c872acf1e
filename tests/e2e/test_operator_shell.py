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
    assert result.returncode == 0, result.stdout + result.stderr
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


def test_operator_cancels_refunds_and_the_audit_trail_names_them(api):
    from tests.e2e.test_grpc_api import at

    _, tokens = api.customer()
    place = api.place()
    booked = api.book(tokens["access_token"], place["id"], at(20, 9), at(20, 11))
    assert booked.status_code == 201, booked.text
    reservation = booked.json()
    operator = f"ops-{uuid.uuid4().hex[:6]}"
    output = nameko_shell(api, "\n".join([
        "import common.runtime.rpc",
        f"n.rpc.context_data['operator'] = '{operator}'",
        f"found = n.rpc.reservations.list_reservations({{'place_id': {place['id']}, 'status': 'confirmed'}})",
        "print('found', [r['id'] for r in found['items']])",
        f"pay = n.rpc.payments.payments_for_reservation({reservation['id']})[0]",
        "print('refunded', n.rpc.payments.refund(pay['id'], 700, 'goodwill')['refunded_amount'])",
        f"print('cancelled', n.rpc.reservations.cancel_reservation({reservation['id']}, 'guest called')['status'])",
        "p = n.rpc.payments.get_payment(pay['id'])",
        "print('after cancel', p['refunded_amount'], [r['amount'] for r in p['refunds']])",
        "try:\n    n.rpc.reservations.cancel_reservation(10**9, 'typo')\n"
        "except common.errors.NotFound as e:\n    print('missing', e.message)\n",
        # An entry is completed just after the answer is sent: give the last one a moment.
        "import time",
        f"trail = n.rpc.reservations.audit_log({{'operator': '{operator}'}})['items']",
        "for _ in range(50):\n    if all(e['outcome'] != 'running' for e in trail):\n        break\n"
        f"    time.sleep(0.1)\n    trail = n.rpc.reservations.audit_log({{'operator': '{operator}'}})['items']\n",
        "print('trail', [(e['method'], e['outcome']) for e in trail])",
        f"paid = n.rpc.payments.audit_log({{'operator': '{operator}'}})['items']",
        "print('payments trail', [e['method'] for e in paid])",
    ]) + "\n")
    assert f"found [{reservation['id']}]" in output
    assert "refunded 700" in output
    assert "cancelled cancelled" in output
    # The cancellation's full refund is capped at what the goodwill refund left.
    assert "after cancel 5000 [700, 4300]" in output
    assert "missing Reservation not found" in output
    assert ("trail [('cancel_reservation', 'NotFound'), ('cancel_reservation', 'ok'), "
            "('list_reservations', 'ok')]") in output
    # The refund the cancellation made is reservations' doing, not another console call.
    assert "payments trail ['get_payment', 'refund', 'payments_for_reservation']" in output
