"""CSRF: a state-changing request signed in by the `Authentication` cookie must send JSON and
come from the gateway's own origin; bearer requests and requests without credentials are not
checked (docs/security.md); TRUSTED_ORIGINS adds the public origin behind a TLS proxy. The
rule on werkzeug requests as the gateway builds them; the whole flow over HTTP is
tests/e2e/test_csrf.py."""
from unittest.mock import Mock

import nameko
import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from common import config as bookify_config
from common.errors import Forbidden
from gateway.principals import COOKIE_NAME, Authentication, refuse_cross_site, trusted_origins
from tests.conftest import with_test_secrets

HOST = "bookify.example:8000"
SAME = "http://bookify.example:8000"


def _request(method="POST", content_type="application/json", cookie=True, bearer=False,
             host=HOST, scheme="http", **headers):
    headers = {name.replace("_", "-"): value for name, value in headers.items()}
    if bearer:
        headers["Authorization"] = "Bearer some.access.token"
    builder = EnvironBuilder(path="/v1/reservations/7/cancel", method=method, headers=headers,
                             base_url=f"{scheme}://{host}/", data=b'{"reason": "x"}',
                             content_type=content_type)
    if cookie:
        builder.headers["Cookie"] = f"{COOKIE_NAME}=some.access.token"
    return Request(builder.get_environ())


@pytest.mark.parametrize("request_", [
    _request(Origin=SAME),
    _request(content_type="application/json; charset=utf-8", Origin=SAME),
    _request(Origin="HTTP://Bookify.Example:8000"),
    _request(host="bookify.example", Origin="http://bookify.example:80"),
    _request(scheme="https", host="bookify.example", Origin="https://bookify.example"),
    _request(Sec_Fetch_Site="same-origin"),
    _request(Sec_Fetch_Site="same-origin", Origin="https://evil.example"),
    _request(method="PATCH", Origin=SAME),
    _request(method="DELETE", Origin=SAME),
    _request(method="PUT", Origin=SAME),
], ids=["same origin", "charset", "case", "default port", "https", "sec-fetch-site",
        "sec-fetch-site wins", "patch", "delete", "put"])
def test_same_origin_json_with_the_cookie_passes(request_):
    refuse_cross_site(request_)


@pytest.mark.parametrize("request_", [
    _request(method="GET", content_type="text/plain"),
    _request(method="HEAD", content_type="text/plain"),
    _request(bearer=True, content_type="text/plain"),                  # bearer, no Origin
    _request(bearer=True, Origin="https://evil.example"),
    _request(cookie=False, content_type="text/plain"),                 # login/register from curl
    _request(cookie=False, content_type="application/x-www-form-urlencoded"),
], ids=["get", "head", "bearer text/plain", "bearer other origin", "no credentials",
        "no credentials form"])
def test_what_is_not_checked(request_):
    refuse_cross_site(request_)


@pytest.mark.parametrize("request_, detail", [
    (_request(content_type="text/plain", Origin="https://evil.example"), "content_type"),
    (_request(content_type="text/plain", Origin=SAME), "content_type"),
    (_request(content_type="application/x-www-form-urlencoded", Sec_Fetch_Site="same-origin"),
     "content_type"),
    (_request(content_type="multipart/form-data; boundary=x", Origin=SAME), "content_type"),
    (_request(content_type=None, Origin=SAME), "content_type"),
    (_request(), "origin"),                                            # no Origin at all
    (_request(Origin="https://evil.example"), "origin"),
    (_request(Origin="http://bookify.example:8001"), "origin"),        # another port
    (_request(Origin="https://bookify.example:8000"), "origin"),       # another scheme
    (_request(Origin="http://api.bookify.example:8000"), "origin"),    # a sibling subdomain
    (_request(Origin="null"), "origin"),
    (_request(Origin="http://bookify.example:notaport"), "origin"),
    (_request(Sec_Fetch_Site="same-site"), "origin"),
    (_request(Sec_Fetch_Site="cross-site", Origin="https://evil.example"), "origin"),
    (_request(method="DELETE", Origin="https://evil.example"), "origin"),
])
def test_a_cross_site_or_non_json_cookie_request_is_forbidden(request_, detail):
    with pytest.raises(Forbidden) as raised:
        refuse_cross_site(request_)
    assert raised.value.code == "forbidden"
    assert "signed in by cookie" in raised.value.message
    assert detail in raised.value.details


# -- TRUSTED_ORIGINS: the public origin behind a TLS-terminating proxy --------------------------

PROXIED = {"host": "gateway.internal:8000", "scheme": "http"}  # what the gateway sees behind it


def _trusting(setting):
    return nameko.config.patch({"GATEWAY": {"trusted_origins": setting}})


@pytest.mark.parametrize("origin", ["https://app.example.com", "HTTPS://App.Example.com:443",
                                    "https://example.com:8443"])
def test_a_trusted_origin_is_taken_as_our_own_behind_a_tls_proxy(origin):
    request_ = _request(Origin=origin, **PROXIED)
    with pytest.raises(Forbidden):  # the browser's origin is not the request's own: refused...
        refuse_cross_site(request_)
    with _trusting("https://app.example.com/, https://example.com:8443"):
        refuse_cross_site(request_)  # ...unless it is trusted


@pytest.mark.parametrize("origin", ["https://evil.example", "http://app.example.com",
                                    "https://api.app.example.com", "https://app.example.com:8443",
                                    "null"])
def test_only_the_trusted_origins_themselves_are_trusted(origin):
    with _trusting("https://app.example.com"), pytest.raises(Forbidden) as raised:
        refuse_cross_site(_request(Origin=origin, **PROXIED))
    assert raised.value.details == {"origin": origin}


def test_a_trusted_origin_still_needs_json():
    with _trusting("https://app.example.com"), pytest.raises(Forbidden) as raised:
        refuse_cross_site(_request(content_type="text/plain", Origin="https://app.example.com", **PROXIED))
    assert "content_type" in raised.value.details


def test_trusted_origins_parse_and_the_request_s_own_origin_still_counts():
    assert trusted_origins(None) == trusted_origins("") == trusted_origins(" , ") == frozenset()
    assert trusted_origins("https://a.example, http://b.example:8080/") == {
        ("https", "a.example", 443), ("http", "b.example", 8080)}
    assert trusted_origins(["https://a.example"]) == {("https", "a.example", 443)}
    with _trusting("https://app.example.com"):
        refuse_cross_site(_request(Origin=SAME))


@pytest.mark.parametrize("setting", ["app.example.com", "*", "https://*.example.com",
                                     "https://app.example.com/path", "ftp://app.example.com",
                                     "https://app.example.com:notaport"])
def test_a_malformed_trusted_origin_is_refused_with_the_entry_named(setting):
    with pytest.raises(ValueError) as raised:
        trusted_origins(f"https://ok.example,{setting}")
    assert repr(setting) in str(raised.value)


def test_the_gateway_refuses_to_start_with_a_malformed_trusted_origin():
    config = with_test_secrets(bookify_config.load())
    config["GATEWAY"] = dict(config["GATEWAY"], trusted_origins="app.example.com")
    provider = Authentication().bind(Mock(), "authentication")
    with nameko.config.patch(config, clear=True), pytest.raises(SystemExit) as raised:
        provider.setup()
    assert str(raised.value).startswith("TRUSTED_ORIGINS: 'app.example.com' is not an origin")
