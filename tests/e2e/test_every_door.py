"""One validation at every door (DESIGN.md §8.1b): every HTTP route (the gateway's route
table), every gRPC method (the proto descriptors) and every operator RPC entrypoint (found on
the service classes `make run` starts) is fed wrong types, out-of-range ids and times, huge
strings and control characters, on one stack (SQLite). Each answer must be the typed error
(400 `validation_error` / INVALID_ARGUMENT / common.errors.ValidationError; an id in the path
is 404 as the route table documents), nothing may change, and no service may log an ERROR or a
traceback. The tables below say how to reach each door; a door they do not cover fails the test.
"""
import importlib
import inspect
import json
import time
from datetime import UTC, datetime

import grpc
import nameko
import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.timestamp_pb2 import Timestamp
from marshmallow import fields
from nameko.rpc import Rpc
from nameko.standalone.rpc import ClusterRpcClient

import common.runtime.rpc  # noqa: F401  (registers our errors so they arrive typed)
import gateway.service  # noqa: F401  (declares every route)
from common.contracts.auth import (
    LoginSchema,
    RefreshSchema,
    RegisterSchema,
    RoleCreateSchema,
    RoleUpdateSchema,
    UserAdminUpdateSchema,
    UserCreateSchema,
    UserFilterSchema,
    UserRolesSchema,
    UserUpdateSchema,
)
from common.contracts.notifications import NotificationQuerySchema
from common.contracts.payments import ChargeSchema
from common.contracts.reservations import (
    AvailabilityQuerySchema,
    PlaceCreateSchema,
    PlaceUpdateSchema,
    RescheduleSchema,
    ReservationCreateSchema,
    ReservationQuerySchema,
)
from common.errors import ValidationError
from common.schemas import PageQuery, UtcDateTime
from gateway.grpc_generated import auth_pb2, auth_pb2_grpc, reservations_pb2, reservations_pb2_grpc
from gateway.routing import ROUTES
from scripts.launcher import SERVICES
from tests.e2e.conftest import running_stack
from tests.e2e.test_grpc_api import CHANNEL_OPTIONS, bearer

HUGE = "a" * 100_000
CONTROL = "x\x00\x1b[31m"
TIMES_OUT_OF_RANGE = ["0001-01-01T00:00:00+14:00", "9999-12-31T20:00:00-12:00", "1969-12-31T23:59:59Z",
                      "2027-01-01T10:00:00"]  # the last one naive
IDS_OUT_OF_RANGE = [2**63, 2**70, 0, -1]
OUT_OF_RANGE = [2**63, 2**70, -1]  # for every count, amount and id (0 is a fine offset or price)
HUGE_QUERY = "a" * 4000  # beyond every field's length, within what a request line may carry
VALID = {"place_id": 1, "reservation_id": 1, "payment_id": 1, "user_id": 1, "role_id": 1}
LATER = "2030-01-01T10:00:00Z"
# Fields whose text may hold any character: a password is a secret, not something shown.
ANY_CHARACTER = {"password", "signature"}


def bad_values(name, field, in_query=False):
    """What to put in field `name` instead of a valid value, by the field's marshmallow type."""
    if isinstance(field, UtcDateTime):
        values = [*TIMES_OUT_OF_RANGE, "not a time"]
    elif isinstance(field, fields.Boolean):
        values = ["maybe"]
    elif isinstance(field, fields.Integer):
        values = ["x", "1.5", *map(str, OUT_OF_RANGE)] if in_query else ["x", 1.5, *OUT_OF_RANGE]
    elif isinstance(field, fields.List):
        values = ["x", [HUGE], [CONTROL], [[]]]
    elif isinstance(field, fields.Nested):
        values = ["x", [{"id": 2**70}], [{"name": CONTROL}]]
    else:  # text
        values = [HUGE_QUERY if in_query else HUGE] + ([] if name in ANY_CHARACTER else [CONTROL]) + \
            ([] if in_query else [5])
    return values if in_query else [*values, {"a": 1}]


