"""/v1/notifications: the delivery log of emails and text messages."""
from common.contracts.notifications import NotificationQuerySchema, NotificationSchema
from common.runtime.rpc import TimedClient
from common.schemas import page_of
from gateway.routing import route


class NotificationRoutes:
    # What this group uses; the gateway service class provides it (tests/unit/test_gateway_groups.py).
    notifications: TimedClient

    @route("GET", "/v1/notifications", tag="notifications", query=NotificationQuerySchema,
           response=page_of(NotificationSchema))
    def list_notifications(self, call):
        """Who was told what: your messages, everyone's with notifications:read_any.

        Each item names its recipient, template, status and reservation; `?reservation_id=`
        lists the messages about one reservation, a partner booking's guest included."""
        return self.notifications.list_notifications(call.request.args.to_dict(), call.principal.as_actor())
