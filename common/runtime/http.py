"""nameko's @http, made to speak our API: JSON error bodies for every failure (including
unknown routes), a request-body size limit, JSON responses from plain values, and for every
request a correlation id (X-Request-ID, echoed back), the client's address (through
TRUSTED_PROXY_HOPS proxies), an access log line and metrics. Every response, errors and
unknown routes included, carries the security headers, and a JSON body may nest only so deep
(docs/security.md)."""
import ipaddress
import json
import logging
import re
import time

import nameko
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Request, Response

from common.errors import EXPECTED_ERRORS, ValidationError
from common.logs import CONTEXT_KEY, RESPONSE_HEADER, correlation_id_from
from common.runtime.http_errors import error_response
from common.runtime.metrics import observe_http

DEFAULT_MAX_BODY = 1024 * 1024
# Our deepest body nests 3 levels; Python's json recurses per level and fails near 1000.
DEFAULT_MAX_JSON_DEPTH = 32
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    # Answers carry tokens and personal data: no browser or proxy may keep a copy.
    "Cache-Control": "no-store",
}
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"')
_NOT_A_BRACKET = re.compile(rb"[^\[\]{}]++")
QUIET_ROUTES = {"/health", "/ready", "/ready/gateway", "/metrics"}
UNMATCHED_ROUTE = "<unmatched>"  # one label for every unknown path: paths are unbounded, labels must not be
_RULE_PARAMETER = re.compile(r"<(?:[^:<>]+:)?(\w+)>")

access_log = logging.getLogger("gateway.access")


class JsonWsgiApp(WsgiApp):
    def __init__(self, server):
        super().__init__(server)
        self.security_headers = security_headers(nameko.config.get("GATEWAY") or {})

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        request = Request(environ, shallow=True)
        # Taken from the caller when it sends a usable one, so its own logs line up with ours.
        request.correlation_id = correlation_id_from(request.headers)
        adapter = self.url_map.bind_to_environ(environ)
        try:
            provider, values = adapter.match()
        except HTTPException as exc:
            response, route = error_response(_unknown_path_or(adapter, exc)), UNMATCHED_ROUTE
        else:
            request.path_values = values
            response, route = provider.handle_request(request), provider.route
        response.headers[RESPONSE_HEADER] = request.correlation_id
        for name, value in self.security_headers.items():
            response.headers.setdefault(name, value)
        _observe(request, route, response.status_code, time.perf_counter() - started)
        return response(environ, start_response)


class ClientAddress(ProxyFix):
    """werkzeug's ProxyFix for X-Forwarded-For alone: REMOTE_ADDR becomes the address the
    outermost of `hops` trusted proxies saw, the `hops`-th entry from the right (each proxy
    appends its peer, so what a client writes itself lies further left). Fewer entries than
    hops leave the peer's address (werkzeug's rule), and so does an entry that is no IP
    address, so a misconfigured chain never hands the per-address limits a made-up key.
    X-Forwarded-Proto, -Host, -Port and -Prefix stay unread (docs/security.md)."""

    def __init__(self, app, hops):
        super().__init__(self._keep_the_peer_unless_an_address, x_for=hops, x_proto=0)
        self.wrapped = app

    def _keep_the_peer_unless_an_address(self, environ, start_response):
        try:
            ipaddress.ip_address(environ.get("REMOTE_ADDR") or "")
        except ValueError:
            environ["REMOTE_ADDR"] = environ["werkzeug.proxy_fix.orig"]["REMOTE_ADDR"]
        return self.wrapped(environ, start_response)


class JsonWebServer(WebServer):
    def get_wsgi_app(self):
        # The one place the client's address is decided: request.remote_addr is it from here on
        # (auth's per-address limits, the access line).
        app = JsonWsgiApp(self)
        hops = trusted_proxy_hops(nameko.config.get("GATEWAY") or {})
        return ClientAddress(app, hops) if hops else app

    def get_wsgi_server(self, sock, wsgi_app, **kwargs):
        server = super().get_wsgi_server(sock, wsgi_app, **kwargs)
        # eventlet's wsgi.Server logs its own access line for every request (nameko.web.server,
        # INFO), a second one beside ours, without route or correlation id. Only that line
        # obeys `log_output` at request time; eventlet's error lines still go to its log.
        server.log_output = False
        return server

    def context_data_from_headers(self, request):
        # The worker's context data: nameko copies it into every RPC call and event it causes.
        return {CONTEXT_KEY: request.correlation_id}