def mutations(schema, base, in_query=False):
    """(label, data) pairs: `base` with one field of `schema` replaced by a bad value each."""
    for name, field in schema().fields.items():
        key = field.data_key or name
        for value in bad_values(name, field, in_query):
            yield f"{key}={str(value)[:30]!r}", key, {**base, key: value}


# -- HTTP: how to reach every route with otherwise valid input ------------------------------

_reservation = {"place_id": 1, "start": LATER, "end": "2030-01-01T12:00:00Z", "payment_method": "pm_card_visa"}
HTTP = {  # (method, path): the valid body (or query) that each bad value is put into
    ("POST", "/v1/auth/register"): {"email": "door@example.com", "password": "password-123"},
    ("POST", "/v1/auth/login"): {"email": "door@example.com", "password": "password-123"},
    ("POST", "/v1/auth/refresh"): {"refresh_token": "abc"},
    ("POST", "/v1/auth/logout"): None,
    ("GET", "/v1/notifications"): {},
    ("GET", "/v1/payments/{payment_id}"): None,
    ("POST", "/v1/webhooks/stripe"): None,
    ("POST", "/v1/places"): {"name": "Room", "unit": "hour", "unit_price": 100, "currency": "usd"},
    ("GET", "/v1/places"): {},
    ("GET", "/v1/places/{place_id}"): None,
    ("PATCH", "/v1/places/{place_id}"): {"name": "Room"},
    ("DELETE", "/v1/places/{place_id}"): None,
    ("GET", "/v1/places/{place_id}/availability"): {"from": LATER, "to": "2030-01-02T10:00:00Z"},
    ("POST", "/v1/reservations"): _reservation,
    ("GET", "/v1/reservations"): {},
    ("GET", "/v1/reservations/{reservation_id}"): None,
    ("PATCH", "/v1/reservations/{reservation_id}"): {k: v for k, v in _reservation.items() if k != "place_id"},
    ("POST", "/v1/reservations/{reservation_id}/cancel"): {"reason": "plans changed"},
    ("GET", "/v1/roles"): {},
    ("POST", "/v1/roles"): {"name": "Door", "category": "admin", "permissions": []},
    ("PATCH", "/v1/roles/{role_id}"): {"name": "Door"},
    ("DELETE", "/v1/roles/{role_id}"): None,
    ("GET", "/v1/permissions"): {},
    ("GET", "/v1/users/me"): None,
    ("PATCH", "/v1/users/me"): {"name": "Door"},
    ("POST", "/v1/users"): {"email": "door@example.com", "password": "password-123"},
    ("GET", "/v1/users"): {},
    ("PUT", "/v1/users/{user_id}/roles"): {"roles": []},
    ("PATCH", "/v1/users/{user_id}"): {"is_active": True},
    ("GET", "/health"): None,
    ("GET", "/ready"): None,
    ("GET", "/ready/gateway"): None,
    ("GET", "/metrics"): None,
    ("GET", "/openapi.json"): None,
}


def http_cases():
    """(door, label, method, path, json body or None, query, expected status, field named)."""
    for spec in ROUTES:
        door = (spec.method, spec.path)
        if door not in HTTP:
            continue
        base = HTTP[door]
        path = spec.path.format(**VALID)
        yield door, "unknown query parameter", spec.method, path, None, {"nope": "1"}, 400, "nope"
        if "{" in spec.path:
            for bad in ["x", *IDS_OUT_OF_RANGE]:
                bad_path = spec.path.format(**{key: bad for key in VALID})
                yield door, f"path id {bad}", spec.method, bad_path, None, {}, 404, None
        if spec.body is not None:
            for bad in [[1, 2], "text", 5]:
                yield door, f"body {bad!r}", spec.method, path, bad, {}, 400, "body"
            for label, key, body in mutations(spec.body, base):
                yield door, label, spec.method, path, body, {}, 400, key
        if spec.query is not None:
            for label, key, query in mutations(spec.query, base, in_query=True):
                yield door, label, spec.method, path, None, query, 400, key
    # The webhook reads its raw body: a signed-looking header on junk is refused.
    for body in ["[1,2]", CONTROL, HUGE]:
        yield (("POST", "/v1/webhooks/stripe"), f"webhook body {body[:10]!r}", "POST", "/v1/webhooks/stripe",
               body, {}, 400, None)


