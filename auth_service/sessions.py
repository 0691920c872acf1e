"""Refresh-token sessions with rotation: every refresh spends the old token and issues a
new one in the same session (family). Presenting a spent token again means it leaked,
so the whole session is revoked — unless it comes back within a short grace window (two
tabs refreshing at once, a client retrying after a lost answer): then it gets the very
pair its first use got, and nothing is revoked."""
import base64
import hashlib
import json
import os
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from auth_service.models import RefreshToken
from auth_service.repository import RefreshTokenRepository


def fingerprint(raw_token):
    """Only this hash is stored: a database leak yields no usable refresh token."""
    return hashlib.sha256(raw_token.encode()).hexdigest()


def _sealing_key(raw_token):
    # A different derivation from `fingerprint`: the stored hash does not open the seal.
    return hashlib.sha256(b"bookify-refresh-successor:" + raw_token.encode()).digest()


def seal(raw_token, pair):
    """`pair` (a dict) encrypted so that only the holder of `raw_token` can read it back."""
    nonce = os.urandom(12)
    sealed = AESGCM(_sealing_key(raw_token)).encrypt(nonce, json.dumps(pair).encode(), None)
    return base64.urlsafe_b64encode(nonce + sealed).decode()


def unseal(raw_token, sealed):
    """The pair `seal` stored, or None when it cannot be read with `raw_token`."""
    try:
        blob = base64.urlsafe_b64decode(sealed.encode())
        return json.loads(AESGCM(_sealing_key(raw_token)).decrypt(blob[:12], blob[12:], None))
    except (InvalidTag, ValueError):
        return None


@dataclass(frozen=True)
class Rotation:
    user_id: int | None
    session_id: str | None
    refresh_token: str | None
    reused: bool = False
    # A replay within the grace window: the pair the first use got, to be answered again.
    replayed_pair: dict | None = None

    @property
    def ok(self):
        return self.refresh_token is not None or self.replayed_pair is not None


class RefreshSessions:
    def __init__(self, session, ttl_seconds, grace_seconds=0):
        self.tokens = RefreshTokenRepository(session)
        self.ttl = timedelta(seconds=ttl_seconds)
        self.grace = timedelta(seconds=grace_seconds)

    def start(self, user_id, now):
        """A new session for `user_id`; returns (session_id, raw refresh token)."""
        session_id = str(uuid.uuid4())
        return session_id, self._issue(user_id, session_id, now)

    def rotate(self, raw_token, now):
        """Spend `raw_token` for a new one. A failed Rotation says why; reuse revokes the
        session, except a replay within the grace window of a token whose pair was
        `remember`ed: that Rotation carries the same pair again (`replayed_pair`).
        The token's row stays locked until the transaction ends, so concurrent refreshes of
        one token queue up: the first rotates, the others find its pair."""
        token = self.tokens.by_hash_for_update(fingerprint(raw_token))
        if token is None or token.revoked_at is not None or token.expires_at <= now:
            return Rotation(None, None, None)
        if token.used_at is not None:
            pair = None
            if token.successor_sealed and now - token.used_at <= self.grace:
                pair = unseal(raw_token, token.successor_sealed)
            if pair is not None:
                return Rotation(token.user_id, token.family_id, None, replayed_pair=pair)
            self.tokens.revoke_family(token.family_id, now)
            return Rotation(token.user_id, token.family_id, None, reused=True)
        token.used_at = now
        return Rotation(token.user_id, token.family_id, self._issue(token.user_id, token.family_id, now))

    def remember(self, raw_token, pair):
        """Keep the pair `raw_token` was just spent for, sealed, for replays in the grace window."""
        if self.grace:
            token = self.tokens.by_hash_for_update(fingerprint(raw_token))
            token.successor_sealed = seal(raw_token, pair)

    def revoke(self, session_id, now):
        self.tokens.revoke_family(session_id, now)

    def end_all(self, user_id, now):
        """Revoke every live session of `user_id`; returns their ids."""
        families = self.tokens.live_families_of(user_id, now)
        for family_id in families:
            self.tokens.revoke_family(family_id, now)
        return families

    def is_active(self, session_id, user_id, now):
        """True while `session_id` is a live session of `user_id` (of no one else)."""
        return self.tokens.family_is_active(session_id, user_id, now)

    def _issue(self, user_id, session_id, now):
        raw = secrets.token_urlsafe(32)
        self.tokens.add(RefreshToken(
            token_hash=fingerprint(raw), family_id=session_id, user_id=user_id,
            created_at=now, expires_at=now + self.ttl))
        return raw
