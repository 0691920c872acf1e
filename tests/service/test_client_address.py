"""The client's address behind proxies, on the real gateway and auth: with TRUSTED_PROXY_HOPS=0
an X-Forwarded-For the client writes itself is ignored (any number of spoofed addresses spend
one budget), with 1 the clients behind the proxy keep budgets of their own, a header that
names no address falls back to the peer, and the access line names the client either way.
A setting that is no count stops the gateway at start."""
import itertools
import logging
import os
import subprocess
import sys

import pytest
import requests

from auth_service.service import AuthService
from common.config import ROOT
from gateway.service import GatewayService
from tests.conftest import TEST_JWT_SECRET
from tests.e2e.conftest import free_port

LIMIT = 2  # failed logins per client address (LOGIN_LIMIT_PER_ADDRESS)
PEER = "127.0.0.1"  # the proxy, as the gateway sees it: every request here comes from it
_emails = itertools.count()


@pytest.fixture
def db_template(tmp_path):
    """Which address is counted does not depend on the database kind: SQLite only."""
    return f"sqlite:///{tmp_path}/bookify_<service>.db"


@pytest.fixture
def gateway(auth_db, service_config, container_factory, caplog):
    """start(hops) -> the gateway's URL, with auth behind it; `.lines()` is the client address
    of each login's access line so far."""

    def start(hops):
        port = free_port()
        config = dict(service_config, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}")
        config["AUTH"] = dict(config["AUTH"], login_limit_per_address=LIMIT)
        config["GATEWAY"] = dict(config["GATEWAY"], trusted_proxy_hops=hops)
        for service in (AuthService, GatewayService):
            container_factory(service, config).start()
        return f"http://127.0.0.1:{port}"

    caplog.set_level(logging.INFO, logger="gateway.access")
    start.lines = lambda: [record.client_address for record in caplog.records
                           if record.name == "gateway.access" and record.path == "/v1/auth/login"]
    return start


def login(base, forwarded_for=None):
    """A wrong password for an email of its own (no account lockout): 401 while the address
    has budget, then 429."""
    headers = {} if forwarded_for is None else {"X-Forwarded-For": forwarded_for}
    response = requests.post(f"{base}/v1/auth/login", timeout=10, headers=headers,
                             json={"email": f"user{next(_emails)}@example.com", "password": "wrong-password"})
    return response.status_code


def test_without_trusted_proxies_a_spoofed_address_is_ignored(gateway):
    base = gateway(0)

    answers = [login(base, "198.51.100.1"), login(base, "198.51.100.2"), login(base, "198.51.100.3"),
               login(base)]

    assert answers == [401, 401, 429, 429]  # one budget: the connection's
    assert gateway.lines() == [PEER] * 4


def test_behind_one_proxy_each_client_has_its_own_budget(gateway):
    base = gateway(1)

    first = [login(base, "198.51.100.1"), login(base, "198.51.100.1"),
             # what the client wrote itself lies left of what the proxy appended: not read
             login(base, "203.0.113.66, 198.51.100.1")]
    second = [login(base, "198.51.100.2"), login(base, "198.51.100.2")]

    assert first == [401, 401, 429]
    assert second == [401, 401]
    assert gateway.lines() == ["198.51.100.1"] * 3 + ["198.51.100.2"] * 2


def test_behind_one_proxy_a_header_without_an_address_counts_the_peer(gateway):
    base = gateway(1)

    answers = [login(base), login(base, "not-an-address"), login(base, "198.51.100.1, unknown"),
               login(base, "198.51.100.1")]

    assert answers == [401, 401, 429, 401]  # the first three are the proxy's own budget
    assert gateway.lines() == [PEER] * 3 + ["198.51.100.1"]


def test_a_setting_that_is_no_count_stops_the_gateway_with_one_line():
    env = {**os.environ, "TRUSTED_PROXY_HOPS": "-1", "JWT_SECRET": TEST_JWT_SECRET, "PYTHONWARNINGS": "ignore",
           "GATEWAY_ADDRESS": f"127.0.0.1:{free_port()}", "GATEWAY_METRICS_PORT": "0"}
    done = subprocess.run([sys.executable, "-m", "nameko", "run", "--config", "config.yaml",
                           "gateway.service:GatewayService"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("TRUSTED_PROXY_HOPS: -1 is not a number of proxies")
    assert "Traceback" not in done.stderr
