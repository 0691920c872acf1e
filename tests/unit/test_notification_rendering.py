"""Templates: every event renders an email (subject, text, escaped HTML) and an SMS from
files, money in major units with its currency, and a missing value is an error."""
from datetime import UTC, datetime

import pytest
from jinja2 import UndefinedError

from notifications_service.rendering import TEMPLATES, Renderer, money, when

RESERVATION = {"reservation_id": 12, "place_id": 3, "user_id": 7, "amount": 7500, "currency": "usd",
               "start": datetime(2027, 1, 1, 10, tzinfo=UTC), "end": datetime(2027, 1, 1, 13, tzinfo=UTC),
               "refund_amount": None}
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


def test_a_cancellation_mentions_the_refund_or_that_there_is_none(renderer):
    refunded = renderer.email("reservation_cancelled", _context("reservation_cancelled", refund_amount=3750))
    assert "A refund of 37.50 USD is on its way" in refunded.text
    assert "37.50 USD" in renderer.sms("reservation_cancelled", _context("reservation_cancelled", refund_amount=3750))
    none = renderer.email("reservation_cancelled", _context("reservation_cancelled", refund_amount=0))
    assert "No refund applies" in none.text and "refund of" not in none.text


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
