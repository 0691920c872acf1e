"""scripts/probe.py, the exec probe of the AMQP-only services, run as Kubernetes and docker
compose run it (a separate process) against a real service container on the real broker."""
import os
import subprocess
import sys
import time

import pytest

from auth_service.service import AuthService
from common.config import ROOT


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
