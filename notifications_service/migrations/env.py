"""Alembic environment of the notifications database."""
from common.storage.migrations import run_env
from notifications_service.models import Base

run_env(Base.metadata)
