"""Errors as HTTP responses, by the one table (common/errors.py ANSWERS), in the single body shape:
{"error": {"code", "message", "details"}}. No handler builds an error by hand."""
import json
import logging

from werkzeug.exceptions import MethodNotAllowed, RequestEntityTooLarge
from werkzeug.exceptions import NotFound as RouteNotFound
from werkzeug.wrappers import Response

from common import errors

log = logging.getLogger(__name__)
METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

# Error type -> HTTP status, read from the one table (common/errors.py ANSWERS).
STATUS = {kind: answer.http for kind, answer in errors.ANSWERS.items()}


def error_response(exc):
    """The response for any exception; unknown ones become a bare 500, logged here."""
    exc = _as_bookify_error(exc)
    if exc is None:
        log.exception("unhandled error in gateway")
        return _json(500, "internal_error", "Something went wrong on our side", {})
    response = _json(errors.answer_of(exc).http, exc.code, exc.message, exc.details)
    if isinstance(exc, errors.RateLimited) and "retry_after" in exc.details:
        response.headers["Retry-After"] = str(exc.details["retry_after"])
    if isinstance(exc, errors.MethodNotAllowed):
        response.headers["Allow"] = ", ".join(exc.details["allowed"])
    if isinstance(exc, errors.Unauthenticated):
        response.headers["WWW-Authenticate"] = 'Bearer realm="bookify"'
    return response


def _as_bookify_error(exc):
    if isinstance(exc, errors.BookifyError) and errors.answer_of(exc) is not None:
        return exc
    if isinstance(exc, RequestEntityTooLarge):
        return errors.PayloadTooLarge("The request body is larger than allowed")
    if isinstance(exc, RouteNotFound):
        return errors.NotFound("No such endpoint")
    if isinstance(exc, MethodNotAllowed):
        allowed = allowed_methods(exc.valid_methods or ())
        return errors.MethodNotAllowed(f"This endpoint accepts {', '.join(allowed)} only",
                                       {"allowed": allowed})
    return None


def allowed_methods(methods):
    """The methods a path has, in one fixed order (werkzeug hands them over as a set)."""
    methods = set(methods)
    known = [method for method in METHOD_ORDER if method in methods]
    return known + sorted(methods - set(known))


def _json(status, code, message, details):
    body = {"error": {"code": code, "message": message, "details": details}}
    return Response(json.dumps(body, default=str), status=status, mimetype="application/json")
