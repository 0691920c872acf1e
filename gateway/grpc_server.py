"""The `grpc_gateway` service: Bookify's gRPC API (proto/bookify/v1), served by nameko-grpc.
It calls the same services by RPC and applies the same permission rules as the HTTP gateway:
the JWT arrives as metadata `authorization: Bearer <token>`, is verified by the HTTP gateway's
`Authentication`, and typed errors map to gRPC status codes by the one table (common/errors.py ANSWERS).
A caller's mistake (a wrong password, an ended session, bad input) is logged as a WARNING
without a traceback; only what is our fault is an ERROR.

`watch_reservations` streams are fed by reservations' events and re-checked on auth's
(gateway/watches.py has the rules)."""
import functools
import inspect
import json
import logging
from datetime import datetime, timezone

from google.protobuf.timestamp_pb2 import Timestamp
from grpc import StatusCode
from nameko_grpc.errors import GrpcError

from common import errors
from common.contracts.reservations import idempotency_key
from common.permissions import authorize
from common.runtime.grpc_transport import Grpc, Refused
from common.runtime.heartbeat import Heartbeat
from common.runtime.inbox import handles
from common.runtime.logging import RequestContext
from common.runtime.metrics import Metrics
from common.runtime.rpc import TimedServiceRpc
from common.runtime.timers import configured_timer
from gateway.grpc_generated import auth_pb2, auth_pb2_grpc, reservations_pb2, reservations_pb2_grpc
from gateway.principals import Authentication, PermissionCacheEvictions
from gateway.watches import DEFAULT_RECHECK_SECONDS, Watches

log = logging.getLogger(__name__)

grpc_auth = Grpc.implementing(auth_pb2_grpc.AuthStub)
grpc_reservations = Grpc.implementing(reservations_pb2_grpc.ReservationsStub)

WATCH_SNAPSHOT_LIMIT = 100  # the page size cap of list_reservations
WATCHED_EVENTS = ("reservation_confirmed", "reservation_cancelled", "reservation_expired",
                  "reservation_rescheduled")
Status = reservations_pb2.ReservationStatus


def grpc_error(exc):
    """The GrpcError for any exception; unknown ones become INTERNAL, logged here."""
    if isinstance(exc, GrpcError):
        return exc
    answer = errors.answer_of(exc)
    if answer is None:
        log.error("unhandled error in grpc_gateway", exc_info=exc)
        return GrpcError(StatusCode.INTERNAL, "Something went wrong on our side")
    # `code: message {details}`: the same code and details as the HTTP error body.
    details = f" {json.dumps(exc.details, default=str, sort_keys=True)}" if exc.details else ""
    return GrpcError(StatusCode[answer.grpc], f"{exc.code}: {exc.message}{details}")


