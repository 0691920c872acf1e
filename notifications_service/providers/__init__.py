"""Email and SMS providers, chosen from the NOTIFICATIONS config: SendGrid (else SMTP) for
email and Twilio for SMS when their credentials are set, the console otherwise."""
import logging
from dataclasses import dataclass

from notifications_service.providers.base import (
    EmailMessage,
    ProviderOutcomeUnknown,
    ProviderPermanentError,
    ProviderTemporaryError,
    SmsMessage,
)
from notifications_service.providers.console import ConsoleProvider
from notifications_service.providers.sendgrid import SendGridEmail
from notifications_service.providers.smtp import SmtpEmail
from notifications_service.providers.twilio import TwilioSms

__all__ = ["EmailMessage", "SmsMessage", "ProviderTemporaryError", "ProviderPermanentError", "ProviderOutcomeUnknown",
           "Providers", "build_providers"]

log = logging.getLogger(__name__)
DEFAULT_SENDER = "Bookify <no-reply@bookify.local>"


@dataclass(frozen=True)
class Providers:
    email: object
    sms: object

    def for_channel(self, channel):
        return {"email": self.email, "sms": self.sms}[channel]


def build_providers(config):
    """Providers for the NOTIFICATIONS block of config.yaml; logs which ones are active."""
    timeout = float(_value(config, "provider_timeout_seconds") or 10)
    sender = _value(config, "email_from") or DEFAULT_SENDER
    if _value(config, "sendgrid_api_key"):
        email = SendGridEmail(_value(config, "sendgrid_api_key"), sender,
                              _value(config, "sendgrid_api_base"), timeout)
    elif _value(config, "smtp_host"):
        email = SmtpEmail(_value(config, "smtp_host"), _value(config, "smtp_port") or 25, sender,
                          _value(config, "smtp_username"), _value(config, "smtp_password"),
                          str(_value(config, "smtp_starttls")).lower() == "true", timeout)
    else:
        log.warning("no SendGrid credentials: emails go to the console")
        email = ConsoleProvider("email")
    if _value(config, "twilio_account_sid") and _value(config, "twilio_auth_token"):
        if not _value(config, "twilio_from_number"):
            raise ValueError("Twilio credentials are set but TWILIO_FROM_NUMBER is not")
        sms = TwilioSms(_value(config, "twilio_account_sid"), _value(config, "twilio_auth_token"),
                        _value(config, "twilio_from_number"), _value(config, "twilio_api_base"), timeout)
    else:
        log.warning("no Twilio credentials: SMS go to the console")
        sms = ConsoleProvider("sms")
    log.info("notifications: email through %r, SMS through %r", email, sms)
    return Providers(email=email, sms=sms)


def _value(config, key):
    # `${VAR:}` arrives as None or ""; both mean "not set".
    value = config.get(key)
    return None if value in (None, "") else value
