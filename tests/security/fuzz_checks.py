"""schemathesis checks of our own (loaded through SCHEMATHESIS_HOOKS by the fuzz test):
every error is exactly the documented shape, and every response has the security headers."""
import json

import schemathesis

# schemathesis gives header names in lower case, each with a list of values
SECURITY_HEADERS = {"x-content-type-options": "nosniff", "x-frame-options": "DENY",
                    "referrer-policy": "no-referrer", "cache-control": "no-store"}


@schemathesis.check
def error_shape(ctx, response, case):
    """A 4xx/5xx body is {"error": {"code", "message", "details"}} and nothing else."""
    if response.status_code < 400:
        return None
    body = json.loads(response.content)
    error = body.get("error") if isinstance(body, dict) else None
    if set(body) != {"error"} or not isinstance(error, dict) \
            or set(error) != {"code", "message", "details"} or not isinstance(error["code"], str) \
            or not isinstance(error["message"], str) or not isinstance(error["details"], dict):
        raise AssertionError(f"Error body is not the documented shape: {response.content[:300]!r}")
    return None


@schemathesis.check
def security_headers(ctx, response, case):
    """The gateway's security headers are on every response."""
    wrong = {name: response.headers.get(name) for name, value in SECURITY_HEADERS.items()
             if (response.headers.get(name) or [None])[0] != value}
    if wrong:
        raise AssertionError(f"Security headers missing or wrong: {wrong}")
    return None
