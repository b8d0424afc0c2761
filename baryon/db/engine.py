"""Engines, sessions and transactions for SQLite, MariaDB/MySQL and PostgreSQL.

``Database.read()`` gives a session for reads. ``Database.write(fn)`` runs ``fn(session)`` in one
transaction and retries the whole of it, with a fresh session and a short random back-off,
when the database says the conflict is transient: a unique or foreign key violation (another
worker took the same address, MAC or segment first: the retry re-reads and either picks
another one or raises the domain error), a deadlock, a lock wait timeout, a serialization
failure, or SQLite's "database is locked". ``fn`` must therefore be safe to run again: it
re-reads everything it needs and keeps no state outside the session.

SQLite: WAL journal, ``BEGIN IMMEDIATE`` for writes (writers queue on the lock instead of
failing to upgrade a read lock), deferred ``BEGIN`` for reads, foreign keys on.
MariaDB/MySQL and PostgreSQL: READ COMMITTED, pooled connections (no TLS to a MariaDB/MySQL
server on loopback unless the URL has ``ssl_*`` options; no rollback by the pool on return, as
every session ends its own transaction). A read session rolls back at its end: under READ
COMMITTED each statement sees what was committed before it, in or out of a transaction.

Metrics: ``baryon_db_transaction_seconds{kind="read"|"write"}``, each ``read()`` block and each
``write(fn)`` (all its attempts), and ``baryon_db_write_retries_total`` (transient conflicts retried).
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from prometheus_client import Counter, Histogram
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

LOG = logging.getLogger(__name__)
T = TypeVar("T")

MAX_ATTEMPTS = 12

# MySQL: 1213 deadlock, 1205 lock wait timeout; PostgreSQL: serialization failure, deadlock.
_MYSQL_TRANSIENT = {1213, 1205}
_PG_TRANSIENT = {"40001", "40P01"}

TRANSACTION_SECONDS = Histogram(
    "baryon_db_transaction_seconds", "Database transaction time, by kind (a write: all its attempts)", ["kind"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
WRITE_RETRIES = Counter("baryon_db_write_retries", "Write transactions retried after a transient conflict")


class DuplicateAfterRetries(Exception):
    """A write kept colliding with concurrent writes; surfaced as 409 by the API."""


def _transient(exc: DBAPIError) -> bool:
    if isinstance(exc, IntegrityError):
        return True
    orig = exc.orig
    code = getattr(orig, "args", (None,))[0] if orig is not None else None
    if isinstance(code, int) and code in _MYSQL_TRANSIENT:
        return True
    if getattr(orig, "sqlstate", None) in _PG_TRANSIENT:
        return True
    return isinstance(exc, OperationalError) and "database is locked" in str(orig)


# The connection could not be made or was lost. MySQL: 2002/2003 cannot connect, 2006 gone away,
# 2013 lost during a query, 1053 shutdown in progress, 1927 connection killed. PostgreSQL: class 08
# (connection exception), 57P01/57P02 connection ended by a shutdown or a crash, 57P03 not
# accepting connections (starting up, shutting down); psycopg's own connection errors carry no
# SQLSTATE ("connection failed", "server closed the connection unexpectedly").
_MYSQL_DISCONNECT = {1053, 1927, 2002, 2003, 2006, 2013}
_PG_DISCONNECT = {"57P01", "57P02", "57P03"}


def disconnected(exc: DBAPIError) -> bool:
    """Whether ``exc`` says that the database could not be reached or that the connection was lost
    (the server stopped, restarted or is unreachable), not that the statement itself failed. The
    transaction did not commit, or its commit's answer was lost: the caller cannot tell which."""
    if exc.connection_invalidated:  # SQLAlchemy's dialect saw a disconnect and invalidated the connection
        return True
    orig = exc.orig
    code = getattr(orig, "args", (None,))[0] if orig is not None else None
    if isinstance(code, int) and code in _MYSQL_DISCONNECT:
        return True
    if not hasattr(orig, "sqlstate"):  # not psycopg
        return False
    sqlstate = orig.sqlstate
    if sqlstate is None:
        return isinstance(exc, (OperationalError, InterfaceError))
    return sqlstate.startswith("08") or sqlstate in _PG_DISCONNECT


def _loopback(host: str | None) -> bool:
    return host in (None, "", "localhost", "::1") or (host or "").startswith("127.")


