"""From events to delivery log rows: a local copy of each contact (newest event wins), one
notification per channel the user can and wants to be reached on, a redelivered event
creating nothing twice, and an event about an unknown user recording nothing. The guest of a
partner booking (no user) is emailed, and texted when a phone was given, by name; every row
keeps the reservation it is about."""
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from notifications_service.contacts import ContactBook, Route, routes
from notifications_service.models import Contact, Notification, ProcessedEvent
from notifications_service.notifier import Notifier
from notifications_service.rendering import Renderer
from tests.service.notifications_fixtures import notifications_db  # noqa: F401  (fixture)

T0 = datetime(2027, 1, 1, 9, tzinfo=UTC)


def _contact_event(event_id="evt-reg", occurred_at=T0, **changes):
    return {"event_id": event_id, "occurred_at": occurred_at, "user_id": 7, "email": "ann@example.com",
            "name": "Ann", "phone": "+14155550100", "notify_email": True, "notify_sms": True, **changes}


def _confirmed(event_id="evt-conf", user_id=7):
    return {"event_id": event_id, "occurred_at": T0, "reservation_id": 12, "user_id": user_id, "place_id": 3,
            "start": T0 + timedelta(days=1), "end": T0 + timedelta(days=1, hours=3), "amount": 7500,
            "currency": "usd", "refund_amount": None}


def _guest_event(event_id="evt-guest", phone=None, **changes):
    return {**_confirmed(event_id, user_id=None), "reservation_id": 31, "partner": "acme-travel",
            "partner_ref": "ACME-1042", "guest": {"name": "Grace Hopper", "email": "grace@example.com", "phone": phone},
            **changes}


@pytest.fixture
def notifier(notifications_db):  # noqa: F811
    return Notifier(notifications_db, Renderer(), clock=lambda: T0)


def _rows(db, model=Notification):
    with db.transaction() as session:
        return session.scalars(sa.select(model)).all()


@pytest.mark.parametrize("contact, expected", [
    ({}, [Route("email", "ann@example.com"), Route("sms", "+14155550100")]),
    ({"notify_email": False}, [Route("sms", "+14155550100")]),
    ({"notify_sms": False}, [Route("email", "ann@example.com")]),
    ({"phone": None}, [Route("email", "ann@example.com")]),
    ({"notify_email": False, "phone": None}, []),
])
def test_routes_follow_addresses_and_choices(contact, expected):
    fields = {"email": "ann@example.com", "phone": "+14155550100", "notify_email": True, "notify_sms": True}
    assert routes(Contact(user_id=7, **{**fields, **contact})) == expected


def test_registration_keeps_the_contact_and_welcomes_on_each_channel(notifications_db, notifier):  # noqa: F811
    ids = notifier.contact_changed(_contact_event(), welcome=True)
    email, sms = sorted(_rows(notifications_db), key=lambda r: r.id)
    assert [email.id, sms.id] == ids
    assert (email.channel, email.recipient, email.template, email.status, email.event_id) == (
        "email", "ann@example.com", "welcome", "queued", "evt-reg")
    assert email.subject == "Welcome to Bookify, Ann" and "<html>" in email.html
    assert (sms.channel, sms.recipient, sms.subject, sms.html) == ("sms", "+14155550100", None, None)
    [contact] = _rows(notifications_db, Contact)
    assert (contact.email, contact.phone, contact.as_of) == ("ann@example.com", "+14155550100", T0)


def test_a_redelivered_event_creates_nothing_twice(notifications_db, notifier):  # noqa: F811
    notifier.contact_changed(_contact_event())
    first = notifier.notify("reservation_confirmed", _confirmed())
    # Redelivered: the rows still queued come back so their delivery messages can go out again.
    assert notifier.notify("reservation_confirmed", _confirmed()) == first
    with notifications_db.transaction() as session:
        session.execute(sa.update(Notification).values(status="sent"))
    assert notifier.notify("reservation_confirmed", _confirmed()) == []
    assert len(_rows(notifications_db)) == 2
    assert {e.event_id for e in _rows(notifications_db, ProcessedEvent)} == {"evt-reg", "evt-conf"}


def test_an_event_about_an_unknown_user_records_nothing(notifications_db, notifier):  # noqa: F811
    assert notifier.notify("reservation_confirmed", _confirmed(user_id=999)) == []
    assert _rows(notifications_db) == [] and _rows(notifications_db, ProcessedEvent) == []


def test_the_newest_contact_event_wins_whatever_the_order_of_arrival(notifications_db):  # noqa: F811
    later = T0 + timedelta(minutes=5)
    with notifications_db.transaction() as session:
        ContactBook(session).apply(_contact_event(occurred_at=later, phone="+14155550199", notify_email=False), T0)
        contact = ContactBook(session).apply(_contact_event(occurred_at=T0), T0)  # the registration, late
        assert (contact.phone, contact.notify_email, contact.as_of) == ("+14155550199", False, later)
        contact = ContactBook(session).apply(_contact_event(occurred_at=later + timedelta(1), name="Annie"), T0)
        assert (contact.name, contact.phone, contact.notify_email) == ("Annie", "+14155550100", True)


def test_opted_out_channels_get_no_row(notifications_db, notifier):  # noqa: F811
    notifier.contact_changed(_contact_event(notify_sms=False))
    notifier.notify("reservation_confirmed", _confirmed())
    assert [(r.channel, r.template) for r in _rows(notifications_db)] == [("email", "reservation_confirmed")]


