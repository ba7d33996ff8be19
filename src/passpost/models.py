"""Import every domain's tables so that ``Base.metadata`` knows them all (Alembic, tests)."""

from passpost.db import Base

__all__ = ["Base"]
