"""Providers through the official SDKs against local fakes that check the real request
shapes: what a success returns, which failures are temporary (retry) and which permanent
(4xx: never retried), a rate limit's Retry-After kept, an answer that never came told
apart from a request that never went out, and the console fallback chosen when no
credentials are set."""
import logging
import socket
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from notifications_service.providers import (
    EmailMessage,
    ProviderOutcomeUnknown,
    ProviderPermanentError,
    ProviderTemporaryError,
    SmsMessage,
    build_providers,
)
from notifications_service.providers.base import retry_after_seconds
from notifications_service.providers.console import ConsoleProvider
from notifications_service.providers.sendgrid import SendGridEmail
from notifications_service.providers.smtp import SmtpEmail
from notifications_service.providers.twilio import TwilioSms
from tests.fakes.sendgrid_fake import SendGridFake
from tests.fakes.twilio_fake import TwilioFake

EMAIL = EmailMessage(to="ann@example.com", subject="Reservation #12 is confirmed", text="Paid 75.00 USD",
                     html="<p>Paid <strong>75.00 USD</strong></p>")
SMS = SmsMessage(to="+14155550100", body="Bookify: reservation #12 confirmed")


@pytest.fixture
def sendgrid():
    fake = SendGridFake()
    yield fake
    fake.close()


@pytest.fixture
def twilio():
    fake = TwilioFake()
    yield fake
    fake.close()


def _closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _email(sendgrid, api_key=None):
    return SendGridEmail(api_key or sendgrid.api_key, "Bookify <no-reply@bookify.test>", sendgrid.url, timeout=2)


def _sms(twilio, token=None):
    return TwilioSms(twilio.account_sid, token or twilio.auth_token, "+15005550006", twilio.url, timeout=2)


def test_sendgrid_sends_the_documented_request_and_returns_the_message_id(sendgrid):
    message_id = _email(sendgrid).send(EMAIL)
    [mail] = sendgrid.messages
    assert mail == {"to": "ann@example.com", "from": "no-reply@bookify.test", "subject": EMAIL.subject,
                    "text": EMAIL.text, "html": EMAIL.html, "message_id": message_id}
    assert sendgrid.errors == []


@pytest.mark.parametrize("status, error", [
    (500, ProviderTemporaryError), (503, ProviderTemporaryError), (429, ProviderTemporaryError),
    (400, ProviderPermanentError), (403, ProviderPermanentError),
])
def test_sendgrid_failures_are_temporary_or_permanent_by_status(sendgrid, status, error):
    sendgrid.fail_next(1, status)
    with pytest.raises(error, match=str(status)):
        _email(sendgrid).send(EMAIL)
    assert sendgrid.messages == []


def test_a_wrong_sendgrid_key_is_refused_by_the_fake_and_permanent(sendgrid):
    with pytest.raises(ProviderPermanentError, match="400"):
        _email(sendgrid, api_key="SG.wrong").send(EMAIL)
    assert sendgrid.errors == [("missing or wrong Bearer API key", "/v3/mail/send")]


def test_sendgrid_unreachable_is_temporary():
    provider = SendGridEmail("SG.key", "no-reply@bookify.test", f"http://127.0.0.1:{_closed_port()}", timeout=2)
    with pytest.raises(ProviderTemporaryError, match="unreachable"):
        provider.send(EMAIL)


def test_twilio_sends_the_documented_request_and_returns_the_sid(twilio):
    sid = _sms(twilio).send(SMS)
    assert twilio.messages == [{"sid": sid, "to": SMS.to, "from": "+15005550006", "body": SMS.body}]
    assert sid.startswith("SM") and twilio.errors == []


def test_an_invalid_number_is_a_permanent_twilio_refusal_with_its_code(twilio):
    with pytest.raises(ProviderPermanentError, match="21211"):
        _sms(twilio).send(SmsMessage(to="+15005550001", body="hello"))


@pytest.mark.parametrize("status, error", [
    (500, ProviderTemporaryError), (503, ProviderTemporaryError), (429, ProviderTemporaryError),
    (400, ProviderPermanentError), (404, ProviderPermanentError),
])
def test_twilio_failures_are_temporary_or_permanent_by_status(twilio, status, error):
    twilio.fail_next(1, status)
    with pytest.raises(error, match=str(status)):
        _sms(twilio).send(SMS)


def test_wrong_twilio_credentials_are_refused_by_the_fake(twilio):
    with pytest.raises(ProviderPermanentError):
        _sms(twilio, token="wrong").send(SMS)
    path = f"/2010-04-01/Accounts/{twilio.account_sid}/Messages.json"
    assert twilio.errors == [("missing or wrong basic auth", path)]


def test_twilio_unreachable_is_temporary():
    provider = TwilioSms("AC" + "1" * 32, "token", "+15005550006", f"http://127.0.0.1:{_closed_port()}", timeout=2)
    with pytest.raises(ProviderTemporaryError, match="unreachable"):
        provider.send(SMS)


