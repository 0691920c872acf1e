"""Throttling of logins and registrations, the one place its rules live.

Two rules, each a counter row in the auth database, so every running instance enforces the
same count:

- per account (normalised email): after `max_failures` failed logins within `window`, the
  account refuses logins (429) for `lockout`; a successful login clears the count;
- per client address: at most `login_limit_per_address` failed logins and
  `register_limit_per_address` registrations an hour. A call without an address (an operator
  over `nameko shell`) meets no per-address limit.

Exact under concurrency: an attempt *reserves* its slot (the rows are locked: FOR UPDATE on
MariaDB, the write lock of BEGIN IMMEDIATE on SQLite) before the password is checked; a
successful login hands its slots back. So N simultaneous wrong passwords cost at most
`max_failures` password checks, and a refused attempt costs no hash at all."""
from dataclasses import dataclass
from datetime import timedelta

from auth_service.repository import ThrottleRepository
from common.errors import RateLimited

LOGIN_EMAIL = "login_email"
LOGIN_ADDRESS = "login_address"
REGISTER_ADDRESS = "register_address"
ADDRESS_WINDOW_SECONDS = 3600  # the per-address limits are "per hour"


@dataclass(frozen=True)
class ThrottlePolicy:
    max_failures: int = 5
    window_seconds: int = 900
    lockout_seconds: int = 300
    login_limit_per_address: int = 50
    register_limit_per_address: int = 10


class Throttle:
    def __init__(self, session, policy: ThrottlePolicy):
        self.rows = ThrottleRepository(session)
        self.policy = policy

    def reserve_login(self, email, address, now):
        """Count one login attempt against the account and the address, or raise RateLimited
        (counting nothing) when either is spent."""
        rules = [(LOGIN_EMAIL, email, self.policy.max_failures, self.policy.window_seconds)]
        if address is not None:
            rules.append((LOGIN_ADDRESS, address, self.policy.login_limit_per_address, ADDRESS_WINDOW_SECONDS))
        self._reserve(rules, now, "Too many failed logins; try again later")

    def release_login(self, email, address):
        """A login succeeded: the account's count starts afresh, the address gets its slot back."""
        self.rows.delete_key(LOGIN_EMAIL, email)
        if address is not None:
            self.rows.give_back(LOGIN_ADDRESS, address)

    def reserve_registration(self, address, now):
        """Count one registration against the address, or raise RateLimited."""
        if address is not None:
            self._reserve([(REGISTER_ADDRESS, address, self.policy.register_limit_per_address,
                            ADDRESS_WINDOW_SECONDS)], now, "Too many registrations; try again later")

    def purge(self, now):
        """Delete the rows whose window and lockout are over; returns how many went."""
        return self.rows.delete_expired(now)

    def _reserve(self, rules, now, message):
        # Rows locked in one order everywhere, so two attempts never wait on each other crosswise.
        rules = sorted(rules, key=lambda rule: rule[:2])
        rows = [(self.rows.locked(scope, subject, now), limit, window) for scope, subject, limit, window in rules]
        waits = []
        for row, limit, window in rows:
            if row.window_started_at + timedelta(seconds=window) <= now:
                row.count, row.window_started_at = 0, now
            if row.locked_until is not None and row.locked_until > now:
                waits.append(row.locked_until - now)
            elif row.count >= limit:
                waits.append(row.window_started_at + timedelta(seconds=window) - now)
        if waits:
            raise RateLimited(message, {"retry_after": int(max(waits).total_seconds()) + 1})
        for row, limit, window in rows:
            row.count += 1
            row.expires_at = row.window_started_at + timedelta(seconds=window)
            if row.scope == LOGIN_EMAIL and row.count >= limit:
                # The last slot is taken: the account rests for `lockout`, then gets a fresh count.
                row.locked_until = now + timedelta(seconds=self.policy.lockout_seconds)
                row.count, row.window_started_at = 0, now
                row.expires_at = max(row.locked_until, now + timedelta(seconds=window))
