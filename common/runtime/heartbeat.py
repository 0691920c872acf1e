"""Per-process liveness: each service process touches its own heartbeat file from a thread of
its own, and `python -m scripts.probe <service> --liveness` checks that file's age.

Replaces an RPC to `ping()` as the liveness probe: any replica can answer that RPC, so a pod
whose event loop is stuck was never restarted. The beat runs outside the worker pool, so a
busy service still beats; only a process that no longer runs its green threads goes stale.
The file is named by service and instance (`HOSTNAME`, else the host name), so replicas that
share a directory never answer for each other.
"""
import logging

import eventlet
import nameko
from nameko.extensions import DependencyProvider

from common.liveness import heartbeat_path, settings

log = logging.getLogger(__name__)

class HeartbeatUnwritable(SystemExit):
    """The heartbeat file cannot be written: the probe would restart the pod forever, so the
    service stops at once with one line instead."""

    def __init__(self, path, error):
        super().__init__(f"cannot write the heartbeat file {path} ({error.strerror or error}): "
                         f"set HEARTBEAT_DIR to a writable directory (docs/deployment.md)")


class Heartbeat(DependencyProvider):
    """Touches this process's heartbeat file every `LIVENESS.heartbeat_interval_seconds`."""

    def setup(self):
        directory, self.interval = settings(nameko.config)
        self.path = heartbeat_path(directory, self.container.service_name)
        self._thread = None
        try:  # a directory we cannot write is found at start, not by the probe
            self._beat()
        except OSError as error:
            raise HeartbeatUnwritable(self.path, error) from None

    def start(self):
        self._thread = self.container.spawn_managed_thread(self._run, identifier="heartbeat")

    def stop(self):
        if self._thread is not None:
            self._thread.kill()
        self.path.unlink(missing_ok=True)

    def kill(self):
        self.stop()

    def _run(self):
        while True:
            eventlet.sleep(self.interval)
            try:
                self._beat()
            except OSError as error:  # a full disk, say: the probe will see the beat go stale
                log.warning("heartbeat not written: %s", error)

    def _beat(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch()