class JsonHttp(HttpRequestHandler):
    """An HTTP entrypoint whose failures are always our documented error shape."""

    server = JsonWebServer()

    def __init__(self, method, url, **kwargs):
        kwargs.setdefault("expected_exceptions", EXPECTED_ERRORS)
        super().__init__(method, url, **kwargs)

    def setup(self):
        super().setup()
        gateway = nameko.config.get("GATEWAY") or {}
        self.max_body = int(gateway.get("max_body_bytes", DEFAULT_MAX_BODY))
        self.max_json_depth = int(gateway.get("max_json_depth", DEFAULT_MAX_JSON_DEPTH))
        self.route = route_label(self.url)

    def handle_request(self, request):
        # Werkzeug refuses (413) to read more than this, whether or not Content-Length is sent.
        request.max_content_length = self.max_body
        if getattr(request.environ["wsgi.input"], "chunked_input", False):
            # eventlet ends a chunked body itself; unless told so, werkzeug reads it as empty.
            request.environ["wsgi.input_terminated"] = True
        request.shallow = False
        try:
            body = request.get_data(cache=True)
            # A chunked body is cut at the limit, not refused: whatever is left makes it 413.
            if len(body) >= self.max_body and request.environ["wsgi.input"].read(1):
                raise RequestEntityTooLarge()
            # Checked before any parser sees the body: deep nesting exhausts json's recursion.
            if nests_deeper_than(body, self.max_json_depth):
                raise ValidationError("The body nests too deeply", {
                    "body": [f"Nested deeper than {self.max_json_depth} levels."]})
        except (HTTPException, ValidationError) as exc:  # too large (413) or too deep (400)
            return error_response(exc)
        return super().handle_request(request)

    def response_from_result(self, result):
        if isinstance(result, Response):
            return result
        status, payload = result if isinstance(result, tuple) else (200, result)
        if status == 204:
            return Response(status=204)
        return json_response(payload, status)

    def response_from_exception(self, exc):
        return error_response(exc)


http = JsonHttp.decorator


def security_headers(gateway_config):
    """The headers every response carries; HSTS only when configured (served over HTTPS)."""
    headers = dict(SECURITY_HEADERS)
    max_age = int(gateway_config.get("hsts_max_age_seconds") or 0)
    if max_age > 0:
        headers["Strict-Transport-Security"] = f"max-age={max_age}; includeSubDomains"
    return headers


def trusted_proxy_hops(gateway_config):
    """How many proxies in front of the gateway append to X-Forwarded-For: 0 (the default)
    trusts no such header, the client is the socket's peer. A setting that is no count stops
    the gateway at start, rather than trust more or fewer addresses than meant."""
    setting = gateway_config.get("trusted_proxy_hops") or 0
    if isinstance(setting, bool) or not str(setting).strip().isdecimal():
        raise SystemExit(f"TRUSTED_PROXY_HOPS: {setting!r} is not a number of proxies (0, 1, 2, …; "
                         f"docs/security.md)")
    return int(setting)


def nests_deeper_than(raw, limit):
    """Whether the JSON text `raw` nests arrays and objects more than `limit` levels deep
    (brackets inside strings do not count). Linear in its size; it need not be valid JSON."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False  # too few brackets to nest that deep: the common case, decided in C
    depth = 0
    for bracket in _NOT_A_BRACKET.sub(b"", _JSON_STRING.sub(b"", raw)):
        depth += 1 if bracket in b"[{" else -1
        if depth > limit:
            return True
    return False


def route_label(rule):
    """The label of an endpoint's metrics: its declared path, `{reservation_id}` and all
    (never the real path: one series per reservation would swamp Prometheus)."""
    return _RULE_PARAMETER.sub(r"{\1}", rule)


def _unknown_path_or(adapter, exc):
    """werkzeug answers 405 once a path has the shape of a route, before the route's converter
    has read the id: `DELETE /v1/reservations/0` would be 405 while `GET` of it is 404. A path
    that no method of it would accept is unknown: 404 whatever the method."""
    if not (isinstance(exc, MethodNotAllowed) and exc.valid_methods):
        return exc
    for method in exc.valid_methods:
        try:
            adapter.match(method=method)
        except (NotFound, MethodNotAllowed):
            # Refused for this method too: werkzeug may answer 405 again, naming the rules
            # of other methods whose pattern, not converter, the path fits.
            continue
        except HTTPException:
            return exc  # another answer (a redirect, say) means the path is known
        return exc
    return NotFound()


def _observe(request, route, status, seconds):
    observe_http(request.method, route, status, seconds)
    # Probes and scrapes come every few seconds: at INFO they would drown the real traffic.
    level = logging.DEBUG if route in QUIET_ROUTES else logging.INFO
    duration_ms = round(seconds * 1000, 1)
    # The one line per request (docs/observability.md): the message alone tells a person what
    # happened and how long it took; the fields are for log stores.
    access_log.log(level, "%s %s %s %s %.1f ms", request.remote_addr, request.method, request.path, status,
                   duration_ms, extra={
                       "correlation_id": request.correlation_id, "client_address": request.remote_addr,
                       "method": request.method, "path": request.path, "route": route, "status": status,
                       "duration_ms": duration_ms})


def json_response(payload, status=200, headers=None):
    return Response(json.dumps(payload, default=str), status=status, headers=headers,
                    mimetype="application/json")
