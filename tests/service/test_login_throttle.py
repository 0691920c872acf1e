"""Throttling of the real auth service on the real broker and both databases: 50 wrong
passwords at once cost no more password checks than the limit, and one client's logins
across many emails and its registrations meet 429, and spent rows are purged (the spray latency is measured end to end,
tests/e2e/test_login_throttle_e2e.py)."""
import time
from datetime import datetime, timedelta, timezone

import eventlet
import pytest
import sqlalchemy as sa
from nameko.standalone.rpc import ServiceRpcClient

import common.runtime.rpc  # noqa: F401  (registers our errors so they arrive typed)
from auth_service.models import ThrottleCounter
from auth_service.passwords import Passwords
from auth_service.service import AuthService
from common.errors import RateLimited, Unauthenticated

ANN = {"email": "ann@example.com", "password": "password-123", "name": "Ann"}


@pytest.fixture
def password_checks(monkeypatch):
    """How many times any auth instance in this process verified a password."""
    checks = []
    verify = Passwords.verify

    def counting(self, password_hash, password):
        checks.append(password)
        return verify(self, password_hash, password)

    monkeypatch.setattr(Passwords, "verify", counting)
    return checks


@pytest.fixture
def two_instances(auth_db, service_config, container_factory):
    """Two auth instances on one queue: 20 workers take the 50 attempts at once."""
    for _ in range(2):
        container_factory(AuthService, service_config).start()


def _attempt(credentials, address):
    with ServiceRpcClient("auth", timeout=30) as auth:
        try:
            auth.login(credentials, client_address=address)
        except RateLimited:
            return "429"
        except Unauthenticated:
            return "401"
        return "200"


def fire_at_once(credentials, count, address="203.0.113.7"):
    pool = eventlet.GreenPool(count)
    return [*pool.imap(lambda _: _attempt(credentials, address), range(count))]


def test_fifty_wrong_passwords_at_once_cost_at_most_the_limit(two_instances, password_checks):
    with ServiceRpcClient("auth", timeout=10) as auth:
        auth.register(ANN)
    password_checks.clear()

    answers = fire_at_once({"email": "ann@example.com", "password": "wrong-password"}, 50)

    assert len(password_checks) <= 5  # LOGIN_MAX_FAILURES
    assert answers.count("401") == len(password_checks)
    assert answers.count("429") == 50 - len(password_checks)
    print(f"\n50 at once: {answers.count('401')} password checks, {answers.count('429')} refused")


def test_one_address_meets_429_across_many_emails(auth_db, service_config, container_factory, password_checks):
    service_config["AUTH"] = dict(service_config["AUTH"], login_limit_per_address=10,
                                  register_limit_per_address=3)
    container_factory(AuthService, service_config).start()
    with ServiceRpcClient("auth", timeout=10) as auth:
        answers = []
        for n in range(30):
            try:
                auth.login({"email": f"user{n}@example.com", "password": "wrong-password"},
                           client_address="203.0.113.7")
                answers.append("200")
            except RateLimited as refused:
                answers.append("429")
                assert 0 < refused.details["retry_after"] <= 3601
            except Unauthenticated:
                answers.append("401")
        assert answers == ["401"] * 10 + ["429"] * 20
        assert len(password_checks) == 10

        for n in range(3):
            auth.register(dict(ANN, email=f"new{n}@example.com"), client_address="203.0.113.7")
        with pytest.raises(RateLimited):
            auth.register(dict(ANN, email="new3@example.com"), client_address="203.0.113.7")
        auth.register(dict(ANN, email="new3@example.com"), client_address="198.51.100.9")
        auth.register(dict(ANN, email="new4@example.com"))  # the console: no per-address limit


def test_the_auth_service_purges_spent_rows_on_its_timer(auth_db, service_config, container_factory):
    past = datetime.now(timezone.utc) - timedelta(hours=2)
    with auth_db.transaction() as session:
        session.add_all([
            ThrottleCounter(scope="login_email", subject="old@example.com", count=3,
                            window_started_at=past, expires_at=past + timedelta(minutes=15)),
            ThrottleCounter(scope="login_address", subject="203.0.113.7", count=1,
                            window_started_at=past, expires_at=past + timedelta(hours=3)),
        ])
    service_config["AUTH"] = dict(service_config["AUTH"], throttle_purge_seconds=0.2)
    container_factory(AuthService, service_config).start()

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with auth_db.transaction() as session:
            left = session.scalars(sa.select(ThrottleCounter.subject)).all()
        if left == ["203.0.113.7"]:
            break
        eventlet.sleep(0.1)
    assert left == ["203.0.113.7"]  # the spent row went, the live one stays
