"""`make run`'s own script, driven like a user: it comes up, prints where, serves the
seeded admin and demo customer, and stops cleanly on Ctrl-C; a second one on the same folder
refuses and touches nothing; a port already taken is named before anything starts; its logs
hold one access line per request and roll over.

Each run here has a folder of its own (BOOKIFY_VAR_DIR) and free ports for everything it
listens on, so these tests neither meet a developer's `make run` nor each other."""
import contextlib
import fcntl
import hashlib
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import jwt
import pytest
import requests

from tests.e2e.conftest import ROOT, _vhost, free_port

OLD_SHARED_DEFAULT = "dev-only-insecure-jwt-secret-change-me-in-production"
METRICS_PORTS = ["AUTH_METRICS_PORT", "RESERVATIONS_METRICS_PORT", "PAYMENTS_METRICS_PORT",
                 "NOTIFICATIONS_METRICS_PORT", "GATEWAY_METRICS_PORT", "GRPC_GATEWAY_METRICS_PORT"]


def _run_env(var_dir, vhost="/", **settings):
    """What a user's shell would hold for one `make run` in `var_dir`, every port free."""
    env = {**os.environ, "AMQP_URI": f"amqp://guest:guest@127.0.0.1:5672/{vhost.lstrip('/')}",
           "BOOKIFY_VAR_DIR": str(var_dir), "GATEWAY_ADDRESS": f"127.0.0.1:{free_port()}",
           "GRPC_PORT": str(free_port()), "LOCALSTRIPE_PORT": str(free_port()),
           **{name: str(free_port()) for name in METRICS_PORTS}}
    for name in ("BOOKIFY_ADMIN_EMAIL", "BOOKIFY_ADMIN_PASSWORD", "BOOKIFY_DEMO_DATA", "BOOKIFY_DB_URL",
                 "JWT_SECRET", "STRIPE_WEBHOOK_SECRET", "GRPC_BIND", "METRICS_ADDRESS", "STRIPE_API_KEY",
                 "STRIPE_API_BASE", "LOG_FILE_MAX_BYTES", "LOG_FILE_BACKUPS", "BOOKIFY_LOG_FILE"):
        env.pop(name, None)
    env.update(settings)
    return env


