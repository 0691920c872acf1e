"""Apply every service's migrations to its own database (`make migrate`).

`python -m scripts.migrate [--create-databases]`: a MariaDB/MySQL database that does not
exist is an error (one line, exit code 1) unless `--create-databases` is given, which local
runs (`make run`, docker compose) pass. A mistyped name must not become a fresh, empty
database with the default admin in it."""
import argparse
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


def migrate_all(config, create_databases=False):
    for service, package in MIGRATED_SERVICES.items():
        url = bookify_config.database_url(config, service)
        upgrade(package, url, create_database=create_databases)
        print(f"migrated {service}: {_redacted(url)}")


def _redacted(url):
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--create-databases", action="store_true",
                        help="create a MariaDB/MySQL database that does not exist (local runs)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    migrate_all(bookify_config.load(), create_databases=arguments().create_databases)
