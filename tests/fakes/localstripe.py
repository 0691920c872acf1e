"""A real localstripe process for tests (the stateful Stripe emulator from PyPI), plus what
tests need around it: webhook endpoints, a webhook inbox, and a link that can go slow."""
import hashlib
import hmac
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import eventlet
from eventlet import wsgi


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalStripe:
    """`localstripe --port <free port> --from-scratch` as a child process."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None

    def start(self, timeout=30.0):
        executable = Path(sys.executable).parent / "localstripe"
        self.process = subprocess.Popen(
            [str(executable), "--port", str(self.port), "--from-scratch"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while not _answers("127.0.0.1", self.port):
            if self.process.poll() is not None:
                raise RuntimeError(f"localstripe exited with {self.process.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"localstripe did not answer on port {self.port}")
            time.sleep(0.1)
        return self

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def register_webhook(self, endpoint_id, url, secret, events=None):
        """Have localstripe POST its events, signed with `secret`, to `url`."""
        body = {"url": url, "secret": secret}
        if events is not None:
            body["events"] = list(events)
        self._request("POST", f"/_config/webhooks/{endpoint_id}", body)

    def reset(self):
        """Empty localstripe's store (webhook endpoints stay registered)."""
        self._request("DELETE", "/_config/data")

    def _request(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read()


class WebhookInbox:
    """An HTTP endpoint that keeps every webhook POSTed to it: (payload text, Stripe-Signature)."""

    def __init__(self):
        self.listener = eventlet.listen(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/stripe"
        self.received = []
        self._server = eventlet.spawn(wsgi.server, self.listener, self._app, log_output=False)

    def _app(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        payload = environ["wsgi.input"].read(length).decode("utf-8")
        self.received.append((payload, environ.get("HTTP_STRIPE_SIGNATURE", "")))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    def wait_for(self, event_type, where=lambda stripe_object: True, timeout=10.0):
        """The first webhook received of `event_type` whose data.object satisfies `where`:
        (payload, signature)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for payload, signature in self.received:
                event = json.loads(payload)
                if event.get("type") == event_type and where(event["data"]["object"]):
                    return payload, signature
            eventlet.sleep(0.05)
        raise AssertionError(f"no {event_type} webhook within {timeout}s; got {len(self.received)}")

    def close(self):
        self._server.kill()
        self.listener.close()


class SlowLink:
    """A TCP link to localstripe whose answers can be held back: while `delay` is set,
    requests reach localstripe (which acts on them) but answers come `delay` seconds late,
    so a caller with a shorter timeout gives up on a request Stripe did carry out."""

    def __init__(self, upstream_port, delay=0.0, spare=()):
        self.upstream = ("127.0.0.1", upstream_port)
        self.delay = delay
        # Requests starting with one of these (b"POST /v1/customers") are answered at once.
        self.spare = tuple(spare)
        self.connections = 0  # accepted so far
        self.listener = eventlet.listen(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self._acceptor = eventlet.spawn(self._accept)

    def _accept(self):
        while True:
            client, _ = self.listener.accept()
            self.connections += 1
            upstream = eventlet.connect(self.upstream)
            asked = {"request": b""}  # the start of the request last sent on this connection
            eventlet.spawn(self._pipe, client, upstream, False, asked)
            eventlet.spawn(self._pipe, upstream, client, True, asked)

    def _pipe(self, source, target, held, asked):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if not held and data[:8].split(b" ")[0] in (b"GET", b"POST", b"DELETE"):
                    asked["request"] = data[:200]
                if held and self.delay and not asked["request"].startswith(self.spare or (b"\0",)):
                    eventlet.sleep(self.delay)
                target.sendall(data)
        except OSError:
            pass
        finally:
            try:  # the other pipe greenthread closes `target` when it sees EOF
                target.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            source.close()

    def close(self):
        self._acceptor.kill()
        self.listener.close()


def stripe_signature(payload, secret, timestamp=None):
    """A `Stripe-Signature` header value, computed as Stripe computes it:
    HMAC-SHA256 of "<timestamp>.<payload>" keyed with the endpoint's secret."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _answers(host, port):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False
