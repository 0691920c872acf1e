"""One access line per HTTP request: the gateway's own (method, path, route, status,
duration, correlation id), and not a second one from eventlet's WSGI server."""
import logging

import requests

from gateway.service import GatewayService
from tests.e2e.conftest import free_port

REQUESTS = 7


def test_each_request_gets_exactly_one_access_line(service_config, container_factory, caplog):
    port = free_port()
    container = container_factory(GatewayService, dict(service_config, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}"))
    container.start()
    with caplog.at_level(logging.DEBUG):
        for number in range(REQUESTS):
            response = requests.get(f"http://127.0.0.1:{port}/v1/no-such-thing/{number}", timeout=5,
                                    headers={"X-Request-ID": f"access-line-{number}"})
            assert response.status_code == 404
        response = requests.get(f"http://127.0.0.1:{port}/health", timeout=5,
                                headers={"X-Request-ID": "access-line-health"})
        assert response.status_code == 200
        container.stop()  # every request's lines are written by then

    server_side = [record for record in caplog.records if not record.name.startswith("urllib3")]  # the client's
    for number in range(REQUESTS):
        path = f"/v1/no-such-thing/{number}"
        lines = [record for record in server_side if path in record.getMessage()]
        assert len(lines) == 1, [(record.name, record.getMessage()) for record in lines]
        [line] = lines
        assert (line.name, line.levelno) == ("gateway.access", logging.INFO)
        assert (line.method, line.path, line.route, line.status) == ("GET", path, "<unmatched>", 404)
        assert line.correlation_id == f"access-line-{number}"
        assert line.duration_ms >= 0 and f"GET {path} 404 " in line.getMessage()
    # A probe's line is at DEBUG, and still only one.
    health = [record for record in server_side if "/health" in record.getMessage()]
    assert [(record.name, record.levelno, record.correlation_id) for record in health] == [
        ("gateway.access", logging.DEBUG, "access-line-health")]
