"""The contacts notifications keeps from auth's events, and who an event is for.

Auth announces every change of email, phone and notification choices, so sending never
asks auth anything; an event that arrives late never overwrites a newer one. A partner
booking has no user but a guest, named in the event itself: the guest is emailed, and
texted when the partner gave a phone number."""
from dataclasses import dataclass

from notifications_service.models import Contact
from notifications_service.repository import ContactRepository

EMAIL, SMS = "email", "sms"


@dataclass(frozen=True)
class Route:
    channel: str
    recipient: str


@dataclass(frozen=True)
class Recipient:
    """Who hears about an event: a user (user_id) or a partner booking's guest (None)."""

    user_id: int | None
    name: str | None
    email: str | None
    routes: tuple[Route, ...]


def routes(contact):
    """Where a user wants to hear from us: email and/or SMS, by address and choice."""
    found = []
    if contact.email and contact.notify_email:
        found.append(Route(EMAIL, contact.email))
    if contact.phone and contact.notify_sms:
        found.append(Route(SMS, contact.phone))
    return found


def guest_routes(guest):
    """A guest gave the partner an email (and maybe a phone) for this booking: both are used."""
    found = [Route(EMAIL, guest["email"])] if guest.get("email") else []
    if guest.get("phone"):
        found.append(Route(SMS, guest["phone"]))
    return found


def user_recipient(contact):
    return Recipient(contact.user_id, contact.name, contact.email, tuple(routes(contact)))


class ContactBook:
    def __init__(self, session):
        self.contacts = ContactRepository(session)

    def get(self, user_id):
        return self.contacts.get(user_id)

    def recipient(self, event):
        """Who the event is for: its user as auth last described them, or the guest of a
        partner booking (`user_id` null). None when nobody is known to tell."""
        if event.get("user_id") is None:
            guest = event.get("guest")
            return Recipient(None, guest["name"], guest["email"], tuple(guest_routes(guest))) if guest else None
        contact = self.get(event["user_id"])
        return user_recipient(contact) if contact is not None else None

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
