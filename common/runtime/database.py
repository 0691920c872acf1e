"""The nameko dependency that hands each worker its service's own database: nameko-sqlalchemy's
`Database`, with what it lacks added on top (docs/architecture.md, "Database through
nameko-sqlalchemy").

From nameko-sqlalchemy: the provider's life cycle (engine built at setup, disposed at stop or
kill), its settings `DB_URIS` (`"<service>:<Base>"` → URL), `DB_ENGINE_OPTIONS` and
`DB_SESSION_OPTIONS`, and the per-worker wrapper (`db.session`, `db.get_session()`), closed
when the worker ends.

On top:
- a URL for every service from one template, `DATABASE_URL` (`<service>` replaced), when
  `DB_URIS` names none;
- the engines of common/storage/engines.py: on MariaDB/MySQL READ COMMITTED, a pool sized to
  `max_workers` + 2 and a second, read-only autocommit pool for `read()`; on SQLite one
  connection per process and `BEGIN IMMEDIATE`;
- the units of work, `db.transaction()` and `db.read()`, which answer a lost database with
  ServiceUnavailable, and `db.health()` for readiness."""
import nameko
from nameko_sqlalchemy import database as nameko_sqlalchemy

from common import config as bookify_config
from common.storage.base import Base
from common.storage.engines import Sessions, check_database


class Store(nameko_sqlalchemy.DatabaseWrapper):
    """What a worker gets: nameko-sqlalchemy's wrapper, plus our units of work."""

    def __init__(self, session_factory, sessions):
        super().__init__(session_factory)
        self.sessions = sessions

    def transaction(self):
        return self.sessions.transaction()

    def read(self):
        return self.sessions.read()

    def health(self):
        return self.sessions.health()


class Database(nameko_sqlalchemy.Database):
    """`db = Database()` in a service: its own database, as `Store` to each worker."""

    def __init__(self, declarative_base=Base, service_name=None, engine_options=None, session_options=None):
        super().__init__(declarative_base, session_options=session_options, engine_options=engine_options)
        self.service_name = service_name

    _sessions = None

    @property
    def sessions(self):
        # Built on first use: other providers (the outbox) may need it during their own setup.
        if self._sessions is None:
            config = nameko.config
            service = self.service_name or self.container.service_name
            uri_key = f"{service}:{self.declarative_base.__name__}"
            self.db_uri = ((config.get(nameko_sqlalchemy.DB_URIS_KEY) or {}).get(uri_key)
                           or bookify_config.database_url(config, service))
            self._sessions = Sessions.for_url(
                self.db_uri, pool_size=int(config.get("max_workers", 10)) + 2,
                engine_options={**(config.get(nameko_sqlalchemy.DB_ENGINE_OPTIONS_KEY) or {}), **self.engine_options},
                session_options={**(config.get(nameko_sqlalchemy.DB_SESSION_OPTIONS_KEY) or {}),
                                 **self.session_options, "class_": nameko_sqlalchemy.Session})
            self.engine, self.Session = self._sessions.engine, self._sessions.factory
        return self._sessions

    def setup(self):
        # Builds the engines at startup, not on the first request, and stops the service with
        # one line if its database cannot be reached or does not exist.
        check_database(self.sessions.engine.url)

    def stop(self):
        if self._sessions is not None:
            self._sessions.dispose()
            self._sessions = None

    kill = stop

    def get_dependency(self, worker_ctx):
        store = self.dbs[worker_ctx] = Store(self.Session, self.sessions)
        return store
