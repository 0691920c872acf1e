"""The base of every SQLAlchemy repository: one model's rows, inside the caller's session."""
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import sqlalchemy as sa

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    total: int


class SqlRepository(Generic[T]):
    """Rows of one SQLAlchemy model, inside the caller's session (the unit of work)."""

    model: type

    def __init__(self, session):
        self.session = session

    def get(self, entity_id):
        return self.session.get(self.model, entity_id)

    def get_for_update(self, entity_id):
        return self.session.get(self.model, entity_id, with_for_update=True)

    def add(self, entity):
        self.session.add(entity)
        self.session.flush()
        return entity

    def delete(self, entity):
        self.session.delete(entity)
        self.session.flush()

    def matching(self, **values):
        """Equality conditions on this model's columns for every value given (None: any)."""
        return [getattr(self.model, column) == value
                for column, value in values.items() if value is not None]

    def page(self, limit, offset, where=(), order_by=None):
        query = sa.select(self.model).where(*where)
        total = self.session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
        order = order_by if order_by is not None else self.model.id
        items = self.session.scalars(query.order_by(order).limit(limit).offset(offset)).all()
        return Page(items=items, total=total)
