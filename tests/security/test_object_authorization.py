"""Broken object level authorization (OWASP API1), generated from the gateway's route table:
for every route with an id in its path, an object is made for the test and two attackers
try it: another customer, and an admin-category user whose role holds every permission but
the one that would let them. A route guarded by a permission answers them 403; a route over
someone's own objects answers 404, exactly as for an id that does not exist; the shared
catalogue (places) is readable by every signed-in user, as the contract says. Then the
rightful caller succeeds on the same id, so no 403/404 above was about a missing object.

A new route with an id fails `test_every_route_with_an_id_has_a_recipe` until it gets one."""
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

import gateway.service  # noqa: F401  (declares every route)
from common.permissions import PERMISSIONS
from gateway.routing import PATH_PARAMETER, ROUTES
from tests.security.conftest import error_of

MISSING_ID = 999_999_999

OWNED = "owned"          # someone's own object: others get 404 unless they hold `grants`
CATALOGUE = "catalogue"  # readable by every signed-in user
GUARDED = "guarded"      # the route demands a permission: 403 without it


def at(days, hour):
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return today + timedelta(days=days, hours=hour)


class World:
    """The objects and callers of one test, made on the running stack."""

    def __init__(self, api):
        self.api = api
        self.admin = api.admin_token()
        self.owner_user, tokens = api.customer()
        self.owner = tokens["access_token"]
        self.days = iter(range(20, 400))

    def place(self):
        return self.api.place()["id"]

    def reservation(self):
        day = next(self.days)
        response = self.api.book(self.owner, self.place(), at(day, 10), at(day, 11))
        assert response.status_code == 201, response.text
        return response.json()

    def role(self):
        response = self.api.post("/v1/roles", token=self.admin, json={
            "name": f"Target {uuid.uuid4().hex[:8]}", "category": "customer", "permissions": []})
        assert response.status_code == 201, response.text
        return response.json()["id"]


@dataclass(frozen=True)
class Recipe:
    kind: str
    make: object                 # World -> the id to put in the path
    body: object = None          # World -> the JSON body the rightful caller would send
    query: dict | None = None
    grants: str | None = None    # for OWNED: the permission that reaches others' objects
    success: int = 200


def _reschedule(world):
    day = next(world.days)
    return {"start": at(day, 14).isoformat(), "end": at(day, 15).isoformat()}


DAY = at(30, 0)
RECIPES = {
    ("GET", "/v1/reservations/{reservation_id}"): Recipe(
        OWNED, lambda w: w.reservation()["id"], grants="reservations:read_any"),
    ("PATCH", "/v1/reservations/{reservation_id}"): Recipe(
        OWNED, lambda w: w.reservation()["id"], body=_reschedule, grants="reservations:manage_any"),
    ("POST", "/v1/reservations/{reservation_id}/cancel"): Recipe(
        OWNED, lambda w: w.reservation()["id"], body=lambda w: {"reason": "changed plans"},
        grants="reservations:manage_any"),
    ("GET", "/v1/payments/{payment_id}"): Recipe(
        OWNED, lambda w: w.reservation()["payment_id"], grants="payments:read_any"),
    ("GET", "/v1/places/{place_id}"): Recipe(CATALOGUE, World.place),
    ("GET", "/v1/places/{place_id}/availability"): Recipe(
        CATALOGUE, World.place,
        query={"from": DAY.isoformat(), "to": (DAY + timedelta(hours=12)).isoformat()}),
    ("PATCH", "/v1/places/{place_id}"): Recipe(GUARDED, World.place, body=lambda w: {"name": "Renamed"}),
    ("DELETE", "/v1/places/{place_id}"): Recipe(GUARDED, World.place, success=204),
    ("PATCH", "/v1/roles/{role_id}"): Recipe(
        GUARDED, World.role, body=lambda w: {"name": f"Renamed {uuid.uuid4().hex[:8]}"}),
    ("DELETE", "/v1/roles/{role_id}"): Recipe(GUARDED, World.role, success=204),
    ("PUT", "/v1/users/{user_id}/roles"): Recipe(
        GUARDED, lambda w: w.owner_user["id"], body=lambda w: {"roles": [{"name": "Free"}]}),
    # The rightful call reactivates (a no-op), so the owner stays usable for the other recipes.
    ("PATCH", "/v1/users/{user_id}"): Recipe(
        GUARDED, lambda w: w.owner_user["id"], body=lambda w: {"is_active": True}),
}

