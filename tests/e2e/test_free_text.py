"""Control characters in free text, refused at the HTTP door and at the operators' door
(`nameko shell`) alike: a place description took NUL and ANSI escapes while names refused
them. A description keeps its newlines and tabs."""
import uuid

from tests.e2e.test_auth_api import _error
from tests.e2e.test_grpc_api import at
from tests.e2e.test_operator_shell import nameko_shell

NUL, ESC = "\x00", "\x1b[2J\x1b[31m"


def test_free_text_refuses_control_characters_over_http(api):
    admin = api.admin_token()
    place_body = {"name": f"Room {uuid.uuid4().hex[:6]}", "unit": "hour", "unit_price": 1000, "currency": "usd"}
    for bad in (f"Nice{NUL}room", f"Nice{ESC}room", "Carriage\rreturn", "DEL\x7f", "C1\x9b"):
        error = _error(api.post("/v1/places", token=admin, json=dict(place_body, description=bad)),
                       400, "validation_error")
        assert list(error["details"]) == ["description"]
    multi_line = "Second floor.\n\tProjector and whiteboard.\nAsk at reception."
    created = api.post("/v1/places", token=admin, json=dict(place_body, description=multi_line))
    assert created.status_code == 201, created.text
    place = created.json()
    assert place["description"] == multi_line
    _error(api.request("PATCH", f"/v1/places/{place['id']}", token=admin, json={"description": NUL}),
           400, "validation_error")
    _error(api.request("PATCH", f"/v1/places/{place['id']}", token=admin, json={"name": "Room\n"}),
           400, "validation_error")
    assert api.get(f"/v1/places/{place['id']}", token=admin).json() == place  # unchanged

    user, tokens = api.customer()
    token = tokens["access_token"]
    for body in ({"name": f"Ann{ESC}"}, {"name": "Ann\n"}, {"name": "Ann\u2028"}, {"phone": "+14155550100\n"}):
        error = _error(api.request("PATCH", "/v1/users/me", token=token, json=body), 400, "validation_error")
        assert list(error["details"]) == list(body)
    assert api.get("/v1/users/me", token=token).json()["name"] == user.get("name")

    booked = api.book(token, place["id"], at(50, 9), at(50, 10))
    assert booked.status_code == 201, booked.text
    reservation = booked.json()
    for reason in (f"changed{ESC}plans", "changed\nplans", NUL):
        error = _error(api.post(f"/v1/reservations/{reservation['id']}/cancel", token=token, json={"reason": reason}),
                       400, "validation_error")
        assert list(error["details"]) == ["reason"]
    assert api.get(f"/v1/reservations/{reservation['id']}", token=token).json()["status"] == "confirmed"

    for body in ({"name": f"Ops{NUL}", "category": "admin"}, {"name": "Ops\t", "category": "admin"}):
        error = _error(api.post("/v1/roles", token=admin, json=body), 400, "validation_error")
        assert list(error["details"]) == ["name"]
    _error(api.get("/v1/users?email=%1B", token=admin), 400, "validation_error")


def test_free_text_refuses_control_characters_from_the_shell(api):
    name = f"Shell room {uuid.uuid4().hex[:6]}"
    output = nameko_shell(api, "\n".join([
        "import common.runtime.rpc  # our errors arrive typed, as docs/operators.md begins",
        "from common.errors import ValidationError",
        "def refused(call):",
        "    try:",
        "        call()",
        "    except ValidationError as error:",
        "        return sorted(error.details)",
        "    return 'accepted'",
        "",
        f"body = {{'name': {name!r}, 'unit': 'hour', 'unit_price': 1000, 'currency': 'usd'}}",
        "print('nul', refused(lambda: n.rpc.reservations.create_place(dict(body, description='a\\x00b'))))",
        "print('esc', refused(lambda: n.rpc.reservations.create_place(dict(body, description='a\\x1b[31m'))))",
        "p = n.rpc.reservations.create_place(dict(body, description='one\\n\\ttwo'))",
        "print('kept', repr(p['description']))",
        "print('patch', refused(lambda: n.rpc.reservations.update_place(p['id'], {'description': '\\x00'})))",
        "print('role', refused(lambda: n.rpc.auth.create_role({'name': 'Ops\\x1b', 'category': 'admin'})))",
        "print('user', refused(lambda: n.rpc.auth.update_profile(1, {'name': 'Root\\n'})))",
        "print('reason', refused(lambda: n.rpc.reservations.cancel_reservation(1, 'no\\x00')))",
        "print('after', repr(n.rpc.reservations.get_place(p['id'])['description']))",
    ]) + "\n")
    assert "nul ['description']" in output
    assert "esc ['description']" in output
    assert "kept 'one\\n\\ttwo'" in output
    assert "patch ['description']" in output
    assert "role ['name']" in output
    assert "user ['name']" in output
    assert "reason ['reason']" in output
    assert "after 'one\\n\\ttwo'" in output
