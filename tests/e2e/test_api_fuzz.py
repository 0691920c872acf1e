"""Property-based fuzzing of the whole HTTP API from its own OpenAPI document
(schemathesis), signed out, as a customer and as the admin: whatever the input, no 5xx,
only documented statuses, responses that match their schemas, every error in the one
documented shape and the security headers on every response (tests/security/fuzz_checks.py).

BOOKIFY_FUZZ_EXAMPLES sets the examples per operation of every run, for a longer run
than `make test` affords (docs/security.md)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BACKENDS
from tests.e2e.conftest import running_stack

CHECKS = ("not_a_server_error,status_code_conformance,response_schema_conformance,"
          "content_type_conformance,error_shape,security_headers")
HOOKS = Path(__file__).resolve().parents[1] / "security" / "fuzz_checks.py"
# Examples per operation: signed-out and customer runs reach less, so they get fewer.
DEFAULT_EXAMPLES = {"anonymous": 5, "customer": 6, "admin": 15}
# A longer run (BOOKIFY_FUZZ_EXAMPLES) gets the time it needs; the default fits the usual limit.
# One worker: hypothesis parses lambdas' source to describe them, and ast.parse in two threads at
# once can fail on this Python ("AST constructor recursion depth mismatch", CPython gh-106905):
# a run crashed now and then without any fault in the API.
TIMEOUT = 3600 if os.environ.get("BOOKIFY_FUZZ_EXAMPLES") else 240


def schemathesis(api, tmp_path, run, token=None, *extra):
    examples = os.environ.get("BOOKIFY_FUZZ_EXAMPLES") or str(DEFAULT_EXAMPLES[run])
    auth = ["--header", f"Authorization: Bearer {token}"] if token else []
    result = subprocess.run(
        [str(Path(sys.executable).with_name("schemathesis")), "run", f"{api.base_url}/openapi.json",
         *auth, *extra, "--checks", CHECKS,
         "--max-examples", examples, "--workers", "1", "--seed", "20261125",
         "--report-dir", str(tmp_path / run)],
        capture_output=True, text=True, timeout=TIMEOUT, env={**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS)})
    assert result.returncode == 0, f"{run} run:\n" + result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout, result.stdout[-2000:]
    print(result.stdout[-1200:])  # the summary, shown with `pytest -rP`


@pytest.fixture(scope="module", params=BACKENDS)
def fuzzed_api(request, tmp_path_factory):
    """A stack of this module's own: the fuzzer changes roles, the admin's included, so the
    admin run comes last."""
    with running_stack(request.param, tmp_path_factory.mktemp(f"fuzz-{request.param}")) as api:
        yield api


# Who may call what is the same code on either database; the admin run covers both.
@pytest.mark.parametrize("fuzzed_api", ["sqlite"], indirect=True)
@pytest.mark.timeout(TIMEOUT)
def test_signed_out_no_input_breaks_the_api(fuzzed_api, tmp_path):
    schemathesis(fuzzed_api, tmp_path, "anonymous")


@pytest.mark.parametrize("fuzzed_api", ["sqlite"], indirect=True)
@pytest.mark.timeout(TIMEOUT)
def test_as_a_customer_no_input_breaks_the_api(fuzzed_api, tmp_path):
    _, customer = fuzzed_api.customer()
    # logout would end the session the fuzzer authenticates with
    schemathesis(fuzzed_api, tmp_path, "customer", customer["access_token"], "--exclude-path", "/v1/auth/logout")


@pytest.mark.timeout(TIMEOUT)
def test_as_the_admin_no_input_breaks_the_api(fuzzed_api, tmp_path):
    schemathesis(fuzzed_api, tmp_path, "admin", fuzzed_api.admin_token(), "--exclude-path", "/v1/auth/logout")
