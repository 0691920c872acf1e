"""`make run`'s own script, driven like a user: it comes up, prints where, serves the
seeded admin and demo customer, and stops cleanly on Ctrl-C."""
import os
import signal
import subprocess
import sys
import time
import uuid

import requests

from tests.e2e.conftest import ROOT, _vhost, free_port


def test_run_local_starts_everything_and_stops_on_ctrl_c(tmp_path):
    vhost = f"bookify_run_{uuid.uuid4().hex[:8]}"
    _vhost("PUT", vhost)
    port = free_port()
    env = {**os.environ, "AMQP_URI": f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
           "GATEWAY_ADDRESS": f"127.0.0.1:{port}", "GRPC_PORT": str(free_port()),
           "BOOKIFY_DB_URL": f"sqlite:///{tmp_path}/bookify_<service>.db"}
    for name in ("BOOKIFY_ADMIN_EMAIL", "BOOKIFY_ADMIN_PASSWORD", "BOOKIFY_DEMO_DATA"):
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
