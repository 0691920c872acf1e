"""CSRF: a state-changing request signed in by the `Authentication` cookie must send JSON and
come from the gateway's own origin; bearer requests and requests without credentials are not
checked (docs/security.md). The rule on werkzeug requests as the gateway builds them; the
whole flow over HTTP is tests/e2e/test_csrf.py."""
import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from common.errors import Forbidden
from gateway.principals import COOKIE_NAME, refuse_cross_site

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
