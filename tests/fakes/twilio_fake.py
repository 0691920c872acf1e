"""A local stand-in for Twilio's Messages API that checks what the official SDK sends.

`POST /2010-04-01/Accounts/<sid>/Messages.json`, basic auth `<sid>:<token>`, form-encoded
To/From/Body, is accepted with 201 and a message resource (its `sid`), as Twilio answers.
A request of any other shape is answered 400 and kept in `errors`. Like Twilio's test
credentials, +15005550001 is an invalid number (400, error 21211); `fail_next(n, status,
retry_after)` makes the next n well-formed requests fail (a 429 with `Retry-After`, say);
`answer_after(seconds)` takes each message at once and answers `seconds` later."""
import base64
import re
import uuid
from urllib.parse import parse_qs

from tests.fakes.http_fake import HttpFake, answer

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
INVALID_NUMBERS = {"+15005550001"}


class TwilioFake(HttpFake):
    what = "SMS"

    def __init__(self, account_sid="AC" + "0" * 32, auth_token="twilio-test-token"):
        self.account_sid = account_sid
        self.auth_token = auth_token
        super().__init__()
        self.refused = []    # well-formed requests refused as Twilio would (invalid number)

    # -- the API -------------------------------------------------------------------------

    def _app(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        try:
            form = self._check(environ, path, body)
        except ValueError as reason:
            self.errors.append((str(reason), path))
            return answer(start_response, "400 Bad Request",
                           {"code": 21610, "message": str(reason), "status": 400})
        if form["To"] in INVALID_NUMBERS:
            self.refused.append(form["To"])
            return answer(start_response, "400 Bad Request", {
                "code": 21211, "status": 400, "more_info": "https://www.twilio.com/docs/errors/21211",
                "message": f"The 'To' number {form['To']} is not a valid phone number."})
        status, headers = self._injected_failure()
        if status:
            self._pause()
            return answer(start_response, f"{status} Injected",
                          {"code": 20429 if status == 429 else 20500, "message": "injected failure",
                           "status": status}, headers)
        sid = "SM" + uuid.uuid4().hex
        self.messages.append({"sid": sid, "to": form["To"], "from": form["From"], "body": form["Body"]})
        self._pause()
        return answer(start_response, "201 Created", {
            "sid": sid, "account_sid": self.account_sid, "to": form["To"], "from": form["From"],
            "body": form["Body"], "status": "queued", "num_segments": "1", "direction": "outbound-api",
            "date_created": "Wed, 25 Nov 2026 18:00:00 +0000", "date_updated": "Wed, 25 Nov 2026 18:00:00 +0000",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json"})

    def _check(self, environ, path, body):
        expected = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        if environ["REQUEST_METHOD"] != "POST" or path != expected:
            raise ValueError(f"unexpected {environ['REQUEST_METHOD']} {path}")
        credentials = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if environ.get("HTTP_AUTHORIZATION") != f"Basic {credentials}":
            raise ValueError("missing or wrong basic auth")
        if not environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
            raise ValueError(f"Content-Type is {environ.get('CONTENT_TYPE')!r}, not form-encoded")
        fields = parse_qs(body.decode(), keep_blank_values=True)
        form = {name: values[0] for name, values in fields.items()}
        missing = [name for name in ("To", "From", "Body") if not form.get(name)]
        if missing:
            raise ValueError(f"missing form fields {missing}")
        for name in ("To", "From"):
            if not E164.match(form[name]):
                raise ValueError(f"{name} {form[name]!r} is not E.164")
        return form

