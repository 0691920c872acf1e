"""Every route of the gateway's route table refuses a query parameter it does not take:
400 `validation_error` naming it, before the handler runs. Generated from
`gateway.routing.ROUTES`, so a new route is covered the day it is declared."""
import re

import gateway.service  # noqa: F401  (declares every route)
from gateway.routing import ROUTES
from tests.e2e.test_auth_api import _error
from tests.e2e.test_grpc_api import at


def test_every_route_refuses_an_unknown_query_parameter(api):
    admin = api.admin_token()  # holds every permission: nothing refuses before the parameter
    place = api.place()
    user, tokens = api.customer()
    booked = api.book(tokens["access_token"], place["id"], at(45, 9), at(45, 11))
    assert booked.status_code == 201, booked.text
    reservation = booked.json()
    ids = {"place_id": place["id"], "reservation_id": reservation["id"], "user_id": user["id"],
           "payment_id": reservation["payment_id"], "role_id": 1}

    assert len(ROUTES) >= 30, "the route table is missing routes"
    for spec in ROUTES:
        path = re.sub(r"\{(\w+)\}", lambda m: str(ids[m.group(1)]), spec.path)
        response = api.request(spec.method, f"{path}?bogus=1", token=admin, json={} if spec.body else None)
        error = _error(response, 400, "validation_error")
        # (a route whose own parameters are missing names them too: availability's from/to)
        assert error["details"].get("bogus") == ["Unknown field."], (spec.method, spec.path, error)

    # Refused before any handler ran: nothing was deleted, cancelled or signed out.
    assert api.get(f"/v1/places/{place['id']}", token=admin).json() == place
    assert api.get(f"/v1/reservations/{reservation['id']}", token=admin).json()["status"] == "confirmed"
    assert api.get("/v1/users/me", token=admin).status_code == 200
    assert api.get("/v1/users/me?limit=1", token=tokens["access_token"]).status_code == 400
