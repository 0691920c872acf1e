"""Seed roles, permissions and the first admin (`make seed`); run after migrations.
With BOOKIFY_DEMO_DATA=1 (what `make run` sets) also demo data for trying the API."""
import os

from auth_service.passwords import Passwords
from auth_service.seed import DEMO_CUSTOMER, seed, seed_demo
from common import config as bookify_config
from common.db import Sessions


def seed_all(config):
    auth = bookify_config.section(config, "AUTH")
    sessions = Sessions.for_url(bookify_config.database_url(config, "auth"), pool_size=1)
    passwords = Passwords()
    try:
        created = seed(sessions, passwords, auth["admin_email"], auth["admin_password"])
        if os.environ.get("BOOKIFY_DEMO_DATA") == "1":
            seed_demo(sessions, passwords, auth.get("default_role", "Free"))
            print(f"demo customer: {DEMO_CUSTOMER[0]} / {DEMO_CUSTOMER[1]}")
    finally:
        sessions.dispose()
    print(f"seeded roles and permissions; admin {auth['admin_email']} "
          f"{'created' if created else 'already present'}")
    if "BOOKIFY_ADMIN_PASSWORD" not in os.environ:
        print(f"  (dev default admin password: {auth['admin_password']}; "
              "set BOOKIFY_ADMIN_EMAIL / BOOKIFY_ADMIN_PASSWORD for your own)")


if __name__ == "__main__":
    seed_all(bookify_config.load())
