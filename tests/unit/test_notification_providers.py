"""Providers through the official SDKs against local fakes that check the real request
shapes: what a success returns, which failures are temporary (retry) and which permanent
(4xx: never retried), and the console fallback chosen when no credentials are set."""
import logging
import socket

import pytest

from notifications_service.providers import (
    EmailMessage,
    ProviderPermanentError,
    ProviderTemporaryError,
    SmsMessage,
    build_providers,
)
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
