"""Unit tests for common.tokens: issuing access tokens and refusing every kind of bad one."""

import base64
import hashlib
import hmac
import json
import logging
import re
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from common.errors import Unauthenticated
from common.tokens import (
    DEFAULT_LEEWAY_SECONDS,
    INVALID_TOKEN_MESSAGE,
    REQUIRED_CLAIMS,
    AccessClaims,
    TokenCodec,
    TokenSettings,
)

SECRET = "unit-test-secret-long-enough-for-hs256-0123456789"
OTHER_SECRET = "another-unit-test-secret-also-long-enough-9876543210"
ISSUER = "bookify"
AUDIENCE = "bookify-api"
TTL = 900
NOW = 1_700_000_000
DROP = object()  # marks a claim to leave out of a hand-built token


class FakeClock:
    def __init__(self, now=NOW):
        self.now = now

    def __call__(self):
        return self.now


def hs256_settings(**overrides):
    values = dict(algorithm="HS256", issuer=ISSUER, audience=AUDIENCE, access_ttl_seconds=TTL,
                  secret=SECRET)
    return TokenSettings(**{**values, **overrides})


def hs256_config(**overrides):
    config = {
        "algorithm": "HS256", "secret": SECRET, "private_key_file": "", "public_key_file": "",
        "issuer": ISSUER, "audience": AUDIENCE, "access_ttl_seconds": TTL,
        "refresh_ttl_seconds": 2592000,
    }
    return {**config, **overrides}


def rs256_config(private_file=None, public_file=None):
    return hs256_config(algorithm="RS256", private_key_file=str(private_file or ""),
                        public_key_file=str(public_file or ""))


def rs256_codec(private_file=None, public_file=None):
    settings = TokenSettings.from_config(rs256_config(private_file, public_file))
    return TokenCodec(settings, clock=FakeClock())


def valid_claims(**overrides):
    claims = {"sub": "42", "sid": "session-1", "jti": "a" * 32, "iat": NOW, "exp": NOW + TTL,
              "iss": ISSUER, "aud": AUDIENCE, "typ": "access"}
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not DROP}


def sign(claims, key=SECRET, algorithm="HS256"):
    return jwt.encode(claims, key, algorithm=algorithm)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(value):
    return b64url(json.dumps(value).encode())


def refused(codec, token):
    with pytest.raises(Unauthenticated) as excinfo:
        codec.verify_access_token(token)
    assert excinfo.value.message == INVALID_TOKEN_MESSAGE
    return excinfo.value


def write_rsa_key_pair(directory):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_file, public_file = directory / "private.pem", directory / "public.pem"
    private_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    public_file.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private_file, public_file


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture(params=[0, 100], ids=["decoding-every-time", "remembering-verified"])
def codec(clock, request):
    """Every test of `codec` runs twice: decoding each token every time, and remembering
    verified ones (as the gateway does)."""
    return TokenCodec(hs256_settings(), clock=clock, remember_verified=request.param)


@pytest.fixture(scope="module")
def rsa_key_files(tmp_path_factory):
    return write_rsa_key_pair(tmp_path_factory.mktemp("rsa"))


@pytest.fixture(scope="module")
def other_rsa_key_files(tmp_path_factory):
    return write_rsa_key_pair(tmp_path_factory.mktemp("other_rsa"))


@pytest.fixture
def debug_log(caplog):
    caplog.set_level(logging.DEBUG, logger="common.tokens")
    return caplog


# --- issuing and round trip -------------------------------------------------

def test_issued_token_verifies_to_its_access_claims(codec):
    claims = codec.verify_access_token(codec.issue_access_token(42, "session-1"))

    assert isinstance(claims, AccessClaims)
    assert (claims.user_id, claims.session_id, claims.issued_at, claims.expires_at) == (
        42, "session-1", NOW, NOW + TTL)
    assert re.fullmatch(r"[0-9a-f]{32}", claims.token_id)


def test_issued_token_carries_string_sub_and_every_required_claim(codec):
    token = codec.issue_access_token(42, "session-1")
    payload = jwt.decode(token, options={"verify_signature": False})

    assert payload["sub"] == "42"
    assert set(REQUIRED_CLAIMS) <= set(payload)
    assert (payload["iss"], payload["aud"], payload["typ"], payload["sid"]) == (
        ISSUER, AUDIENCE, "access", "session-1")
    assert payload["exp"] - payload["iat"] == TTL
    assert jwt.get_unverified_header(codec.issue_access_token(42, "s"))["alg"] == "HS256"


def test_each_token_gets_a_fresh_jti(codec):
    first, second = (codec.verify_access_token(codec.issue_access_token(42, "s")) for _ in range(2))
    assert first.token_id != second.token_id


