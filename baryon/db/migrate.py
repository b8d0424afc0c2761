"""Schema migrations with Alembic, driven from code (``baryon db upgrade``, and the server on start).

Concurrent starts are safe on MariaDB/MySQL and PostgreSQL: the upgrade runs under an advisory
lock, so a second server waits and then finds the schema current.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from collections.abc import Iterator

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from baryon.db.engine import Database

SCRIPT_LOCATION = os.path.join(os.path.dirname(__file__), "migrations")


def _config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@contextmanager
def _migration_lock(connection: Connection, backend: str) -> Iterator[None]:
    if backend == "mysql":
        connection.execute(text("SELECT GET_LOCK('baryon_migrate', 300)"))
        try:
            yield
        finally:
            connection.execute(text("SELECT RELEASE_LOCK('baryon_migrate')"))
    elif backend == "postgresql":
        connection.execute(text("SELECT pg_advisory_lock(7320114)"))
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(7320114)"))
    else:
        yield


def upgrade(db: Database, revision: str = "head") -> None:
    with db.write_engine.connect() as lock_conn, _migration_lock(lock_conn, db.backend):
        with db.write_engine.begin() as connection:
            command.upgrade(_config(connection), revision)


def current(db: Database) -> str | None:
    with db.read_engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()
