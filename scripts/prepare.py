"""Migrate every service's database, then seed it: what a stack needs before it starts
(`scripts.launcher.Stack.prepare`), in one process instead of two.
`--create-databases` as for `scripts.migrate`."""
import logging

from common import config as bookify_config
from scripts import seed
from scripts.migrate import arguments, migrate_all

if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    config = bookify_config.load()
    migrate_all(config, create_databases=arguments().create_databases)
    seed.main(config)
