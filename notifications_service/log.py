"""The delivery log as its readers see it: customers their own notifications, holders of
notifications:read_any and operators anyone's (the one visibility rule, common/permissions.py)."""
from common.permissions import owner_filter
from notifications_service.repository import NotificationRepository

READ_ANY = "notifications:read_any"


class DeliveryLog:
    def __init__(self, sessions):
        self.sessions = sessions

    def search(self, actor, filters):
        """One page of notifications, newest first; `actor` None is an operator."""
        filters = {**filters, "user_id": owner_filter(actor, filters.get("user_id"), READ_ANY)}
        with self.sessions.read() as session:
            return NotificationRepository(session).search(**filters)

    def failed(self, limit):
        """Notifications that gave up, most recent first."""
        with self.sessions.read() as session:
            return NotificationRepository(session).failed(limit)
