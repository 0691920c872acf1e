"""What the provider fakes share: a local eventlet WSGI server on a free port that records
accepted messages and wrongly shaped requests, and can be told to fail for a while (with a
`Retry-After`, as a rate limit answers) or to answer slowly (after taking the message, as a
provider that delivers but answers after the caller's timeout)."""
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
        self.attempts = []   # time.monotonic() of each well-formed request, answered or not
        self.delay = 0.0     # seconds each well-formed request waits before its answer
        self._fail = []
        self.listener = eventlet.listen(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self._server = eventlet.spawn(wsgi.server, self.listener, self._app, log_output=False)

    def fail_next(self, count, status=503, retry_after=None, headers=()):
        """Answer the next `count` well-formed requests with `status` instead of accepting them,
        with a `Retry-After: <retry_after>` header when given (seconds or an HTTP date), and any
        other `headers` ((name, value) pairs)."""
        extra = [*([] if retry_after is None else [("Retry-After", str(retry_after))]), *headers]
        self._fail.extend([(status, extra)] * count)

    def answer_after(self, seconds):
        """From now on, answer each well-formed request `seconds` after taking it (0: at once)."""
        self.delay = seconds

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
        """(status, extra headers) to fail this well-formed request with, if a failure is due;
        (None, []) to accept it. Either way it counts as an attempt."""
        self.attempts.append(time.monotonic())
        if self._fail:
            status, headers = self._fail.pop(0)
            self.failures.append(status)
            return status, headers
        return None, []

    def _pause(self):
        """The slow provider: the request is handled, its answer waits."""
        if self.delay:
            eventlet.sleep(self.delay)

    @abstractmethod
    def _app(self, environ, start_response):
        """The WSGI app of the provider's API."""


def answer(start_response, status, document, headers=()):
    payload = json.dumps(document).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload))),
                            *headers])
    return [payload]
