"""Seed roles, permissions and the first admin (`make seed`); run after migrations.
With BOOKIFY_DEMO_DATA=1 (what `make run` sets) also demo data for trying the API."""
import os
from contextlib import contextmanager

from auth_service import seed as auth_seed
from auth_service.passwords import Passwords
from common import config as bookify_config
from common.storage.engines import Sessions
from reservations_service import seed as reservations_seed


@contextmanager
def database(config, service):
    sessions = Sessions.for_url(bookify_config.database_url(config, service), pool_size=1)
    try:
        yield sessions
    finally:
        sessions.dispose()


def seed_all(config, demo=False):
    auth = bookify_config.section(config, "AUTH")
    passwords = Passwords()
    with database(config, "auth") as sessions:
        created = auth_seed.seed(sessions, passwords, auth["admin_email"], auth["admin_password"])
        if demo:
            auth_seed.seed_demo(sessions, passwords, auth.get("default_role", "Free"))
    print(f"seeded roles and permissions; admin {auth['admin_email']} "
          f"{'created' if created else 'already present'}")
    if "BOOKIFY_ADMIN_PASSWORD" not in os.environ:
        print(f"  (dev default admin password: {auth['admin_password']}; "
              "set BOOKIFY_ADMIN_EMAIL / BOOKIFY_ADMIN_PASSWORD for your own)")
    if demo:
        with database(config, "reservations") as sessions:
            reservations_seed.seed_demo(sessions)
        email, password, _ = auth_seed.DEMO_CUSTOMER
        print(f"demo customer {email} / {password}; demo places: "
              + ", ".join(place["name"] for place in reservations_seed.DEMO_PLACES))


def main(config):
    seed_all(config, demo=os.environ.get("BOOKIFY_DEMO_DATA") == "1")


if __name__ == "__main__":
    main(bookify_config.load())
