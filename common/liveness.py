"""Where a service process's heartbeat file lives and how old it is: what the process that beats
(common/runtime/heartbeat.py) and the liveness probe (scripts/probe.py) agree on. Plain Python,
so the probe, which Kubernetes runs every few seconds, starts without loading nameko or eventlet."""
import os
import re
import socket
import tempfile
import time
from pathlib import Path

from common.config import section

DEFAULT_INTERVAL_SECONDS = 5.0
# Stale after this many missed beats: one slow beat under load is not a hung process.
MISSED_BEATS = 4
UNSAFE_IN_A_NAME = re.compile(r"[^A-Za-z0-9._-]")


def instance_name():
    """This process's identity among the replicas: HOSTNAME (the pod or container name)."""
    return os.environ.get("HOSTNAME") or socket.gethostname()


def settings(config):
    """(directory, interval in seconds) from the LIVENESS block of config.yaml."""
    block = section(config, "LIVENESS")
    directory = Path(block.get("heartbeat_dir") or tempfile.gettempdir())
    return directory, float(block.get("heartbeat_interval_seconds") or DEFAULT_INTERVAL_SECONDS)


def heartbeat_path(directory, service_name, instance=None):
    instance = UNSAFE_IN_A_NAME.sub("_", instance or instance_name())
    return Path(directory) / f"bookify-{service_name}-{instance}.heartbeat"


def age_seconds(path, now=None):
    """Seconds since the last beat, or None when there is no heartbeat file."""
    try:
        beat = path.stat().st_mtime
    except FileNotFoundError:
        return None
    return (time.time() if now is None else now) - beat
