"""Private MariaDB and PostgreSQL servers for tests.

Each server lives entirely inside a directory the test gives it (data
directory, unix socket, pidfile, logs), listens on 127.0.0.1 only, on a free
port chosen at start, and is stopped by the PID in its own pidfile. The
machine's system services, default sockets (/run/mysqld, /var/run/postgresql)
and configuration files are never used.

    server = MariaDBServer(tmp_path / "mariadb")
    server.start()
    try:
        url = server.create_database("neutron")   # SQLAlchemy URL, test user
        ...
    finally:
        server.stop()

pytest fixtures (register this module as a plugin, e.g. in the root conftest
``pytest_plugins = ["tests.support.databases"]``):

- ``mariadb_server`` / ``postgresql_server``: session-scoped, started servers;
  a test that needs one fails (never skips) when the binaries are missing.
- ``mariadb_url`` / ``postgresql_url``: a new empty database for one test,
  dropped afterwards.

Admin SQL goes over the server's private unix socket (PyMySQL, psycopg 3);
tests connect over TCP as a user with a password, like a real deployment.

PYTEST_DONT_REWRITE (no test assertions here; avoids pytest's warning when a
test module imports this module before it is registered as a plugin)
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

__all__ = [
    "DatabaseServerError",
    "MariaDBServer",
    "PostgreSQLServer",
    "mariadb_server",
    "mariadb_url",
    "postgresql_server",
    "postgresql_url",
]

TEST_USER = "baryon"
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
# sun_path is 108 bytes on Linux, including the terminating NUL.
_MAX_SOCKET_PATH = 100
_SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")
_LOG_TAIL_LINES = 40


class DatabaseServerError(RuntimeError):
    """A private database server could not be set up, started or used."""


# --------------------------------------------------------------------------
# helpers


def _which(*names: str) -> str | None:
    path = os.pathsep.join([os.environ.get("PATH", ""), *_SBIN_DIRS])
    for name in names:
        found = shutil.which(name, path=path)
        if found:
            return found
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_accepts_connections(port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    """True when a process with this PID exists (and is not a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):
        return True


def _die_with_parent(sig: int):
    """A preexec_fn: the server gets `sig` when the thread that started it dies.

    A safety net for a test run killed without cleanup (SIGTERM, SIGKILL): the
    normal way out is stop(). Runs in the child after the uid switch, which
    would otherwise clear the setting.
    """
    parent = os.getpid()  # evaluated in the parent: the child checks its getppid() against it

    def preexec() -> None:
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(sig), 0, 0, 0)  # PR_SET_PDEATHSIG
        except Exception:  # noqa: BLE001 - best effort
            return
        if os.getppid() != parent:  # the parent died before prctl
            os.kill(os.getpid(), sig)

    return preexec


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        return f"(no log: {e})"
    return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"


def _check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise ValueError(f"invalid database name {name!r}: use [A-Za-z_][A-Za-z0-9_]*, at most 63 characters")
    return name


def _read_pidfile(path: Path) -> int | None:
    try:
        first = path.read_text().split("\n", 1)[0].strip()
        return int(first) if first else None
    except (OSError, ValueError):
        return None


def _short_socket_dir(wanted: Path, socket_name: str) -> tuple[Path, Path | None]:
    """The directory for a unix socket: `wanted`, or a short /tmp one if too long.

    Returns (directory, directory_to_remove_on_stop_or_None).
    """
    if len(str(wanted / socket_name)) <= _MAX_SOCKET_PATH:
        wanted.mkdir(parents=True, exist_ok=True)
        return wanted, None
    short = Path(tempfile.mkdtemp(prefix="baryon-db-"))
    return short, short


