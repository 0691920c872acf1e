"""`make run`'s own script, driven like a user: it comes up, prints where, serves the
seeded admin and demo customer, and stops cleanly on Ctrl-C."""
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import uuid

import jwt
import requests

from tests.e2e.conftest import ROOT, _vhost, free_port

OLD_SHARED_DEFAULT = "dev-only-insecure-jwt-secret-change-me-in-production"


def test_run_local_starts_everything_and_stops_on_ctrl_c(tmp_path):
    vhost = f"bookify_run_{uuid.uuid4().hex[:8]}"
    _vhost("PUT", vhost)
    port = free_port()
    env = {**os.environ, "AMQP_URI": f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
           "GATEWAY_ADDRESS": f"127.0.0.1:{port}", "GRPC_PORT": str(free_port()),
           "BOOKIFY_DB_URL": f"sqlite:///{tmp_path}/bookify_<service>.db"}
    for name in ("BOOKIFY_ADMIN_EMAIL", "BOOKIFY_ADMIN_PASSWORD", "BOOKIFY_DEMO_DATA",
                 "JWT_SECRET", "STRIPE_WEBHOOK_SECRET", "GRPC_BIND"):
        env.pop(name, None)
    process = subprocess.Popen([sys.executable, "-m", "scripts.run_local"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output = _read_until(process, "Ctrl-C to stop", timeout=90)
        assert f"http://127.0.0.1:{port}" in output
        assert "admin@bookify.local" in output and "change-me-admin-password" in output
        base = f"http://127.0.0.1:{port}"
        for email, password in [("admin@bookify.local", "change-me-admin-password"),
                                ("demo@bookify.local", "demo-password")]:
            response = requests.post(f"{base}/v1/auth/login", json={"email": email, "password": password},
                                     timeout=10)
            assert response.status_code == 200, response.text
        # This install's own secrets, private, under var/; the old shared default opens nothing.
        stored = ROOT / "var" / "secrets.json"
        assert "secrets.json" in output and stat.S_IMODE(stored.stat().st_mode) == 0o600
        secrets = json.loads(stored.read_text())
        token = response.json()["access_token"]
        assert jwt.decode(token, secrets["JWT_SECRET"], algorithms=["HS256"], audience="bookify-api")
        claims = jwt.decode(token, options={"verify_signature": False})
        forged = jwt.encode(claims, OLD_SHARED_DEFAULT, algorithm="HS256")
        assert requests.get(f"{base}/v1/users/me", headers={"Authorization": f"Bearer {forged}"},
                            timeout=10).status_code == 401
        # gRPC listens on loopback only (GRPC_BIND unset).
        assert _accepts("127.0.0.1", int(env["GRPC_PORT"]))
        outward = _outward_address()
        if outward:
            assert not _accepts(outward, int(env["GRPC_PORT"]))
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=30)
        assert process.returncode == 0, rest
        assert "Stopped." in rest
    finally:
        if process.poll() is None:
            process.kill()
        _vhost("DELETE", vhost)


def _read_until(process, marker, timeout):
    deadline, seen = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise AssertionError("make run exited early:\n" + "".join(seen))
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError("make run did not come up:\n" + "".join(seen))


def _accepts(host, port):
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _outward_address():
    """This machine's address on its default route (no packet is sent), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address
