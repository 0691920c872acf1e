"""Over HTTP against a running stack: a thousand requests with made-up methods and paths leave
the gateway's `/metrics` the same size (docs/observability.md: the folded labels)."""
import uuid

import requests


def test_made_up_methods_leave_metrics_flat(api):
    session = requests.Session()

    def junk():
        method = "X" + uuid.uuid4().hex[:10].upper()
        return session.request(method, f"{api.base_url}/v1/{uuid.uuid4().hex}", timeout=15)

    junk()  # the first one may add its one folded series,
    api.get("/metrics")  # and the first scrape its own
    before = len(api.get("/metrics").content)
    for _ in range(1000):
        assert junk().status_code == 404
    after = api.get("/metrics")
    assert after.status_code == 200
    assert len(after.content) - before < 1000  # the other series of the stack move a little too
    assert 'method="other",route="<unmatched>",status="404"' in after.text
