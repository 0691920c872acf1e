"""Email through any SMTP server (smtplib), for deployments without SendGrid."""
import smtplib
from email.message import EmailMessage as MimeMessage
from email.utils import make_msgid

from notifications_service.providers.base import ProviderPermanentError, ProviderTemporaryError


class SmtpEmail:
    channel = "email"

    def __init__(self, host, port, sender, username=None, password=None, starttls=False, timeout=10.0):
        self.host, self.port = host, int(port)
        self.sender = sender
        self.username, self.password = username, password
        self.starttls = starttls
        self.timeout = timeout

    def __repr__(self):
        return f"SMTP at {self.host}:{self.port}"

    def send(self, message):
        mime = MimeMessage()
        mime["From"], mime["To"], mime["Subject"] = self.sender, message.to, message.subject
        mime["Message-ID"] = message_id = make_msgid(domain="bookify")
        mime.set_content(message.text)
        mime.add_alternative(message.html, subtype="html")
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as server:
                if self.starttls:
                    server.starttls()
                if self.username:
                    server.login(self.username, self.password or "")
                server.send_message(mime)
        except smtplib.SMTPRecipientsRefused as error:
            codes = [code for code, _ in error.recipients.values()]
            raise _by_code(min(codes), f"recipient refused: {error.recipients}") from None
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError, smtplib.SMTPAuthenticationError) as error:
            raise _by_code(error.smtp_code, str(error.smtp_error)) from None
        except (smtplib.SMTPException, OSError) as error:
            raise ProviderTemporaryError(f"SMTP server unreachable: {error}") from None
        return message_id


def _by_code(code, detail):
    # SMTP: 4xx is a transient refusal, 5xx a permanent one.
    error = ProviderPermanentError if 500 <= code < 600 else ProviderTemporaryError
    return error(f"{code} {detail}"[:480])
