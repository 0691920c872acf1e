"""Started directly (`nameko run`, not `make run`) without their secrets, the services that
need one refuse at once with a one-line message naming the variable."""
import os
import subprocess
import sys

import pytest

from common.config import ROOT
from tests.fakes.localstripe import free_port

CASES = [("auth_service.service", "JWT_SECRET"),
         ("gateway.service:GatewayService", "JWT_SECRET"),
         ("gateway.grpc_server:GrpcGatewayService", "JWT_SECRET"),
         ("payments_service.service", "STRIPE_WEBHOOK_SECRET")]


@pytest.mark.parametrize(("module", "variable"), CASES)
def test_a_service_without_its_secret_refuses_to_start(module, variable, tmp_path):
    env = {**os.environ, "GATEWAY_ADDRESS": f"127.0.0.1:{free_port()}", "GRPC_PORT": str(free_port()),
           "BOOKIFY_DB_URL": f"sqlite:///{tmp_path}/bookify_<service>.db", "PYTHONWARNINGS": "ignore",
           "AUTH_METRICS_PORT": "0", "GATEWAY_METRICS_PORT": "0", "PAYMENTS_METRICS_PORT": "0",
           "GRPC_GATEWAY_METRICS_PORT": "0"}
    env.pop("JWT_SECRET", None)
    env.pop("STRIPE_WEBHOOK_SECRET", None)
    done = subprocess.run([sys.executable, "-m", "nameko", "run", "--config", "config.yaml", module],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"{variable} is not set: refusing to start"), done.stderr
    assert "Traceback" not in done.stderr
