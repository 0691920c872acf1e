"""Engines tuned for MariaDB/MySQL and SQLite, and `Sessions`: the unit of work
(transaction) and the unit of work that only reads."""
import logging
import time
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

import pymysql
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from common.errors import ServiceUnavailable

log = logging.getLogger(__name__)

# A pooled connection idle longer than this is pinged before use: MariaDB may have dropped it
# (wait_timeout, a restart) while nobody looked. Busy connections are not pinged (below).
IDLE_PING_SECONDS = 10


def create_engine(url, pool_size=12, **options):
    """An engine for `url`. Write transactions are serialised per place of contention:
    MariaDB row locks (READ COMMITTED), SQLite `BEGIN IMMEDIATE` on one pooled connection.
    `options` (create_engine's keywords) override ours on MariaDB/MySQL."""
    url = sa.engine.make_url(url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    tuned = dict(
        pool_size=pool_size,  # sized to nameko's max_workers so workers never churn connections
        max_overflow=4,
        pool_recycle=1800,
        # Every unit of work ends in COMMIT or ROLLBACK (Sessions.transaction; a Connection
        # rolls back what it began when closed), so the pool's own ROLLBACK on check-in would
        # be one more round trip to MariaDB per transaction, for nothing.
        pool_reset_on_return=None,
        isolation_level="READ COMMITTED",
    )
    engine = sa.create_engine(url, **{**tuned, **options})
    _ping_when_idle(engine)
    return engine


class _AutocommitConnection(pymysql.connections.Connection):
    """A PyMySQL connection in autocommit mode, for units of work that only read. Every
    statement commits itself, so SQLAlchemy's COMMIT or ROLLBACK at the end of the unit has
    nothing to end; PyMySQL would still send each as one more round trip to MariaDB."""

    def commit(self):
        pass

    def rollback(self):
        pass


def create_read_engine(url, pool_size=12, **options):
    """The engine of `Sessions.read()`: on MariaDB/MySQL, autocommit connections in read-only
    mode (a write fails: error 1792), so a unit of work that reads costs its statements and
    nothing more; None on SQLite, whose units of work share its one connection anyway."""
    url = sa.engine.make_url(url)
    if url.get_backend_name() == "sqlite":
        return None
    # The same pool settings as the write engine; always autocommit and read-only (below).
    tuned = {"pool_size": pool_size, "max_overflow": 4, "pool_recycle": 1800, "pool_reset_on_return": None}
    engine = sa.create_engine(url, **{**tuned, **options, "isolation_level": "AUTOCOMMIT"})

    @sa.event.listens_for(engine, "do_connect")
    def _connect(dialect, record, cargs, cparams):
        connection = _AutocommitConnection(*cargs, **cparams)
        with connection.cursor() as cursor:
            cursor.execute("SET SESSION TRANSACTION READ ONLY")
        return connection

    _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine):
    """Ping a connection before use only if it sat idle in the pool (pool_pre_ping pings on
    every checkout: a round trip per transaction, a quarter of the time a service spent
    talking to MariaDB under load). A connection that dies mid-load is still caught: the
    failing statement raises, SQLAlchemy sees a disconnect and invalidates the whole pool,
    so one request fails (503) and the next ones get fresh connections."""

    @sa.event.listens_for(engine, "checkin")
    def _stamp(dbapi_connection, record):
        record.info["idle_since"] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection, record, proxy):
        idle_since = record.info.get("idle_since")
        if idle_since is not None and time.monotonic() - idle_since > IDLE_PING_SECONDS:
            try:
                dbapi_connection.ping(reconnect=False)
            except Exception as error:
                # The pool then discards it and checks out (or opens) another.
                raise sa.exc.DisconnectionError() from error


_sqlite_engines = {}


def _sqlite_engine(url):
    # One engine per file per process, shared by every container and script in it: two
    # engines in one process would fight over the file lock with sqlite's blocking busy-wait.
    key = url.render_as_string(hide_password=False)
    if key not in _sqlite_engines:
        _sqlite_engines[key] = _new_sqlite_engine(url)
    return _sqlite_engines[key]


def _new_sqlite_engine(url):
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    # One connection per process: sqlite's busy-wait would block eventlet's hub if two
    # greenthreads of one process fought over the file lock; the pool queue waits greenly.
    engine = sa.create_engine(
        url, pool_size=1, max_overflow=0, pool_timeout=60,
        connect_args={"timeout": 30, "check_same_thread": False},
    )

    @sa.event.listens_for(engine, "connect")
    def _configure(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # SQLAlchemy issues BEGIN itself (below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin_immediate(connection):
        # Take the write lock at BEGIN so check-then-insert cannot interleave across processes.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class DatabaseUnavailable(SystemExit):
    """The database a process starts on is unreachable or missing: it stops with this one line
    (exit code 1), not the driver's traceback."""


_UNKNOWN_DATABASE = 1049  # MySQL's ER_BAD_DB_ERROR; any other failure to connect is "unreachable"


def check_database(url, create=False):
    """Connect once to the MariaDB/MySQL database of `url` (SQLite files create themselves).
    A missing database is created when `create` (local runs), else DatabaseUnavailable, as
    is a server that cannot be reached or refuses the login."""
    url = sa.engine.make_url(url)
    if url.get_backend_name() != "mysql":
        return
    shown = url.render_as_string(hide_password=True)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 10})
    try:
        with engine.connect():
            return
    except sa.exc.DBAPIError as error:
        args = getattr(error.orig, "args", ())
        code, reason = (args[0], args[1]) if len(args) > 1 else (None, str(error.orig or error))
        if code != _UNKNOWN_DATABASE:
            raise DatabaseUnavailable(f"database unreachable at {shown}: {reason}") from None
        if not create:
            raise DatabaseUnavailable(
                f"database '{url.database}' does not exist at {shown}: create it (utf8mb4), or "
                "migrate with `python -m scripts.migrate --create-databases` "
                "(make run does; docs/configuration.md)") from None
    finally:
        engine.dispose()
    ensure_database(url)


