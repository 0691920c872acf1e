"""Refresh-token sessions with rotation: every refresh spends the old token and issues a
new one in the same session (family). Presenting a spent token again means it leaked,
so the whole session is revoked."""
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from auth_service.models import RefreshToken
from auth_service.repository import RefreshTokenRepository


def fingerprint(raw_token):
    """Only this hash is stored: a database leak yields no usable refresh token."""
    return hashlib.sha256(raw_token.encode()).hexdigest()


@dataclass(frozen=True)
class Rotation:
    user_id: int | None
    session_id: str | None
    refresh_token: str | None
    reused: bool = False

    @property
    def ok(self):
        return self.refresh_token is not None


class RefreshSessions:
    def __init__(self, session, ttl_seconds):
        self.tokens = RefreshTokenRepository(session)
        self.ttl = timedelta(seconds=ttl_seconds)

    def start(self, user_id, now):
        """A new session for `user_id`; returns (session_id, raw refresh token)."""
        session_id = str(uuid.uuid4())
        return session_id, self._issue(user_id, session_id, now)

    def rotate(self, raw_token, now):
        """Spend `raw_token` for a new one. A failed Rotation says why; reuse revokes the session."""
        token = self.tokens.by_hash_for_update(fingerprint(raw_token))
        if token is None or token.revoked_at is not None or token.expires_at <= now:
            return Rotation(None, None, None)
        if token.used_at is not None:
            self.tokens.revoke_family(token.family_id, now)
            return Rotation(token.user_id, token.family_id, None, reused=True)
        token.used_at = now
        return Rotation(token.user_id, token.family_id, self._issue(token.user_id, token.family_id, now))

    def revoke(self, session_id, now):
        self.tokens.revoke_family(session_id, now)

    def is_active(self, session_id, user_id, now):
        """True while `session_id` is a live session of `user_id` (of no one else)."""
        return self.tokens.family_is_active(session_id, user_id, now)

    def _issue(self, user_id, session_id, now):
        raw = secrets.token_urlsafe(32)
        self.tokens.add(RefreshToken(
            token_hash=fingerprint(raw), family_id=session_id, user_id=user_id,
            created_at=now, expires_at=now + self.ttl))
        return raw
