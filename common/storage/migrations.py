"""Alembic, driven from code: each service keeps its revisions in `<package>/migrations`
and they run against that service's own database (no alembic.ini needed)."""
from alembic import command, context
from alembic.config import Config

from common.storage.engines import check_database, create_engine


def alembic_config(package, url):
    config = Config()
    config.set_main_option("script_location", f"{package}:migrations")
    config.attributes["url"] = url
    return config


def upgrade(package, url, revision="head", create_database=True):
    """Migrate the database of `url` to `revision`. An unreachable server, or a missing
    MariaDB/MySQL database unless `create_database`, stops with one line
    (common.storage.engines.DatabaseUnavailable). `scripts.migrate` creates databases only when told to
    (`--create-databases`: local runs); fresh test databases are created here by default."""
    check_database(url, create=create_database)
    command.upgrade(alembic_config(package, url), revision)


def run_env(metadata):
    """The body of every service's migrations/env.py (online mode only)."""
    engine = create_engine(context.config.attributes["url"], pool_size=1)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata,
                          render_as_batch=True, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
