"""The `gateway` service: Bookify's HTTP API. Routes live in gateway/routes (one module
per resource); this class wires them to the services they call."""
from nameko.events import BROADCAST, event_handler

from common.logging import RequestContext
from common.metrics import Metrics
from common.rpc import TimedServiceRpc
from gateway.principals import Authentication
from gateway.routes.auth import AuthRoutes
from gateway.routes.notifications import NotificationRoutes
from gateway.routes.payments import PaymentRoutes
from gateway.routes.places import PlaceRoutes
from gateway.routes.reservations import ReservationRoutes
from gateway.routes.roles import RoleRoutes
from gateway.routes.system import SystemRoutes
from gateway.routes.users import UserRoutes


def _broadcast(event_type):
    # Every gateway instance must hear it (its own queue); a missed one only costs the cache TTL.
    return event_handler("auth", event_type, handler_type=BROADCAST, reliable_delivery=False)


class GatewayService(SystemRoutes, AuthRoutes, UserRoutes, RoleRoutes, PlaceRoutes, ReservationRoutes,
                     PaymentRoutes, NotificationRoutes):
    name = "gateway"

    auth = TimedServiceRpc("auth")
    reservations = TimedServiceRpc("reservations")
    payments = TimedServiceRpc("payments")
    notifications = TimedServiceRpc("notifications")
    authentication = Authentication()
    request_context = RequestContext()  # the correlation id of each request, on every hop
    metrics = Metrics()

    @_broadcast("role_changed")
    def forget_all_permissions(self, payload):
        self.authentication.cache.clear()

    @_broadcast("user_roles_changed")
    def forget_user_permissions(self, payload):
        self.authentication.cache.forget_user(payload["user_id"])

    @_broadcast("session_revoked")
    def forget_session(self, payload):
        self.authentication.cache.forget_session(payload["session_id"])