ROUTES_WITH_AN_ID = {route.method + " " + route.path: route for route in ROUTES
                     if PATH_PARAMETER.search(route.path)}


def test_every_route_with_an_id_has_a_recipe():
    assert set(ROUTES_WITH_AN_ID) == {f"{method} {path}" for method, path in RECIPES}
    print(f"{len(RECIPES)} routes with an id x 2 attackers")


def test_recipes_agree_with_the_route_table():
    # A recipe's kind follows the table: a permission on the route makes it GUARDED.
    for (method, path), recipe in RECIPES.items():
        route = ROUTES_WITH_AN_ID[f"{method} {path}"]
        assert (recipe.kind == GUARDED) == (route.permission is not None), (method, path)
        assert (recipe.grants is not None) == (recipe.kind == OWNED), (method, path)
        assert recipe.success == route.status, (method, path)


@pytest.fixture(scope="module")
def world(stack):
    return World(stack)


@pytest.fixture(scope="module")
def admins_lacking(stack, world):
    """An admin-category user per permission, whose role holds every permission but that one."""
    made = {}

    def admin_lacking(permission):
        if permission not in made:
            role = stack.post("/v1/roles", token=world.admin, json={
                "name": f"Admin without {permission} {uuid.uuid4().hex[:6]}", "category": "admin",
                "permissions": sorted(set(PERMISSIONS) - {permission})})
            assert role.status_code == 201, role.text
            email, password = f"admin-{uuid.uuid4().hex[:10]}@example.com", "admin-password-1"
            user = stack.post("/v1/users", token=world.admin, json={
                "email": email, "password": password, "roles": [{"id": role.json()["id"]}]})
            assert user.status_code == 201, user.text
            made[permission] = stack.login(email, password)["access_token"]
        return made[permission]

    return admin_lacking


@pytest.mark.parametrize("method, path", sorted(RECIPES), ids=lambda value: value)
def test_other_callers_cannot_reach_the_object(stack, world, admins_lacking, method, path):
    route, recipe = ROUTES_WITH_AN_ID[f"{method} {path}"], RECIPES[(method, path)]
    object_id = recipe.make(world)
    body = recipe.body(world) if recipe.body else None
    if recipe.kind == CATALOGUE:
        # Nothing in the catalogue is anyone's own; drop one permission all the same.
        lacking = "places:manage"
    else:
        lacking = route.permission or recipe.grants
    _, other_tokens = stack.customer()
    attackers = {"another customer": other_tokens["access_token"],
                 f"an admin without {lacking}": admins_lacking(lacking)}

    def call(token, target):
        return stack.request(method, PATH_PARAMETER.sub(str(target), path), token=token,
                             params=recipe.query, json=body)

    for attacker, token in attackers.items():
        response = call(token, object_id)
        if recipe.kind == GUARDED:
            assert error_of(response, 403, "forbidden")["details"] == {"permission": route.permission}, attacker
        elif recipe.kind == OWNED:
            # Indistinguishable from an id that does not exist: existence is not revealed.
            missing = error_of(call(token, MISSING_ID), 404, "not_found")
            found = error_of(response, 404, "not_found")
            assert found["message"] == missing["message"], attacker
        else:
            assert response.status_code == 200, (attacker, response.text)

    rightful = world.admin if recipe.kind == GUARDED else world.owner
    response = call(rightful, object_id)
    assert response.status_code == recipe.success, response.text
