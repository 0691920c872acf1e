"""The gateway's permission cache: one auth lookup per session, then none until an
event or the TTL evicts it."""
from types import SimpleNamespace

import pytest

from common.errors import Unauthenticated
from common.permissions import Principal
from common.tokens import TokenCodec, TokenSettings
from gateway.principals import Authentication, PrincipalCache, bearer_token

SETTINGS = TokenSettings(algorithm="HS256", issuer="bookify", audience="bookify-api",
                         access_ttl_seconds=900, secret="cache-test-secret-0123456789abcdef-xyz")


class Ticking:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def request(token=None, cookie=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return SimpleNamespace(headers=headers, cookies={"Authentication": cookie} if cookie else {})


@pytest.fixture
def authentication():
    provider = Authentication()
    provider.tokens = TokenCodec(SETTINGS)
    provider.cache = PrincipalCache(ttl_seconds=60, clock=Ticking())
    return provider


def counting_fetch(permissions):
    calls = []

    def fetch(user_id, session_id):
        calls.append((user_id, session_id))
        return {"user_id": user_id, "session_id": session_id, "permissions": permissions}

    return fetch, calls


def test_one_lookup_per_session_then_none(authentication):
    token = authentication.tokens.issue_access_token(7, "session-a")
    fetch, calls = counting_fetch(["users:read"])
    for _ in range(5):
        principal = authentication.authenticate(request(token), fetch)
    assert calls == [(7, "session-a")]
    assert principal.can("users:read") and not principal.can("roles:manage")


def test_cookie_is_used_when_no_header(authentication):
    token = authentication.tokens.issue_access_token(7, "session-a")
    fetch, _ = counting_fetch([])
    assert authentication.authenticate(request(cookie=token), fetch).user_id == 7


def test_eviction_by_user_session_and_all(authentication):
    cache = authentication.cache
    for user_id, session_id in [(1, "a"), (1, "b"), (2, "c")]:
        cache.put(Principal(user_id, session_id, frozenset()))
    cache.forget_user(1)
    assert cache.get(1, "a") is None and cache.get(1, "b") is None and cache.get(2, "c")
    cache.forget_session("c")
    assert cache.get(2, "c") is None
    cache.put(Principal(3, "d", frozenset()))
    cache.clear()
    assert cache.get(3, "d") is None


def test_entries_expire_after_the_ttl():
    clock = Ticking()
    cache = PrincipalCache(ttl_seconds=60, clock=clock)
    cache.put(Principal(1, "a", frozenset({"users:read"})))
    clock.now += 59
    assert cache.get(1, "a") is not None
    clock.now += 2
    assert cache.get(1, "a") is None


def test_cache_is_bounded():
    cache = PrincipalCache(max_entries=2, clock=Ticking())
    for n in range(3):
        cache.put(Principal(n, str(n), frozenset()))
    assert cache.get(0, "0") is None and cache.get(2, "2") is not None


def test_a_non_bearer_authorization_header_is_refused():
    with pytest.raises(Unauthenticated):
        bearer_token(SimpleNamespace(headers={"Authorization": "Basic dXNlcjpwdw=="}, cookies={}))
    with pytest.raises(Unauthenticated):
        bearer_token(SimpleNamespace(headers={}, cookies={}))
