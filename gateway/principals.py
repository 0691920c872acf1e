"""Who is calling: the bearer token or `Authentication` cookie is verified locally, and
the caller's permissions come from a per-session cache, so a request costs no RPC to
auth once its session is known. Auth's events (`role_changed`, `user_roles_changed`,
`session_revoked`) evict entries on every gateway instance; a TTL bounds staleness even
if an event were missed."""
import time
from collections import OrderedDict
from functools import lru_cache
from urllib.parse import urlsplit

import nameko

from common.config import require_jwt_secret, section
from common.errors import Forbidden, Unauthenticated
from common.permissions import Principal
from common.runtime import service  # the module: `nameko run <module>` would run its classes as services
from common.runtime.inbox import handles
from common.tokens import TokenCodec, TokenSettings

COOKIE_NAME = "Authentication"
# A browser sends the cookie with any request to us, whoever's page made it: these change
# state, so with the cookie they must prove they come from our own origin (refuse_cross_site).
STATE_CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_PORTS = {"http": 80, "https": 443}
# A client sends its token with every request until it expires; its signature is checked
# once, not every time (what that saves: docs/performance.md). Its expiry is checked on
# every request all the same (TokenCodec).
VERIFIED_TOKENS_REMEMBERED = 10_000


class PrincipalCache:
    def __init__(self, ttl_seconds=60, max_entries=50_000, clock=time.monotonic):
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self.clock = clock
        self._entries = OrderedDict()  # (user_id, session_id) -> (expires, Principal)

    def get(self, user_id, session_id):
        entry = self._entries.get((user_id, session_id))
        if entry is None or entry[0] <= self.clock():
            return None
        return entry[1]

    def put(self, principal):
        key = (principal.user_id, principal.session_id)
        self._entries[key] = (self.clock() + self.ttl, principal)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget_user(self, user_id):
        for key in [key for key in self._entries if key[0] == user_id]:
            del self._entries[key]

    def forget_session(self, session_id):
        for key in [key for key in self._entries if key[1] == session_id]:
            del self._entries[key]

    def clear(self):
        self._entries.clear()


class Authentication(service.Components):
    """Verifies access tokens and resolves them to a `Principal`."""

    def setup(self):
        config = nameko.config
        gateway = section(config, "GATEWAY")
        require_jwt_secret(section(config, "JWT"))
        self.tokens = TokenCodec(TokenSettings.from_config(section(config, "JWT")),
                                 remember_verified=VERIFIED_TOKENS_REMEMBERED)
        self.cache = PrincipalCache(ttl_seconds=float(gateway.get("permission_cache_ttl_seconds", 60)))
        self.cookie_secure = bool(gateway.get("cookie_secure", False))
        try:  # a typo here would refuse every browser request: say so at start instead
            trusted_origins(gateway.get("trusted_origins"))
        except ValueError as error:
            raise SystemExit(f"TRUSTED_ORIGINS: {error} (docs/security.md)") from None

    def authenticate(self, request, fetch_principal):
        """The caller of `request`; `fetch_principal(user_id, session_id)` asks auth on a miss."""
        return self.identify(request, fetch_principal)[0]

    def identify(self, request, fetch_principal):
        """(the caller of `request`, when its access token expires as a Unix time)."""
        claims = self.tokens.verify_access_token(bearer_token(request))
        principal = self.cache.get(claims.user_id, claims.session_id)
        if principal is None:
            principal = self.refresh(claims.user_id, claims.session_id, fetch_principal)
        return principal, claims.expires_at

    def refresh(self, user_id, session_id, fetch_principal):
        """What the session may do now, asked of auth whatever the cache holds (and cached).
        Unauthenticated once the session has ended."""
        found = fetch_principal(user_id, session_id)
        principal = Principal(found["user_id"], found["session_id"], frozenset(found["permissions"]))
        self.cache.put(principal)
        return principal

    def set_cookie(self, response, access_token, max_age):
        response.set_cookie(COOKIE_NAME, access_token, max_age=max_age, path="/",
                            httponly=True, samesite="Lax", secure=self.cookie_secure)

    def clear_cookie(self, response):
        response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="Lax",
                               secure=self.cookie_secure)


