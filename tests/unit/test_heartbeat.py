"""common/liveness.py and common/runtime/heartbeat.py: where a process's heartbeat lives, how
old it is, and a directory that cannot be written stopping the service at start with one line. The beat itself, in real
processes one of which is frozen, is tests/service/test_probe.py."""
import os
import subprocess
import sys
import time
from pathlib import Path

import nameko
import pytest
from nameko.constants import HEARTBEAT_CONFIG_KEY

from common.liveness import age_seconds, heartbeat_path, settings
from common.runtime.heartbeat import Heartbeat, HeartbeatUnwritable


def test_the_file_is_named_by_service_and_instance_and_the_instance_is_hostname(tmp_path, monkeypatch):
    monkeypatch.setenv("HOSTNAME", "auth-7d9f-x2k")
    assert heartbeat_path(tmp_path, "auth") == tmp_path / "bookify-auth-auth-7d9f-x2k.heartbeat"
    assert heartbeat_path(tmp_path, "auth", "../../etc/x y") == tmp_path / "bookify-auth-.._.._etc_x_y.heartbeat"
    assert heartbeat_path(tmp_path, "auth", "a") != heartbeat_path(tmp_path, "auth", "b")


def test_settings_come_from_the_liveness_block_not_nameko_s_heartbeat_key(tmp_path):
    # nameko reads HEARTBEAT as the AMQP heartbeat (seconds): the block has another name.
    assert HEARTBEAT_CONFIG_KEY == "HEARTBEAT"
    block = {"heartbeat_dir": str(tmp_path), "heartbeat_interval_seconds": "0.5"}
    assert settings({"LIVENESS": block}) == (tmp_path, 0.5)
    directory, interval = settings({"LIVENESS": {"heartbeat_dir": None, "heartbeat_interval_seconds": None}})
    assert directory.is_dir() and interval == 5.0


def test_age_is_none_without_a_file_and_grows_from_the_last_touch(tmp_path):
    path = tmp_path / "beat"
    assert age_seconds(path) is None
    path.touch()
    os.utime(path, (time.time() - 30, time.time() - 30))
    assert 29 < age_seconds(path) < 40


class _Container:
    service_name = "auth"


CONTAINER = _Container()  # an extension holds its container weakly


def _provider(directory):
    provider = Heartbeat().bind(CONTAINER, "heartbeat")
    config = {"LIVENESS": {"heartbeat_dir": str(directory), "heartbeat_interval_seconds": 5}}
    return provider, nameko.config.patch(config, clear=True)


def test_setup_beats_once_and_stop_takes_the_file_away(tmp_path):
    provider, config = _provider(tmp_path / "beats")
    with config:
        provider.setup()
    assert age_seconds(provider.path) < 5
    provider.stop()
    assert not provider.path.exists()


def test_a_directory_that_cannot_be_written_stops_the_service_at_start_with_one_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    provider, config = _provider(blocker / "beats")
    with config, pytest.raises(HeartbeatUnwritable) as raised:
        provider.setup()
    message = str(raised.value)
    assert "\n" not in message and "HEARTBEAT_DIR" in message and str(blocker) in message


def test_the_liveness_probe_loads_no_framework(tmp_path):
    # Kubernetes runs it every few seconds in every pod: loading the framework cost it ~0.8 s of CPU.
    # (The bare `nameko` package is only its config dict, which the config loader writes to.)
    script = ("import sys, scripts.probe as probe\n"
              "try:\n    probe.liveness('auth')\nexcept probe.Stale:\n    pass\n"
              "print(sorted(m for m in ('nameko.cli', 'nameko.extensions', 'eventlet', 'kombu', 'werkzeug')"
              " if m in sys.modules))")
    env = dict(os.environ, HEARTBEAT_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.stdout.strip() == "[]"