def ensure_database(url):
    """Create the MariaDB/MySQL database of `url` when missing (SQLite files create themselves)."""
    url = sa.engine.make_url(url)
    if url.get_backend_name() != "mysql":
        return
    server = sa.create_engine(url.set(database=""), isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.exec_driver_sql(
            f"CREATE DATABASE IF NOT EXISTS `{url.database}` "
            "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        )
    server.dispose()


class UnitsOfWork(Protocol):
    """What domain code opens its units of work on: `Sessions`, or in a service the
    worker's database (common.runtime.database.Store), which hands them on."""

    def transaction(self) -> AbstractContextManager[Session]: ...

    def read(self) -> AbstractContextManager[Session]: ...


class Sessions:
    """Opens sessions on one database: `transaction()` is the unit of work, `read()` the
    unit of work that only reads."""

    def __init__(self, engine, read_engine=None, session_options=None):
        self.engine = engine
        self.read_engine = read_engine
        options = {"expire_on_commit": False, **(session_options or {})}
        self.factory = sessionmaker(engine, **options)
        self._read_factory = sessionmaker(read_engine, **options) if read_engine else self.factory

    @classmethod
    def for_url(cls, url, pool_size=12, engine_options=None, session_options=None):
        """`pool_size` connections for `transaction()`, as many for `read()`; `engine_options`
        go to SQLAlchemy's create_engine over ours (MariaDB/MySQL only: SQLite's are fixed)."""
        return cls(create_engine(url, pool_size=pool_size, **(engine_options or {})),
                   create_read_engine(url, pool_size=pool_size, **(engine_options or {})),
                   session_options)

    @contextmanager
    def transaction(self):
        """Commit when the block ends normally, roll back when it raises."""
        with self._unit(self.factory) as session:
            yield session

    @contextmanager
    def read(self):
        """A unit of work that only reads. On MariaDB each statement is a transaction of its
        own, on a connection that refuses writes: there is no COMMIT to send, which makes a
        one-query read one round trip instead of two. Each statement sees what was committed
        when it began, as each statement of a READ COMMITTED transaction does; nothing is
        locked (no FOR UPDATE: that belongs in `transaction()`). On SQLite it is
        `transaction()`."""
        with self._unit(self._read_factory) as session:
            yield session

    @contextmanager
    def _unit(self, factory):
        session = factory()
        try:
            yield session
            session.commit()
        except sa.exc.DBAPIError as error:  # OperationalError, InterfaceError, InternalError, ...
            _rollback(session)
            if _is_disconnect(error):
                # The database is away (restart, network): an answer the caller can act on
                # (503, retry later) instead of an internal error. Nothing half-written stays:
                # the transaction is rolled back, or was never committed.
                raise ServiceUnavailable("The database is unavailable; try again shortly",
                                         {"service": "database"}) from error
            raise
        except BaseException:
            # The block's own error is the answer; a rollback on a connection that died
            # meanwhile must not replace it (the server rolls back what it never committed).
            _rollback(session)
            raise
        finally:
            session.close()

    def health(self):
        """What a readiness check reports: {"status": "ok"|"unavailable", "database": "ok"|reason}.
        The reason is the error's type only: readiness answers are public."""
        try:
            with self.engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
        except Exception as error:
            log.warning("database check failed: %s", error)
            return {"status": "unavailable", "database": f"unavailable: {type(error).__name__}"}
        return {"status": "ok", "database": "ok"}

    def dispose(self):
        self.engine.dispose()
        if self.read_engine is not None:
            self.read_engine.dispose()


# MySQL errors meaning "no usable connection": can't connect (2002/2003), server gone away
# (2006), lost during a query (2013), the server shutting down (1053), or refusing more
# connections (1040).
_DISCONNECT_CODES = {1040, 1053, 2002, 2003, 2006, 2013}


def _is_disconnect(error):
    if getattr(error, "connection_invalidated", False):
        return True
    code = error.orig.args[0] if getattr(error, "orig", None) is not None and error.orig.args else None
    return code in _DISCONNECT_CODES or isinstance(error, sa.exc.InterfaceError)


def _rollback(session):
    try:
        session.rollback()
    except Exception:  # noqa: BLE001 - the connection is already gone; the server rolls back
        log.debug("rollback on a lost connection failed", exc_info=True)
