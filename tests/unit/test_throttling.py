"""Throttling in the domain, on both databases: the per-address limits of logins and
registrations, a success handing its slot back, the purge of spent rows, and the email
rule (NFKC, lower-case, no format characters) at the schema that owns it."""
import pytest
import sqlalchemy as sa

from auth_service.accounts import AccountPolicy, Accounts
from auth_service.models import OutboxMessage, ThrottleCounter
from auth_service.throttling import ThrottlePolicy
from common.contracts.auth import LoginSchema, RegisterSchema, UserCreateSchema, UserFilterSchema
from common.errors import Conflict, RateLimited, Unauthenticated, ValidationError
from common.storage.outbox import EventRecorder

ANN = {"email": "ann@example.com", "password": "password-123", "name": "Ann"}
HERE, THERE = "203.0.113.7", "198.51.100.9"


@pytest.fixture
def limited(auth_db, tokens, fast_passwords, clock):
    """Accounts with small limits: 3 failures per account, 4 failed logins and 2
    registrations per address an hour."""
    policy = AccountPolicy(throttle=ThrottlePolicy(
        max_failures=3, window_seconds=600, lockout_seconds=300,
        login_limit_per_address=4, register_limit_per_address=2))
    return Accounts(auth_db, EventRecorder(OutboxMessage), tokens, fast_passwords, policy, clock=clock)


def counters(auth_db):
    with auth_db.transaction() as session:
        return {(row.scope, row.subject): row.count for row in session.scalars(sa.select(ThrottleCounter))}


def test_failed_logins_from_one_address_are_limited_across_emails(limited, clock):
    for n in range(4):  # each email only once: the per-account rule never trips
        with pytest.raises(Unauthenticated):
            limited.login(f"user{n}@example.com", "wrong-password", HERE)
    with pytest.raises(RateLimited) as limited_here:
        limited.login("user9@example.com", "wrong-password", HERE)
    assert 3500 < limited_here.value.details["retry_after"] <= 3601
    with pytest.raises(Unauthenticated):  # another address is not affected
        limited.login("user9@example.com", "wrong-password", THERE)
    with pytest.raises(Unauthenticated):  # nor the console, which gives no address
        limited.login("user9@example.com", "wrong-password", None)
    clock.advance(seconds=3601)
    with pytest.raises(Unauthenticated):
        limited.login("user9@example.com", "wrong-password", HERE)


def test_a_refused_attempt_counts_nothing_and_a_success_gives_its_slot_back(limited, auth_db):
    limited.register(ANN)
    for _ in range(3):
        limited.login("ann@example.com", "password-123", HERE)
    assert counters(auth_db)[("login_address", HERE)] == 0
    assert ("login_email", "ann@example.com") not in counters(auth_db)

    for _ in range(3):
        with pytest.raises(Unauthenticated):
            limited.login("ann@example.com", "wrong-password", HERE)
    with pytest.raises(RateLimited):  # the account rests now
        limited.login("ann@example.com", "password-123", HERE)
    assert counters(auth_db)[("login_address", HERE)] == 3  # the refusal took no slot


def test_registrations_from_one_address_are_limited(limited, clock, auth_db):
    limited.register(dict(ANN, email="a1@example.com"), HERE)
    with pytest.raises(Conflict):  # a refused registration counts too: it still probed
        limited.register(dict(ANN, email="a1@example.com"), HERE)
    with pytest.raises(RateLimited) as refused:
        limited.register(dict(ANN, email="a2@example.com"), HERE)
    assert 3500 < refused.value.details["retry_after"] <= 3601
    with auth_db.transaction() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 1
    limited.register(dict(ANN, email="a2@example.com"), THERE)
    limited.register(dict(ANN, email="a3@example.com"))  # the console: no address, no limit
    clock.advance(hours=1, seconds=1)
    limited.register(dict(ANN, email="a4@example.com"), HERE)


def test_purge_deletes_rows_whose_window_and_lockout_are_over(limited, clock, auth_db):
    limited.register(ANN)
    for _ in range(3):  # ann is locked out for 300 s, her window is 600 s
        with pytest.raises(Unauthenticated):
            limited.login("ann@example.com", "wrong-password", HERE)
    with pytest.raises(Unauthenticated):
        limited.login("bob@example.com", "wrong-password", None)
    assert limited.purge_throttling() == 0  # every row is live
    clock.advance(seconds=601)
    assert limited.purge_throttling() == 2  # both accounts' rows; the address's hour runs on
    assert set(counters(auth_db)) == {("login_address", HERE)}
    clock.advance(seconds=3000)
    assert limited.purge_throttling() == 1
    assert counters(auth_db) == {}


@pytest.mark.parametrize("look_alike", [
    "ａｎｎ@example.com",  # fullwidth
    "ANN@EXAMPLE.COM",
    "ann@ｅｘａｍｐｌｅ.com",
])
def test_look_alike_emails_normalise_to_the_one_account(look_alike, accounts):
    accounts.register(RegisterSchema().load_or_raise(dict(ANN)))
    fields = RegisterSchema().load_or_raise(dict(ANN, email=look_alike))
    assert fields["email"] == "ann@example.com"
    with pytest.raises(Conflict):
        accounts.register(fields)
    login = LoginSchema().load_or_raise({"email": look_alike, "password": "password-123"})
    assert accounts.login(login["email"], login["password"])["access_token"]


@pytest.mark.parametrize("schema,payload", [
    (RegisterSchema, dict(ANN, email="ann\u200b@example.com")),  # zero-width space
    (RegisterSchema, dict(ANN, email="\u2066ann@example.com")),  # left-to-right isolate
    (UserCreateSchema, dict(ANN, email="an\u200dn@example.com")),  # zero-width joiner
    (LoginSchema, {"email": "ann@example.com\ufeff", "password": "password-123"}),  # BOM
    (UserFilterSchema, {"email": "ann\u200b"}),
])
def test_format_characters_in_an_email_are_refused_naming_the_field(schema, payload):
    with pytest.raises(ValidationError) as refused:
        schema().load_or_raise(payload)
    assert list(refused.value.details) == ["email"]
    assert "format characters" in refused.value.details["email"][0]