# -- gRPC ------------------------------------------------------------------------------------

def _ts(seconds, nanos=0):
    return Timestamp(seconds=seconds, nanos=nanos)


_later = _ts(int(datetime(2030, 1, 1, 10, tzinfo=UTC).timestamp()))
_end = _ts(int(datetime(2030, 1, 1, 12, tzinfo=UTC).timestamp()))
GRPC_TIMESTAMPS = [_ts(2**62), _ts(-2**40), _ts(0, -5), _ts(-1), _ts(-62135596800),
                   _ts(253402300799)]  # the last: 9999-12-31, beyond what the stores hold
GRPC = {  # "Service/method": (stub, request type, valid fields, fields an id in the path is)
    "Auth/login": (auth_pb2_grpc.AuthStub, auth_pb2.LoginRequest,
                   {"email": "door@example.com", "password": "password-123"}, ()),
    "Reservations/check_availability": (reservations_pb2_grpc.ReservationsStub, reservations_pb2.AvailabilityRequest,
                                        {"place_id": 1, "from": _later, "to": _end}, ()),
    "Reservations/create_reservation": (reservations_pb2_grpc.ReservationsStub,
                                        reservations_pb2.CreateReservationRequest,
                                        {"place_id": 1, "start": _later, "end": _end,
                                         "payment_method": "pm_card_visa"}, ()),
    "Reservations/get_reservation": (reservations_pb2_grpc.ReservationsStub, reservations_pb2.GetReservationRequest,
                                     {"id": 1}, ("id",)),
    "Reservations/list_reservations": (reservations_pb2_grpc.ReservationsStub,
                                       reservations_pb2.ListReservationsRequest, {}, ()),
    "Reservations/cancel_reservation": (reservations_pb2_grpc.ReservationsStub,
                                        reservations_pb2.CancelReservationRequest, {"id": 1, "reason": "x"}, ("id",)),
    "Reservations/watch_reservations": (reservations_pb2_grpc.ReservationsStub,
                                        reservations_pb2.WatchReservationsRequest, {}, ()),
    "Reservations/get_place": (reservations_pb2_grpc.ReservationsStub, reservations_pb2.GetPlaceRequest,
                               {"id": 1}, ("id",)),
    "Reservations/list_places": (reservations_pb2_grpc.ReservationsStub, reservations_pb2.ListPlacesRequest, {}, ()),
}


def grpc_doors():
    return {f"{service.name}/{method.name}": method
            for module in (auth_pb2, reservations_pb2)
            for service in module.DESCRIPTOR.services_by_name.values()
            for method in service.methods}


def grpc_bad_values(field):
    if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.full_name == "google.protobuf.Timestamp":
        return GRPC_TIMESTAMPS
    if field.type == FieldDescriptor.TYPE_ENUM:
        return [99]
    if field.type in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_INT32):
        return [-1, -2**31]
    if field.type == FieldDescriptor.TYPE_STRING:
        return [HUGE] + ([] if field.name in ANY_CHARACTER else [CONTROL])
    raise AssertionError(f"no bad values for {field.full_name}: add them here")


def grpc_cases():
    doors = grpc_doors()
    for door, (stub, request_type, base, path_ids) in GRPC.items():
        method = doors.get(door)
        if method is None:
            continue
        for field in method.input_type.fields:
            for bad in grpc_bad_values(field):
                expected = grpc.StatusCode.NOT_FOUND if field.name in path_ids else grpc.StatusCode.INVALID_ARGUMENT
                label = f"{field.name}={str(bad).strip()[:30]!r}".replace("\n", " ")
                yield door, label, stub, method, request_type(**{**base, field.name: bad}), expected


# -- operator RPCs ---------------------------------------------------------------------------

ID = ["x", "1", 1.5, True, None, [], {}, *IDS_OUT_OF_RANGE]
ACTOR = ["x", [], {}, {"user_id": 2**70}, {"user_id": "1"}, {"user_id": 1, "permissions": "x"},
         {"user_id": 1, "permissions": [CONTROL]}]
