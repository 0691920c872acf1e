"""The MariaDB pool: a connection that died while idle in the pool is replaced before use,
without a ping per transaction."""
import pytest
import sqlalchemy as sa

from common.storage import engines as db
from tests.conftest import MARIADB_SERVER


@pytest.fixture
def engine():
    engine = db.create_engine(MARIADB_SERVER + "/", pool_size=1)
    yield engine
    engine.dispose()


def _connection_id(engine):
    with engine.connect() as connection:
        return connection.scalar(sa.text("SELECT CONNECTION_ID()"))


def _kill(connection_id):
    killer = sa.create_engine(MARIADB_SERVER + "/")
    with killer.connect() as connection:
        connection.exec_driver_sql(f"KILL {int(connection_id)}")
    killer.dispose()


def test_a_connection_killed_while_idle_is_replaced_before_use(engine, monkeypatch):
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0)
    first = _connection_id(engine)
    _kill(first)  # as a MariaDB restart or wait_timeout would
    assert _connection_id(engine) not in (None, first)  # no error reached the caller


def test_a_busy_connection_is_not_pinged(engine, monkeypatch):
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 3600)
    first = _connection_id(engine)
    _kill(first)
    # Not idle long enough to be pinged: the dead connection is used, the statement fails as a
    # disconnect, and the pool is invalidated so the next checkout gets a fresh connection.
    with pytest.raises(sa.exc.OperationalError) as failed:
        _connection_id(engine)
    assert failed.value.connection_invalidated
    assert _connection_id(engine) != first


def test_a_transaction_whose_connection_died_raises_its_own_error_or_503(engine):
    from common.errors import ServiceUnavailable, SlotUnavailable

    sessions = db.Sessions(engine)
    with pytest.raises(SlotUnavailable):  # not the failed ROLLBACK's OperationalError
        with sessions.transaction() as session:
            _kill(session.scalar(sa.text("SELECT CONNECTION_ID()")))
            raise SlotUnavailable("Taken")
    with pytest.raises(ServiceUnavailable):
        with sessions.transaction() as session:
            _kill(session.scalar(sa.text("SELECT CONNECTION_ID()")))
            session.execute(sa.text("SELECT 1"))
    with sessions.transaction() as session:  # and the pool recovers
        assert session.scalar(sa.text("SELECT 1")) == 1
