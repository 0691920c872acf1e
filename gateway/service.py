"""The `gateway` service: Bookify's HTTP API. Routes live in gateway/routes (one module
per resource); this class wires them to the services they call."""

from common.runtime.logging import RequestContext
from common.runtime.metrics import Metrics
from common.runtime.rpc import TimedServiceRpc
from gateway.principals import Authentication, PermissionCacheEvictions
from gateway.routes.auth import AuthRoutes
from gateway.routes.notifications import NotificationRoutes
from gateway.routes.payments import PaymentRoutes
from gateway.routes.places import PlaceRoutes
from gateway.routes.reservations import ReservationRoutes
from gateway.routes.roles import RoleRoutes
from gateway.routes.system import SystemRoutes
from gateway.routes.users import UserRoutes


class GatewayService(PermissionCacheEvictions, SystemRoutes, AuthRoutes, UserRoutes, RoleRoutes, PlaceRoutes,
                     ReservationRoutes, PaymentRoutes, NotificationRoutes):
    name = "gateway"

    auth = TimedServiceRpc("auth")
    reservations = TimedServiceRpc("reservations")
    payments = TimedServiceRpc("payments")
    notifications = TimedServiceRpc("notifications")
    authentication = Authentication()
    request_context = RequestContext()  # the correlation id of each request, on every hop
    metrics = Metrics()