LIMIT = ["x", None, 0, -1, 2**70, 1.5, []]
BOOL = ["maybe", [], {}]
TEXT = [5, [], CONTROL, HUGE]
OBJECT = [[], "x", 5]


def obj(schema, base, optional=False):
    """Bad values for an argument that is an object loaded with `schema`."""
    return [*OBJECT, *([] if optional else [None]),
            *(data for _, _, data in mutations(schema, base))]


_place = HTTP[("POST", "/v1/places")]
_charge = {"reservation_id": 1, "user_id": 1, "amount": 100, "currency": "usd", "idempotency_key": "k"}
_actor = {"user_id": 1, "permissions": []}
AUDIT = [*OBJECT, {"since": TIMES_OUT_OF_RANGE[0]}, {"until": TIMES_OUT_OF_RANGE[1]}, {"operator": CONTROL},
         {"method": HUGE}, {"limit": 2**70}]
DEAD_LETTERS = {"list_event_dead_letters": {"limit": LIMIT}, "replay_event_dead_letters": {"limit": LIMIT}}
COMMON = {"ping": {"deep": BOOL}, "audit_log": {"query": AUDIT}}
RPC = {  # service: {entrypoint: {argument: bad values}}; the other arguments get valid values
    "auth": {
        **COMMON,
        "register": {"payload": obj(RegisterSchema, HTTP[("POST", "/v1/auth/register")])},
        "login": {"payload": obj(LoginSchema, HTTP[("POST", "/v1/auth/login")])},
        "refresh": {"payload": obj(RefreshSchema, {"refresh_token": "abc"})},
        "logout": {"user_id": ID, "session_id": [5, None, "", CONTROL, HUGE]},
        "principal": {"user_id": ID, "session_id": [5, None, "", CONTROL, HUGE]},
        "get_user": {"user_id": ID},
        "update_profile": {"user_id": ID, "payload": obj(UserUpdateSchema, {"name": "Door"})},
        "create_user": {"payload": obj(UserCreateSchema, HTTP[("POST", "/v1/users")]), "actor": ACTOR},
        "set_user_roles": {"user_id": ID, "payload": obj(UserRolesSchema, {"roles": []}), "actor": ACTOR},
        "list_users": {"query": obj(UserFilterSchema, {}, optional=True)},
        "deactivate_user": {"user_id": ID, "reason": [5, [], {}, CONTROL, "a" * 501, ""], "actor": ACTOR},
        "reactivate_user": {"user_id": ID, "actor": ACTOR},
        "end_sessions": {"user_id": ID, "actor": ACTOR},
        "update_user": {"user_id": ID, "payload": obj(UserAdminUpdateSchema, {"is_active": True}), "actor": ACTOR},
        "list_roles": {"query": obj(PageQuery, {}, optional=True)},
        "create_role": {"payload": obj(RoleCreateSchema, HTTP[("POST", "/v1/roles")]), "actor": ACTOR},
        "update_role": {"role_id": ID, "payload": obj(RoleUpdateSchema, {"name": "Door"}), "actor": ACTOR},
        "grant_permission": {"role_id": ID, "permission": [*TEXT, None, ""]},
        "revoke_permission": {"role_id": ID, "permission": [*TEXT, None, ""]},
        "delete_role": {"role_id": ID, "actor": ACTOR},
        "list_permissions": {"query": obj(PageQuery, {}, optional=True)},
    },
    "reservations": {
        **COMMON, **DEAD_LETTERS,
        "create_place": {"payload": obj(PlaceCreateSchema, _place)},
        "get_place": {"place_id": ID},
        "list_places": {"query": obj(PageQuery, {}, optional=True)},
        "update_place": {"place_id": ID, "payload": obj(PlaceUpdateSchema, {"name": "Room"})},
        "delete_place": {"place_id": ID},
        "availability": {"place_id": ID,
                         "query": obj(AvailabilityQuerySchema, HTTP[("GET", "/v1/places/{place_id}/availability")])},
        "create_reservation": {"actor": [*ACTOR, None], "payload": obj(ReservationCreateSchema, _reservation),
                               "idempotency_key": TEXT[:-1] + ["a" * 256, ""]},
        "get_reservation": {"reservation_id": ID, "actor": ACTOR},
        "list_reservations": {"query": obj(ReservationQuerySchema, {}, optional=True), "actor": ACTOR},
        "reschedule_reservation": {"reservation_id": ID, "actor": ACTOR, "payload": obj(
            RescheduleSchema, HTTP[("PATCH", "/v1/reservations/{reservation_id}")])},
        "cancel_reservation": {"reservation_id": ID, "reason": TEXT, "actor": ACTOR},
        "list_partner_dead_letters": {"limit": LIMIT},
        "replay_partner_dead_letters": {"limit": LIMIT},
    },
    "payments": {
        **COMMON,
        "charge": {"payload": obj(ChargeSchema, _charge)},
        "refund": {"payment_id": ID, "amount": ["x", 0, -1, 2**70, 1.5], "reason": TEXT,
                   "idempotency_key": TEXT + [""], "at_most_remaining": BOOL},
        "get_payment": {"payment_id": ID, "actor": ACTOR},
        "payments_for_reservation": {"reservation_id": ID},
        "reconcile": {"payment_id": ID},
        "handle_stripe_webhook": {"payload": [5, [], None, "", "a" * 1_048_577], "signature": [5, [], {}]},
    },
    "notifications": {
        **COMMON, **DEAD_LETTERS,
        "list_notifications": {"query": obj(NotificationQuerySchema, {}, optional=True), "actor": ACTOR},
        "list_failed": {"limit": LIMIT},
        "list_dead_letters": {"limit": LIMIT},
        "replay_dead_letters": {"notification_ids": ["x", 5, [0], [2**70], ["1"], [None], {}]},
    },
}
VALID_ARGUMENTS = {**VALID, "session_id": "5b0c", "actor": _actor, "payload": {}, "query": None, "reason": None,
                   "idempotency_key": None, "permission": "users:read", "signature": "t=1,v1=0"}
