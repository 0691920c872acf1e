"""scripts/probe.py, the exec probe of the AMQP-only services, run as Kubernetes and docker
compose run it (a separate process): readiness against a real service container on the real
broker, liveness against real `nameko run` processes and their own heartbeats."""
import os
import signal
import subprocess
import sys
import time

import pytest

from auth_service.service import AuthService
from common.config import ROOT
from tests.conftest import TEST_JWT_SECRET


def run_probe(amqp_uri, *args):
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "scripts.probe", *args], cwd=ROOT,
                            env={**os.environ, "AMQP_URI": amqp_uri}, capture_output=True,
                            text=True, timeout=30)
    return result, time.monotonic() - started


# One backend is enough: the probe never touches a database.
@pytest.mark.parametrize("db_template", ["sqlite"], indirect=True)
def test_probe_passes_when_the_service_answers_and_fails_fast_when_not(
        auth_db, service_config, container_factory):
    container_factory(AuthService, service_config).start()

    ok, _ = run_probe(service_config["AMQP_URI"], "auth")
    assert ok.returncode == 0, ok.stderr
    assert "auth: pong" in ok.stdout

    missing, took = run_probe(service_config["AMQP_URI"], "nosuchservice", "--timeout", "5")
    assert missing.returncode != 0
    assert "UnknownService" in missing.stderr
    assert took < 5  # the broker rejects the call at once; the probe does not wait out its timeout


def test_probe_fails_within_its_timeout_when_the_broker_is_unreachable():
    # Port 1 on loopback: nothing listens, so every connection attempt is refused.
    down, took = run_probe("amqp://guest:guest@127.0.0.1:1/", "auth", "--timeout", "2")
    assert down.returncode != 0
    assert took < 10


def _liveness(env, instance):
    return subprocess.run([sys.executable, "-m", "scripts.probe", "auth", "--liveness"], cwd=ROOT,
                          env={**env, "HOSTNAME": instance}, capture_output=True, text=True, timeout=30)


def _wait_until_alive(env, instance, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        result = _liveness(env, instance)
        if result.returncode == 0 or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


@pytest.mark.parametrize("db_template", ["sqlite"], indirect=True)
def test_liveness_is_each_instance_s_own_a_stuck_one_fails_while_its_replica_passes(
        auth_db, db_template, service_config, tmp_path):
    """Two replicas of auth on one machine, told apart by HOSTNAME as pods are. One is frozen
    (SIGSTOP: its event loop runs nothing, as when a worker blocks it); its liveness probe
    fails within a few beats while the other's keeps passing, and it passes again once thawed."""
    interval = 0.5
    env = {**os.environ, "AMQP_URI": service_config["AMQP_URI"], "BOOKIFY_DB_URL": db_template,
           "JWT_SECRET": TEST_JWT_SECRET, "AUTH_METRICS_PORT": "0", "PYTHONWARNINGS": "ignore",
           "HEARTBEAT_DIR": str(tmp_path / "heartbeats"), "HEARTBEAT_INTERVAL": str(interval)}
    replicas = {}
    try:
        for instance in ("auth-a", "auth-b"):
            with open(tmp_path / f"{instance}.log", "wb") as log:
                replicas[instance] = subprocess.Popen(
                    [sys.executable, "-m", "nameko", "run", "--config", "config.yaml", "auth_service.service"],
                    cwd=ROOT, env={**env, "HOSTNAME": instance}, stdin=subprocess.DEVNULL,
                    stdout=log, stderr=subprocess.STDOUT)
        for instance in replicas:
            alive = _wait_until_alive(env, instance)
            assert alive.returncode == 0, alive.stderr + (tmp_path / f"{instance}.log").read_text()
            assert "beat" in alive.stdout
        assert _liveness(env, "auth-c").returncode == 1  # no such instance: nobody answers for it

        os.kill(replicas["auth-a"].pid, signal.SIGSTOP)
        time.sleep(4 * interval + 1.5)  # past MISSED_BEATS intervals
        stuck = _liveness(env, "auth-a")
        assert stuck.returncode == 1 and "stuck" in stuck.stderr, stuck.stdout + stuck.stderr
        assert _liveness(env, "auth-b").returncode == 0

        os.kill(replicas["auth-a"].pid, signal.SIGCONT)
        assert _wait_until_alive(env, "auth-a", timeout=10).returncode == 0

        # A stopped instance takes its heartbeat with it: a new one must beat before it passes.
        replicas["auth-b"].terminate()
        replicas["auth-b"].wait(30)
        gone = _liveness(env, "auth-b")
        assert gone.returncode == 1 and "no heartbeat" in gone.stderr
    finally:
        for proc in replicas.values():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
