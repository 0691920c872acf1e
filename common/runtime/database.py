"""The nameko dependency that hands each worker its service's own database."""
import nameko
from nameko.extensions import DependencyProvider

from common import config as bookify_config
from common.storage.engines import Sessions


class Database(DependencyProvider):
    """Gives workers `Sessions` on the service's own database (DATABASE_URL template)."""

    def __init__(self, service_name=None):
        self.service_name = service_name

    _sessions = None

    @property
    def sessions(self):
        # Built on first use: other providers (the outbox) may need it during their own setup.
        if self._sessions is None:
            config = nameko.config
            url = bookify_config.database_url(config, self.service_name or self.container.service_name)
            self._sessions = Sessions.for_url(url, pool_size=int(config.get("max_workers", 10)) + 2)
        return self._sessions

    def setup(self):
        self.sessions  # noqa: B018 -- builds the engine at startup, not on the first request

    def stop(self):
        if self._sessions is not None:
            self._sessions.dispose()

    def get_dependency(self, worker_ctx):
        return self.sessions
