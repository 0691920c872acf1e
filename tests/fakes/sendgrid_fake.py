"""A local stand-in for SendGrid's v3 mail API that checks what the official SDK sends.

`POST /v3/mail/send` with `Authorization: Bearer <key>` and a JSON body holding
personalizations[].to[].email, from.email, a subject and content[{type, value}] is accepted
with 202 and an `X-Message-Id` header, the way SendGrid answers. Anything else is answered
400 and kept in `errors`, so a test can assert that no request had the wrong shape.
`fail_next(n, status, retry_after)` makes the next n well-formed requests fail (an outage, a
refusal, or a rate limit with `Retry-After`); `answer_after(seconds)` makes SendGrid slow:
each message is taken (and counted as sent) at once, its answer comes `seconds` later."""
import json
import re
import uuid

from tests.fakes.http_fake import HttpFake, answer

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


class SendGridFake(HttpFake):
    what = "emails"

    def __init__(self, api_key="SG.test-key"):
        self.api_key = api_key
        super().__init__()

    # -- the API -------------------------------------------------------------------------

    def _app(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        try:
            mail = self._check(environ, path, body)
        except ValueError as reason:
            self.errors.append((str(reason), path))
            return answer(start_response, "400 Bad Request", {"errors": [{"message": str(reason)}]})
        status, headers = self._injected_failure()
        if status:
            self._pause()
            return answer(start_response, f"{status} Injected", {"errors": [{"message": "injected failure"}]},
                          headers)
        message_id = uuid.uuid4().hex[:22]
        self.messages.append(dict(mail, message_id=message_id))
        self._pause()
        start_response("202 Accepted", [("X-Message-Id", message_id), ("Content-Length", "0")])
        return [b""]

    def _check(self, environ, path, body):
        if environ["REQUEST_METHOD"] != "POST" or path != "/v3/mail/send":
            raise ValueError(f"unexpected {environ['REQUEST_METHOD']} {path}")
        if environ.get("HTTP_AUTHORIZATION") != f"Bearer {self.api_key}":
            raise ValueError("missing or wrong Bearer API key")
        if not environ.get("CONTENT_TYPE", "").startswith("application/json"):
            raise ValueError(f"Content-Type is {environ.get('CONTENT_TYPE')!r}, not application/json")
        try:
            mail = json.loads(body)
        except ValueError:
            raise ValueError("body is not JSON") from None
        personalizations = mail.get("personalizations")
        if not isinstance(personalizations, list) or not personalizations:
            raise ValueError("personalizations must be a non-empty list")
        recipients = []
        for personalization in personalizations:
            to = personalization.get("to")
            if not isinstance(to, list) or not to:
                raise ValueError("every personalization needs a non-empty 'to' list")
            for address in to:
                if not EMAIL.match(str(address.get("email", ""))):
                    raise ValueError(f"bad recipient {address!r}")
                recipients.append(address["email"])
        sender = mail.get("from") or {}
        if not EMAIL.match(str(sender.get("email", ""))):
            raise ValueError(f"bad from {sender!r}")
        subject = mail.get("subject") or personalizations[0].get("subject")
        if not subject:
            raise ValueError("no subject")
        content = mail.get("content")
        if not isinstance(content, list) or not content:
            raise ValueError("content must be a non-empty list")
        types = [part.get("type") for part in content]
        if any(not part.get("value") for part in content) or not set(types) <= {"text/plain", "text/html"}:
            raise ValueError(f"content parts need a value and a text type: {types}")
        if "text/plain" in types and types[0] != "text/plain":
            raise ValueError("text/plain must come first")
        parts = {part["type"]: part["value"] for part in content}
        return {"to": recipients[0] if len(recipients) == 1 else recipients, "from": sender["email"],
                "subject": subject, "text": parts.get("text/plain"), "html": parts.get("text/html")}

