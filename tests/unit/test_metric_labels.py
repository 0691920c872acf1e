"""The gateway's HTTP metrics have bounded label sets: a made-up method folds into `other`
and an unknown path into `<unmatched>`, so junk traffic (no sign-in needed) cannot grow
`/metrics` without limit. Driven through the gateway's real WSGI app and URL map."""
import uuid

from common.runtime.http import UNMATCHED_ROUTE
from common.runtime.metrics import REGISTRY, exposition, method_label


def _metrics_size():
    return len(exposition()[0])


def test_a_thousand_made_up_methods_and_paths_leave_metrics_flat(client):
    client.open("/v1/warm-up", method="BREW")  # the first junk request may add its one series
    client.open("/v1/places", method="BREW")
    before = _metrics_size()
    for _ in range(1000):
        junk = "X" + uuid.uuid4().hex[:12].upper()
        assert client.open(f"/v1/{uuid.uuid4().hex}", method=junk).status_code == 404
        assert client.open("/v1/places", method=junk).status_code == 405
    grown = _metrics_size() - before
    assert grown < 300, grown
    labels = {"method": "other", "route": UNMATCHED_ROUTE, "status": "404"}
    assert REGISTRY.get_sample_value("bookify_http_requests_total", labels) >= 1000


def test_known_methods_keep_their_name():
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        assert method_label(method) == method
    for method in ("get", "BREW", "PROPFIND", "", "X" * 500):
        assert method_label(method) == "other"
