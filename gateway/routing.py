"""`route`: one declaration per endpoint that wires the HTTP entrypoint, authentication,
the permission check, body/query parsing, and the route's entry in the OpenAPI document."""
import json
import re
from dataclasses import dataclass

from werkzeug.wrappers import Response

from common.errors import ValidationError
from common.permissions import authorize
from common.runtime.http import http
from common.schemas import MAX_ID
from gateway.principals import refuse_cross_site

ROUTES = []  # every declared RouteSpec, in declaration order: the OpenAPI source
PATH_PARAMETER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True, kw_only=True)
class RouteSpec:
    """One endpoint as `route` declared it: what serves it, and what its OpenAPI entry says."""

    method: str
    path: str
    name: str
    summary: str
    tag: str
    status: int
    body: type | None
    query: type | None
    response: type | None
    permission: str | None
    public: bool
    errors: tuple = ()


@dataclass
class Call:
    """What a handler gets: the request, the authenticated caller, parsed body and query."""

    request: object
    principal: object = None
    body: dict | None = None
    query: dict | None = None


def route(method, path, *, tag, status=200, body=None, query=None, response=None, public=False,
          errors=()):
    """Declare an endpoint. A handler marked with `common.permissions.requires` demands that
    permission; otherwise a non-public route needs any signed-in user. Path parameters are
    written `{name}` and are ids: positive integers that fit a database key, else 404.
    `errors` lists the statuses this route can answer beyond the usual ones (for OpenAPI)."""

    def decorate(handler):
        permission = getattr(handler, "required_permission", None)
        summary = (handler.__doc__ or handler.__name__).strip().splitlines()[0]
        ROUTES.append(RouteSpec(method=method, path=path, name=handler.__name__, summary=summary, tag=tag,
                                status=status, body=body, query=query, response=response,
                                permission=permission, public=public, errors=tuple(errors)))

        def entry(self, request, **path_values):
            refuse_cross_site(request)  # before anything reads the body or acts on the cookie
            call = Call(request)
            if not public:
                call.principal = self.authentication.authenticate(request, self.auth.principal)
                authorize(call.principal, permission)
            if body is not None:
                call.body = read_json_object(request)
            if query is not None:
                call.query = query().load_or_raise(request.args.to_dict())
            elif request.args:  # a route without parameters takes none: a typo is an error here too
                raise ValidationError("Unknown query parameters", {
                    name: ["Unknown field."] for name in request.args})
            result = handler(self, call, **path_values)
            if status == 200 or isinstance(result, (tuple, Response)):
                return result
            return status, result

        entry.__name__ = handler.__name__
        entry.__doc__ = handler.__doc__
        return http(method, PATH_PARAMETER.sub(rf"<int(min=1, max={MAX_ID}):\1>", path))(entry)

    return decorate


def read_json_object(request):
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise ValidationError("The body is not valid JSON", {"body": [str(error)]}) from None
    if not isinstance(data, dict):
        raise ValidationError("The body must be a JSON object", {"body": ["Expected a JSON object."]})
    try:
        # JSON escapes can smuggle in lone surrogates (\ud800), which no UTF-8 store accepts.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("The body has invalid Unicode", {"body": ["Lone surrogate escape."]}) from None
    return data
