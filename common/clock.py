"""The one clock: aware UTC now."""
from datetime import UTC, datetime


def utcnow():
    return datetime.now(UTC)
