"""nameko's @http, made to speak our API: JSON error bodies for every failure (including
unknown routes), a request-body size limit, and JSON responses from plain values."""
import json

import nameko
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request, Response

from common.errors import EXPECTED_ERRORS
from gateway.errors import error_response

DEFAULT_MAX_BODY = 1024 * 1024


class JsonWsgiApp(WsgiApp):
    def __call__(self, environ, start_response):
        request = Request(environ, shallow=True)
        adapter = self.url_map.bind_to_environ(environ)
        try:
            provider, values = adapter.match()
        except HTTPException as exc:
            return error_response(exc)(environ, start_response)
        request.path_values = values
        return provider.handle_request(request)(environ, start_response)


class JsonWebServer(WebServer):
    def get_wsgi_app(self):
        return JsonWsgiApp(self)


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

    def handle_request(self, request):
        # Werkzeug refuses (413) to read more than this, whether or not Content-Length is sent.
        request.max_content_length = self.max_body
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


def json_response(payload, status=200, headers=None):
    return Response(json.dumps(payload, default=str), status=status, headers=headers,
                    mimetype="application/json")
