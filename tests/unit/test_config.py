"""config.yaml: ${VAR:default} placeholders, and values that must stay text."""
import pytest

from common import config


def test_defaults_apply_without_environment(monkeypatch):
    monkeypatch.delenv("BOOKIFY_DB_URL", raising=False)
    loaded = config.load()
    assert config.database_url(loaded, "auth") == "sqlite:///var/bookify_auth.db"
    assert loaded["max_workers"] == 10


def test_phone_numbers_and_all_digit_secrets_stay_text(monkeypatch):
    monkeypatch.setenv("TWILIO_FROM_NUMBER", "+15005550006")
    monkeypatch.setenv("BOOKIFY_ADMIN_PASSWORD", "12345678")
    monkeypatch.setenv("JWT_SECRET", "1234567890" * 4)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "0123456789")
    loaded = config.load()
    assert loaded["NOTIFICATIONS"]["twilio_from_number"] == "+15005550006"
    assert loaded["AUTH"]["admin_password"] == "12345678"
    assert loaded["JWT"]["secret"] == "1234567890" * 4
    assert loaded["NOTIFICATIONS"]["twilio_auth_token"] == "0123456789"


def test_one_variable_moves_every_service_to_mariadb(monkeypatch):
    monkeypatch.setenv("BOOKIFY_DB_URL", "mysql+pymysql://root@127.0.0.1:3306/bookify_<service>")
    loaded = config.load()
    assert config.database_url(loaded, "payments") == "mysql+pymysql://root@127.0.0.1:3306/bookify_payments"


def test_no_secret_has_a_default(monkeypatch):
    """Any default would be shared by every install: unset, the secrets are empty and the
    services refuse to start (local runs get their own from scripts/run_local.py)."""
    monkeypatch.delenv("JWT_SECRET", raising=False)
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET", raising=False)
    loaded = config.load()
    assert not loaded["JWT"]["secret"] and not loaded["STRIPE"]["webhook_secret"]
    with pytest.raises(SystemExit, match="^JWT_SECRET is not set"):
        config.require_jwt_secret(loaded["JWT"])
    with pytest.raises(config.MissingSecret, match="^STRIPE_WEBHOOK_SECRET is not set") as missing:
        config.require_secret(loaded["STRIPE"]["webhook_secret"], "STRIPE_WEBHOOK_SECRET")
    assert "\n" not in str(missing.value) and missing.value.code == str(missing.value)


def test_rs256_needs_no_jwt_secret():
    config.require_jwt_secret({"algorithm": "RS256", "secret": ""})
    assert config.require_secret("s3cret", "JWT_SECRET") == "s3cret"
