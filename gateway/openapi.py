"""The OpenAPI 3 document, generated from the declared routes and their marshmallow
schemas (never written by hand)."""
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import fields

from common.errors import MethodNotAllowed
from common.runtime.http_errors import STATUS
from common.schemas import MAX_ID, LenientSchema
from gateway.routing import PATH_PARAMETER, ROUTES

ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_ID}


class ErrorBodySchema(LenientSchema):
    code = fields.String(required=True, metadata={"example": "validation_error"})
    message = fields.String(required=True)
    details = fields.Dict(metadata={"description": "Per-field messages or other context"})


class ErrorSchema(LenientSchema):
    error = fields.Nested(ErrorBodySchema, required=True)


class ReadinessSchema(LenientSchema):
    status = fields.String(required=True, metadata={"example": "ok", "description": "`ok` or `unavailable`"})
    checks = fields.Dict(required=True, metadata={
        "description": "Each dependency: `ok`, `unavailable: <why>`, or a service's own report",
        "example": {"broker": "ok", "auth": "ok"}})


# The readiness probes answer 503 with their report, not with the error shape.
READINESS_PATHS = {"/ready", "/ready/gateway"}


# Any path answers a method it does not have with 405; every operation refers to this one answer.
METHOD_NOT_ALLOWED = {
    "description": MethodNotAllowed.__doc__,
    "headers": {"Allow": {"description": "The methods this path accepts, e.g. `GET, HEAD, PATCH`",
                          "schema": {"type": "string"}}},
    "content": {"application/json": {
        "schema": "Error",
        "example": {"error": {"code": MethodNotAllowed.code, "message": "This endpoint accepts POST only",
                              "details": {"allowed": ["POST"]}}}}},
}


def build_spec(version="1.0.0"):
    spec = APISpec(title="Bookify API", version=version, openapi_version="3.0.3",
                   plugins=[MarshmallowPlugin()],
                   info={"description": "Reserve a place for a time range, pay by card, get notified."})
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    spec.components.security_scheme("cookie", {"type": "apiKey", "in": "cookie", "name": "Authentication"})
    spec.components.schema("Error", schema=ErrorSchema)
    spec.components.schema("Readiness", schema=ReadinessSchema)
    spec.components.response("MethodNotAllowed", METHOD_NOT_ALLOWED)
    paths = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()


def _operation(route):
    success = {"description": "OK" if route.status != 204 else "No content"}
    if route.response is not None:
        success["content"] = {"application/json": {"schema": route.response}}
    responses = {str(route.status): success, **_error_responses(route)}
    if route.path in READINESS_PATHS:
        report = {"content": {"application/json": {"schema": "Readiness"}}}
        success.update(report)
        responses["503"] = {"description": "Not ready: `checks` says which dependency did not answer", **report}
    operation = {
        "operationId": route.name,
        "summary": route.summary,
        "tags": [route.tag],
        "responses": responses,
        "parameters": [{"in": "path", "name": name, "required": True, "schema": ID_SCHEMA}
                       for name in PATH_PARAMETER.findall(route.path)],
    }
    if route.query is not None:
        operation["parameters"].append({"in": "query", "schema": route.query})
    if route.body is not None:
        operation["requestBody"] = {"required": True,
                                    "content": {"application/json": {"schema": route.body}}}
    if not route.public:
        operation["security"] = [{"bearer": []}, {"cookie": []}]
    if route.permission:
        operation["x-permission"] = route.permission
        operation["description"] = f"Needs the `{route.permission}` permission."
    return operation


def _error_responses(route):
    statuses = {400, 413, 503, 504} if route.body is not None else {400, 503, 504}
    if not route.public:
        statuses |= {401, 403, 404}
    statuses |= set(route.errors)
    error = {"content": {"application/json": {"schema": "Error"}}}
    reasons = {status: kind.__doc__ for kind, status in reversed(list(STATUS.items()))}
    responses = {str(status): {"description": reasons[status], **error} for status in sorted(statuses)}
    responses[str(STATUS[MethodNotAllowed])] = "MethodNotAllowed"
    return dict(sorted(responses.items()))