class _ServerBase:
    """Process handling shared by both servers."""

    kind = "database"
    port_in_use_markers: tuple[str, ...] = ()

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = Path(base_dir).absolute()
        self.port: int | None = None
        self.password = secrets.token_hex(16)
        self.user = TEST_USER
        self.log_path = self.base_dir / "server.log"
        self._proc: subprocess.Popen | None = None
        self._extra_dirs: list[Path] = []
        self.started = False
        self._ready = False  # answered since it was last spawned

    # -- subclasses -------------------------------------------------------

    @classmethod
    def missing_message(cls) -> str | None:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def pidfile(self) -> Path:  # pragma: no cover - abstract
        raise NotImplementedError

    def _prepare(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _command(self) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _popen_kwargs(self) -> dict:
        return {}

    def _ping(self) -> None:  # pragma: no cover - abstract
        """Raise unless the server answers on its admin socket."""
        raise NotImplementedError

    def _after_start(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    stop_signal = signal.SIGTERM
    unready_stop_grace = 5.0  # seconds to wait for a server stopped before it answered

    # -- public -----------------------------------------------------------

    @classmethod
    def is_available(cls) -> bool:
        """Whether the server's binaries are installed on this machine."""
        return cls.missing_message() is None

    @property
    def available(self) -> bool:
        return self.is_available()

    @property
    def pid(self) -> int | None:
        pid = _read_pidfile(self.pidfile)
        if pid is None and self._proc is not None:
            pid = self._proc.pid
        return pid

    def start(self, timeout: float = 60.0) -> None:
        """Initialise (first time only) and start the server; wait until it answers."""
        if self.started:
            return
        missing = self.missing_message()
        if missing:
            raise DatabaseServerError(missing)
        deadline = time.monotonic() + timeout
        _register(self)
        self.base_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._prepare()
            for attempt in range(3):
                self.port = _free_port()
                try:
                    self._spawn_and_wait(deadline)
                    break
                except DatabaseServerError:
                    log = _tail(self.log_path)
                    self._terminate()
                    # Another process took the port between bind and listen: retry.
                    if attempt < 2 and any(m in log for m in self.port_in_use_markers):
                        continue
                    raise
            self._after_start()
        except BaseException:
            self.stop()  # half started (or interrupted): leave nothing running
            raise
        self.started = True

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server (SIGTERM-like, then SIGKILL after `timeout`). Idempotent."""
        self.started = False
        self._terminate(timeout)
        for d in self._extra_dirs:
            shutil.rmtree(d, ignore_errors=True)
        self._extra_dirs.clear()
        _unregister(self)

    def restart(self, downtime: float = 0.0, timeout: float = 60.0) -> None:
        """Stop the running server (as ``stop``: its clients are disconnected), stay down for
        ``downtime`` seconds, then start it again on the same port with the same data and wait
        until it answers. For fault tests; call it from the thread that started the server (the
        server is signalled when that thread ends, see ``_die_with_parent``)."""
        if not self.started:
            raise DatabaseServerError(f"{self.kind} is not running: start() it before restart()")
        self._terminate(timeout)
        time.sleep(downtime)
        try:
            self._spawn_and_wait(time.monotonic() + timeout)
        except BaseException:
            self.stop()
            raise

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.base_dir} port={self.port} pid={self.pid}>"

    # -- internals --------------------------------------------------------

    def _spawn_and_wait(self, deadline: float) -> None:
        with open(self.log_path, "ab") as log:
            log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} starting on port {self.port}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.base_dir,
                start_new_session=True,  # a terminal's Ctrl-C goes to pytest, which stops us in order
                preexec_fn=_die_with_parent(self.stop_signal),
                **self._popen_kwargs(),
            )
        last_error: Exception | None = None
        while True:
            code = self._proc.poll()
            if code is not None:
                raise DatabaseServerError(
                    f"{self.kind} exited with code {code} while starting; "
                    f"last lines of {self.log_path}:\n{_tail(self.log_path)}"
                )
            try:
                self._ping()
                self._ready = True
                return
            except Exception as e:  # noqa: BLE001 - any failure means "not yet"
                last_error = e
            if time.monotonic() > deadline:
                raise DatabaseServerError(
                    f"{self.kind} did not answer before the deadline (last error: {last_error}); "
                    f"last lines of {self.log_path}:\n{_tail(self.log_path)}"
                )
            time.sleep(0.05)

    def _terminate(self, timeout: float = 30.0) -> None:
        pids = []
        pid = _read_pidfile(self.pidfile)
        if pid is not None:
            pids.append(pid)
        if self._proc is not None and self._proc.pid not in pids:
            pids.append(self._proc.pid)
        for pid in pids:
            if not self._owned(pid):
                continue
            self._signal(pid, self.stop_signal)
        if not self._ready:
            # Stopped while still starting (a failed or interrupted start):
            # mariadbd can deadlock when asked to shut down at that point.
            timeout = min(timeout, self.unready_stop_grace)
        end = time.monotonic() + timeout
        for pid in pids:
            while self._owned(pid) and pid_alive(pid) and time.monotonic() < end:
                self._reap()
                time.sleep(0.05)
            if self._owned(pid) and pid_alive(pid):
                self._signal(pid, signal.SIGKILL)
        self._ready = False
        if self._proc is not None:
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            self._proc = None
        for pid in pids:
            end = time.monotonic() + 10
            while pid_alive(pid) and time.monotonic() < end:
                time.sleep(0.05)

    def _reap(self) -> None:
        if self._proc is not None:
            self._proc.poll()

    def _owned(self, pid: int) -> bool:
        """Whether `pid` is (still) the server we started, not a recycled PID."""
        if self._proc is not None and pid == self._proc.pid:
            return self._proc.poll() is None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
        return str(self.base_dir).encode() in cmdline

    @staticmethod
    def _signal(pid: int, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


# servers started and not yet stopped: stopped when the interpreter exits
_live: set[_ServerBase] = set()


def _register(server: _ServerBase) -> None:
    _live.add(server)


def _unregister(server: _ServerBase) -> None:
    _live.discard(server)


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_live):
        with contextlib.suppress(Exception):
            server.stop(timeout=10)


# --------------------------------------------------------------------------
# MariaDB


class MariaDBServer(_ServerBase):
    """A private mariadbd: data, socket, pidfile and log under base_dir."""

    kind = "MariaDB"
    port_in_use_markers = ("Address already in use", "Do you already have another")
    unready_stop_grace = 1.0  # a SIGTERM during startup can hang mariadbd 10.11 for good

    def __init__(self, base_dir: Path) -> None:
        super().__init__(base_dir)
        self.datadir = self.base_dir / "data"
        self.tmpdir = self.base_dir / "tmp"
        self.socket_path = self.base_dir / "run" / "mysqld.sock"

    @staticmethod
    def binaries() -> dict[str, str | None]:
        return {
            "mariadbd": _which("mariadbd", "mysqld"),
            "mariadb-install-db": _which("mariadb-install-db", "mysql_install_db"),
        }

    @classmethod
    def missing_message(cls) -> str | None:
        missing = [name for name, path in cls.binaries().items() if path is None]
        if not missing:
            return None
        return (
            f"MariaDB server binaries not found ({', '.join(missing)}); "
            "install the Debian package mariadb-server (bin/setup --test does)"
        )

    @property
    def pidfile(self) -> Path:
        return self.base_dir / "mariadbd.pid"

    def _server_options(self) -> list[str]:
        opts = [
            f"--datadir={self.datadir}",
            f"--tmpdir={self.tmpdir}",
            "--skip-name-resolve",
            "--skip-log-bin",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_general_ci",
            "--innodb-buffer-pool-size=64M",
            "--innodb-log-file-size=48M",
            "--innodb-flush-log-at-trx-commit=2",
            "--innodb-doublewrite=0",
            "--innodb-use-native-aio=0",  # io_setup/io_uring is often refused in containers
            "--max-connections=500",
            "--performance-schema=0",
            "--skip-external-locking",
        ]
        if os.geteuid() == 0:
            opts.append("--user=root")  # mariadbd refuses to run as root otherwise
        return opts

    def _prepare(self) -> None:
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        sock_dir, extra = _short_socket_dir(self.socket_path.parent, self.socket_path.name)
        self.socket_path = sock_dir / self.socket_path.name
        if extra:
            self._extra_dirs.append(extra)
        if (self.datadir / "mysql").is_dir():
            return  # already initialised (a restart)
        shutil.rmtree(self.datadir, ignore_errors=True)
        install_log = self.base_dir / "install-db.log"
        cmd = [
            self.binaries()["mariadb-install-db"],
            "--no-defaults",
            "--auth-root-authentication-method=normal",  # root@localhost, no password, socket only
            "--skip-test-db",
            *self._server_options(),
        ]
        with open(install_log, "wb") as log:
            result = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.base_dir)
        if result.returncode != 0:
            raise DatabaseServerError(
                f"mariadb-install-db failed (exit {result.returncode}); last lines of {install_log}:\n{_tail(install_log)}"
            )

    def _command(self) -> list[str]:
        return [
            self.binaries()["mariadbd"],
            "--no-defaults",  # never read /etc/mysql: its socket and datadir are the system's
            *self._server_options(),
            "--bind-address=127.0.0.1",
            f"--port={self.port}",
            f"--socket={self.socket_path}",
            f"--pid-file={self.pidfile}",
            f"--log-error={self.log_path}",
        ]

    def _admin(self):
        import pymysql

        return pymysql.connect(unix_socket=str(self.socket_path), user="root", password="", autocommit=True, connect_timeout=5)

    def _ping(self) -> None:
        self._admin().close()

    def _after_start(self) -> None:
        with contextlib.closing(self._admin()) as conn, conn.cursor() as cur:
            cur.execute("CREATE USER IF NOT EXISTS %s@'127.0.0.1' IDENTIFIED BY %s", (self.user, self.password))
            cur.execute("ALTER USER %s@'127.0.0.1' IDENTIFIED BY %s", (self.user, self.password))

    def url(self, name: str) -> str:
        return f"mysql+pymysql://{self.user}:{self.password}@127.0.0.1:{self.port}/{_check_name(name)}?charset=utf8mb4"

    def create_database(self, name: str) -> str:
        """Create an empty database the test user owns; return its SQLAlchemy URL."""
        _check_name(name)
        with contextlib.closing(self._admin()) as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")
            cur.execute(f"GRANT ALL PRIVILEGES ON `{name}`.* TO %s@'127.0.0.1'", (self.user,))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        _check_name(name)
        with contextlib.closing(self._admin()) as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            # a grant outlives its database; a later database of the same name would inherit it
            with contextlib.suppress(Exception):
                cur.execute(f"REVOKE ALL PRIVILEGES ON `{name}`.* FROM %s@'127.0.0.1'", (self.user,))


# --------------------------------------------------------------------------
# PostgreSQL


def _pg_version_key(bindir: str) -> tuple[int, ...]:
    m = re.search(r"/postgresql/([0-9.]+)/bin", bindir)
    return tuple(int(x) for x in m.group(1).split(".")) if m else (0,)


class PostgreSQLServer(_ServerBase):
    """A private postgres: data, socket, pidfile and log under base_dir.

    PostgreSQL refuses to run as root, so as root the server runs as the
    ``postgres`` system user (Debian's package creates it); base_dir is chowned
    to that user and its ancestors get the search (x) bit for it.
    """

    kind = "PostgreSQL"
    port_in_use_markers = ("Address already in use", "could not create any TCP/IP sockets")
    stop_signal = signal.SIGINT  # "fast" shutdown: disconnects clients (SIGTERM waits for them)
    run_as = "postgres"

    def __init__(self, base_dir: Path) -> None:
        super().__init__(base_dir)
        self.datadir = self.base_dir / "data"
        self.socket_dir = self.base_dir / "run"

    @staticmethod
    def bindir() -> str | None:
        """The directory holding initdb and postgres: Debian's newest, else PATH's."""
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_pg_version_key, reverse=True)
        for name in ("postgres", "initdb"):
            found = _which(name)
            if found:
                candidates.append(os.path.dirname(os.path.realpath(found)))
        for d in candidates:
            if all(os.access(os.path.join(d, b), os.X_OK) for b in ("postgres", "initdb")):
                return d
        return None

    @classmethod
    def missing_message(cls) -> str | None:
        if cls.bindir() is None:
            return (
                "PostgreSQL server binaries (initdb, postgres) not found in /usr/lib/postgresql/*/bin or PATH; "
                "install the Debian package postgresql (bin/setup --test does)"
            )
        return None

    @property
    def pidfile(self) -> Path:
        return self.datadir / "postmaster.pid"

    # -- running as an unprivileged user ------------------------------------

    def _account(self) -> pwd.struct_passwd | None:
        """The account to run as, or None to run as ourselves (not root)."""
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(self.run_as)
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--user-group", "--home-dir", "/var/lib/postgresql",
                 "--no-create-home", "--shell", "/usr/sbin/nologin", self.run_as],
                check=True,
            )
            return pwd.getpwnam(self.run_as)

    def _popen_kwargs(self) -> dict:
        acct = self._account()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C")
        if acct is None:
            return {"env": env}
        env.update(HOME=acct.pw_dir, USER=acct.pw_name, LOGNAME=acct.pw_name)
        return {"user": acct.pw_uid, "group": acct.pw_gid, "extra_groups": [], "env": env}

    def _give_to(self, acct: pwd.struct_passwd) -> None:
        for root, dirs, files in os.walk(self.base_dir):
            for name in [*dirs, *files]:
                os.chown(os.path.join(root, name), acct.pw_uid, acct.pw_gid, follow_symlinks=False)
        for d in [self.base_dir, *self._extra_dirs]:
            os.chown(d, acct.pw_uid, acct.pw_gid)
        # The ancestors of base_dir (e.g. pytest's 0700 /tmp/pytest-of-root)
        # need the search bit for that user; read permission is not given.
        for parent in self.base_dir.parents:
            st = parent.stat()
            if st.st_uid == acct.pw_uid or st.st_mode & 0o001:
                continue
            os.chmod(parent, st.st_mode | 0o001)

    def _prepare(self) -> None:
        sock_dir, extra = _short_socket_dir(self.socket_dir, f".s.PGSQL.{65535}")
        self.socket_dir = sock_dir
        if extra:
            self._extra_dirs.append(extra)
        acct = self._account()
        if acct is not None:
            self._give_to(acct)
        if (self.datadir / "PG_VERSION").is_file():
            return  # already initialised (a restart)
        shutil.rmtree(self.datadir, ignore_errors=True)
        init_log = self.base_dir / "initdb.log"
        cmd = [
            os.path.join(self.bindir(), "initdb"),
            f"--pgdata={self.datadir}",
            "--username=postgres",
            "--encoding=UTF8",
            "--locale=C",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--no-sync",
            "--no-instructions",
        ]
        with open(init_log, "wb") as log:
            result = subprocess.run(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.base_dir, **self._popen_kwargs()
            )
        if result.returncode != 0:
            raise DatabaseServerError(
                f"initdb failed (exit {result.returncode}); last lines of {init_log}:\n{_tail(init_log)}"
            )
        # Admin steps: trust on the private unix socket only. Tests: a password over TCP.
        (self.datadir / "pg_hba.conf").write_text(
            "# written by tests/support/databases.py\n"
            "local   all  all                 trust\n"
            "host    all  all  127.0.0.1/32   scram-sha-256\n"
        )
        if acct is not None:
            os.chown(self.datadir / "pg_hba.conf", acct.pw_uid, acct.pw_gid)

    def _command(self) -> list[str]:
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "unix_socket_permissions": "0700",
            "max_connections": "300",
            "shared_buffers": "64MB",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "wal_level": "minimal",
            "max_wal_senders": "0",
            "logging_collector": "off",
            "log_min_messages": "warning",
            "password_encryption": "scram-sha-256",
        }
        cmd = [os.path.join(self.bindir(), "postgres"), "-D", str(self.datadir)]
        for k, v in settings.items():
            cmd += ["-c", f"{k}={v}"]
        return cmd

    def _admin(self, dbname: str = "postgres"):
        import psycopg

        return psycopg.connect(
            host=str(self.socket_dir), port=self.port, user="postgres", dbname=dbname, autocommit=True, connect_timeout=5
        )

    def _ping(self) -> None:
        self._admin().close()

    def _after_start(self) -> None:
        from psycopg import sql

        with self._admin() as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (self.user,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(
                sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(self.user), sql.Literal(self.password))
            )

    def url(self, name: str) -> str:
        return f"postgresql+psycopg://{self.user}:{self.password}@127.0.0.1:{self.port}/{_check_name(name)}"

    def create_database(self, name: str) -> str:
        """Create an empty database the test user owns; return its SQLAlchemy URL."""
        from psycopg import sql

        _check_name(name)
        with self._admin() as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {} ENCODING 'UTF8' TEMPLATE template0").format(
                    sql.Identifier(name), sql.Identifier(self.user)
                )
            )
        return self.url(name)

    def drop_database(self, name: str) -> None:
        from psycopg import sql

        _check_name(name)
        with self._admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# --------------------------------------------------------------------------
# pytest fixtures


def _server_fixture(cls, tmp_path_factory, name: str):
    missing = cls.missing_message()
    if missing:
        pytest.fail(missing, pytrace=False)
    server = cls(tmp_path_factory.mktemp(name))
    try:
        server.start()
        yield server
    finally:  # also on a failed start, a failing test or KeyboardInterrupt
        server.stop()


@pytest.fixture(scope="session")
def mariadb_server(tmp_path_factory):
    """A running private MariaDB server for the whole session."""
    yield from _server_fixture(MariaDBServer, tmp_path_factory, "mariadb")


@pytest.fixture(scope="session")
def postgresql_server(tmp_path_factory):
    """A running private PostgreSQL server for the whole session."""
    yield from _server_fixture(PostgreSQLServer, tmp_path_factory, "postgresql")


def _test_db_name(request) -> str:
    base = re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:40]
    return f"t_{base}_{secrets.token_hex(4)}"


@pytest.fixture
def mariadb_url(mariadb_server, request):
    """SQLAlchemy URL of a new empty MariaDB database, dropped after the test."""
    name = _test_db_name(request)
    url = mariadb_server.create_database(name)
    yield url
    mariadb_server.drop_database(name)


@pytest.fixture
def postgresql_url(postgresql_server, request):
    """SQLAlchemy URL of a new empty PostgreSQL database, dropped after the test."""
    name = _test_db_name(request)
    url = postgresql_server.create_database(name)
    yield url
    postgresql_server.drop_database(name)
