"""Which address the gateway takes for the client (common/runtime/http.py ClientAddress):
werkzeug's ProxyFix rule, the `hops`-th X-Forwarded-For entry from the right, and the peer's
address whenever the header is too short or that entry is no IP address."""
import pytest
from werkzeug.test import create_environ

from common.runtime.http import ClientAddress, trusted_proxy_hops

PEER = "10.0.0.5"  # the nearest proxy


def client_address(hops, forwarded_for=None):
    seen = []

    def app(environ, start_response):
        seen.append(environ["REMOTE_ADDR"])
        return []

    headers = {} if forwarded_for is None else {"X-Forwarded-For": forwarded_for}
    ClientAddress(app, hops)(create_environ(headers=headers, environ_base={"REMOTE_ADDR": PEER}), None)
    return seen[0]


@pytest.mark.parametrize("hops, forwarded_for, expected", [
    (1, "198.51.100.7", "198.51.100.7"),
    (1, "203.0.113.66, 198.51.100.7", "198.51.100.7"),   # the client's own entry is left of the proxy's
    (2, "203.0.113.66, 198.51.100.7, 10.0.0.9", "198.51.100.7"),
    (1, "2001:db8::7", "2001:db8::7"),
    (1, None, PEER),                                       # no header
    (1, "", PEER),
    (2, "198.51.100.7", PEER),                             # fewer entries than proxies
    (1, "not-an-address", PEER),                           # no IP address where the client should be
    (1, "198.51.100.7, unknown", PEER),
    (1, "198.51.100.7:4711", PEER),                        # an address with a port is no address
])
def test_the_client_is_the_entry_the_outermost_trusted_proxy_wrote(hops, forwarded_for, expected):
    assert client_address(hops, forwarded_for) == expected


def test_only_x_forwarded_for_is_read():
    environ = create_environ(environ_base={"REMOTE_ADDR": PEER}, headers={
        "X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"})
    ClientAddress(lambda environ, start_response: [], 1)(environ, None)
    assert (environ["REMOTE_ADDR"], environ["wsgi.url_scheme"], environ["HTTP_HOST"]) == (
        "198.51.100.7", "http", "localhost")


@pytest.mark.parametrize("setting, hops", [(None, 0), (0, 0), ("", 0), (1, 1), ("2", 2), (" 3 ", 3)])
def test_the_setting_is_a_count(setting, hops):
    assert trusted_proxy_hops({"trusted_proxy_hops": setting}) == hops
    assert trusted_proxy_hops({}) == 0


@pytest.mark.parametrize("setting", [-1, "-1", "one", 1.5, True, "10.0.0.0/8"])
def test_a_setting_that_is_no_count_stops_the_gateway(setting):
    with pytest.raises(SystemExit) as raised:
        trusted_proxy_hops({"trusted_proxy_hops": setting})
    assert str(raised.value).startswith(f"TRUSTED_PROXY_HOPS: {setting!r} is not a number of proxies")
