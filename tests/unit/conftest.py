"""Fixtures of the unit tests that need the services on a database (the schedulers' tests)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from baryon.config import load
from baryon.db import migrate
from baryon.db.engine import Database
from baryon.service.services import Services

ServicesFactory = Callable[..., Services]


@pytest.fixture
def make(tmp_path: Path) -> Iterator[ServicesFactory]:
    """``make(**DEFAULT options)``: the services on a fresh, migrated SQLite database of their own."""
    databases: list[Database] = []

    def factory(**options: str) -> Services:
        db = Database(f"sqlite:///{tmp_path / f'baryon-{len(databases)}.sqlite'}")
        databases.append(db)
        migrate.upgrade(db)
        return Services.create(load([], {"DEFAULT": options}), db)

    try:
        yield factory
    finally:
        for db in databases:
            db.dispose()
