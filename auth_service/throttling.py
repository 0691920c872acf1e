"""Login throttling per account: after `max_failures` wrong passwords within `window`,
the account refuses logins (429) for `lockout`. State lives in the auth database, so
every running instance enforces the same count."""
from dataclasses import dataclass
from datetime import timedelta

from auth_service.repository import ThrottleRepository
from common.errors import RateLimited


@dataclass(frozen=True)
class ThrottlePolicy:
    max_failures: int = 5
    window_seconds: int = 900
    lockout_seconds: int = 300


class LoginThrottle:
    def __init__(self, session, policy: ThrottlePolicy):
        self.rows = ThrottleRepository(session)
        self.policy = policy

    def check(self, email, now):
        """Raise RateLimited while the account is locked out."""
        row = self.rows.get(email)
        if row is not None and row.locked_until is not None and row.locked_until > now:
            retry_after = int((row.locked_until - now).total_seconds()) + 1
            raise RateLimited(
                "Too many failed logins for this account; try again later",
                {"retry_after": retry_after})

    def record_failure(self, email, now):
        row = self.rows.for_update(email, now)
        if now - row.window_started_at > timedelta(seconds=self.policy.window_seconds):
            row.failures, row.window_started_at = 0, now
        row.failures += 1
        if row.failures >= self.policy.max_failures:
            row.locked_until = now + timedelta(seconds=self.policy.lockout_seconds)
            row.failures, row.window_started_at = 0, now

    def record_success(self, email):
        row = self.rows.get(email)
        if row is not None:
            self.rows.delete(row)
