"""Builders for auth domain tests: the real use-cases on a real (migrated) database."""
from datetime import datetime, timedelta, timezone

import pytest

from auth_service.accounts import AccountPolicy, Accounts
from auth_service.models import OutboxMessage
from auth_service.throttling import ThrottlePolicy
from common.storage.outbox import EventRecorder
from common.tokens import TokenCodec, TokenSettings

SECRET = "unit-test-secret-that-is-long-enough-0123456789"


class Clock:
    """A settable clock so expiry and lockout are tested without sleeping."""

    def __init__(self):
        self.now = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)

    def __call__(self):
        return self.now

    def advance(self, **delta):
        self.now += timedelta(**delta)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def tokens():
    return TokenCodec(TokenSettings(algorithm="HS256", issuer="bookify", audience="bookify-api",
                                    access_ttl_seconds=900, secret=SECRET))


@pytest.fixture
def accounts(auth_db, tokens, fast_passwords, clock):
    policy = AccountPolicy(default_role="Free", refresh_ttl_seconds=3600,
                           throttle=ThrottlePolicy(max_failures=3, window_seconds=600, lockout_seconds=300))
    return Accounts(auth_db, EventRecorder(OutboxMessage), tokens, fast_passwords, policy, clock=clock)
