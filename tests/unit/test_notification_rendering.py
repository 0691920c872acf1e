"""Templates: every event renders an email (subject, text, escaped HTML) and an SMS from
files, money in major units with its currency, and a missing value is an error. Refunds are
stated as the event says they were made, never worked out here; a partner booking's guest is
not told they paid Bookify."""
from datetime import UTC, datetime

import pytest
from jinja2 import UndefinedError

from notifications_service.rendering import TEMPLATES, Renderer, money, when

RESERVATION = {"reservation_id": 12, "place_id": 3, "user_id": 7, "amount": 7500, "currency": "usd",
               "start": datetime(2027, 1, 1, 10, tzinfo=UTC), "end": datetime(2027, 1, 1, 13, tzinfo=UTC),
               "refund_amount": None, "partner": None, "partner_ref": None, "place_name": None, "timezone": None,
               "quantity": 1}
PARTNER = {**RESERVATION, "user_id": None, "partner": "acme-travel", "partner_ref": "ACME-1042",
           "guest": {"name": "Grace Hopper", "email": "grace@example.com", "phone": None}}
PAYMENT = {"payment_id": 42, "reservation_id": 12, "user_id": 7, "amount": 3000, "currency": "eur",
           "reason": "card_declined"}
CONTEXTS = {"welcome": {}, "payment_failed": PAYMENT, "payment_refunded": PAYMENT}


def _context(template, **changes):
    base = CONTEXTS.get(template, RESERVATION)
    return {"name": "Ann", "email": "ann@example.com", **base, **changes}


@pytest.fixture(scope="module")
def renderer():
    return Renderer()


@pytest.mark.parametrize("amount, currency, shown", [
    (7500, "usd", "75.00 USD"), (5, "eur", "0.05 EUR"), (0, "usd", "0.00 USD"),
    (1200, "jpy", "1200 JPY"), (1500, "kwd", "1.500 KWD"), (99_999_999, "gbp", "999999.99 GBP"),
])
def test_money_is_shown_in_major_units_with_the_currency(amount, currency, shown):
    assert money(amount, currency) == shown


def test_times_are_shown_in_utc():
    assert when("2027-01-01T10:00:00+00:00") == "Fri 01 Jan 2027 10:00 UTC"
    assert when("2027-01-01T10:00:00+00:00", "UTC") == "Fri 01 Jan 2027 10:00 UTC"


@pytest.mark.parametrize("moment, zone, shown", [
    ("2027-01-01T10:00:00+00:00", "Europe/Paris", "Fri 01 Jan 2027 11:00 CET (Europe/Paris)"),
    ("2027-07-01T10:00:00+00:00", "Europe/Paris", "Thu 01 Jul 2027 12:00 CEST (Europe/Paris)"),
    ("2027-03-14T07:00:00+00:00", "America/New_York", "Sun 14 Mar 2027 03:00 EDT (America/New_York)"),
])
def test_times_are_shown_in_the_places_zone_with_its_name(moment, zone, shown):
    assert when(moment, zone) == shown


@pytest.mark.parametrize("template", [name for name in TEMPLATES if name.startswith("reservation_")])
def test_reservation_messages_name_the_place_and_show_its_local_times(renderer, template):
    context = _context(template, place_name="Meeting Room A", timezone="Europe/Paris", refund_amount=0)
    parts = _everything(renderer, template, context)
    for part in ("text", "html"):
        assert "Meeting Room A" in parts[part] and "place #3" not in parts[part], parts[part]
        assert "Fri 01 Jan 2027 11:00 CET (Europe/Paris)" in parts[part], parts[part]
        assert "UTC" not in parts[part]
    assert "UTC" not in parts["sms"]
    older = _everything(renderer, template, _context(template, refund_amount=0))  # an event from before
    assert "place #3" in older["text"] and "10:00 UTC" in older["text"]


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_renders_an_email_and_an_sms(renderer, template):
    email = renderer.email(template, _context(template))
    sms = renderer.sms(template, _context(template))
    assert email.subject and "\n" not in email.subject
    assert email.text.startswith("Hello Ann,") and email.html.startswith("<!DOCTYPE html>")
    assert sms and "\n" not in sms and len(sms) <= 160  # one SMS segment
    if template not in ("welcome", "reservation_expired", "reservation_cancelled"):  # nothing charged
        amount = money(_context(template)["amount"], _context(template)["currency"])
        assert amount in email.text and amount in email.html


def _everything(renderer, template, context):
    """Subject, text, HTML and SMS of one message, as one string per part."""
    email = renderer.email(template, context)
    return {"subject": email.subject, "text": email.text, "html": email.html, "sms": renderer.sms(template, context)}


@pytest.mark.parametrize("refund_amount, shown", [(3750, "37.50 USD"), (1000, "10.00 USD"), (1, "0.01 USD")])
def test_a_cancellation_states_the_refund_made_and_no_other_figure(renderer, refund_amount, shown):
    parts = _everything(renderer, "reservation_cancelled", _context("reservation_cancelled",
                                                                     refund_amount=refund_amount))
    assert f"A refund of {shown} is on its way to your card." in parts["text"]
    assert f"A refund of <strong>{shown}</strong> is on its way" in parts["html"]
    assert f"Refund: {shown}." in parts["sms"]
    for part in parts.values():  # the booking's price (75.00) appears nowhere, nor does "no refund"
        assert "75.00" not in part and "No refund" not in part


