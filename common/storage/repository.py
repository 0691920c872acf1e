"""The repository interface services persist through, and its SQLAlchemy implementation.

Domain code depends on `Repository`; swapping the store means another implementation,
not another domain."""
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import sqlalchemy as sa

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    total: int


class Repository(ABC, Generic[T]):
    """What every repository offers; services add their own queries on top."""

    @abstractmethod
    def get(self, entity_id) -> T | None: ...

    @abstractmethod
    def add(self, entity: T) -> T: ...

    @abstractmethod
    def delete(self, entity: T) -> None: ...

    @abstractmethod
    def page(self, limit: int, offset: int) -> Page[T]: ...


class SqlRepository(Repository[T]):
    """`Repository` over one SQLAlchemy model, inside the caller's session (unit of work)."""

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

    def page(self, limit, offset, where=(), order_by=None):
        query = sa.select(self.model).where(*where)
        total = self.session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
        order = order_by if order_by is not None else self.model.id
        items = self.session.scalars(query.order_by(order).limit(limit).offset(offset)).all()
        return Page(items=items, total=total)
