"""Attacks on access and refresh tokens: every forgery is refused by common.tokens under both
algorithms (HS256 and RS256), and by the running gateway, over the header and the cookie.
A reused refresh token revokes its whole family, and only that family."""
import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from common.errors import Unauthenticated
from common.tokens import INVALID_TOKEN_MESSAGE, TokenCodec, TokenSettings
from gateway.principals import COOKIE_NAME
from tests.e2e.conftest import REFRESH_GRACE_SECONDS
from tests.e2e.conftest import SECRET as STACK_SECRET
from tests.security.conftest import error_of

NOW = 1_800_000_000
TTL = 900
SECRET = "security-test-secret-long-enough-for-hs256-0123"


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value):
    return b64(json.dumps(value).encode())


def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key, private=False):
    if private:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


SERVER_KEY, ATTACKER_KEY = rsa_key(), rsa_key()


class Issuer:
    """The legitimate signer of one algorithm, and what an attacker can know of it."""

    def __init__(self, algorithm):
        self.algorithm = algorithm
        self.key = SECRET.encode() if algorithm == "HS256" else pem(SERVER_KEY, private=True)
        self.public = None if algorithm == "HS256" else pem(SERVER_KEY)

    def codec(self, now=NOW):
        settings = TokenSettings(algorithm=self.algorithm, issuer="bookify", audience="bookify-api",
                                 access_ttl_seconds=TTL, secret=SECRET if self.algorithm == "HS256" else None,
                                 private_key_pem=self.key if self.algorithm == "RS256" else None)
        return TokenCodec(settings, clock=lambda: now)

    def sign(self, claims, headers=None):
        return jwt.encode(claims, self.key, algorithm=self.algorithm, headers=headers)


def claims(**changes):
    values = {"sub": "42", "sid": "session-1", "jti": "j" * 32, "typ": "access", "iat": NOW,
              "exp": NOW + TTL, "iss": "bookify", "aud": "bookify-api"}
    values.update(changes)
    return {name: value for name, value in values.items() if value is not None}


def hmac_token(header, payload, key):
    signing_input = f"{b64json(header)}.{b64json(payload)}"
    return f"{signing_input}.{b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())}"


def forgeries(issuer):
    """name -> a token an attacker could present; none of them may be accepted."""
    genuine = issuer.sign(claims())
    header, payload, signature = genuine.split(".")
    admin = claims(sub="1")
    attacker_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(ATTACKER_KEY.public_key()))
    forged = {
        **{f"alg {alg}, no signature": f"{b64json({'alg': alg, 'typ': 'JWT'})}.{b64json(admin)}."
           for alg in ("none", "None", "NONE", "nOnE")},
        "alg none, signature kept": f"{b64json({'alg': 'none'})}.{b64json(admin)}.{signature}",
        "signature stripped": f"{header}.{payload}.",
        "signature truncated": f"{header}.{payload}.{signature[:-4]}",
        "tampered sub": f"{header}.{b64json(admin)}.{signature}",
        "tampered exp": f"{header}.{b64json(claims(exp=NOW + 10 * 365 * 86400))}.{signature}",
        "tampered typ": f"{header}.{b64json(claims(typ='refresh'))}.{signature}",
        "another HS256 secret": hmac_token({"alg": "HS256"}, admin, b"x" * 48),
        "RS256 by another key": jwt.encode(admin, pem(ATTACKER_KEY, private=True), algorithm="RS256"),
        "embedded jwk of the attacker": jwt.encode(
            admin, pem(ATTACKER_KEY, private=True), algorithm="RS256", headers={"jwk": attacker_jwk}),
        "jku to the attacker": jwt.encode(admin, pem(ATTACKER_KEY, private=True), algorithm="RS256",
                                          headers={"jku": "https://attacker.example/jwks.json"}),
        "kid path traversal, empty key": hmac_token({"alg": "HS256", "kid": "../../../dev/null"}, admin, b""),
        "HS512 downgrade/upgrade": jwt.encode(admin, "y" * 64, algorithm="HS512"),
        "unencoded payload (b64=false)": hmac_token({"alg": "HS256", "b64": False, "crit": ["b64"]},
                                                    admin, SECRET.encode()),
        "expired": issuer.sign(claims(iat=NOW - 2 * TTL, exp=NOW - TTL)),
        "expires this second": issuer.sign(claims(iat=NOW - TTL, exp=NOW)),
        "not yet valid (nbf)": issuer.sign(claims(nbf=NOW + 60)),
        "issued in the future": issuer.sign(claims(iat=NOW + 60, exp=NOW + 60 + TTL)),
        "wrong issuer": issuer.sign(claims(iss="evil")),
        "wrong audience": issuer.sign(claims(aud="another-api")),
        "no audience": issuer.sign(claims(aud=None)),
        "no expiry": issuer.sign(claims(exp=None)),
        "refresh-typed token": issuer.sign(claims(typ="refresh")),
        "unknown critical header": issuer.sign(claims(), headers={"crit": ["exp-v2"], "exp-v2": 1}),
    }
    if issuer.algorithm == "RS256":
        # HS/RS confusion: the public key is public, so an HMAC keyed with it proves nothing.
        forged["HS256 keyed with the RS256 public key"] = hmac_token({"alg": "HS256"}, admin, issuer.public)
    else:
        forged["RS256 where HS256 is configured"] = jwt.encode(
            admin, pem(ATTACKER_KEY, private=True), algorithm="RS256")
        forged["HS256 keyed with the secret's hash"] = hmac_token(
            {"alg": "HS256"}, admin, hashlib.sha256(SECRET.encode()).digest())
    return genuine, forged