IDLE_PING_SECONDS = 1.0


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before lending it only when it has been idle for
    ``IDLE_PING_SECONDS``, where ``pool_pre_ping`` pings at every checkout: that ping was one of
    a show's four round trips. A connection that failed under a busy server within the last
    second fails its request (a 503, ``api.faults``), and the pool invalidates every connection
    made before that failure, so the next requests reconnect. A dead idle connection is replaced
    before it is lent (``DisconnectionError`` makes the pool take another, up to three times)."""
    dialect = engine.dialect

    @event.listens_for(engine, "connect")
    def _connect(_dbapi_connection, record) -> None:  # noqa: ANN001
        record.info["returned"] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_connection, record) -> None:  # noqa: ANN001
        record.info["returned"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection, record, _proxy) -> None:  # noqa: ANN001
        if time.monotonic() - record.info.get("returned", 0.0) < IDLE_PING_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, dbapi_connection, None):
                raise DisconnectionError(str(exc)) from exc
            raise


class Database:
    def __init__(self, url: str, *, pool_size: int = 30, max_overflow: int = 10, pool_timeout: int = 30):
        self.url = make_url(url)
        self.backend = self.url.get_backend_name()
        if self.backend == "sqlite":
            self.write_engine = self._sqlite_engine(immediate=True)
            self.read_engine = self._sqlite_engine(immediate=False)
        else:
            kwargs: dict = dict(pool_size=pool_size, max_overflow=max_overflow, pool_timeout=pool_timeout,
                                pool_recycle=3600, isolation_level="READ COMMITTED",
                                # NOTE: every use ends its transaction (a Session commits or rolls
                                # back; a Connection rolls back on close), so the pool's own
                                # rollback on return would be a second, idle round trip.
                                pool_reset_on_return=None)
            if self.backend == "mysql":
                kwargs["connect_args"] = {"charset": "utf8mb4", "init_command": "SET SESSION sql_mode='TRADITIONAL'"}
                if _loopback(self.url.host) and not any(k.startswith("ssl") for k in self.url.query):
                    # NOTE: PyMySQL >= 1.2 tries TLS by default, building a TLS context (the system's
                    # certificates) per connection: a third of a status report's time. Pointless on
                    # loopback; a URL with ssl_* options keeps it.
                    kwargs["connect_args"]["ssl_disabled"] = True
            self.write_engine = self.read_engine = create_engine(self.url, **kwargs)
            _ping_when_idle(self.write_engine)
        self._writer = sessionmaker(self.write_engine, expire_on_commit=False, autoflush=False)
        self._reader = sessionmaker(self.read_engine, expire_on_commit=False, autoflush=False)

    def _sqlite_engine(self, immediate: bool) -> Engine:
        path = self.url.database
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        engine = create_engine(self.url, connect_args={"timeout": 60, "check_same_thread": False},
                               pool_size=8, max_overflow=16)

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection, _record):  # noqa: ANN001
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=60000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):  # noqa: ANN001
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reads only: its transaction is rolled back, never committed (one round
        trip to the server at the end, where a commit and then the pool's reset were two)."""
        started = time.perf_counter()
        try:
            with self._reader() as session:
                yield session
        finally:
            TRANSACTION_SECONDS.labels("read").observe(time.perf_counter() - started)

    def write(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn(session)`` in one transaction, retrying transient conflicts (see module doc)."""
        started = time.perf_counter()
        try:
            return self._write(fn)
        finally:
            TRANSACTION_SECONDS.labels("write").observe(time.perf_counter() - started)

    def _write(self, fn: Callable[[Session], T]) -> T:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                with self._writer() as session, session.begin():
                    return fn(session)
            except DBAPIError as exc:
                if not _transient(exc):
                    raise
                if attempt == MAX_ATTEMPTS:
                    LOG.warning("giving up after %d attempts: %s", attempt, exc.orig)
                    raise DuplicateAfterRetries(str(exc.orig)) from exc
                LOG.debug("transient database conflict (attempt %d): %s", attempt, exc.orig)
                WRITE_RETRIES.inc()
                time.sleep(random.uniform(0, 0.002 * attempt))
        raise AssertionError("unreachable")

    def dispose(self) -> None:
        self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            self.read_engine.dispose()
