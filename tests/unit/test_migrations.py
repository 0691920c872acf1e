"""Every service's migrations build exactly the schema its models describe, on SQLite and
MariaDB: a model change without its migration fails here, not in production."""
import pytest
from alembic import command

from common.storage.migrations import alembic_config, upgrade
from scripts.migrate import MIGRATED_SERVICES
from tests.conftest import drop_databases


@pytest.mark.parametrize("service,package", sorted(MIGRATED_SERVICES.items()))
def test_migrations_match_the_models(db_template, service, package):
    url = db_template.replace("<service>", service)
    try:
        upgrade(package, url)
        upgrade(package, url)  # running them again changes nothing
        command.check(alembic_config(package, url))  # raises when models and schema differ
    finally:
        drop_databases(db_template, [service])