@pytest.mark.parametrize("user_id, session_id", [
    (0, "s"), (-1, "s"), (True, "s"), ("42", "s"), (2**63, "s"), (42, ""), (42, None),
])
def test_issue_rejects_what_verify_would_refuse(codec, user_id, session_id):
    with pytest.raises(ValueError):
        codec.issue_access_token(user_id, session_id)


def test_hand_signed_valid_claims_are_accepted(codec):
    # Guards the refusal tests below: their tokens differ from this one only by the defect.
    assert codec.verify_access_token(sign(valid_claims())).user_id == 42


# --- claims -------------------------------------------------------------------

@pytest.mark.parametrize("missing", REQUIRED_CLAIMS)
def test_token_missing_a_required_claim_is_refused(codec, missing):
    refused(codec, sign(valid_claims(**{missing: DROP})))


@pytest.mark.parametrize("field", ["issuer", "audience"])
def test_token_for_another_issuer_or_audience_is_refused(codec, clock, field):
    foreign = TokenCodec(hs256_settings(**{field: "someone-else"}), clock=clock)
    refused(codec, foreign.issue_access_token(42, "s"))


def test_refresh_token_is_refused(codec):
    refused(codec, sign(valid_claims(typ="refresh")))


@pytest.mark.parametrize("sub", [
    "0", "-1", "+1", "01", " 1", "1.5", "abc", "", str(2**63), "9" * 5000, 42,
])
def test_sub_that_is_not_a_positive_integer_is_refused(codec, sub):
    refused(codec, sign(valid_claims(sub=sub)))


@pytest.mark.parametrize("name", ["sid", "jti"])
def test_empty_session_or_token_id_is_refused(codec, name):
    refused(codec, sign(valid_claims(**{name: ""})))


@pytest.mark.parametrize("claim, value", [
    ("exp", "tomorrow"), ("exp", float("inf")), ("iat", True), ("iat", "now"), ("nbf", "later"),
])
def test_malformed_time_claim_is_refused(codec, claim, value):
    refused(codec, sign(valid_claims(**{claim: value})))


# --- time -------------------------------------------------------------------

def test_expiry_follows_the_injected_clock(codec, clock):
    token = codec.issue_access_token(42, "s")

    clock.now = NOW + TTL - 1
    assert codec.verify_access_token(token).user_id == 42
    clock.now = NOW + TTL
    refused(codec, token)


def test_leeway_tolerates_small_clock_skew_only(clock):
    codec = TokenCodec(hs256_settings(leeway_seconds=30), clock=clock)
    token = codec.issue_access_token(42, "s")

    clock.now = NOW + TTL + 29
    assert codec.verify_access_token(token).user_id == 42
    clock.now = NOW + TTL + 30
    refused(codec, token)
    clock.now = NOW - 30
    assert codec.verify_access_token(token).user_id == 42


def test_default_clock_is_real_time():
    settings = hs256_settings()
    codec = TokenCodec(settings)
    long_ago = TokenCodec(settings, clock=lambda: time.time() - 2 * TTL)
    issued_long_ago = long_ago.issue_access_token(42, "s")

    assert codec.verify_access_token(codec.issue_access_token(42, "s")).user_id == 42
    refused(codec, issued_long_ago)


@pytest.mark.parametrize("claims", [valid_claims(iat=NOW + 60), valid_claims(nbf=NOW + 60)])
def test_token_dated_in_the_future_is_refused(codec, claims):
    refused(codec, sign(claims))


# --- signature and algorithm ----------------------------------------------

def test_tampered_payload_is_refused(codec):
    header, _, signature = codec.issue_access_token(42, "s").split(".")
    forged_payload = b64url_json(valid_claims(sub="1"))
    refused(codec, f"{header}.{forged_payload}.{signature}")


def test_token_signed_with_another_secret_is_refused(codec):
    refused(codec, sign(valid_claims(), key=OTHER_SECRET))


def test_alg_none_token_is_refused(codec, debug_log):
    token = f"{b64url_json({'alg': 'none', 'typ': 'JWT'})}.{b64url_json(valid_claims())}."
    refused(codec, token)
    assert "alg value is not allowed" in debug_log.text


def test_rs256_codec_refuses_hs256_token_keyed_with_its_public_key(rsa_key_files, debug_log):
    # Algorithm confusion: the public key is no secret, so an HMAC over it must not pass.
    _, public_file = rsa_key_files
    codec = rs256_codec(public_file=public_file)
    signing_input = f"{b64url_json({'alg': 'HS256', 'typ': 'JWT'})}.{b64url_json(valid_claims())}"
    mac = hmac.new(public_file.read_bytes(), signing_input.encode(), hashlib.sha256).digest()

    refused(codec, f"{signing_input}.{b64url(mac)}")
    assert "alg value is not allowed" in debug_log.text


