"""Migration 0004 on SQLite and MariaDB: the old throttle table gives way to the counters,
and stored emails take their normal form (NFKC, lower-case) unless another account already
holds it (then the account keeps its email: two accounts never merge)."""
import sqlalchemy as sa

from common.storage.migrations import upgrade
from tests.conftest import drop_databases

NOW = "2027-01-01 10:00:00.000000"


def test_stored_emails_are_normalised_and_the_counters_replace_the_old_table(db_template):
    url = db_template.replace("<service>", "auth")
    engine = sa.create_engine(url)
    try:
        upgrade("auth_service", url, "0003")
        emails = {1: "ann@example.com", 2: "ＢＯＢ@Example.com", 3: "Cy@Example.COM"}
        if engine.dialect.name == "sqlite":  # MariaDB's collation never let this one in beside ann
            emails[4] = "ａｎｎ@example.com"
        with engine.begin() as connection:
            for user_id, email in emails.items():
                connection.execute(sa.text(
                    "INSERT INTO users (id, email, password_hash, notify_email, notify_sms, is_active, "
                    "created_at, updated_at) VALUES (:id, :email, 'x', 1, 1, 1, :now, :now)"),
                    {"id": user_id, "email": email, "now": NOW})
        upgrade("auth_service", url)
        with engine.connect() as connection:
            found = dict(connection.execute(sa.text("SELECT id, email FROM users")).all())
            tables = set(sa.inspect(connection).get_table_names())
        expected = {1: "ann@example.com", 2: "bob@example.com", 3: "cy@example.com"}
        if engine.dialect.name == "sqlite":
            expected[4] = "ａｎｎ@example.com"  # its normal form is taken: left for an operator
        assert found == expected
        assert "throttle_counters" in tables and "login_throttle" not in tables
    finally:
        engine.dispose()
        drop_databases(db_template, ["auth"])
