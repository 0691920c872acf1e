"""Fixtures shared by every test depth: real databases (SQLite and MariaDB) migrated
with the project's own migrations, and config for services under test."""
import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()  # nameko 3's pytest plugin no longer does it; containers hang without

import os  # noqa: E402
import uuid  # noqa: E402

import pymysql  # noqa: E402
import pytest  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from argon2 import PasswordHasher  # noqa: E402

from auth_service.passwords import Passwords  # noqa: E402
from auth_service.seed import seed  # noqa: E402
from common import config as bookify_config  # noqa: E402
from common.storage.engines import Sessions  # noqa: E402
from common.storage.migrations import upgrade  # noqa: E402

MARIADB_SERVER = os.environ.get("BOOKIFY_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306")
BACKENDS = ["sqlite", "mariadb"]
ADMIN = ("admin@bookify.test", "admin-password-for-tests")


def database_template(backend, tmp_dir):
    """A DATABASE_URL template with fresh, uniquely named databases for one test run."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_dir}/bookify_<service>.db"
    return f"{MARIADB_SERVER}/bookify_test_{uuid.uuid4().hex[:8]}_<service>?charset=utf8mb4"


def drop_databases(template, services):
    if not template.startswith("mysql"):
        return
    engine = sa.create_engine(MARIADB_SERVER + "/", isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        for service in services:
            name = sa.engine.make_url(template.replace("<service>", service)).database
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
    engine.dispose()


@pytest.fixture
def sent_statements():
    """`record(sessions)` -> a list that fills with the SQL sent on those sessions' engines
    (`transaction()`'s and `read()`'s) from then on, until the test ends: to count round trips."""
    listening = []

    def record(sessions):
        sent = []

        def listener(conn, cursor, statement, *args):
            sent.append(statement)

        for engine in {sessions.engine, sessions.read_engine or sessions.engine}:
            sa.event.listen(engine, "before_cursor_execute", listener)
            listening.append((engine, listener))
        return sent

    yield record
    for engine, listener in listening:
        sa.event.remove(engine, "before_cursor_execute", listener)


@pytest.fixture
def commands_sent(monkeypatch):
    """Every command PyMySQL sends from now on, as (command number, SQL): COMMITs included,
    which SQLAlchemy's statement events never see."""
    sent = []
    execute = pymysql.connections.Connection._execute_command

    def recording(self, command, sql):
        sent.append((command, sql if isinstance(sql, str) else sql.decode(errors="replace")))
        return execute(self, command, sql)

    monkeypatch.setattr(pymysql.connections.Connection, "_execute_command", recording)
    return sent


def first_words(statements):
    return [statement.split()[0].upper() for statement in statements]


@pytest.fixture(scope="session")
def fast_passwords():
    """argon2 with test-sized costs: same code path, milliseconds instead of 50 ms a hash."""
    return Passwords(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture(params=BACKENDS)
def db_template(request, tmp_path):
    template = database_template(request.param, tmp_path)
    yield template
    drop_databases(template, ["auth"])


@pytest.fixture
def auth_db(db_template, fast_passwords):
    """Sessions on a migrated, seeded auth database."""
    url = db_template.replace("<service>", "auth")
    upgrade("auth_service", url)
    sessions = Sessions.for_url(url, pool_size=4)
    seed(sessions, fast_passwords, *ADMIN)
    yield sessions
    sessions.dispose()


TEST_JWT_SECRET = "service-tests-jwt-secret-0123456789abcdef"
TEST_WEBHOOK_SECRET = "whsec_service_tests"


def with_test_secrets(config):
    """config.yaml has no default secrets (services refuse to start without them): tests
    that load it fill in their own, unless the environment set them."""
    config["JWT"] = dict(config["JWT"], secret=config["JWT"].get("secret") or TEST_JWT_SECRET)
    config["STRIPE"] = dict(config["STRIPE"],
                            webhook_secret=config["STRIPE"].get("webhook_secret") or TEST_WEBHOOK_SECRET)
    return config


@pytest.fixture
def service_config(rabbit_config, db_template):
    """nameko config for a service container: the project's config.yaml, a test vhost,
    the test databases and fast outbox polling."""
    import nameko

    config = with_test_secrets(bookify_config.load())
    config.update(AMQP_URI=nameko.config["AMQP_URI"], DATABASE_URL=db_template)
    config["OUTBOX"] = {"poll_interval_seconds": 0.2, "batch_size": 100}
    # Retries 0.2, 0.4, 0.8, 1.6 s apart: the policy of config.yaml, at test pace.
    config["INBOX"] = {"max_attempts": 5, "transient_attempts": 30, "base_delay_seconds": 0.2,
                       "max_delay_seconds": 2}
    with nameko.config.patch(config, clear=True):
        yield config


def migrated(db_template, service, package):
    """Sessions on a freshly migrated database of `service`."""
    url = db_template.replace("<service>", service)
    upgrade(package, url)
    return Sessions.for_url(url, pool_size=4)


@pytest.fixture
def reservations_db(db_template):
    sessions = migrated(db_template, "reservations", "reservations_service")
    yield sessions
    sessions.dispose()
    drop_databases(db_template, ["reservations"])


@pytest.fixture
def payments_db(db_template):
    """Sessions on a migrated payments database (dropped afterwards on MariaDB)."""
    sessions = migrated(db_template, "payments", "payments_service")
    yield sessions
    sessions.dispose()
    drop_databases(db_template, ["payments"])