def test_hs256_codec_refuses_rs256_token(codec, rsa_key_files, debug_log):
    private_file, _ = rsa_key_files
    rs256_token = sign(valid_claims(), key=private_file.read_bytes(), algorithm="RS256")
    refused(codec, rs256_token)
    assert "alg value is not allowed" in debug_log.text


@pytest.mark.parametrize("token", ["", "not-a-token", "a.b.c", None, 12345])
def test_garbage_is_refused(codec, token):
    refused(codec, token)


def test_refusals_share_one_generic_message_and_log_the_reason_at_debug(codec, clock, debug_log):
    token = codec.issue_access_token(42, "s")
    clock.now = NOW + TTL
    expired = refused(codec, token)
    bad_signature = refused(codec, sign(valid_claims(), key=OTHER_SECRET))

    for error in (expired, bad_signature):
        assert str(error) == INVALID_TOKEN_MESSAGE and not error.details
        assert error.__cause__ is None and error.__suppress_context__
    assert "expired" in debug_log.text and "Signature verification failed" in debug_log.text
    assert all(record.levelno == logging.DEBUG for record in debug_log.records)


# --- settings ---------------------------------------------------------------

@pytest.mark.parametrize("algorithm", ["none", "HS512", "RS512", "ES256", "hs256", None])
def test_unsupported_algorithm_is_refused_at_construction(algorithm):
    with pytest.raises(ValueError, match="algorithm"):
        hs256_settings(algorithm=algorithm)


@pytest.mark.parametrize("overrides", [
    {"issuer": ""}, {"audience": ""}, {"access_ttl_seconds": 0}, {"leeway_seconds": -1},
    {"secret": None}, {"secret": ""},
])
def test_incomplete_settings_are_refused(overrides):
    with pytest.raises(ValueError):
        hs256_settings(**overrides)


def test_from_config_reads_the_hs256_block():
    settings = TokenSettings.from_config(hs256_config(access_ttl_seconds="600"))
    assert settings == hs256_settings(access_ttl_seconds=600, leeway_seconds=DEFAULT_LEEWAY_SECONDS)


def test_from_config_keeps_an_all_digit_secret_as_text():
    digits = 12345678901234567890123456789012345
    assert TokenSettings.from_config(hs256_config(secret=digits)).secret == str(digits)


@pytest.mark.parametrize("secret", [None, ""])
def test_from_config_without_hs256_secret_is_refused(secret):
    with pytest.raises(ValueError, match="secret"):
        TokenSettings.from_config(hs256_config(secret=secret))


def test_from_config_with_non_integer_ttl_is_refused():
    with pytest.raises(ValueError, match="access_ttl_seconds"):
        TokenSettings.from_config(hs256_config(access_ttl_seconds="fifteen minutes"))


def test_short_secret_is_accepted_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="common.tokens"):
        settings = hs256_settings(secret="x" * 31)
    assert settings.secret == "x" * 31
    assert "shorter than 32 bytes" in caplog.text

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="common.tokens"):
        hs256_settings(secret="x" * 32)
    assert caplog.text == ""


def test_repr_hides_key_material(rsa_key_files):
    private_file, _ = rsa_key_files
    text = repr(hs256_settings()) + repr(TokenSettings.from_config(rs256_config(private_file)))
    assert SECRET not in text and "PRIVATE KEY" not in text


# --- RS256 ------------------------------------------------------------------

def test_rs256_signer_and_public_key_verifier_from_config(rsa_key_files):
    private_file, public_file = rsa_key_files
    signer = rs256_codec(private_file, public_file)
    verifier = rs256_codec(public_file=public_file)

    token = signer.issue_access_token(7, "session-7")
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    assert verifier.verify_access_token(token).user_id == 7
    assert signer.verify_access_token(token).session_id == "session-7"


def test_signer_with_only_the_private_key_verifies_its_own_tokens(rsa_key_files):
    private_file, _ = rsa_key_files
    signer = rs256_codec(private_file)
    assert signer.verify_access_token(signer.issue_access_token(7, "s")).user_id == 7


def test_verifier_only_codec_cannot_issue(rsa_key_files):
    _, public_file = rsa_key_files
    verifier = rs256_codec(public_file=public_file)
    with pytest.raises(RuntimeError, match="private_key_file"):
        verifier.issue_access_token(7, "s")


def test_rs256_token_from_another_key_pair_is_refused(rsa_key_files, other_rsa_key_files):
    foreign = rs256_codec(other_rsa_key_files[0])
    verifier = rs256_codec(public_file=rsa_key_files[1])
    refused(verifier, foreign.issue_access_token(7, "s"))