# Valid payloads where one is validated before the argument being spoilt.
VALID_PAYLOADS = {"create_user": HTTP[("POST", "/v1/users")], "set_user_roles": {"roles": []},
                  "update_user": {"is_active": True},
                  "create_role": HTTP[("POST", "/v1/roles")], "create_reservation": _reservation,
                  "reschedule_reservation": HTTP[("PATCH", "/v1/reservations/{reservation_id}")],
                  "handle_stripe_webhook": "{}", "availability": HTTP[("GET", "/v1/places/{place_id}/availability")]}


def rpc_doors():
    """{service name: {entrypoint name: signature}} of the services `make run` starts."""
    doors = {}
    for spec in SERVICES:
        module_name, _, class_name = spec.partition(":")
        module = importlib.import_module(module_name)
        classes = [getattr(module, class_name)] if class_name else [
            cls for cls in vars(module).values() if inspect.isclass(cls) and cls.__module__ == module_name
            and isinstance(getattr(cls, "name", None), str)]
        for cls in classes:
            for name in dir(cls):
                entrypoints = getattr(getattr(cls, name), "nameko_entrypoints", ())
                if any(isinstance(entrypoint, Rpc) for entrypoint in entrypoints):
                    doors.setdefault(cls.name, {})[name] = inspect.signature(getattr(cls, name))
    return doors


def rpc_cases():
    for service, entrypoints in rpc_doors().items():
        for method, signature in entrypoints.items():
            table = RPC.get(service, {}).get(method)
            if table is None:
                continue
            parameters = [p for p in signature.parameters if p != "self"]
            for argument, values in table.items():
                for bad in values:
                    valid = {**VALID_ARGUMENTS, "payload": VALID_PAYLOADS.get(method, {}),
                             "query": VALID_PAYLOADS.get(method)}
                    kwargs = {name: valid.get(name) for name in parameters
                              if signature.parameters[name].default is inspect.Parameter.empty}
                    kwargs[argument] = bad
                    yield f"{service}.{method}", f"{argument}={str(bad)[:30]!r}", service, method, kwargs


# -- the test --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack("sqlite", tmp_path_factory.mktemp("doors")) as api:
        yield api