def test_retry_after_is_read_as_seconds_or_as_an_http_date():
    now = datetime(2027, 1, 1, 9, tzinfo=UTC)
    assert retry_after_seconds("120", now) == 120
    assert retry_after_seconds(" 0 ", now) == 0
    assert retry_after_seconds("Fri, 01 Jan 2027 09:02:30 GMT", now) == 150
    assert retry_after_seconds("Fri, 01 Jan 2027 08:00:00 GMT", now) == 0  # already past
    assert retry_after_seconds(None, now) is None
    assert retry_after_seconds("soon", now) is None and retry_after_seconds("-5", now) is None


@pytest.mark.parametrize("status", [429, 503])
def test_sendgrid_rate_limit_keeps_its_retry_after(sendgrid, status):
    sendgrid.fail_next(1, status, retry_after=120)
    with pytest.raises(ProviderTemporaryError) as raised:
        _email(sendgrid).send(EMAIL)
    assert raised.value.retry_after == 120 and "Retry-After 120 s" in str(raised.value)


def test_sendgrid_retry_after_as_a_date(sendgrid):
    sendgrid.fail_next(1, 429, retry_after=format_datetime(datetime.now(UTC) + timedelta(seconds=300), usegmt=True))
    with pytest.raises(ProviderTemporaryError) as raised:
        _email(sendgrid).send(EMAIL)
    assert 290 <= raised.value.retry_after <= 300


def test_a_sendgrid_429_without_retry_after_waits_for_its_rate_limit_reset(sendgrid):
    reset = int(time.time()) + 90
    sendgrid.fail_next(1, 429, headers=[("X-RateLimit-Limit", "600"), ("X-RateLimit-Remaining", "0"),
                                        ("X-RateLimit-Reset", str(reset))])
    with pytest.raises(ProviderTemporaryError) as raised:
        _email(sendgrid).send(EMAIL)
    assert 85 <= raised.value.retry_after <= 90


def test_a_500_with_retry_after_or_a_429_without_one_carries_none(sendgrid):
    sendgrid.fail_next(1, 500, retry_after=120)
    sendgrid.fail_next(1, 429)
    for _ in range(2):
        with pytest.raises(ProviderTemporaryError) as raised:
            _email(sendgrid).send(EMAIL)
        assert raised.value.retry_after is None


@pytest.mark.parametrize("retry_after, expected", [("60", 60), (None, None)])
def test_twilio_rate_limit_keeps_its_retry_after(twilio, retry_after, expected):
    twilio.fail_next(1, 429, retry_after=retry_after)
    with pytest.raises(ProviderTemporaryError, match="429") as raised:
        _sms(twilio).send(SMS)
    assert raised.value.retry_after == expected
    assert twilio.messages == []


def test_sendgrid_answering_after_the_timeout_is_an_unknown_outcome_not_a_failure(sendgrid):
    sendgrid.answer_after(1.5)
    provider = SendGridEmail(sendgrid.api_key, "no-reply@bookify.test", sendgrid.url, timeout=0.5)
    with pytest.raises(ProviderOutcomeUnknown, match="did not answer within 0.5 s"):
        provider.send(EMAIL)
    assert len(sendgrid.messages) == 1  # SendGrid took it all the same


def test_twilio_answering_after_the_timeout_is_an_unknown_outcome_not_a_failure(twilio):
    twilio.answer_after(1.5)
    provider = TwilioSms(twilio.account_sid, twilio.auth_token, "+15005550006", twilio.url, timeout=0.5)
    with pytest.raises(ProviderOutcomeUnknown, match="did not answer within 0.5 s"):
        provider.send(SMS)
    assert len(twilio.messages) == 1


def test_smtp_unreachable_is_temporary():
    with pytest.raises(ProviderTemporaryError, match="unreachable"):
        SmtpEmail("127.0.0.1", _closed_port(), "no-reply@bookify.test", timeout=2).send(EMAIL)


def test_without_credentials_messages_go_to_the_console_and_startup_says_so(caplog):
    caplog.set_level(logging.INFO)
    providers = build_providers({"sendgrid_api_key": None, "twilio_account_sid": "", "twilio_auth_token": None})
    assert isinstance(providers.email, ConsoleProvider) and isinstance(providers.sms, ConsoleProvider)
    assert "no SendGrid credentials: emails go to the console" in caplog.text
    assert "no Twilio credentials: SMS go to the console" in caplog.text

    assert providers.for_channel("email").send(EMAIL).startswith("console-")
    assert providers.for_channel("sms").send(SMS).startswith("console-")
    assert "Reservation #12 is confirmed" in caplog.text and SMS.body in caplog.text


def test_configured_credentials_choose_the_real_providers(sendgrid, twilio):
    providers = build_providers({
        "sendgrid_api_key": "SG.key", "sendgrid_api_base": sendgrid.url, "twilio_account_sid": twilio.account_sid,
        "twilio_auth_token": "token", "twilio_api_base": twilio.url, "twilio_from_number": "+15005550006"})
    assert isinstance(providers.email, SendGridEmail) and isinstance(providers.sms, TwilioSms)
    smtp = build_providers({"smtp_host": "mail.example.com", "smtp_port": "2525"})
    assert isinstance(smtp.email, SmtpEmail) and (smtp.email.host, smtp.email.port) == ("mail.example.com", 2525)
    with pytest.raises(ValueError, match="TWILIO_FROM_NUMBER"):
        build_providers({"twilio_account_sid": "AC1", "twilio_auth_token": "token"})
