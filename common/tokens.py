"""Issue and verify Bookify access tokens (JWT), accepting only the one configured algorithm."""

import functools
import logging
import math
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

from common.errors import Unauthenticated

log = logging.getLogger(__name__)

SUPPORTED_ALGORITHMS = ("HS256", "RS256")
ACCESS_TOKEN_TYPE = "access"
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "jti", "sub", "sid", "typ")
INVALID_TOKEN_MESSAGE = "Invalid or expired token"
# Clocks of the signer and of the checkers drift apart; a few seconds keeps fresh tokens
# from being refused as "from the future" and near-expired ones from dying early.
DEFAULT_LEEWAY_SECONDS = 5
# RFC 7518 section 3.2: an HS256 key should be at least as long as the SHA-256 output.
MIN_HMAC_SECRET_BYTES = 32
# User ids are signed 64-bit database keys; the digit cap also keeps int() away from huge strings.
MAX_USER_ID = 2**63 - 1
_CANONICAL_POSITIVE_INT = re.compile(r"[1-9][0-9]{0,18}")


@dataclass(frozen=True)
class TokenSettings:
    """How access tokens are signed and checked; `from_config` builds it from the JWT block."""

    algorithm: str
    issuer: str
    audience: str
    access_ttl_seconds: int
    # repr=False keeps key material out of logs and tracebacks that print the settings.
    secret: str | None = field(default=None, repr=False)
    private_key_pem: bytes | None = field(default=None, repr=False)
    public_key_pem: bytes | None = None
    leeway_seconds: int = 0

    def __post_init__(self):
        if self.algorithm not in SUPPORTED_ALGORITHMS:
            raise ValueError(f"JWT algorithm must be HS256 or RS256, got {self.algorithm!r}")
        if not self.issuer or not self.audience:
            raise ValueError("JWT issuer and audience must both be set")
        if self.access_ttl_seconds <= 0 or self.leeway_seconds < 0:
            raise ValueError("JWT access_ttl_seconds must be > 0 and leeway_seconds >= 0")
        if self.algorithm == "HS256" and not self.secret:
            raise ValueError("JWT algorithm HS256 needs a secret (JWT_SECRET)")
        if self.algorithm == "HS256" and len(self.secret.encode()) < MIN_HMAC_SECRET_BYTES:
            log.warning("JWT secret is shorter than %d bytes: too weak outside development",
                        MIN_HMAC_SECRET_BYTES)
        if self.algorithm == "RS256" and not (self.private_key_pem or self.public_key_pem):
            raise ValueError("JWT algorithm RS256 needs private_key_file (to sign) "
                             "or public_key_file (to verify)")

    @classmethod
    def from_config(cls, jwt_config: dict) -> "TokenSettings":
        """Settings from the JWT block of config.yaml, reading the key files for RS256."""
        get = jwt_config.get
        is_rs256, secret = get("algorithm") == "RS256", get("secret")
        try:
            ttl, leeway = int(get("access_ttl_seconds")), int(get("leeway_seconds", DEFAULT_LEEWAY_SECONDS))
        except (TypeError, ValueError):
            raise ValueError("JWT access_ttl_seconds and leeway_seconds must be integers") from None
        return cls(
            algorithm=get("algorithm"), access_ttl_seconds=ttl, leeway_seconds=leeway,
            issuer=str(get("issuer") or ""), audience=str(get("audience") or ""),
            # YAML turns an all-digit secret into an int; the key is its text either way.
            secret=None if is_rs256 or secret in (None, "") else str(secret),
            private_key_pem=_read_key_file(get("private_key_file")) if is_rs256 else None,
            public_key_pem=_read_key_file(get("public_key_file")) if is_rs256 else None)


@dataclass(frozen=True)
class AccessClaims:
    """The verified content of an access token."""

    user_id: int
    session_id: str
    token_id: str
    issued_at: int
    expires_at: int


