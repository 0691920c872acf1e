"""Alembic environment of the payments database."""
from common.storage.migrations import run_env
from payments_service.models import Base

run_env(Base.metadata)
