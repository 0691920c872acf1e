"""Events in, delivery log rows out: each event a user (or a partner booking's guest)
should hear about becomes one notification per channel that reaches them, rendered now and
claimed with the event (`processed_events`) in one transaction, so a redelivered event
creates nothing twice. Each row keeps the reservation it is about, for the delivery log."""
import logging

from common.clock import utcnow
from common.contracts.notifications import QUEUED
from notifications_service.contacts import EMAIL, ContactBook, user_recipient
from notifications_service.models import Notification
from notifications_service.repository import NotificationRepository, ProcessedEvents

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, sessions, renderer, clock=utcnow):
        self.sessions = sessions
        self.renderer = renderer
        self.clock = clock

    def contact_changed(self, event, welcome=False):
        """Keep the contact from an auth event (and greet a new user). Ids to deliver."""
        now = self.clock()
        with self.sessions.transaction() as session:
            if not ProcessedEvents(session).claim(event["event_id"], now):
                return NotificationRepository(session).queued_ids_for_event(event["event_id"])
            contact = ContactBook(session).apply(event, now)
            return self._create(session, "welcome", event, user_recipient(contact), now) if welcome else []

    def notify(self, template, event):
        """Notifications of `template` for the event's user, or its guest for a partner
        booking. Ids to deliver (those still queued when the event is a redelivery: their
        delivery message may not have gone out)."""
        now = self.clock()
        with self.sessions.transaction() as session:
            recipient = ContactBook(session).recipient(event)
            if recipient is None:
                if event.get("user_id") is None:
                    log.warning("%s (event %s) names neither a user nor a guest: nobody is notified",
                                template, event["event_id"])
                else:
                    log.warning("no contact for user %s yet: %s (event %s) is not notified",
                                event["user_id"], template, event["event_id"])
                return []
            if not ProcessedEvents(session).claim(event["event_id"], now):
                return NotificationRepository(session).queued_ids_for_event(event["event_id"])
            return self._create(session, template, event, recipient, now)

    def _create(self, session, template, event, recipient, now):
        # Only a partner booking's events name a partner, and events recorded before places had
        # a name and a zone carry neither (the place is named by number, times shown in UTC);
        # the templates ask of every event.
        context = {"partner": None, "partner_ref": None, "place_name": None, "timezone": None, "quantity": 1, **event,
                   "name": recipient.name or "there", "email": recipient.email}
        repository = NotificationRepository(session)
        ids = []
        for route in recipient.routes:
            if route.channel == EMAIL:
                email = self.renderer.email(template, context)
                content = {"subject": email.subject, "body": email.text, "html": email.html}
            else:
                content = {"body": self.renderer.sms(template, context)}
            notification = repository.add(Notification(
                user_id=recipient.user_id, reservation_id=event.get("reservation_id"), channel=route.channel,
                template=template, recipient=route.recipient, status=QUEUED, attempts=0, event_id=event["event_id"],
                created_at=now, updated_at=now, **content))
            ids.append(notification.id)
        return ids