def test_every_door_has_a_row():
    """A new route, gRPC method or RPC entrypoint fails here until the tables say how to feed it."""
    assert {(spec.method, spec.path) for spec in ROUTES} == set(HTTP)
    assert set(grpc_doors()) == set(GRPC)
    assert {service: set(methods) for service, methods in rpc_doors().items()} == \
        {service: set(methods) for service, methods in RPC.items()}


def _state(api, token):
    """What bad input must not change: how many of each thing there is."""
    return {path: api.get(path, token=token, params={"limit": 1}).json()["total"]
            for path in ("/v1/places", "/v1/reservations", "/v1/users", "/v1/roles", "/v1/notifications")}


def _log_offsets(api):
    return {name: path.stat().st_size for name, path in api.stack.logs.items()}


def _errors_logged(api, offsets):
    """Every log line written since `offsets` at level ERROR, and any traceback outside a log line."""
    found = []
    for name, path in api.stack.logs.items():
        with open(path, "rb") as log:
            log.seek(offsets.get(name, 0))
            for line in log.read().decode("utf-8", "replace").splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    record = None
                if not isinstance(record, dict):
                    if "Traceback" in line or "ERROR" in line:
                        found.append(f"{name}: {line[:300]}")
                elif record.get("level") in ("ERROR", "CRITICAL"):  # an expected error is a WARNING
                    found.append(f"{name}: {line[:600]}")
    return found


@pytest.mark.timeout(240)
def test_every_door_refuses_bad_input_with_the_typed_error(stack):
    api = stack
    token = api.admin_token()
    before = _state(api, token)
    offsets = _log_offsets(api)
    wrong, tried, started = [], {"http": 0, "grpc": 0, "rpc": 0}, time.monotonic()

    for door, label, method, path, body, query, status, field in http_cases():
        kwargs = {"data": body} if isinstance(body, str) else {"json": body} if body is not None else {}
        response = api.request(method, path, token=token, params=query, **kwargs)
        tried["http"] += 1
        error = response.json().get("error", {}) if response.headers.get("content-type", "").startswith(
            "application/json") else {}
        expected_code = "validation_error" if status == 400 else "not_found"
        if response.status_code != status or error.get("code") != expected_code or \
                (field is not None and field not in json.dumps(error.get("details"))):
            wrong.append(f"HTTP {door} {label}: {response.status_code} {response.text[:200]}")

    with grpc.insecure_channel(f"127.0.0.1:{api.grpc_port}", options=CHANNEL_OPTIONS) as channel:
        grpc.channel_ready_future(channel).result(timeout=30)
        for door, label, stub, method, request, expected in grpc_cases():
            call = getattr(stub(channel), method.name)
            tried["grpc"] += 1
            try:
                answer = call(request, metadata=bearer(token), timeout=15)
                if method.server_streaming:
                    next(answer)
                wrong.append(f"gRPC {door} {label}: answered")
            except grpc.RpcError as error:
                if error.code() != expected:
                    wrong.append(f"gRPC {door} {label}: {error.code()} {error.details()[:200]}")

    with nameko.config.patch({"AMQP_URI": api.stack.env["AMQP_URI"]}), ClusterRpcClient(timeout=15) as n:
        for door, label, service, method, kwargs in rpc_cases():
            tried["rpc"] += 1
            try:
                getattr(getattr(n, service), method)(**kwargs)
                wrong.append(f"RPC {door} {label}: answered")
            except ValidationError:
                pass
            except Exception as error:  # noqa: BLE001 -- any other error is the finding
                wrong.append(f"RPC {door} {label}: {type(error).__name__} {str(error)[:200]}")

    assert wrong == [], f"{len(wrong)} wrong answers:\n" + "\n".join(wrong[:80])
    assert _state(api, token) == before
    time.sleep(0.5)  # let the last log lines land
    logged = _errors_logged(api, offsets)
    assert logged == [], f"{len(logged)} ERROR lines:\n" + "\n".join(logged[:20])
    print(f"doors: {len(HTTP)} routes, {len(GRPC)} gRPC methods, {sum(map(len, RPC.values()))} RPC entrypoints; "
          f"bad inputs tried: {tried} in {time.monotonic() - started:.1f}s")
