"""The private database servers the tests run against (tests/support/databases.py)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support import databases
from tests.support.databases import (
    DatabaseServerError,
    MariaDBServer,
    PostgreSQLServer,
    pid_alive,
    port_accepts_connections,
)

# Registers the fixtures (a no-op when the root conftest already did).
pytest_plugins = ["tests.support.databases"]

SERVERS = {"mariadb": ("mariadb_server", MariaDBServer), "postgresql": ("postgresql_server", PostgreSQLServer)}
KINDS = pytest.mark.parametrize("kind", sorted(SERVERS))


def processes_mentioning(path: Path) -> list[int]:
    """PIDs of live processes whose command line mentions `path`."""
    needle = str(path).encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline and pid_alive(int(entry)):
            found.append(int(entry))
    return found


@KINDS
def test_two_databases_through_sqlalchemy(kind, request):
    server = request.getfixturevalue(SERVERS[kind][0])
    url_a = server.create_database("alpha")
    url_b = server.create_database("beta")
    try:
        assert url_a != url_b
        assert "@127.0.0.1:" in url_a
        engine_a, engine_b = sa.create_engine(url_a), sa.create_engine(url_b)
        try:
            with engine_a.begin() as conn:
                assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
                conn.execute(sa.text("CREATE TABLE things (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL)"))
                conn.execute(sa.text("INSERT INTO things (id, name) VALUES (1, 'ünïcode ✓'), (2, 'two')"))
            with engine_a.connect() as conn:
                rows = conn.execute(sa.text("SELECT id, name FROM things ORDER BY id")).all()
                assert [tuple(r) for r in rows] == [(1, "ünïcode ✓"), (2, "two")]
            with engine_b.connect() as conn:
                assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
                assert not sa.inspect(conn).has_table("things")  # databases are separate
        finally:
            engine_a.dispose()
            engine_b.dispose()
    finally:
        server.drop_database("alpha")
        server.drop_database("beta")
    with pytest.raises(sa.exc.OperationalError):
        with sa.create_engine(url_a).connect():
            pass


def test_mariadb_url_fixture(mariadb_url):
    engine = sa.create_engine(mariadb_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT @@character_set_database")).scalar_one() == "utf8mb4"
        assert conn.execute(sa.text("SELECT @@max_connections")).scalar_one() == 500
    engine.dispose()


def test_postgresql_url_fixture(postgresql_url):
    engine = sa.create_engine(postgresql_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SHOW server_encoding")).scalar_one() == "UTF8"
        assert conn.execute(sa.text("SHOW max_connections")).scalar_one() == "300"
        assert conn.execute(sa.text("SHOW fsync")).scalar_one() == "off"
    engine.dispose()


@KINDS
def test_wrong_password_is_refused(kind, request):
    server = request.getfixturevalue(SERVERS[kind][0])
    url = server.create_database("pwcheck")
    try:
        bad = sa.make_url(url).set(password="not-the-password")
        engine = sa.create_engine(bad)
        with pytest.raises(sa.exc.OperationalError):
            with engine.connect():
                pass
        engine.dispose()
    finally:
        server.drop_database("pwcheck")


@KINDS
def test_stop_leaves_nothing_running(kind, tmp_path):
    server = SERVERS[kind][1](tmp_path / kind)
    server.start()
    try:
        pid, port = server.pid, server.port
        assert pid is not None and pid_alive(pid)
        assert port_accepts_connections(port)
        assert str(tmp_path) in str(server.pidfile)
        url = server.create_database("before_stop")
        engine = sa.create_engine(url)
        conn = engine.connect()  # an open client in a transaction must not hold up the stop
        assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
        server.stop()
        with contextlib.suppress(sa.exc.DBAPIError):
            conn.close()  # its rollback fails: the server is gone
        engine.dispose()
        assert not pid_alive(pid)
        assert not port_accepts_connections(port)
        assert processes_mentioning(tmp_path) == []
    finally:
        server.stop()
    server.stop()  # idempotent


@KINDS
def test_stop_after_a_failed_start(kind, tmp_path):
    server = SERVERS[kind][1](tmp_path / kind)
    with pytest.raises(DatabaseServerError, match="did not answer before the deadline|exited"):
        server.start(timeout=0.0)
    assert processes_mentioning(tmp_path) == []
    server.stop()  # still fine
    assert processes_mentioning(tmp_path) == []
    server.start()  # and the same directory starts cleanly afterwards
    try:
        assert port_accepts_connections(server.port)
    finally:
        server.stop()
    assert processes_mentioning(tmp_path) == []


@KINDS
def test_missing_binaries_give_a_clear_error(kind, tmp_path, monkeypatch):
    cls = SERVERS[kind][1]
    monkeypatch.setattr(databases, "_which", lambda *names: None)
    monkeypatch.setattr(databases.glob, "glob", lambda pattern: [])
    assert not cls.is_available()
    assert not cls(tmp_path).available
    message = cls.missing_message()
    assert "bin/setup --test" in message
    with pytest.raises(DatabaseServerError, match="not found"):
        cls(tmp_path / kind).start()
