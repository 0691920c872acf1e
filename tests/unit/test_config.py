"""config.yaml: ${VAR:default} placeholders, and values that must stay text."""
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
