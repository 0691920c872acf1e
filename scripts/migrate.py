"""Apply every service's migrations to its own database (`make migrate`)."""
import logging

from common import config as bookify_config
from common.storage.migrations import upgrade

# nameko service name -> package holding its migrations; later services add themselves here.
MIGRATED_SERVICES = {
    "auth": "auth_service",
    "reservations": "reservations_service",
    "payments": "payments_service",
    "notifications": "notifications_service",
}


def migrate_all(config):
    for service, package in MIGRATED_SERVICES.items():
        url = bookify_config.database_url(config, service)
        upgrade(package, url)
        print(f"migrated {service}: {_redacted(url)}")


def _redacted(url):
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    migrate_all(bookify_config.load())
