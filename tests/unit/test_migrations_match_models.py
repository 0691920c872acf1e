"""Every service's migrations build exactly the schema its models declare, on both backends:
a column, index or constraint added to a model without a revision (or the other way round)
fails here, not on the first deployment that reads it."""
import importlib

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from common.storage.migrations import upgrade
from tests.conftest import drop_databases

SERVICES = {"auth": "auth_service", "reservations": "reservations_service",
            "payments": "payments_service", "notifications": "notifications_service"}


@pytest.mark.parametrize("service", SERVICES)
def test_the_migrated_schema_is_the_models_schema(db_template, service):
    package = SERVICES[service]
    url = db_template.replace("<service>", service)
    upgrade(package, url)
    metadata = importlib.import_module(f"{package}.models").Base.metadata
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": False})
            differences = compare_metadata(context, metadata)
    finally:
        engine.dispose()
        drop_databases(db_template, [service])
    assert differences == []
