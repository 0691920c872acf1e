"""Seed roles, permissions and the first admin (`make seed`); run after migrations."""
import os

from auth_service.passwords import Passwords
from auth_service.seed import seed
from common import config as bookify_config
from common.db import Sessions


def seed_all(config):
    auth = bookify_config.section(config, "AUTH")
    sessions = Sessions.for_url(bookify_config.database_url(config, "auth"), pool_size=1)
    try:
        created = seed(sessions, Passwords(), auth["admin_email"], auth["admin_password"])
    finally:
        sessions.dispose()
    print(f"seeded roles and permissions; admin {auth['admin_email']} "
          f"{'created' if created else 'already present'}")
    if "BOOKIFY_ADMIN_PASSWORD" not in os.environ:
        print(f"  (dev default admin password: {auth['admin_password']}; "
              "set BOOKIFY_ADMIN_EMAIL / BOOKIFY_ADMIN_PASSWORD for your own)")


if __name__ == "__main__":
    seed_all(bookify_config.load())
