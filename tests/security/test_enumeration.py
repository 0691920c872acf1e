"""Account enumeration: login answers an unknown email exactly as it answers a known one
with a wrong password (status, body, headers, lockout, and time, since both pay for one
argon2 verification). Registration of a taken email is the contract's 409 `conflict`,
one fixed body, nothing more about the account."""
import statistics
import time
import uuid

import pytest
from argon2 import PasswordHasher

from auth_service.accounts import AccountPolicy, Accounts
from auth_service.models import OutboxMessage
from auth_service.passwords import Passwords
from common.errors import Unauthenticated
from common.storage.outbox import EventRecorder
from common.tokens import TokenCodec, TokenSettings
from tests.security.conftest import error_of

VARYING_HEADERS = {"Date", "X-Request-Id"}
ROUNDS = 8


class CountingHasher(PasswordHasher):
    def __init__(self):
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.verifications = 0

    def verify(self, hash, password):
        self.verifications += 1
        return super().verify(hash, password)


@pytest.fixture
def counted(auth_db):
    hasher = CountingHasher()
    tokens = TokenCodec(TokenSettings(algorithm="HS256", issuer="bookify", audience="bookify-api",
                                      access_ttl_seconds=900, secret="s" * 32))
    accounts = Accounts(auth_db, EventRecorder(OutboxMessage), tokens, Passwords(hasher), AccountPolicy())
    return accounts, hasher


def test_unknown_email_costs_the_same_argon2_verification_as_a_known_one(counted):
    accounts, hasher = counted
    accounts.register({"email": "known@example.com", "password": "password-123"})
    costs = {}
    for email in ("known@example.com", "unknown@example.com"):
        before = hasher.verifications
        with pytest.raises(Unauthenticated) as refused:
            accounts.login(email, "wrong-password")
        costs[email] = (hasher.verifications - before, refused.value.message, refused.value.details)
    assert costs["known@example.com"] == costs["unknown@example.com"] == (
        1, "Wrong email or password", {})


def _answer(response):
    headers = {name: value for name, value in response.headers.items() if name not in VARYING_HEADERS}
    return response.status_code, response.json(), headers


def _login(stack, email, password):
    started = time.perf_counter()
    response = stack.post("/v1/auth/login", json={"email": email, "password": password})
    return response, time.perf_counter() - started


def test_login_answers_unknown_and_known_emails_alike(stack):
    user = stack.register()
    timings = {"known": [], "unknown": []}
    answers = {"known": set(), "unknown": set()}
    for round_ in range(ROUNDS):
        # Interleaved, so a slow moment of the machine falls on both sides.
        for kind, email in (("known", user["email"]), ("unknown", f"nobody-{uuid.uuid4().hex[:10]}@example.com")):
            response, seconds = _login(stack, email, "wrong-password-1")
            status, body, headers = _answer(response)
            answers[kind].add((status, repr(body), repr(sorted(headers.items()))))
            timings[kind].append(seconds)
        if round_ % 4 == 3:
            stack.login(user["email"], user["password"])  # a success clears the failures: no lockout
    assert answers["known"] == answers["unknown"] and len(answers["known"]) == 1
    status, body, _ = next(iter(answers["known"]))
    assert status == 401 and "Wrong email or password" in body

    known, unknown = statistics.median(timings["known"]), statistics.median(timings["unknown"])
    print(f"login medians over {ROUNDS} tries each: known email {known * 1000:.0f} ms, "
          f"unknown email {unknown * 1000:.0f} ms (ratio {unknown / known:.2f})")
    # Without the decoy verification an unknown email answers ~20x faster; 2x is a generous bound.
    assert 0.5 < unknown / known < 2.0, timings


def test_lockout_does_not_tell_known_from_unknown(stack):
    known = stack.register()["email"]
    unknown = f"nobody-{uuid.uuid4().hex[:10]}@example.com"
    locked = {}
    for email in (known, unknown):
        for _ in range(5):
            error_of(stack.post("/v1/auth/login", json={"email": email, "password": "guess-guess"}),
                     401, "unauthenticated")
        response = stack.post("/v1/auth/login", json={"email": email, "password": "guess-guess"})
        error = error_of(response, 429, "rate_limited")
        locked[email] = (error["message"], set(error["details"]), "Retry-After" in response.headers)
    assert locked[known] == locked[unknown]


def test_registering_a_taken_email_is_the_contracts_409_and_nothing_more(stack):
    user = stack.register(name="Private Name", phone="+14155550111")
    for email in (user["email"], user["email"].upper()):
        response = stack.post("/v1/auth/register", json={"email": email, "password": "password-456"})
        assert response.json() == {"error": {
            "code": "conflict", "message": "An account with this email exists",
            "details": {"email": ["Already registered."]}}}, email
        assert response.status_code == 409
        assert "Private Name" not in response.text and "4155550111" not in response.text
    # …and the attempt changed nothing: the owner still signs in with the old password.
    assert stack.login(user["email"], user["password"])["access_token"]
