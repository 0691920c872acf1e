"""Alembic environment of the reservations database."""
from common.storage.migrations import run_env
from reservations_service.models import Base

run_env(Base.metadata)
