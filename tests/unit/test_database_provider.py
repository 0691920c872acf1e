"""common/runtime/database.py: nameko-sqlalchemy's Database with our engines and units of work,
in a real container on a real SQLite file (no broker: the service has no AMQP entrypoint)."""
import sqlalchemy as sa
from nameko import config
from nameko.containers import ServiceContainer
from nameko.testing.services import dummy, entrypoint_hook
from nameko_sqlalchemy import database as nameko_sqlalchemy

from common.runtime.database import Database, Store
from tests.conftest import MARIADB_SERVER


class Probe:
    name = "probe"
    db = Database()

    @dummy
    def look(self):
        with self.db.transaction() as session:
            written = session.execute(sa.text("SELECT 1")).scalar()
        with self.db.read() as session:
            read = session.execute(sa.text("SELECT 2")).scalar()
        health = self.db.health()["status"]
        # nameko-sqlalchemy's own API, last: on SQLite it holds the process's one connection
        # until the worker ends.
        stock = self.db.session.execute(sa.text("SELECT 3")).scalar()
        return type(self.db).__name__, written, read, stock, health


def _run(settings):
    with config.patch(settings, clear=True):
        container = ServiceContainer(Probe)
        container.start()
        try:
            with entrypoint_hook(container, "look") as look:
                answer = look()
            provider = next(d for d in container.extensions if isinstance(d, Database))
            return answer, provider
        finally:
            container.stop()


def test_a_worker_gets_our_units_of_work_and_nameko_sqlalchemys_session(tmp_path):
    answer, provider = _run({"DATABASE_URL": f"sqlite:///{tmp_path}/<service>.db", "max_workers": 3})
    assert answer == (Store.__name__, 1, 2, 3, "ok")
    assert provider.db_uri == f"sqlite:///{tmp_path}/probe.db"
    assert isinstance(provider, nameko_sqlalchemy.Database)


def test_db_uris_names_the_database_of_a_service_as_in_nameko_sqlalchemy(tmp_path):
    url = f"sqlite:///{tmp_path}/elsewhere.db"
    answer, provider = _run({"DATABASE_URL": f"sqlite:///{tmp_path}/<service>.db",
                             "DB_URIS": {"probe:Base": url}})
    assert provider.db_uri == url and answer[1:4] == (1, 2, 3)
    assert (tmp_path / "elsewhere.db").exists() and not (tmp_path / "probe.db").exists()


def test_engine_options_from_config_reach_the_engine(tmp_path):
    # Any database of the server does for SELECTs; `mysql` is always there.
    answer, provider = _run({"DATABASE_URL": f"sqlite:///{tmp_path}/<service>.db", "max_workers": 3,
                             "DB_URIS": {"probe:Base": f"{MARIADB_SERVER}/mysql?charset=utf8mb4"},
                             "DB_ENGINE_OPTIONS": {"pool_recycle": 77, "isolation_level": "REPEATABLE READ"}})
    assert answer[1:] == (1, 2, 3, "ok")
    engine = provider.engine
    assert engine.pool._recycle == 77 and engine.pool.size() == 5  # max_workers + 2, ours
    with engine.connect() as connection:
        assert connection.get_isolation_level() == "REPEATABLE READ"