class TokenCodec:
    """Signs access tokens (when it holds the signing key) and verifies them."""

    def __init__(self, settings: TokenSettings, clock: Callable[[], float] = time.time,
                 remember_verified: int = 0):
        """`remember_verified`: how many verified tokens to remember (least recently used
        first out), so that a token seen again is not decoded and its signature checked
        again: a signature's check gives the same answer every time. Its expiry and the rest
        of `_checked_claims` are checked on every use. Tokens that fail are not remembered."""
        self.settings = settings
        self._clock = clock
        if remember_verified:
            self._decode = functools.lru_cache(maxsize=remember_verified)(self._decode)
        if settings.algorithm == "HS256":
            self._signing_key = self._verifying_key = settings.secret.encode()
        else:
            # Parsed once so a bad key stops the service at startup, not on every request.
            self._signing_key, self._verifying_key = _load_rsa_keys(settings)

    def issue_access_token(self, user_id: int, session_id: str) -> str:
        if self._signing_key is None:
            raise RuntimeError("This codec can only verify: signing needs JWT private_key_file")
        if not _is_user_id(user_id):
            raise ValueError(f"user_id must be a positive int, got {user_id!r}")
        if not isinstance(session_id, str) or not session_id:
            raise ValueError("session_id must be a non-empty string")
        issued_at = int(self._clock())
        claims = {"sub": str(user_id),  # RFC 7519 makes sub a string
                  "sid": session_id, "jti": uuid.uuid4().hex, "typ": ACCESS_TOKEN_TYPE,
                  "iat": issued_at, "exp": issued_at + self.settings.access_ttl_seconds,
                  "iss": self.settings.issuer, "aud": self.settings.audience}
        return jwt.encode(claims, self._signing_key, algorithm=self.settings.algorithm)

    def verify_access_token(self, token: str) -> AccessClaims:
        """The token's claims, or Unauthenticated with one generic message whatever is wrong."""
        try:
            return self._checked_claims(self._decode(token))
        except jwt.PyJWTError as exc:
            # The reason helps an attacker probe, so only the debug log gets it.
            log.debug("Access token refused: %s", exc)
            raise Unauthenticated(INVALID_TOKEN_MESSAGE) from None

    def _decode(self, token: str) -> dict:
        """The claims of a token whose signature, algorithm, issuer and audience are right;
        the claims' meaning and times are `_checked_claims`'."""
        return jwt.decode(
            token, self._verifying_key, algorithms=[self.settings.algorithm],
            issuer=self.settings.issuer, audience=self.settings.audience,
            # PyJWT checks times against time.time(); _checked_claims uses the injected clock.
            options={"require": list(REQUIRED_CLAIMS),
                     "verify_exp": False, "verify_iat": False, "verify_nbf": False})

    def _checked_claims(self, claims: dict) -> AccessClaims:
        now, leeway = self._clock(), self.settings.leeway_seconds
        expires_at, issued_at = _numeric_date(claims, "exp"), _numeric_date(claims, "iat")
        if expires_at <= now - leeway:
            raise jwt.ExpiredSignatureError("token has expired")
        not_before = _numeric_date(claims, "nbf") if "nbf" in claims else issued_at
        if max(issued_at, not_before) > now + leeway:
            raise jwt.ImmatureSignatureError("token is dated in the future")
        if claims["typ"] != ACCESS_TOKEN_TYPE:
            raise jwt.InvalidTokenError(f"typ is {claims['typ']!r}, not {ACCESS_TOKEN_TYPE!r}")
        subject = claims["sub"]
        if not (isinstance(subject, str) and _CANONICAL_POSITIVE_INT.fullmatch(subject)
                and _is_user_id(int(subject))):
            raise jwt.InvalidTokenError("sub is not a positive integer user id")
        if not all(isinstance(claims[name], str) and claims[name] for name in ("sid", "jti")):
            raise jwt.InvalidTokenError("sid and jti must be non-empty strings")
        return AccessClaims(user_id=int(subject), session_id=claims["sid"], token_id=claims["jti"],
                            issued_at=issued_at, expires_at=expires_at)


def _is_user_id(value) -> bool:
    # bool is an int subclass, and True must not become user 1.
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_USER_ID


def _numeric_date(claims: dict, name: str) -> int:
    value = claims[name]
    # json.loads accepts Infinity and NaN, which int() cannot convert.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise jwt.InvalidTokenError(f"{name} is not a NumericDate")
    return int(value)


def _read_key_file(path) -> bytes | None:
    try:
        return Path(path).read_bytes() if path else None
    except OSError as exc:
        raise ValueError(f"Cannot read JWT key file {path}: {exc.strerror}") from None


def _load_rsa_keys(settings: TokenSettings) -> tuple[RSAPrivateKey | None, RSAPublicKey]:
    pem_private, pem_public = settings.private_key_pem, settings.public_key_pem
    try:
        private_key = load_pem_private_key(pem_private, password=None) if pem_private else None
        public_key = load_pem_public_key(pem_public) if pem_public else None
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"JWT RS256 key is not an unencrypted PEM key: {exc}") from None
    if any(key is not None and not isinstance(key, (RSAPrivateKey, RSAPublicKey))
           for key in (private_key, public_key)):
        raise ValueError("JWT RS256 keys must be RSA keys")
    if private_key is None:
        return None, public_key
    # The signer can verify its own tokens without a separate public key file.
    derived = private_key.public_key()
    if public_key is not None and public_key.public_numbers() != derived.public_numbers():
        raise ValueError("JWT private_key_file and public_key_file are not one key pair")
    return private_key, derived
