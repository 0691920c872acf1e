"""The contacts notifications keeps from auth's events, and which channels reach a user.

Auth announces every change of email, phone and notification choices, so sending never
asks auth anything; an event that arrives late never overwrites a newer one."""
from dataclasses import dataclass

from notifications_service.models import Contact
from notifications_service.repository import ContactRepository

EMAIL, SMS = "email", "sms"


@dataclass(frozen=True)
class Route:
    channel: str
    recipient: str


def routes(contact):
    """Where a user wants to hear from us: email and/or SMS, by address and choice."""
    found = []
    if contact.email and contact.notify_email:
        found.append(Route(EMAIL, contact.email))
    if contact.phone and contact.notify_sms:
        found.append(Route(SMS, contact.phone))
    return found


class ContactBook:
    def __init__(self, session):
        self.contacts = ContactRepository(session)

    def get(self, user_id):
        return self.contacts.get(user_id)

    def apply(self, event, now):
        """Record what a contact event says, unless the stored copy is newer. The contact."""
        contact = self.contacts.get(event["user_id"])
        if contact is None:
            contact = self.contacts.add(Contact(user_id=event["user_id"], as_of=event["occurred_at"],
                                                updated_at=now, **_details(event)))
        elif event["occurred_at"] >= contact.as_of:
            for name, value in _details(event).items():
                setattr(contact, name, value)
            contact.as_of, contact.updated_at = event["occurred_at"], now
        return contact


def _details(event):
    return {name: event[name] for name in ("email", "name", "phone", "notify_email", "notify_sms")}
