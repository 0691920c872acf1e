"""Migrate every service's database, then seed it: what a stack needs before it starts
(`scripts.launcher.Stack.prepare`), in one process instead of two."""
import logging
import os

from common import config as bookify_config
from scripts.migrate import migrate_all
from scripts.seed import seed_all

if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    config = bookify_config.load()
    migrate_all(config)
    seed_all(config, demo=os.environ.get("BOOKIFY_DEMO_DATA") == "1")