def _start(env):
    return subprocess.Popen([sys.executable, "-m", "scripts.run_local"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_run_local_starts_everything_and_stops_on_ctrl_c(tmp_path):
    vhost = f"bookify_run_{uuid.uuid4().hex[:8]}"
    _vhost("PUT", vhost)
    var_dir = tmp_path / "var"
    env = _run_env(var_dir, vhost)
    port = int(env["GATEWAY_ADDRESS"].rsplit(":", 1)[1])
    process = _start(env)
    try:
        output = _read_until(process, "Ctrl-C to stop", timeout=180)
        assert f"http://127.0.0.1:{port}" in output
        assert "admin@bookify.local" in output and "change-me-admin-password" in output
        base = f"http://127.0.0.1:{port}"
        for email, password in [("admin@bookify.local", "change-me-admin-password"),
                                ("demo@bookify.local", "demo-password")]:
            response = requests.post(f"{base}/v1/auth/login", json={"email": email, "password": password},
                                     timeout=10)
            assert response.status_code == 200, response.text
        # The folder holds the run's databases and logs.
        assert {f"bookify_{name}.db" for name in ("auth", "reservations", "payments", "notifications")} <= {
            path.name for path in var_dir.iterdir()}
        assert (var_dir / "log" / "gateway.log").stat().st_size > 0
        # This install's own secrets, private, under var/; the old shared default opens nothing.
        stored = var_dir / "secrets.json"
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
        _stop(process)
        _vhost("DELETE", vhost)


def _stop(process):
    """Ctrl-C, so the run stops the services it started: killed, it would leave them running."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


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


def _settled_snapshot(folder, quiet_seconds=5, timeout=90):
    """`_snapshot` once the running services have finished their start-up work: nothing under
    `folder` changed for `quiet_seconds`. The seed's events leave by the outboxes' first poll
    (OUTBOX_POLL_INTERVAL, 2 s) and the welcome emails follow; a fixed second was too short,
    and the second run was blamed for the first one's writes."""
    deadline = time.monotonic() + timeout
    settled, quiet_since = _snapshot(folder), time.monotonic()
    while time.monotonic() - quiet_since < quiet_seconds and time.monotonic() < deadline:
        time.sleep(0.5)
        current = _snapshot(folder)
        if current != settled:
            settled, quiet_since = current, time.monotonic()
    return settled


def _snapshot(folder):
    """{relative path: (size, mtime, sha256)} of every file under `folder` but its lock and
    SQLite's -shm files (the WAL's shared-memory index, which the running services' reads
    touch; the data is in the .db and -wal files)."""
    return {str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns,
                                             hashlib.sha256(path.read_bytes()).hexdigest())
            for path in sorted(folder.rglob("*"))
            if path.is_file() and path.name != "run.lock" and not path.name.endswith("-shm")}


def _log_lines(folder, stem):
    """Every line of var/log/<stem>.log and its rolled-over files."""
    return [line for path in sorted((folder / "log").glob(f"{stem}.log*"))
            for line in path.read_text(errors="replace").splitlines()]


def test_a_second_run_on_the_same_folder_refuses_and_touches_nothing(tmp_path):
    vhost = f"bookify_run_{uuid.uuid4().hex[:8]}"
    _vhost("PUT", vhost)
    var_dir = tmp_path / "var"
    # Small log files, so that some requests make the gateway's roll over.
    first_env = _run_env(var_dir, vhost, LOG_FILE_MAX_BYTES="20000", LOG_FILE_BACKUPS="4")
    base = f"http://{first_env['GATEWAY_ADDRESS']}"
    first = _start(first_env)
    try:
        _read_until(first, "Ctrl-C to stop", timeout=180)
        before = _settled_snapshot(var_dir)
        assert {"bookify_auth.db", "secrets.json", "log/gateway.log", "log/localstripe.log"} <= set(before)

        # What the first run's port message used to suggest: the same folder, another gateway
        # address. And another admin, which a second seed would create.
        second_env = _run_env(var_dir, vhost, BOOKIFY_ADMIN_EMAIL="second@bookify.test",
                              BOOKIFY_ADMIN_PASSWORD="second-admin-password")
        started = time.monotonic()
        second = subprocess.run([sys.executable, "-m", "scripts.run_local"], cwd=ROOT, env=second_env,
                                capture_output=True, text=True, timeout=60)
        assert time.monotonic() - started < 20  # at once, not after a migration or a timeout
        assert second.returncode != 0
        assert second.stdout == ""
        message = second.stderr.strip()
        assert message.splitlines() == [
            f"{var_dir}/ is in use by another `make run` (pid {first.pid}): stop that one first "
            "(Ctrl-C), or run this one on another folder with BOOKIFY_VAR_DIR and other ports "
            "(docs/debugging.md)."], message

        assert _snapshot(var_dir) == before  # no migration, no seed, no log truncated
        for path in (var_dir / "log").iterdir():
            assert b"\0" not in path.read_bytes(), path
        assert requests.post(f"{base}/v1/auth/login", timeout=10, json={
            "email": "second@bookify.test", "password": "second-admin-password"}).status_code == 401
        assert requests.post(f"{base}/v1/auth/login", timeout=10, json={
            "email": "admin@bookify.local", "password": "change-me-admin-password"}).status_code == 200

        # One access line per request: the gateway's, with route, status, duration and id.
        for number in range(5):
            assert requests.get(f"{base}/v1/one-line/{number}", headers={"X-Request-ID": f"one-line-{number}"},
                                timeout=10).status_code == 404
        time.sleep(0.5)
        for number in range(5):
            lines = [line for line in _log_lines(var_dir, "gateway") if f"/v1/one-line/{number}" in line]
            assert len(lines) == 1, lines
            access = json.loads(lines[0])
            assert access["logger"] == "gateway.access" and access["correlation_id"] == f"one-line-{number}"
            assert (access["method"], access["route"], access["status"]) == ("GET", "<unmatched>", 404)
            assert access["duration_ms"] >= 0

        # Past LOG_FILE_MAX_BYTES the gateway's log rolls over, and no line is lost on the way.
        flood = 150
        for number in range(flood):
            requests.get(f"{base}/v1/flood/{number}", headers={"X-Request-ID": f"flood-{number}"}, timeout=10)
        time.sleep(0.5)
        rolled = sorted(path.name for path in (var_dir / "log").glob("gateway.log.*"))
        assert rolled and rolled[0] == "gateway.log.1", rolled
        assert (var_dir / "log" / "gateway.log").stat().st_size < 20000 + 2000
        ids = [json.loads(line).get("correlation_id") for line in _log_lines(var_dir, "gateway")
               if line.startswith("{")]
        assert sorted(i for i in ids if i and i.startswith("flood-")) == sorted(f"flood-{n}" for n in range(flood))

        first.send_signal(signal.SIGINT)
        rest, _ = first.communicate(timeout=30)
        assert first.returncode == 0, rest
    finally:
        _stop(first)
        _vhost("DELETE", vhost)


PORT_SETTINGS = [("GATEWAY_ADDRESS", "the HTTP gateway"), ("GRPC_PORT", "the gRPC gateway"),
                 ("LOCALSTRIPE_PORT", "localstripe"), ("GATEWAY_METRICS_PORT", "gateway's metrics")]


@pytest.mark.parametrize(("setting", "what"), PORT_SETTINGS)
def test_a_port_already_taken_is_named_before_anything_starts(setting, what, tmp_path):
    var_dir = tmp_path / "var"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        value = f"127.0.0.1:{port}" if setting == "GATEWAY_ADDRESS" else str(port)
        done = subprocess.run([sys.executable, "-m", "scripts.run_local"], cwd=ROOT,
                              env=_run_env(var_dir, **{setting: value}), capture_output=True, text=True,
                              timeout=60)
    assert done.returncode != 0
    # localstripe listens on every interface: "in use" there, on 127.0.0.1 for the others.
    where = "" if setting == "LOCALSTRIPE_PORT" else " on 127.0.0.1"
    assert done.stderr.strip().splitlines() == [
        f"Port {port} for {what} is already in use{where}: stop what listens there, or set "
        f"{setting} to a free port{' (0 turns it off)' if 'METRICS' in setting else ''}."], done.stderr
    # Refused before anything: no secrets, no database, no log.
    assert [path.name for path in var_dir.iterdir()] == ["run.lock"]


def _holders(lock_path):
    """Pids of the processes that have `lock_path` open."""
    found = set()
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            if any(os.readlink(fd) == str(lock_path) for fd in fd_dir.iterdir()):
                found.add(int(fd_dir.parent.name))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def test_the_lock_outlives_a_killed_run_while_its_services_do_and_no_longer(tmp_path):
    """Killed with SIGKILL, `make run` cannot stop its services: they keep the folder's lock
    (and its databases and logs) until they exit; then it is free, with nothing to clean up."""
    vhost = f"bookify_run_{uuid.uuid4().hex[:8]}"
    _vhost("PUT", vhost)
    var_dir = tmp_path / "var"
    lock_path = var_dir / "run.lock"
    first = _start(_run_env(var_dir, vhost))
    services = set()
    try:
        _read_until(first, "Ctrl-C to stop", timeout=180)
        first.kill()
        first.wait()
        services = _holders(lock_path)
        assert services and first.pid not in services
        second = subprocess.run([sys.executable, "-m", "scripts.run_local"], cwd=ROOT,
                                env=_run_env(var_dir, vhost), capture_output=True, text=True, timeout=60)
        assert second.returncode != 0 and "is in use by another `make run`" in second.stderr, second.stderr
    finally:
        _stop(first)
        for pid in services:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while _holders(lock_path) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in _holders(lock_path):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        _vhost("DELETE", vhost)
    # Every holder gone: the lock is free, though run.lock is still there.
    with open(lock_path) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