def test_a_cancellation_without_refund_says_plainly_that_none_is_due(renderer):
    parts = _everything(renderer, "reservation_cancelled", _context("reservation_cancelled", refund_amount=0))
    assert "No refund is due for this cancellation." in parts["text"]
    assert "No refund is due for this cancellation." in parts["html"]
    assert parts["sms"].endswith("is cancelled. No refund is due.")
    for part in parts.values():
        assert "USD" not in part and "on its way" not in part


def test_a_cancellation_whose_refund_is_unknown_promises_nothing(renderer):
    parts = _everything(renderer, "reservation_cancelled", _context("reservation_cancelled", refund_amount=None))
    for part in parts.values():
        assert "refund" not in part.lower() and "USD" not in part


def test_a_partner_guest_is_told_the_refund_is_the_partners_to_make(renderer):
    parts = _everything(renderer, "reservation_cancelled", _context("reservation_cancelled",
                                                                     **{**PARTNER, "refund_amount": 0},
                                                                     name="Grace Hopper"))
    assert parts["text"].startswith("Hello Grace Hopper,")
    assert "No refund is due from Bookify: you paid acme-travel, so any refund comes from them." in parts["text"]
    assert "No refund is due from Bookify: you paid acme-travel" in parts["html"]
    assert parts["sms"].endswith("No refund is due from Bookify; ask acme-travel.")
    for part in parts.values():
        assert "USD" not in part


@pytest.mark.parametrize("amount, reason, shown", [(1000, "requested_by_customer", "10.00 USD"),
                                                   (7500, "cancelled", "75.00 USD"), (5, None, "0.05 USD")])
def test_a_refund_message_states_the_refunds_amount(renderer, amount, reason, shown):
    parts = _everything(renderer, "payment_refunded", _context("payment_refunded", amount=amount, currency="usd",
                                                               reason=reason))
    assert parts["subject"] == f"Refund of {shown} for reservation #12"
    assert f"We refunded {shown} for reservation #12" in parts["text"]
    assert f"We refunded <strong>{shown}</strong>" in parts["html"]
    assert f"refund of {shown} for reservation #12" in parts["sms"]


def test_a_customer_confirmation_states_what_was_paid(renderer):
    parts = _everything(renderer, "reservation_confirmed", _context("reservation_confirmed"))
    assert "Paid:  75.00 USD" in parts["text"] and "<td>75.00 USD</td>" in parts["html"]
    assert parts["sms"].endswith(", paid 75.00 USD.")
    assert all("acme" not in part and "Booked through" not in part for part in parts.values())


@pytest.mark.parametrize("template", ["reservation_confirmed", "reservation_rescheduled"])
def test_a_booking_of_several_at_once_says_how_many_and_one_of_one_says_nothing(renderer, template):
    several = _everything(renderer, template, _context(template, quantity=3))
    assert "Quantity: 3" in several["text"] and "<td>Quantity</td><td>3</td>" in several["html"]
    assert "#12 for 3 " in several["sms"]
    single = _everything(renderer, template, _context(template))
    assert all("Quantity" not in part and " for 1 " not in part for part in single.values())


@pytest.mark.parametrize("template", ["reservation_confirmed", "reservation_rescheduled"])
def test_a_partner_guest_is_never_told_they_paid_bookify(renderer, template):
    parts = _everything(renderer, template, _context(template, **PARTNER, name="Grace Hopper"))
    assert parts["text"].startswith("Hello Grace Hopper,") and "Hello Grace Hopper," in parts["html"]
    for part in parts.values():  # the partner set the guest's price: Bookify's is not theirs to see
        assert "75.00" not in part and "Paid" not in part and "paid" not in part
    if template == "reservation_confirmed":
        assert "Booked through acme-travel (their reference ACME-1042)" in parts["text"]
        assert "<td>acme-travel (their reference ACME-1042)</td>" in parts["html"]


@pytest.mark.parametrize("template", [t for t in TEMPLATES if t.startswith("reservation_")])
def test_every_reservation_template_renders_for_a_guest(renderer, template):
    context = _context(template, **{**PARTNER, "refund_amount": 0}, name="Grace Hopper")
    email = renderer.email(template, context)
    sms = renderer.sms(template, context)
    assert email.text.startswith("Hello Grace Hopper,") and len(sms) <= 160 and "\n" not in sms


def test_html_is_escaped_but_text_and_subject_are_not(renderer):
    email = renderer.email("welcome", _context("welcome", name="<script>alert(1)</script> & Co"))
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in email.html and "<script>" not in email.html
    assert "<script>alert(1)</script> & Co" in email.text
    assert email.subject == "Welcome to Bookify, <script>alert(1)</script> & Co"


def test_a_missing_value_is_an_error_not_a_blank(renderer):
    context = _context("reservation_confirmed")
    del context["amount"]
    with pytest.raises(UndefinedError):
        renderer.email("reservation_confirmed", context)