@pytest.mark.parametrize("key_file", [None, ""])
def test_rs256_without_key_files_is_refused(key_file):
    config = rs256_config()
    config.update(private_key_file=key_file, public_key_file=key_file)
    with pytest.raises(ValueError, match="RS256 needs"):
        TokenSettings.from_config(config)


def test_rs256_with_unreadable_key_file_is_refused(tmp_path):
    with pytest.raises(ValueError, match="Cannot read JWT key file"):
        TokenSettings.from_config(rs256_config(public_file=tmp_path / "absent.pem"))


def test_mismatched_rs256_key_files_are_refused(rsa_key_files, other_rsa_key_files):
    settings = TokenSettings.from_config(rs256_config(rsa_key_files[0], other_rsa_key_files[1]))
    with pytest.raises(ValueError, match="not one key pair"):
        TokenCodec(settings)


def ec_public_pem():
    return ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize("pem, message", [
    (b"-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n", "not an unencrypted"),
    (ec_public_pem(), "must be RSA keys"),
])
def test_unusable_rs256_key_is_refused_at_startup(tmp_path, pem, message):
    key_file = tmp_path / "public.pem"
    key_file.write_bytes(pem)
    settings = TokenSettings.from_config(rs256_config(public_file=key_file))
    with pytest.raises(ValueError, match=message):
        TokenCodec(settings)


# --- remembering verified tokens ---------------------------------------------

def counting_decodes(monkeypatch):
    calls = []
    decode = jwt.decode

    def counted(*args, **kwargs):
        calls.append(args[0])
        return decode(*args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counted)
    return calls


def test_a_remembered_token_is_not_decoded_again(clock, monkeypatch):
    codec = TokenCodec(hs256_settings(), clock=clock, remember_verified=2)
    first, second, third = (codec.issue_access_token(user, "s") for user in (1, 2, 3))
    decodes = counting_decodes(monkeypatch)

    for token in (first, first, second, first, second):
        codec.verify_access_token(token)
    assert decodes == [first, second]
    codec.verify_access_token(third)  # the least recently used (first) makes room
    codec.verify_access_token(first)
    assert decodes == [first, second, third, first]


def test_a_remembered_token_still_expires(clock):
    codec = TokenCodec(hs256_settings(), clock=clock, remember_verified=10)
    token = codec.issue_access_token(42, "s")
    assert codec.verify_access_token(token).user_id == 42
    clock.now = NOW + TTL
    refused(codec, token)


def test_a_refused_token_is_not_remembered(clock, monkeypatch):
    codec = TokenCodec(hs256_settings(), clock=clock, remember_verified=10)
    foreign = TokenCodec(hs256_settings(secret=OTHER_SECRET), clock=clock).issue_access_token(42, "s")
    decodes = counting_decodes(monkeypatch)
    refused(codec, foreign)
    refused(codec, foreign)
    assert decodes == [foreign, foreign]


def test_codecs_by_default_remember_nothing(clock, monkeypatch):
    codec = TokenCodec(hs256_settings(), clock=clock)
    token = codec.issue_access_token(42, "s")
    decodes = counting_decodes(monkeypatch)
    codec.verify_access_token(token)
    codec.verify_access_token(token)
    assert decodes == [token, token]


def _configured_codec(monkeypatch, clock, **env):
    """A codec built the way the services build theirs: config.yaml's JWT block."""
    from common.config import load, section

    monkeypatch.setenv("JWT_SECRET", SECRET)
    monkeypatch.delenv("JWT_LEEWAY_SECONDS", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return TokenCodec(TokenSettings.from_config(section(load(), "JWT")), clock=clock)


def test_the_configured_default_leeway_absorbs_a_second_of_clock_skew(monkeypatch, clock):
    codec = _configured_codec(monkeypatch, clock)
    assert codec.settings.leeway_seconds >= 2
    issuer_ahead = TokenCodec(codec.settings, clock=lambda: clock.now + 1)
    assert codec.verify_access_token(issuer_ahead.issue_access_token(42, "s")).user_id == 42
    expired_a_second_ago = TokenCodec(
        codec.settings, clock=lambda: clock.now - codec.settings.access_ttl_seconds - 1)
    assert codec.verify_access_token(expired_a_second_ago.issue_access_token(42, "s")).user_id == 42


def test_jwt_leeway_seconds_sets_the_leeway(monkeypatch, clock):
    codec = _configured_codec(monkeypatch, clock, JWT_LEEWAY_SECONDS="0")
    assert codec.settings.leeway_seconds == 0
    issuer_ahead = TokenCodec(codec.settings, clock=lambda: clock.now + 1)
    refused(codec, issuer_ahead.issue_access_token(42, "s"))


def test_settings_without_a_leeway_get_the_default_one():
    assert TokenSettings.from_config(hs256_config()).leeway_seconds == DEFAULT_LEEWAY_SECONDS
