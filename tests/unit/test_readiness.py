"""/ready names each dependency: the broker, each service, and each service's database;
/ready/gateway only what this gateway needs (the broker and auth)."""
import json

import nameko
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from common.errors import ServiceUnavailable
from common.storage.engines import Sessions
from gateway.routes.system import READY_SERVICES, SystemRoutes

UNREACHABLE_BROKER = "amqp://guest:guest@127.0.0.1:1/"  # nothing listens on port 1


class _Service:
    def __init__(self, answer):
        self.answer = answer

    def within(self, seconds):
        return self

    def ping(self, deep=False):
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer if deep else "pong"


class _Gateway(SystemRoutes):
    def __init__(self, broker="ok", **answers):
        for name in READY_SERVICES:
            setattr(self, name, _Service(answers.get(name, {"status": "ok", "database": "ok"})))
        self.broker_state = broker

    def _broker(self):
        return self.broker_state


def _ready(gateway):
    response = gateway.ready(Request(EnvironBuilder(path="/ready").get_environ()))
    return response.status_code, json.loads(response.get_data())


def test_ready_when_the_broker_every_service_and_every_database_answer():
    status, body = _ready(_Gateway())
    assert status == 200 and body["status"] == "ok"
    assert body["checks"] == {"broker": "ok", **{name: {"status": "ok", "database": "ok"} for name in READY_SERVICES}}
    assert body["services"] == {name: "ok" for name in READY_SERVICES}


def test_a_service_whose_database_is_down_or_a_silent_service_makes_it_unready_and_says_which():
    status, body = _ready(_Gateway(
        payments={"status": "unavailable", "database": "unavailable: OperationalError"},
        notifications=ServiceUnavailable("The notifications service is not running")))
    assert status == 503 and body["status"] == "unavailable"
    assert body["checks"]["payments"] == {"status": "unavailable", "database": "unavailable: OperationalError"}
    assert body["checks"]["notifications"]["status"].startswith("unavailable: ")
    assert body["checks"]["auth"] == {"status": "ok", "database": "ok"}
    assert body["services"]["payments"] == "unavailable" and body["services"]["auth"] == "ok"


def test_an_unreachable_broker_makes_it_unready():
    class Gateway(_Gateway):
        _broker = SystemRoutes._broker  # the real check, against a port where nothing listens

    with nameko.config.patch({"AMQP_URI": UNREACHABLE_BROKER}):
        status, body = _ready(Gateway())
    assert status == 503 and body["checks"]["broker"].startswith("unavailable: ")


def test_a_database_reports_itself_ok_or_unavailable_with_only_the_error_type(tmp_path):
    sessions = Sessions.for_url(f"sqlite:///{tmp_path}/ready.db")
    assert sessions.health() == {"status": "ok", "database": "ok"}
    sessions.dispose()
    down = Sessions.for_url("mysql+pymysql://bookify:secret@127.0.0.1:1/nothing")
    report = down.health()
    assert report == {"status": "unavailable", "database": "unavailable: OperationalError"}
    assert "secret" not in json.dumps(report)
    down.dispose()


# -- /ready/gateway: what this gateway needs, not the whole system ----------------------------

def _gateway_ready(gateway):
    response = gateway.gateway_ready(Request(EnvironBuilder(path="/ready/gateway").get_environ()))
    return response.status_code, json.loads(response.get_data())


def test_the_gateway_is_ready_without_notifications_or_payments_while_ready_says_the_system_is_not():
    gateway = _Gateway(notifications=ServiceUnavailable("The notifications service is not running"),
                       payments={"status": "unavailable", "database": "unavailable: OperationalError"})
    status, body = _gateway_ready(gateway)
    assert status == 200 and body == {"status": "ok", "checks": {"broker": "ok", "auth": "ok"}}
    assert _ready(gateway)[0] == 503


def test_the_gateway_is_not_ready_when_auth_does_not_answer():
    status, body = _gateway_ready(_Gateway(auth=ServiceUnavailable("The auth service is not running")))
    assert status == 503 and body["status"] == "unavailable"
    assert body["checks"]["auth"].startswith("unavailable: ") and body["checks"]["broker"] == "ok"


def test_the_gateway_is_not_ready_when_it_cannot_reach_the_broker():
    class Gateway(_Gateway):
        _broker = SystemRoutes._broker

    with nameko.config.patch({"AMQP_URI": UNREACHABLE_BROKER}):
        status, body = _gateway_ready(Gateway())
    assert status == 503 and body["checks"]["broker"].startswith("unavailable: ")
    assert body["checks"]["auth"] == "ok"


def test_the_openapi_document_describes_both_readiness_reports():
    from gateway.openapi import build_spec

    spec = build_spec()
    for path in ("/ready", "/ready/gateway"):
        responses = spec["paths"][path]["get"]["responses"]
        for status in ("200", "503"):
            assert responses[status]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Readiness"}, (path, status)
    assert {"status", "checks"} <= set(spec["components"]["schemas"]["Readiness"]["properties"])