def translating_errors(method):
    """Every error of `method` (a unary handler or a streaming generator) as a GrpcError. A
    caller's mistake (one of EXPECTED_ERRORS) is logged as a WARNING, without a traceback, and
    a unary handler returns it as `Refused`, so that nameko does not log it as a failure."""
    if inspect.isgeneratorfunction(method):
        @functools.wraps(method)
        def stream(*args, **kwargs):
            try:
                yield from method(*args, **kwargs)
            except Exception as exc:
                status = grpc_error(exc)
                _log_refusal(method.__name__, exc, status)
                raise status from exc
        return stream

    @functools.wraps(method)
    def unary(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except Exception as exc:
            status = grpc_error(exc)
            if not isinstance(exc, errors.EXPECTED_ERRORS):
                raise status from exc
            _log_refusal(method.__name__, exc, status)
            return Refused(status, exc)
    return unary


def _log_refusal(method_name, exc, status):
    """A caller's mistake is an expected outcome: one WARNING line, no traceback."""
    if isinstance(exc, errors.EXPECTED_ERRORS):
        log.warning("grpc %s refused: %s", method_name, status.message,
                    extra={"entrypoint": method_name, "grpc_status": status.code.name, "error_code": exc.code})


class MetadataRequest:
    """gRPC metadata in the shape `gateway.principals.bearer_token` reads: headers, no cookies."""

    cookies = {}

    def __init__(self, metadata):
        self._headers = {name.lower(): value for name, value in metadata}
        self.headers = self

    def get(self, name, default=None):
        return self._headers.get(name.lower(), default)


class GrpcGatewayService(PermissionCacheEvictions):
    name = "grpc_gateway"

    auth = TimedServiceRpc("auth")
    reservations = TimedServiceRpc("reservations")
    authentication = Authentication()
    watches = Watches()  # the open watch_reservations streams of this process
    request_context = RequestContext()  # a correlation id per call, carried to every service
    metrics = Metrics()
    heartbeat = Heartbeat()  # this process's liveness (scripts/probe.py --liveness)

    # -- Auth ---------------------------------------------------------------------------

    @grpc_auth
    @translating_errors
    def login(self, request, context):
        tokens = self.auth.login({"email": request.email, "password": request.password},
                                 client_address=getattr(context.request_stream, "peer_address", None))
        return auth_pb2.TokenPair(access_token=tokens["access_token"], refresh_token=tokens["refresh_token"],
                                  token_type=tokens.get("token_type") or "Bearer",
                                  expires_in=int(tokens["expires_in"]))

    # -- Reservations -------------------------------------------------------------------

    @grpc_reservations
    @translating_errors
    def check_availability(self, request, context):
        self._caller(context)
        span = _present(request, {"from": "from", "to": "to"})
        result = self.reservations.availability(request.place_id, span)
        return reservations_pb2.Availability(
            place_id=result["place_id"], timezone=result["timezone"], capacity=result["capacity"],
            booked=[_interval(window) for window in result["booked"]],
            free=[_interval(window) for window in result["free"]],
            slots=[reservations_pb2.Slot(start=_timestamp(slot["start"]), end=_timestamp(slot["end"]),
                                         remaining=slot["remaining"]) for slot in result["slots"]])

    @grpc_reservations
    @translating_errors
    def create_reservation(self, request, context):
        actor = self._caller(context, "reservations:create")
        payload = {"place_id": request.place_id, **_present(request, {"start": "start", "end": "end"})}
        if request.payment_method:  # proto3 says "" for unset: a free place needs none
            payload["payment_method"] = request.payment_method
        if request.quantity:  # proto3 says 0 for unset: one; a negative one is refused by the service
            payload["quantity"] = request.quantity
        key = idempotency_key(request.idempotency_key or None)  # proto3 says "" for unset
        return _reservation(self.reservations.create_reservation(actor, payload, key))

    @grpc_reservations
    @translating_errors
    def get_reservation(self, request, context):
        actor = self._caller(context)
        return _reservation(self.reservations.get_reservation(_id(request.id), actor))

    @grpc_reservations
    @translating_errors
    def list_reservations(self, request, context):
        actor = self._caller(context)
        query = {"limit": request.limit or 20, "offset": request.offset,
                 **_present(request, {"from": "from", "to": "to"})}
        for name in ("place_id", "user_id"):
            if getattr(request, name):
                query[name] = getattr(request, name)
        if request.status:
            query["status"] = _status_name(request.status)
        page = self.reservations.list_reservations(query, actor)
        return reservations_pb2.ReservationPage(items=[_reservation(item) for item in page["items"]],
                                                total=page["total"])

    @grpc_reservations
    @translating_errors
    def cancel_reservation(self, request, context):
        actor = self._caller(context)
        reservation = self.reservations.cancel_reservation(_id(request.id), request.reason or None, actor)
        return _reservation(reservation)

    @grpc_reservations
    @translating_errors
    def watch_reservations(self, request, context):
        """The caller's reservations (everyone's with reservations:read_any; one place's with
        `place_id`): their current state first (at most 100, latest start first), then each
        change as reservations announces it. The worker ends here; the stream waits on its
        own queue (gateway/watches.py), fed by the reservation events below."""
        principal, expires_at = self.authentication.identify(
            MetadataRequest(context.invocation_metadata()), self.auth.principal)
        query = {"limit": WATCH_SNAPSHOT_LIMIT, "offset": 0}
        if request.place_id:
            query["place_id"] = request.place_id
        registry = self.watches
        # Open before the snapshot is read, so a change made meanwhile is not missed.
        watch = registry.open(principal, request.place_id or None, expires_at)
        try:
            current = self.reservations.list_reservations(query, principal.as_actor())["items"]
        except BaseException:
            registry.close(watch)
            raise
        for item in current:
            watch.offer(item)
        context.response_stream.on_close(lambda: registry.close(watch))
        log.info("watch opened", extra={"user_id": principal.user_id, "scope": watch.scope,
                                        "place_id": watch.place_id, "open_watches": len(registry)})
        return _watch_stream(watch, registry)

    @grpc_reservations
    @translating_errors
    def get_place(self, request, context):
        self._caller(context)
        return _place(self.reservations.get_place(_id(request.id, "place")))

    @grpc_reservations
    @translating_errors
    def list_places(self, request, context):
        self._caller(context)
        page = self.reservations.list_places({"limit": request.limit or 20, "offset": request.offset})
        return reservations_pb2.PlacePage(items=[_place(item) for item in page["items"]], total=page["total"])

    # -- what feeds and ends the watches -------------------------------------------------

    @handles("reservations", "reservation_confirmed", broadcast=True)
    @handles("reservations", "reservation_cancelled", broadcast=True)
    @handles("reservations", "reservation_expired", broadcast=True)
    @handles("reservations", "reservation_rescheduled", broadcast=True)
    def on_reservation_event(self, event):
        self._feed_watches(event)

    @configured_timer("GRPC_WATCH", "recheck_seconds", default=DEFAULT_RECHECK_SECONDS)
    def recheck_watches(self):
        """The backstop: every open watch's session and rights, asked of auth again, in case
        an event of auth's never arrived. A watch whose rights lapsed ends here."""
        for user_id, session_id in self.watches.sessions():
            self._recheck(user_id, session_id, strict=False)

    def permissions_changed(self, user_id):
        for watcher, session_id in self.watches.sessions(user_id):
            self._recheck(watcher, session_id, strict=True)

    def session_ended(self, user_id, session_id):
        ended = self.watches.session_ended(session_id, errors.Unauthenticated("The session has ended; sign in again"))
        if ended:
            log.info("session ended: %s watch(es) ended", ended, extra={"user_id": user_id})

    def _feed_watches(self, event):
        """One fetch of the reservation, offered to every watch that may see it. A partner's
        booking has no user: only the watches of everyone's reservations see it."""
        if not self.watches.interested(event["user_id"], event["place_id"]):
            return
        try:
            reservation = self.reservations.get_reservation(event["reservation_id"])
        except errors.NotFound:
            return
        # Nothing is delivered on rights confirmed longer than recheck_seconds ago.
        for user_id, session_id in self.watches.stale_sessions_seeing(reservation):
            self._recheck(user_id, session_id, strict=True)
        self.watches.deliver(reservation)

    def _recheck(self, user_id, session_id, strict):
        """Ask auth what the session may do now, and end the watches it no longer allows. When
        auth cannot answer, `strict` ends them (UNAVAILABLE: watch again) rather than deliver
        on unconfirmed rights; the periodic backstop leaves them be and asks again later."""
        try:
            principal = self.authentication.refresh(user_id, session_id, self.auth.principal)
        except errors.Unauthenticated:
            self.watches.session_ended(session_id, errors.Unauthenticated("The session has ended; sign in again"))
            return
        except (errors.ServiceUnavailable, errors.ServiceTimeout) as error:
            log.warning("could not confirm the rights of a watching session: %s", error,
                        extra={"user_id": user_id, "strict": strict})
            if strict:
                self.watches.session_ended(session_id, errors.ServiceUnavailable(
                    "Could not confirm your session; watch again"))
            return
        ended = self.watches.rights_are(principal)
        if ended:
            log.info("rights changed: %s watch(es) ended", ended, extra={"user_id": user_id})

    def _caller(self, context, permission=None):
        """The caller's actor for RPC; Unauthenticated/Forbidden as the HTTP routes raise them."""
        request = MetadataRequest(context.invocation_metadata())
        principal = self.authentication.authenticate(request, self.auth.principal)
        authorize(principal, permission)
        return principal.as_actor()


def _watch_stream(watch, registry):
    """The messages of one watch until it ends; it is forgotten however it ends."""
    try:
        for item in watch.reservations():
            yield _reservation(item)
    except Exception as exc:
        status = grpc_error(exc)
        _log_refusal("watch_reservations", exc, status)
        raise status from exc
    finally:
        registry.close(watch)


# -- messages <-> the services' JSON shapes (common/contracts/reservations.py) -------------


def _present(message, names):
    """{key: ISO text} of the timestamp fields set on `message`; unset ones are left out, so
    the service's schema reports them missing."""
    return {key: _iso(getattr(message, field), key) for key, field in names.items() if message.HasField(field)}


def _iso(timestamp, key):
    """ISO text of a Timestamp, for the service's schema to bound; one protobuf itself refuses
    (seconds beyond years 1..9999, nanos outside 0..999999999) is INVALID_ARGUMENT, not INTERNAL."""
    try:
        return timestamp.ToDatetime(tzinfo=timezone.utc).isoformat()
    except (ValueError, OverflowError):
        raise errors.ValidationError("Invalid input", {key: [
            "Not a valid Timestamp: seconds from year 1 to 9999, nanos from 0 to 999999999."]}) from None


def _timestamp(text):
    timestamp = Timestamp()
    timestamp.FromDatetime(datetime.fromisoformat(text))
    return timestamp


def _id(value, what="reservation"):
    if value <= 0:  # the HTTP API's path converter answers 404 for these
        raise errors.NotFound(f"No such {what}", {"id": value})
    return value


def _status_name(value):
    name = Status.Name(value) if value in Status.values() else ""
    if not name or value == Status.RESERVATION_STATUS_UNSPECIFIED:
        raise errors.ValidationError("Unknown status", {"status": [f"Not a ReservationStatus: {value}."]})
    return name.removeprefix("RESERVATION_STATUS_").lower()


def _interval(window):
    return reservations_pb2.Interval(start=_timestamp(window["start"]), end=_timestamp(window["end"]))


def _reservation(item):
    message = reservations_pb2.Reservation(
        id=item["id"], place_id=item["place_id"], user_id=item["user_id"],
        start=_timestamp(item["start"]), end=_timestamp(item["end"]),
        status=Status.Value(f"RESERVATION_STATUS_{item['status'].upper()}"),
        amount=item["amount"], currency=item["currency"], quantity=item.get("quantity") or 1,
        payment_id=item.get("payment_id") or 0,
        refund_amount=item.get("refund_amount") or 0, cancel_reason=item.get("cancel_reason") or "",
        created_at=_timestamp(item["created_at"]), updated_at=_timestamp(item["updated_at"]))
    if item.get("hold_expires_at"):
        message.hold_expires_at.CopyFrom(_timestamp(item["hold_expires_at"]))
    return message


def _place(item):
    return reservations_pb2.Place(
        id=item["id"], name=item["name"], description=item.get("description") or "", unit=item["unit"],
        unit_price=item["unit_price"], currency=item["currency"], timezone=item["timezone"],
        capacity=item["capacity"],
        opening_hours=[reservations_pb2.OpeningHours(**hours) for hours in item.get("opening_hours") or ()],
        slot_minutes=item["slot_minutes"], min_minutes=item.get("min_minutes") or 0,
        max_minutes=item.get("max_minutes") or 0, buffer_minutes=item["buffer_minutes"],
        created_at=_timestamp(item["created_at"]), updated_at=_timestamp(item["updated_at"]))
