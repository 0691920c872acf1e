"""make run's log files roll over past their size (common/logfile.py), and a process's own
output follows the current file."""
import json
import logging
import os
import subprocess
import sys

from common.config import ROOT
from common.logfile import LogFile, log_file_from


def test_a_log_past_its_size_rolls_over_keeping_so_many_backups(tmp_path):
    path = tmp_path / "gateway.log"
    handler = LogFile(path, max_bytes=1000, backups=2)
    log = logging.getLogger("test_logfile.rolls")
    log.addHandler(handler)
    log.propagate = False
    try:
        for number in range(200):
            log.warning("line %03d %s", number, "x" * 40)  # 50 bytes a line: 20 to a file
    finally:
        log.removeHandler(handler)
        handler.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gateway.log", "gateway.log.1", "gateway.log.2"]
    for name in ("gateway.log", "gateway.log.1", "gateway.log.2"):
        assert (tmp_path / name).stat().st_size <= 1000 + 50
    # The newest lines, in order, across the current file and its backups; the oldest are gone.
    kept = [line.split()[1] for name in ("gateway.log.2", "gateway.log.1", "gateway.log")
            for line in (tmp_path / name).read_text().splitlines()]
    assert kept == [f"{number:03d}" for number in range(200 - len(kept), 200)]
    assert kept[-1] == "199" and len(kept) >= 40


def test_settings_come_from_the_environment(tmp_path):
    assert log_file_from({}) is None
    handler = log_file_from({"BOOKIFY_LOG_FILE": str(tmp_path / "a.log"), "LOG_FILE_MAX_BYTES": "4096",
                             "LOG_FILE_BACKUPS": "0"})
    try:
        assert (handler.maxBytes, handler.backupCount, handler.take_output) == (4096, 1, True)
    finally:
        handler.take_output = False
        handler.close()


CHILD = """
import logging, logging.config, sys
from common import config
logging.config.dictConfig(config.load()["LOGGING"])
log = logging.getLogger("child")
for number in range(60):
    log.info("filler %03d %s", number, "y" * 60)
print("printed after the rollover", flush=True)
raise RuntimeError("a crash after the rollover")
"""


def test_a_process_under_make_run_writes_its_own_rolling_file_with_its_output(tmp_path):
    """config.yaml's handler, as `nameko run` sets it up: the lines, what the process prints
    and its crash all land in the current file, never in a rolled-over one."""
    path = tmp_path / "auth_service.log"
    env = {**os.environ, "BOOKIFY_LOG_FILE": str(path), "LOG_FILE_MAX_BYTES": "2000",
           "LOG_FILE_BACKUPS": "2", "LOG_FORMAT": "json", "LOG_LEVEL": "INFO"}
    done = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1
    assert done.stdout == "" and done.stderr == ""  # all of it went to the file
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "auth_service.log", "auth_service.log.1", "auth_service.log.2"]
    current = path.read_text()
    assert "printed after the rollover" in current and "RuntimeError: a crash after the rollover" in current
    last_line = [json.loads(line) for line in current.splitlines() if line.startswith("{")][-1]
    assert last_line["message"].startswith("filler 059")
    for name in ("auth_service.log.1", "auth_service.log.2"):
        rolled = (tmp_path / name).read_text()
        assert "after the rollover" not in rolled
        assert all(json.loads(line)["message"].startswith("filler") for line in rolled.splitlines())
        assert len(rolled) <= 2000 + 300