@pytest.mark.parametrize("algorithm", ["HS256", "RS256"])
def test_every_forgery_is_refused_by_the_codec(algorithm):
    issuer = Issuer(algorithm)
    codec = issuer.codec()
    genuine, forged = forgeries(issuer)
    assert codec.verify_access_token(genuine).user_id == 42  # the control: only the defect differs
    accepted = []
    for name, token in forged.items():
        try:
            codec.verify_access_token(token)
            accepted.append(name)
        except Unauthenticated as error:
            assert error.message == INVALID_TOKEN_MESSAGE and not error.details, name
    assert accepted == []
    assert len(forged) >= 27


# -- at the gateway ----------------------------------------------------------------------

def gateway_forgeries(tokens):
    """Forgeries of a real session's token, signed with the stack's own secret where the
    attack is in the claims (so the claim check, not the signature, must refuse them)."""
    real = jwt.decode(tokens["access_token"], STACK_SECRET, algorithms=["HS256"], audience="bookify-api")
    now = int(time.time())
    admin = dict(real, sub="1")
    header, _, signature = tokens["access_token"].split(".")

    def signed(**changes):
        return jwt.encode({name: value for name, value in dict(real, **changes).items() if value is not None},
                          STACK_SECRET, algorithm="HS256")

    return {
        "alg none": f"{b64json({'alg': 'none', 'typ': 'JWT'})}.{b64json(admin)}.",
        "tampered sub": f"{header}.{b64json(admin)}.{signature}",
        "RS256 by an attacker key": jwt.encode(admin, pem(ATTACKER_KEY, private=True), algorithm="RS256"),
        "embedded jwk": jwt.encode(admin, pem(ATTACKER_KEY, private=True), algorithm="RS256", headers={
            "jwk": json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(ATTACKER_KEY.public_key()))}),
        "another secret": jwt.encode(admin, "z" * 48, algorithm="HS256"),
        "expired": signed(iat=now - 7200, exp=now - 3600),
        "not yet valid": signed(nbf=now + 3600),
        "issued in the future": signed(iat=now + 3600, exp=now + 7200),
        "wrong issuer": signed(iss="evil"),
        "wrong audience": signed(aud="another-api"),
        "refresh-typed": signed(typ="refresh"),
        "refresh token as access token": tokens["refresh_token"],
    }


def test_the_gateway_refuses_every_forgery_over_header_and_cookie(stack):
    _, tokens = stack.customer()
    forged = gateway_forgeries(tokens)
    for name, token in forged.items():
        for how, kwargs in {"header": {"token": token},
                            "cookie": {"cookies": {COOKIE_NAME: token}}}.items():
            error = error_of(stack.get("/v1/users/me", **kwargs), 401, "unauthenticated")
            assert error["message"] == INVALID_TOKEN_MESSAGE, (name, how)
    assert stack.get("/v1/users/me", token=tokens["access_token"]).status_code == 200


def test_reusing_a_spent_refresh_token_revokes_the_whole_family_only(stack):
    user, first = stack.customer()
    other_session = stack.login(user["email"], user["password"])
    family = [first]
    for _ in range(2):  # three generations of one session
        response = stack.post("/v1/auth/refresh", json={"refresh_token": family[-1]["refresh_token"]})
        assert response.status_code == 200, response.text
        family.append(response.json())

    # The attacker replays the first, long spent refresh token (past the grace window).
    time.sleep(REFRESH_GRACE_SECONDS + 0.5)
    error_of(stack.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}),
             401, "unauthenticated")
    for generation in family:
        error_of(stack.post("/v1/auth/refresh", json={"refresh_token": generation["refresh_token"]}),
                 401, "unauthenticated")
        error_of(stack.get("/v1/users/me", token=generation["access_token"]), 401, "unauthenticated")
    # The user's other session is another family, and keeps working.
    assert stack.get("/v1/users/me", token=other_session["access_token"]).status_code == 200
    assert stack.post("/v1/auth/refresh", json={"refresh_token": other_session["refresh_token"]}).status_code == 200


def test_a_refresh_token_is_refused_after_logout_and_for_garbage(stack):
    _, tokens = stack.customer()
    assert stack.post("/v1/auth/logout", token=tokens["access_token"]).status_code == 204
    for token in (tokens["refresh_token"], "x" * 43, tokens["refresh_token"] + "x"):
        error_of(stack.post("/v1/auth/refresh", json={"refresh_token": token}), 401, "unauthenticated")
    # An access token does not even look like a refresh token.
    error_of(stack.post("/v1/auth/refresh", json={"refresh_token": tokens["access_token"]}),
             400, "validation_error")
