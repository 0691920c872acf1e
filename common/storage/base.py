"""The declarative base and column types every service's models share."""
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UtcDateTimeColumn(sa.TypeDecorator):
    """Aware UTC datetimes in Python, naive UTC in the column (MySQL DATETIME has no zone)."""

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "mysql":  # keep microseconds: DATETIME alone drops them
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value, dialect):
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("naive datetime given; use an aware UTC time")
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        return value.replace(tzinfo=UTC) if value is not None else None


class Base(DeclarativeBase):
    """Declarative base every service's models derive from (each has its own metadata)."""

    __abstract__ = True


class Timestamps:
    """When a row was made and last changed; the code that writes it sets both from its clock
    (the database's clock is not the domain's: tests and sweeps move time)."""

    created_at: Mapped[datetime] = mapped_column(UtcDateTimeColumn, sort_order=100)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTimeColumn, sort_order=100)