def test_a_partner_guest_without_a_phone_is_emailed_by_name(notifications_db, notifier):  # noqa: F811
    ids = notifier.notify("reservation_confirmed", _guest_event())
    [email] = _rows(notifications_db)
    assert ids == [email.id]
    assert (email.user_id, email.reservation_id, email.channel, email.recipient, email.template, email.status) == (
        None, 31, "email", "grace@example.com", "reservation_confirmed", "queued")
    assert email.body.startswith("Hello Grace Hopper,") and "Booked through acme-travel" in email.body
    assert "Hello Grace Hopper," in email.html and email.subject == "Reservation #31 is confirmed"


def test_a_partner_guest_with_a_phone_is_emailed_and_texted_once(notifications_db, notifier):  # noqa: F811
    event = _guest_event(phone="+14155550177", event_id="evt-cancel", refund_amount=0)
    first = notifier.notify("reservation_cancelled", event)
    email, sms = sorted(_rows(notifications_db), key=lambda r: r.id)
    assert [email.id, sms.id] == first
    assert (email.channel, email.recipient, sms.channel, sms.recipient) == (
        "email", "grace@example.com", "sms", "+14155550177")
    assert {email.user_id, sms.user_id} == {None} and {email.reservation_id, sms.reservation_id} == {31}
    assert "No refund is due from Bookify: you paid acme-travel" in email.body
    assert sms.body.endswith("No refund is due from Bookify; ask acme-travel.")
    # Redelivered, then again once sent: deduplicated by event_id like any other event.
    assert notifier.notify("reservation_cancelled", event) == first
    with notifications_db.transaction() as session:
        session.execute(sa.update(Notification).values(status="sent"))
    assert notifier.notify("reservation_cancelled", event) == []
    assert len(_rows(notifications_db)) == 2
    assert [e.event_id for e in _rows(notifications_db, ProcessedEvent)] == ["evt-cancel"]


def test_a_guest_is_not_mistaken_for_a_user_or_the_other_way_round(notifications_db, notifier):  # noqa: F811
    notifier.contact_changed(_contact_event(notify_sms=False))  # user 7: email only
    notifier.notify("reservation_confirmed", _confirmed())  # a customer's booking: their contact
    # A partner booking whose event names a guest: the guest, never a stored contact.
    notifier.notify("reservation_confirmed", _guest_event(phone="+14155550177"))
    rows = sorted(_rows(notifications_db), key=lambda r: r.id)
    assert [(r.user_id, r.reservation_id, r.template, r.channel, r.recipient) for r in rows] == [
        (7, 12, "reservation_confirmed", "email", "ann@example.com"),
        (None, 31, "reservation_confirmed", "email", "grace@example.com"),
        (None, 31, "reservation_confirmed", "sms", "+14155550177")]
    assert "Paid:  75.00 USD" in rows[0].body and rows[0].body.startswith("Hello Ann,")


def test_a_userless_event_without_a_guest_records_nothing(notifications_db, notifier):  # noqa: F811
    assert notifier.notify("reservation_confirmed", _guest_event(guest=None)) == []
    assert _rows(notifications_db) == [] and _rows(notifications_db, ProcessedEvent) == []


def test_payment_events_keep_their_reservation(notifications_db, notifier):  # noqa: F811
    notifier.contact_changed(_contact_event(notify_sms=False), welcome=True)
    notifier.notify("payment_refunded", {"event_id": "evt-refund", "occurred_at": T0, "payment_id": 4,
                                         "reservation_id": 12, "user_id": 7, "amount": 1000, "currency": "usd",
                                         "reason": "requested_by_customer"})
    welcome, refund = sorted(_rows(notifications_db), key=lambda r: r.id)
    assert (welcome.template, welcome.reservation_id) == ("welcome", None)
    assert (refund.template, refund.reservation_id, refund.subject) == (
        "payment_refunded", 12, "Refund of 10.00 USD for reservation #12")


def test_an_event_recorded_before_places_had_a_name_and_zone_names_the_place_by_number(
        notifications_db, notifier):  # noqa: F811
    # Such events (without place_name and timezone) may still wait in a queue after an upgrade.
    notifier.contact_changed(_contact_event())
    notifier.notify("reservation_confirmed", _confirmed())
    email, sms = sorted(_rows(notifications_db), key=lambda r: r.id)
    assert "of place #3 is confirmed" in email.body and "of place #3 is confirmed" in email.html
    assert "Sat 02 Jan 2027 09:00 UTC" in email.body and "Sat 02 Jan 2027 09:00 UTC" in sms.body


def test_an_event_naming_the_place_and_its_zone_is_shown_so(notifications_db, notifier):  # noqa: F811
    notifier.contact_changed(_contact_event())
    notifier.notify("reservation_confirmed", {**_confirmed(), "place_name": "Meeting Room A",
                                              "timezone": "Europe/Paris", "quantity": 1})
    email, sms = sorted(_rows(notifications_db), key=lambda r: r.id)
    assert "of Meeting Room A is confirmed" in email.body and "place #3" not in email.body
    assert "Sat 02 Jan 2027 10:00 CET (Europe/Paris)" in email.body and "UTC" not in sms.body
