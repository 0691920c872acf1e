"""The `notifications` service: turns auth, reservations and payments events into emails
and SMS, delivers them through RabbitMQ work/retry/dead-letter queues, and lets operators
see and replay what failed.
Operators call them from the console (common.runtime.service says how)."""
import logging

import nameko

from common.config import section
from common.contracts.actors import load_actor
from common.contracts.notifications import (
    DeadLetterSchema,
    DeliverySchema,
    NotificationQuerySchema,
    NotificationSchema,
    ReplaySchema,
)
from common.runtime import (  # modules: `nameko run <module>` would run their classes as services
    inbox,
    service,
)
from common.runtime.inbox import PolicyConsumer, consumes, handles
from common.runtime.metrics import count_notification
from common.runtime.rpc import rpc
from common.schemas import LimitSchema, query_or_empty
from notifications_service.delivery import DEAD, DEFER, RETRY, Deliveries, RetryPolicy
from notifications_service.log import DeliveryLog
from notifications_service.models import OperatorCall, OutboxMessage
from notifications_service.notifier import Notifier
from notifications_service.providers import build_providers
from notifications_service.queues import CHANNEL_QUEUES, WORK_QUEUE, DeliveryQueues
from notifications_service.rendering import Renderer

log = logging.getLogger(__name__)

# How long past the provider timeout a send counts as still in flight (a worker may die mid-call).
LEASE_MARGIN_SECONDS = 5
DEFAULT_CONCURRENCY = {"email": 4, "sms": 4}  # deliveries in flight per channel (per instance)

notifications_out = NotificationSchema()
dead_letters_out = DeadLetterSchema()


def channel_concurrency(config, channel):
    """Deliveries of `channel` one instance runs at once (`<channel>_concurrency`)."""
    value = config.get(f"{channel}_concurrency")
    value = DEFAULT_CONCURRENCY[channel] if value in (None, "") else int(value)
    if value < 1:
        raise ValueError(f"NOTIFICATIONS.{channel}_concurrency must be at least 1, not {value}")
    return value


class NotificationComponents(service.Components):
    """Reads the NOTIFICATIONS config once: providers (logged at startup), templates, the
    retry policy, and the delivery queues, declared before anything is consumed."""

    def setup(self):
        config = section(nameko.config, "NOTIFICATIONS")
        self.providers = build_providers(config)
        self.renderer = Renderer()
        self.policy = RetryPolicy(max_attempts=int(config.get("max_attempts") or 5),
                                  base_delay_seconds=float(config.get("retry_base_delay_seconds") or 30),
                                  max_delay_seconds=float(config.get("max_retry_delay_seconds") or 3600))
        self.lease_seconds = float(config.get("provider_timeout_seconds") or 10) + LEASE_MARGIN_SECONDS
        # Each channel's deliveries hold at most their own bound of the container's workers;
        # with both bounds below max_workers, one channel's slow provider cannot take every
        # worker, and the other channel (and the event handlers) always finds one free.
        workers = int(nameko.config.get("max_workers") or 10)
        wanted = sum(channel_concurrency(config, channel) for channel in CHANNEL_QUEUES)
        if wanted >= workers:
            raise ValueError(f"NOTIFICATIONS: email_concurrency + sms_concurrency ({wanted}) must stay below "
                             f"max_workers ({workers})")
        self.queues = DeliveryQueues(nameko.config["AMQP_URI"], [*self.policy.delays(), self.lease_seconds])
        self.queues.declare()


class ChannelDeliveries(PolicyConsumer):
    """`@deliveries(channel)`: the consumer of one channel's work queue, its own connection
    with a prefetch of `<channel>_concurrency`, so at most that many of the channel's deliveries
    are in flight whatever the other channel's provider is doing."""

    def __init__(self, channel, **kwargs):
        self.channel = channel
        queue = CHANNEL_QUEUES[channel]
        super().__init__(queue, {queue.routing_key: DeliverySchema}, **kwargs)

    def setup(self):
        config = section(nameko.config, "NOTIFICATIONS")
        self.consumer_options["prefetch_count"] = channel_concurrency(config, self.channel)
        super().setup()


deliveries = ChannelDeliveries.decorator


def notifying(source_service, event_type):
    """A handler of `event_type` that sends what the template of that name says. Bound under
    its own name (`on_<event_type>`), so its queue is the one a method of that name would have."""

    @handles(source_service, event_type)
    def handler(self, event):
        self._notify(event_type, event)

    handler.__name__ = handler.__qualname__ = f"on_{event_type}"
    return handler


