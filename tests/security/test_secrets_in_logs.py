"""No secret reaches a log: a customer and the admin go through register, login (right and
wrong passwords), the cookie, refresh, a card booking (and a declined card), reschedule,
cancel with refund and logout; then every service log of that stack is scanned for each
password, access and refresh token (and a token's signature alone), the JWT secret, the
Stripe key and webhook secret, and payment method ids (`pm_card_…`). The Stripe emulator's
own log is not ours and is left out."""
import time
from datetime import datetime, timedelta, timezone

from gateway.principals import COOKIE_NAME
from tests.e2e.conftest import ADMIN, SECRET, WEBHOOK_SECRET
from tests.security.conftest import STRIPE_KEY

NOT_OURS = {"localstripe.log"}


def at(days, hour):
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return today + timedelta(days=days, hours=hour)


def journey(stack):
    """Drive the stack; return every secret the callers handled."""
    secrets = {"JWT secret": SECRET, "Stripe key": STRIPE_KEY, "webhook secret": WEBHOOK_SECRET,
               "admin password": ADMIN["password"], "payment method": "pm_card_"}
    user = stack.register(password="Secret-Pass-7f3a9", name="Log Scan", phone="+14155550123")
    secrets["password"] = user["password"]
    secrets["wrong password"] = "Wrong-Guess-51c0e"
    assert stack.post("/v1/auth/login", json={"email": user["email"], "password": secrets["wrong password"]}
                      ).status_code == 401
    tokens = stack.login(user["email"], user["password"])
    me = stack.get("/v1/users/me", cookies={COOKIE_NAME: tokens["access_token"]})
    assert me.status_code == 200
    refreshed = stack.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).json()
    for generation, pair in (("first", tokens), ("second", refreshed)):
        secrets[f"{generation} access token"] = pair["access_token"]
        secrets[f"{generation} access token signature"] = pair["access_token"].rsplit(".", 1)[1]
        secrets[f"{generation} refresh token"] = pair["refresh_token"]
    token = refreshed["access_token"]

    place = stack.place()["id"]
    booked = stack.book(token, place, at(40, 10), at(40, 11), payment_method="pm_card_visa")
    assert booked.status_code == 201, booked.text
    declined = stack.book(token, place, at(41, 10), at(41, 11), payment_method="pm_card_chargeCustomerFail")
    assert declined.status_code == 402, declined.text
    reservation = booked.json()["id"]
    moved = stack.request("PATCH", f"/v1/reservations/{reservation}", token=token, json={
        "start": at(42, 9).isoformat(), "end": at(42, 11).isoformat(), "payment_method": "pm_card_visa"})
    assert moved.status_code == 200, moved.text
    cancelled = stack.post(f"/v1/reservations/{reservation}/cancel", token=token, json={})
    assert cancelled.status_code == 200, cancelled.text
    assert stack.post("/v1/auth/logout", token=token).status_code == 204
    return secrets


def test_no_secret_in_any_service_log(stack):
    secrets = journey(stack)
    time.sleep(3)  # the outbox relay, notifications and webhooks log after the answers
    logs = {path.name: path.read_text(errors="replace") for path in stack.stack.logs.values()
            if path.name not in NOT_OURS}
    assert {"auth_service.log", "gateway.log", "payments_service.log", "reservations_service.log",
            "notifications_service.log"} <= set(logs)
    assert sum(len(text) for text in logs.values()) > 10_000  # the journey was logged, at all
    leaks = [(name, what) for name, text in logs.items() for what, value in secrets.items()
             if value in text]
    print(f"{len(logs)} service logs, {sum(len(t) for t in logs.values())} characters, "
          f"{len(secrets)} secrets: {len(leaks)} found")
    assert leaks == []
