"""What the provider fakes share: a local eventlet WSGI server on a free port that records
accepted messages and wrongly shaped requests, and can be told to fail for a while."""
import json
import time
from abc import ABC, abstractmethod

import eventlet
from eventlet import wsgi


class HttpFake(ABC):
    what = "messages"

    def __init__(self):
        self.messages = []   # accepted
        self.errors = []     # requests of the wrong shape: (reason, path)
        self.failures = []   # injected failures answered: status
        self._fail = []
        self.listener = eventlet.listen(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self._server = eventlet.spawn(wsgi.server, self.listener, self._app, log_output=False)

    def fail_next(self, count, status=503):
        """Answer the next `count` well-formed requests with `status` instead of accepting them."""
        self._fail.extend([status] * count)

    def wait_for(self, count, timeout=10.0):
        """The accepted messages once there are `count` of them (AssertionError after `timeout`)."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            eventlet.sleep(0.02)
        assert len(self.messages) >= count, f"{len(self.messages)} {self.what}, wanted {count}; errors {self.errors}"
        return self.messages

    def close(self):
        self._server.kill()
        self.listener.close()

    def _injected_failure(self):
        """The status to fail this request with, if a failure is due."""
        if self._fail:
            status = self._fail.pop(0)
            self.failures.append(status)
            return status
        return None

    @abstractmethod
    def _app(self, environ, start_response):
        """The WSGI app of the provider's API."""


def answer(start_response, status, document):
    payload = json.dumps(document).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
    return [payload]
