"""Persistence of contacts, the delivery log and consumed events (SQLAlchemy)."""
import sqlalchemy as sa

from common.storage import outbox as common_events
from common.storage.repository import SqlRepository
from notifications_service.models import Contact, Notification, ProcessedEvent


class ContactRepository(SqlRepository[Contact]):
    model = Contact


class NotificationRepository(SqlRepository[Notification]):
    model = Notification

    def lock(self, notification_id):
        """The notification row-locked until commit, re-read even if this session holds it."""
        return self.session.get(Notification, notification_id, with_for_update=True, populate_existing=True)

    def finish(self, notification_id, status, now, **fields):
        """Record an attempt's result (`fields`: provider_message_id, last_error) and end its
        lease, in one UPDATE that does not read the row first."""
        self.session.execute(
            sa.update(Notification).where(Notification.id == notification_id)
            .values(status=status, sending_until=None, updated_at=now, **fields)
            .execution_options(synchronize_session=False))

    def channels(self, notification_ids):
        """{id: channel} of the given notifications that exist."""
        if not notification_ids:
            return {}
        rows = self.session.execute(sa.select(Notification.id, Notification.channel)
                                    .where(Notification.id.in_(list(notification_ids))))
        return dict(rows.all())

    def search(self, limit, offset, user_id=None, status=None, channel=None, reservation_id=None):
        where = self.matching(user_id=user_id, reservation_id=reservation_id, status=status,
                              channel=channel)
        return self.page(limit, offset, where=where, order_by=Notification.id.desc())

    def failed(self, limit):
        return self.session.scalars(
            sa.select(Notification).where(Notification.status == "failed")
            .order_by(Notification.updated_at.desc(), Notification.id.desc()).limit(limit)).all()

    def queued_ids_for_event(self, event_id):
        return self.session.scalars(
            sa.select(Notification.id).where(Notification.event_id == event_id, Notification.status == "queued")
            .order_by(Notification.id)).all()


class ProcessedEvents(common_events.ProcessedEvents):
    """Events this service has applied (see common.storage.outbox.ProcessedEvents)."""

    def __init__(self, session):
        super().__init__(session, ProcessedEvent)