class NotificationsService(service.BookifyService, inbox.EventDeadLetterOperations,
                           audit_table=OperatorCall, outbox_table=OutboxMessage):
    name = "notifications"

    components = NotificationComponents()

    # -- events in ----------------------------------------------------------------------

    # Each gets the event loaded with its producer's schema (common/contracts/events.py); what
    # fails it, or fails to be handled, is parked by common.runtime.inbox, never redelivered in a loop.

    @handles("auth", "user_registered")
    def on_user_registered(self, event):
        self._enqueue(self._notifier().contact_changed(event, welcome=True))

    @handles("auth", "user_profile_changed")
    def on_user_profile_changed(self, event):
        self._enqueue(self._notifier().contact_changed(event))

    # The guest's messages about their booking and its money: the template is the event's name.
    on_reservation_confirmed = notifying("reservations", "reservation_confirmed")
    on_reservation_cancelled = notifying("reservations", "reservation_cancelled")
    on_reservation_expired = notifying("reservations", "reservation_expired")
    on_reservation_rescheduled = notifying("reservations", "reservation_rescheduled")
    on_payment_failed = notifying("payments", "payment_failed")
    on_payment_refunded = notifying("payments", "payment_refunded")

    # -- delivery -----------------------------------------------------------------------

    @deliveries("email")
    def deliver_email(self, delivery):
        """Send one email; a failure is retried later, then parked as a dead letter.
        A malformed delivery message goes to notifications.event_dead_letter."""
        self._deliver(delivery.payload["notification_id"], "email")

    @deliveries("sms")
    def deliver_sms(self, delivery):
        """Send one SMS, as deliver_email sends an email."""
        self._deliver(delivery.payload["notification_id"], "sms")

    @consumes(WORK_QUEUE, {WORK_QUEUE.routing_key: DeliverySchema})
    def forward_delivery(self, delivery):
        """A delivery on the single work queue of earlier releases (from their retry queues,
        or left there at an upgrade): moved to its channel's work queue."""
        self.components.queues.enqueue(self._deliveries().routes([delivery.payload["notification_id"]]))

    # -- operators and the gateway ------------------------------------------------------

    @rpc
    def list_notifications(self, query=None, actor=None):
        """The delivery log, newest first, filterable by status, channel, user and
        reservation; a caller without notifications:read_any sees only their own (never a
        guest's: those have no user).
        Example: n.rpc.notifications.list_notifications({"status": "failed", "channel": "sms", "limit": 20})
        Who was told what about a booking: n.rpc.notifications.list_notifications({"reservation_id": 12})"""
        filters = NotificationQuerySchema().load_or_raise(query_or_empty(query))
        page = DeliveryLog(self.db).search(load_actor(actor), filters)
        return {"items": [notifications_out.dump(n) for n in page.items], "total": page.total}

    @rpc
    def list_failed(self, limit=50):
        """Notifications that gave up (most recent first), with the last error.
        Example: n.rpc.notifications.list_failed(20)"""
        fields = LimitSchema().load_or_raise({"limit": limit})
        return [notifications_out.dump(n) for n in DeliveryLog(self.db).failed(fields["limit"])]

    @rpc
    def list_dead_letters(self, limit=50):
        """Peek at the dead-letter queue without taking anything out of it: id and reason.
        Example: n.rpc.notifications.list_dead_letters()"""
        fields = LimitSchema().load_or_raise({"limit": limit})
        return [dead_letters_out.dump(d) for d in self.components.queues.dead_letters(fields["limit"])]

    @rpc
    def replay_dead_letters(self, notification_ids=None):
        """Send dead letters again (all, or the given notification ids): each goes back to its
        channel's work queue with status queued, its attempts kept. One whose outcome is
        `unknown` (it may have arrived) is sent again only when named by id. Returns how many
        were replayed.
        Example: n.rpc.notifications.replay_dead_letters([41, 42])"""
        fields = ReplaySchema().load_or_raise({"notification_ids": notification_ids})
        return self.components.queues.replay(self._deliveries().requeue, fields["notification_ids"])

    # -- internals ----------------------------------------------------------------------

    def _notify(self, template, event):
        self._enqueue(self._notifier().notify(template, event))

    def _enqueue(self, notification_ids):
        # After commit: a failure here requeues the event, whose redelivery enqueues again.
        self.components.queues.enqueue(self._deliveries().routes(notification_ids))

    def _deliver(self, notification_id, channel):
        outcome = self._deliveries().deliver(notification_id)
        queues = self.components.queues
        if outcome.action in (RETRY, DEFER):
            queues.retry_later(outcome.notification_id, channel, outcome.delay)
        elif outcome.action == DEAD:
            queues.park(outcome.notification_id, outcome.reason)

    def _notifier(self):
        return Notifier(self.db, self.components.renderer)

    def _deliveries(self):
        c = self.components
        return Deliveries(self.db, self.events, c.providers, c.policy, c.lease_seconds,
                          on_status=count_notification)
