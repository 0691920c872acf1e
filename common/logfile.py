"""Where a process's log lines go: standard error as usual, or under `make run` a file of its
own (BOOKIFY_LOG_FILE) that rolls over past a size so a long run cannot fill the disk.
Imports no nameko: localstripe's process uses it too."""
import logging
import os
import sys
from logging.handlers import RotatingFileHandler

LOG_FILE_VARIABLE = "BOOKIFY_LOG_FILE"
MAX_BYTES_VARIABLE = "LOG_FILE_MAX_BYTES"
BACKUPS_VARIABLE = "LOG_FILE_BACKUPS"
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_BACKUPS = 3


class LogFile(RotatingFileHandler):
    """A log file rolled over once it has passed `max_bytes`: `x.log` becomes `x.log.1`, the
    older ones shift up to `x.log.<backups>`, and the oldest is dropped.

    With `take_output`, the process's own standard output and error follow the current file:
    what Python prints outside logging (a crash's traceback, a warning at import) lands next to
    the log lines around it, never in a file already rolled away."""

    def __init__(self, path, max_bytes=DEFAULT_MAX_BYTES, backups=DEFAULT_BACKUPS, take_output=False):
        self.take_output = take_output  # before super(): it opens the file
        super().__init__(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")

    def _open(self):
        stream = super()._open()
        if self.take_output:
            for python_stream, fd in ((sys.stdout, 1), (sys.stderr, 2)):
                try:
                    python_stream.flush()
                except (AttributeError, OSError, ValueError):
                    pass
                os.dup2(stream.fileno(), fd)
        return stream

    def shouldRollover(self, record):
        # Checked against what the file holds (raw output included), before each line; the
        # stock check formats every record twice to measure it first.
        if self.stream is None:
            self.stream = self._open()
        return self.maxBytes > 0 and self.stream.seek(0, os.SEEK_END) >= self.maxBytes


def log_file_from(environ=None):
    """The LogFile that BOOKIFY_LOG_FILE names (sized by LOG_FILE_MAX_BYTES and
    LOG_FILE_BACKUPS), taking over the process's output; None when it is unset."""
    environ = os.environ if environ is None else environ
    path = environ.get(LOG_FILE_VARIABLE)
    if not path:
        return None
    return LogFile(path, max_bytes=int(environ.get(MAX_BYTES_VARIABLE) or DEFAULT_MAX_BYTES),
                   # With no backup a rollover would only reopen the same file: keep one at least.
                   backups=max(1, int(environ.get(BACKUPS_VARIABLE) or DEFAULT_BACKUPS)), take_output=True)


def output_handler():
    """The handler of config.yaml's LOGGING: the process's own file under `make run`, else
    standard error."""
    return log_file_from() or logging.StreamHandler()
