"""A database that cannot be used stops a process with one line, not a traceback: a server
that does not answer, or (outside local mode) a database that does not exist, which is
created only when asked (`--create-databases`, what `make run` passes)."""
import os
import subprocess
import sys
import uuid

import sqlalchemy as sa

from common.config import ROOT
from tests.conftest import MARIADB_SERVER, drop_databases
from tests.fakes.localstripe import free_port

SERVICES = ["auth", "reservations", "payments", "notifications"]


def _run(args, db_url, timeout=60):
    env = {**os.environ, "BOOKIFY_DB_URL": db_url, "PYTHONWARNINGS": "ignore",
           "JWT_SECRET": "a-test-secret-long-enough-for-hs256-0123456789",
           "GATEWAY_ADDRESS": f"127.0.0.1:{free_port()}", "AUTH_METRICS_PORT": "0"}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _closed_port():
    return free_port()  # nothing listens on it once the probe socket is closed


def _one_line(done):
    """The last line of stderr, having checked there is no traceback above it."""
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    return done.stderr.strip().splitlines()[-1]


def test_migrate_says_in_one_line_that_the_server_is_unreachable():
    port = _closed_port()
    done = _run(["-m", "scripts.migrate"], f"mysql+pymysql://root:hunter2@127.0.0.1:{port}/bookify_<service>")
    line = _one_line(done)
    assert line.startswith(f"database unreachable at mysql+pymysql://root:***@127.0.0.1:{port}/bookify_auth: "), line
    assert "Connection refused" in line or "ECONNREFUSED" in line
    assert "hunter2" not in done.stderr + done.stdout
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_service_says_in_one_line_that_the_server_is_unreachable():
    port = _closed_port()
    done = _run(["-m", "nameko", "run", "--config", "config.yaml", "auth_service.service"],
                f"mysql+pymysql://root@127.0.0.1:{port}/bookify_<service>")
    assert _one_line(done).startswith(f"database unreachable at mysql+pymysql://root@127.0.0.1:{port}/bookify_auth: ")


def _databases(prefix):
    engine = sa.create_engine(MARIADB_SERVER + "/")
    with engine.connect() as connection:
        names = set(connection.exec_driver_sql("SHOW DATABASES").scalars())
    engine.dispose()
    return {name for name in names if name.startswith(prefix)}


def test_a_missing_database_is_an_error_unless_created_on_purpose():
    prefix = f"bookify_test_{uuid.uuid4().hex[:8]}_"
    template = f"{MARIADB_SERVER}/{prefix}<service>?charset=utf8mb4"
    try:
        done = _run(["-m", "scripts.migrate"], template)
        assert _one_line(done) == (
            f"database '{prefix}auth' does not exist at {MARIADB_SERVER}/{prefix}auth?charset=utf8mb4: "
            "create it (utf8mb4), or migrate with `python -m scripts.migrate --create-databases` "
            "(make run does; docs/configuration.md)")
        assert _databases(prefix) == set()  # nothing created behind the operator's back

        service = _run(["-m", "nameko", "run", "--config", "config.yaml", "auth_service.service"], template)
        assert _one_line(service).startswith(f"database '{prefix}auth' does not exist at ")
        assert _databases(prefix) == set()

        created = _run(["-m", "scripts.migrate", "--create-databases"], template, timeout=180)
        assert created.returncode == 0, created.stderr
        assert _databases(prefix) == {prefix + service for service in SERVICES}
    finally:
        drop_databases(template, SERVICES)