def bearer_token(request):
    header = request.headers.get("Authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("Use 'Authorization: Bearer <access_token>'")
        return token.strip()
    token = request.cookies.get(COOKIE_NAME)
    if not token:
        raise Unauthenticated("Sign in first: no access token was sent")
    return token


def refuse_cross_site(request):
    """Forbidden unless a state-changing request that authenticates with the cookie sends
    `Content-Type: application/json` and comes from our own origin (`Origin` of the same
    scheme, host and port as the request, one of TRUSTED_ORIGINS, or `Sec-Fetch-Site:
    same-origin`). Behind a proxy that terminates TLS the request's own scheme and host are the
    proxy's upstream ones, not what the browser saw: TRUSTED_ORIGINS names the public origin.

    A page on another site (or a sibling subdomain, or another port: SameSite=Lax counts them
    as the same site) can make the browser send our cookie with a form POST, but such a form
    can send only text/plain or form encodings, and the browser sets Origin and Sec-Fetch-Site
    itself. A bearer token is never sent by the browser on its own, and a request without the
    cookie carries no one's authority: neither is checked."""
    if request.method not in STATE_CHANGING_METHODS:
        return
    if request.headers.get("Authorization") or COOKIE_NAME not in request.cookies:
        return
    if request.mimetype != "application/json":
        raise Forbidden("A request signed in by cookie that changes anything must send "
                        "'Content-Type: application/json'", {"content_type": request.mimetype or None})
    if request.headers.get("Sec-Fetch-Site") == "same-origin":
        return
    origin = request.headers.get("Origin")
    if origin is None or not _is_our_origin(_origin_of(origin), request):
        raise Forbidden("A request signed in by cookie that changes anything must come from this "
                        "site's own origin (Origin or 'Sec-Fetch-Site: same-origin')", {"origin": origin})


def _is_our_origin(origin, request):
    if origin is None:
        return False
    if origin == _origin_of(f"{request.scheme}://{request.host}"):
        return True
    return origin in trusted_origins(section(nameko.config, "GATEWAY").get("trusted_origins"))


def trusted_origins(setting):
    """The origins of TRUSTED_ORIGINS, comma-separated ("https://app.example.com,
    https://example.com:8443") or a YAML list, as (scheme, host, port); ValueError naming an
    entry that is not an origin (a bare host, a path, a wildcard: none is what a browser sends)."""
    if isinstance(setting, list | tuple):
        setting = ",".join(str(entry) for entry in setting)
    return _parse_origins(str(setting or ""))


@lru_cache(maxsize=8)  # read on every cookie request; the setting does not change
def _parse_origins(setting):
    origins = set()
    for entry in setting.split(","):
        if not entry.strip():
            continue
        origin = _origin_of(entry.strip().removesuffix("/"))
        if origin is None or "*" in origin[1]:
            raise ValueError(f"{entry.strip()!r} is not an origin (scheme://host[:port], e.g. "
                             "https://app.example.com)")
        origins.add(origin)
    return frozenset(origins)


def _origin_of(url):
    """(scheme, host, port) of a URL, the default port written out; None if it is not one
    (an Origin of `null`, say)."""
    try:
        parts = urlsplit(url.strip())
        scheme, host, port = parts.scheme.lower(), parts.hostname, parts.port
    except ValueError:  # a port that is not a number, or out of range
        return None
    if scheme not in DEFAULT_PORTS or not host or parts.path or parts.query or parts.username:
        return None
    return scheme, host, port or DEFAULT_PORTS[scheme]


def _broadcast(event_type):
    # Every gateway instance must hear it (its own queue); a missed one only costs the cache TTL.
    return handles("auth", event_type, broadcast=True)


class PermissionCacheEvictions:
    """Auth's events evicting a gateway's cached permissions; mixed into every gateway
    (HTTP and gRPC) that declares `authentication = Authentication()`. A gateway that holds
    calls open (the gRPC watches) re-checks them in `permissions_changed` / `session_ended`."""

    # What this group uses; the gateway service class provides it (tests/unit/test_gateway_groups.py).
    authentication: Authentication


    @_broadcast("role_changed")
    def forget_all_permissions(self, payload):
        self.authentication.cache.clear()
        self.permissions_changed(None)

    @_broadcast("user_roles_changed")
    def forget_user_permissions(self, payload):
        self.authentication.cache.forget_user(payload["user_id"])
        self.permissions_changed(payload["user_id"])

    @_broadcast("session_revoked")
    def forget_session(self, payload):
        self.authentication.cache.forget_session(payload["session_id"])
        self.session_ended(payload["user_id"], payload["session_id"])

    def permissions_changed(self, user_id):
        """What `user_id` (None: anyone) may do has changed: nothing more to do here."""

    def session_ended(self, user_id, session_id):
        """The session has ended: nothing more to do here."""
