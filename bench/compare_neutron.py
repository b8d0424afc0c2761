#!/usr/bin/env python3
"""Baryon and the real OpenStack Neutron side by side: bench/api.py's workload against both, in one run.

    bench/neutron_setup.sh                       # once, as root: Neutron's venv, RabbitMQ, MariaDB
    .venv/bin/python bench/compare_neutron.py [--workers 2] [--rounds 2] [--duration 30]
                                              [--clients 8,32] [--fill-ports 10000]
                                              [--neutron-venv bench/.neutron-venv] [--neutron-threads 1]
                                              [--neutron-rpc-workers 1] [--wait-quiet SECONDS]
                                              [--quick] [--keep]
                                              [--json OUT] [--write] [--results bench/RESULTS.md]
    .venv/bin/python bench/compare_neutron.py --from-json OUT [--write]   # report a saved run again

Run as root, on demand (not part of the test suite). Everything it starts lives in a fresh
temporary directory, listens on the loopback only (127.0.0.1; epmd also binds ::1, as it always
does), on free ports, and is stopped by PID in
``finally`` (also on Ctrl-C and SIGTERM); the directory is then removed (``--keep`` keeps it, with
every log). Nothing is sent anywhere but 127.0.0.1, and nothing in the network namespace changes
beyond those listening sockets.

The stack:
- ONE private MariaDB (``tests.support.databases``: own data directory, socket and port) holds
  both databases: Baryon's and ``neutron`` (made by ``neutron-db-manage upgrade heads``).
- A private RabbitMQ for Neutron: its own epmd (started here, in the foreground, on a free
  loopback port: ERL_EPMD_PORT, ERL_EPMD_ADDRESS=127.0.0.1), its own node name, AMQP port and
  Erlang distribution port on 127.0.0.1, its own config, enabled-plugins, mnesia, log and cookie
  (HOME) in the temporary directory; the user and vhost ``neutron`` are its configured default
  user and vhost. The machine's /etc/rabbitmq and /var/lib/rabbitmq are never read.
- Neutron (``--neutron-venv``, made by bench/neutron_setup.sh): ML2 with flat, vlan, vxlan;
  openvswitch, l2population; port_security; the router service plugin; ``auth_strategy =
  noauth``; ``debug = false``; quotas unlimited. Neutron 29 has no neutron-server: its API is
  the WSGI application ``neutron.wsgi.api:application`` under uWSGI (``--workers`` processes of
  ``--neutron-threads`` threads, the uWSGI settings of Neutron's WSGI guide), beside
  ``neutron-rpc-server`` (``--neutron-rpc-workers``, default 1: Neutron's own default on 2 CPUs,
  half of them; and its one state-report worker) and ``neutron-periodic-workers``. No agents run
  on either side.
- Baryon: ``baryon server`` (``tests.support.server.BaryonServer``), ``--workers`` API workers,
  the same ML2 options, quotas unlimited, on the same MariaDB.

The measurements:
1. At rest: after both stacks started and each answered a few requests, ``SETTLE`` seconds of
   quiet, the RSS of all the processes of each side (Baryon: the server and its workers;
   Neutron: the uWSGI master and workers, the RPC server and the periodic workers, with all their
   children), summed from /proc (VmRSS, as bench/api.py; PSS beside it, which counts pages shared
   between forked workers once). RabbitMQ (beam, epmd) and MariaDB are reported apart.
2. ``--rounds`` rounds, alternating Baryon, Neutron, Baryon, Neutron...: in each, bench/api.py's
   workload (imported: networks, subnets, ports, show, list of 1,000 ports, routers, floating
   IPs, security group rules, and the throughput phase with the first ``--clients`` count), then
   the throughput phase alone with each further ``--clients`` count, each cleaning up after
   itself. Before each round and each of those phases, the side's processes and MariaDB are
   given up to ``SETTLE_TIMEOUT`` s to fall under ``IDLE_PCT`` % of a CPU each (after the
   workload's clean-up). A figure is the median over the rounds (with 2 rounds: the mean of the two); the
   errors of the throughput phases are added up.
3. ``--fill-ports`` ports on each side, ``--fill-per-network`` on each of its networks (a /20
   each: Neutron's IPAM costs O(n) per address in the number allocated on the subnet), by bulk
   POSTs (``{"ports": [...]}``, ``BULK`` a request, ``--workers`` clients; one that Neutron
   refuses whole for two random MACs colliding, a 409, is sent again), timed; then one list
   of all of them, timed; the RSS of each side after that list (and its peak during the fill and
   the list).
The report: a table (figure | Baryon | Neutron | ratio | target met?) with the issue's targets,
the machine, the versions, each round's figures and how busy the machine was meanwhile (it is
shared: other processes' share is reported). ``--write`` replaces the section ``HEADING`` of
``--results``; ``--json`` keeps the whole record, which ``--from-json`` reports again.
``--quick``: 1 round, 5 s throughput phases, 200 ports listed, 20 samples, a fill of 500 ports
(unless ``--fill-ports`` is given).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import api  # noqa: E402  (the workload: Settings, Bench, Results, tree_rss, RssSampler, summary)
import labkit  # noqa: E402  (machine, section, write_section, table, pss_kib)
import run_api  # noqa: E402  (database_version)
from tests.support.databases import MariaDBServer  # noqa: E402
from tests.support.server import BaryonServer  # noqa: E402

HEADING = "## Side by side with Neutron (bench/compare_neutron.py)"
DEFAULT_VENV = ROOT / "bench" / ".neutron-venv"
V2 = "/v2.0"
BULK = 100  # ports per bulk POST of the fill
FILL_RETRIES = 5  # a bulk POST refused for a duplicate MAC is sent again up to this many times
SETTLE = 10.0  # seconds of quiet before the at-rest RSS
SETTLE_TIMEOUT, IDLE_PCT = 120.0, 5.0  # before each round and throughput phase: the server's own CPU
LONG_TIMEOUT = httpx.Timeout(600.0, connect=10.0)  # a list of 10,000 ports on Neutron
START_TIMEOUT = 180.0
STOP_TIMEOUT = 30.0
LOG_ERROR = re.compile(r"^\S+ \S+ \d+ ERROR (\S+)")  # oslo.log: date time pid LEVEL logger
# a traceback's last line: "package.module.SomeError: message"
EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Plugin|Failure|Timeout)): ")

# Issue's targets (ratios measured in one run on the same machine).
TARGET_RATE_RATIO = 10.0  # Baryon's port creates/s >= 10x Neutron's, with zero errors
TARGET_LATENCY_FRACTION = 5.0  # Baryon's p50 <= 1/5 of Neutron's
TARGET_RSS_FRACTION = 5.0  # Baryon's RSS <= 1/5 of Neutron's

# The deployment both sides get: ML2 (flat, vlan, vxlan; openvswitch, l2population;
# port_security), VNIs for far more networks than the run makes, every quota unlimited.
ML2, QUOTAS = labkit.ML2, labkit.QUOTAS
NEUTRON_ONLY_QUOTAS = ("quota_router_route", "quota_rbac_policy")  # Baryon has no such resources


def say(message: str) -> None:
    print(f"bench/compare_neutron: {message}", file=sys.stderr, flush=True)


class CompareError(RuntimeError):
    """Something the comparison needs failed: the run stops (everything started is stopped)."""


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (clock ticks since boot): with the PID, names one process."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(no log: {exc})"


@dataclass
class Started:
    """One process this script started (in its own session), and its log."""

    name: str
    popen: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM to the process itself (it stops its own children: uWSGI's master, oslo.service's
        launcher, RabbitMQ's start script); then, after ``timeout``, SIGKILL to what is left of
        the tree it had: each descendant by PID, checked against its start time first."""
        tree = {pid: start_time(pid) for pid in api.process_tree([self.pid])} if self.alive() else {}
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.popen.poll()
            if not any(start_time(pid) == started for pid, started in tree.items() if started is not None):
                break
            time.sleep(0.1)
        for pid, started in tree.items():
            if started is not None and start_time(pid) == started:
                say(f"{self.name}: PID {pid} still there after {timeout:g} s: SIGKILL")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(10)


def spawn(name: str, argv: list[str], log: Path, env: dict[str, str] | None = None,
          cwd: Path | None = None) -> Started:
    with open(log, "ab") as out:
        popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                 env=env, cwd=cwd, start_new_session=True)
    say(f"started {name} (PID {popen.pid}; log {log})")
    return Started(name, popen, log)


def wait_until(what: str, test: Callable[[], bool], procs: list[Started], timeout: float = START_TIMEOUT) -> float:
    """Poll ``test`` until true; fail early when one of ``procs`` exits. Returns the seconds waited."""
    started = time.monotonic()
    while not test():
        for proc in procs:
            if not proc.alive():
                raise CompareError(f"{proc.name} exited with {proc.popen.returncode} while waiting for {what}; "
                                   f"last lines of {proc.log}:\n{tail(proc.log)}")
        if time.monotonic() - started > timeout:
            raise CompareError(f"{what}: not after {timeout:g} s; last lines of "
                               + "; ".join(f"{p.log}:\n{tail(p.log)}" for p in procs))
        time.sleep(0.2)
    return time.monotonic() - started


# --------------------------------------------------------------------------- RabbitMQ


RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")


def epmd_binary() -> str:
    found = shutil.which("epmd") or next(iter(sorted(Path("/usr/lib/erlang").glob("erts-*/bin/epmd"))), None)
    if not found:
        raise CompareError("epmd not found: run bench/neutron_setup.sh (it installs rabbitmq-server and Erlang)")
    return str(found)


@dataclass
class RabbitMQ:
    """A private RabbitMQ node and its own epmd, on loopback ports of their own."""

    base: Path
    epmd: Started | None = None
    server: Started | None = None
    amqp_port: int = 0
    password: str = field(default_factory=lambda: secrets.token_hex(12))
    version: str = "unknown"

    @property
    def url(self) -> str:
        return f"rabbit://neutron:{self.password}@127.0.0.1:{self.amqp_port}/neutron"

    def start(self, check_python: Path) -> None:
        if not RABBITMQ_SERVER.exists():
            raise CompareError(f"{RABBITMQ_SERVER} missing: run bench/neutron_setup.sh first")
        for sub in ("home", "mnesia", "log", "etc"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        epmd_port, self.amqp_port, dist_port = free_port(), free_port(), free_port()
        etc = self.base / "etc"
        (etc / "rabbitmq-env.conf").write_text("# empty: the machine's /etc/rabbitmq/rabbitmq-env.conf is not read\n")
        (etc / "enabled_plugins").write_text("[].\n")
        (etc / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.amqp_port}\n"
            "distribution.listener.interface = 127.0.0.1\n"
            f"distribution.listener.port_range.min = {dist_port}\n"
            f"distribution.listener.port_range.max = {dist_port}\n"
            "default_vhost = neutron\ndefault_user = neutron\n"
            f"default_pass = {self.password}\n"
            "default_permissions.configure = .*\ndefault_permissions.read = .*\ndefault_permissions.write = .*\n"
            "loopback_users = none\n"
            "log.console = false\nlog.file.level = warning\n"
            "disk_free_limit.absolute = 50MB\n")
        node = f"baryon-compare-{os.getpid()}@localhost"
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
            "HOME": str(self.base / "home"),  # the Erlang cookie goes there
            "ERL_EPMD_PORT": str(epmd_port), "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_CONF_ENV_FILE": str(etc / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(etc / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(etc / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(etc / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_LOGS": str(self.base / "log" / "rabbit.log"),
            "RABBITMQ_PID_FILE": str(self.base / "rabbit.pid"),
            "RABBITMQ_FEATURE_FLAGS_FILE": str(self.base / "feature_flags"),
            "RABBITMQ_NODENAME": node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(dist_port),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }
        # NOTE: epmd in the foreground, started first: the node registers with it instead of
        # starting a daemonised epmd of its own (whose PID this script would not have).
        self.epmd = spawn("epmd", [epmd_binary(), "-port", str(epmd_port), "-address", "127.0.0.1"],
                          self.base / "epmd.log", env=env)
        wait_until("epmd", lambda: port_open(epmd_port), [self.epmd], 30)
        self.server = spawn("rabbitmq-server", [str(RABBITMQ_SERVER)], self.base / "rabbitmq-server.log", env=env,
                            cwd=self.base)
        waited = wait_until("RabbitMQ's AMQP listener", lambda: port_open(self.amqp_port), [self.server, self.epmd])
        # The vhost and the user are there once a client can log in with them.
        probe = ("import kombu, sys\nwith kombu.Connection(sys.argv[1], connect_timeout=5) as c:\n"
                 "    c.connect()\n")
        deadline = time.monotonic() + 60
        while True:
            result = subprocess.run([str(check_python), "-c", probe, self.url.replace("rabbit://", "amqp://")],
                                    capture_output=True, text=True, timeout=60, check=False)
            if result.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise CompareError(f"RabbitMQ: cannot log in as neutron: {result.stderr.strip()[-800:]}")
            time.sleep(1)
        say(f"RabbitMQ node {node} ready in {waited:.1f} s: AMQP 127.0.0.1:{self.amqp_port}, "
            f"distribution 127.0.0.1:{dist_port}, epmd 127.0.0.1:{epmd_port}")
        version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "rabbitmq-server"], capture_output=True,
                                 text=True, check=False).stdout.strip()
        erlang = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "erlang-base"], capture_output=True,
                                text=True, check=False).stdout.strip()
        self.version = f"RabbitMQ {version or 'unknown'} (Erlang {erlang or 'unknown'})"

    def pids(self) -> list[int]:
        return [p.pid for p in (self.server, self.epmd) if p is not None and p.alive()]

    def stop(self) -> None:
        for proc in (self.server, self.epmd):
            if proc is not None:
                proc.stop()


# --------------------------------------------------------------------------- Neutron


def neutron_config(base: Path, venv: Path, connection: str, transport_url: str, workers: int,
                   rpc_workers: int) -> tuple[Path, Path]:
    """neutron.conf and ml2_conf.ini for the run."""
    state = base / "state"
    (state / "lock").mkdir(parents=True, exist_ok=True)
    quotas = "\n".join(f"{name} = -1" for name in QUOTAS + NEUTRON_ONLY_QUOTAS)
    conf = base / "neutron.conf"
    conf.write_text(f"""[DEFAULT]
debug = false
core_plugin = ml2
service_plugins = router
auth_strategy = noauth
api_workers = {workers}
rpc_workers = {rpc_workers}
rpc_state_report_workers = 1
api_paste_config = {venv / 'etc' / 'neutron' / 'api-paste.ini'}
state_path = {state}
host = baryon-compare
transport_url = {transport_url}
# no Nova in this deployment: nothing to notify
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false

[database]
connection = {connection}

[oslo_concurrency]
lock_path = {state / 'lock'}

[quotas]
{quotas}
""")
    ml2 = base / "ml2_conf.ini"
    ml2.write_text(ML2)
    return conf, ml2


@dataclass
class Neutron:
    base: Path
    venv: Path
    workers: int
    threads: int
    rpc_workers: int
    api: Started | None = None
    rpc: Started | None = None
    periodic: Started | None = None
    port: int = 0
    migrate_seconds: float = 0.0
    version: str = "unknown"
    uwsgi_version: str = "unknown"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def bin(self, name: str) -> str:
        path = self.venv / "bin" / name
        if not path.exists():
            raise CompareError(f"{path} missing: run bench/neutron_setup.sh (or give --neutron-venv)")
        return str(path)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "PYTHON", "VIRTUAL_ENV"))}
        env.update(PATH=f"{self.venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}", VIRTUAL_ENV=str(self.venv),
                   OS_NEUTRON_CONFIG_DIR=str(self.base), OS_NEUTRON_CONFIG_FILES="neutron.conf;ml2_conf.ini")
        return env

    def start(self, connection: str, transport_url: str) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        conf, ml2 = neutron_config(self.base, self.venv, connection, transport_url, self.workers,
                                   self.rpc_workers)
        config_args = ["--config-file", str(conf), "--config-file", str(ml2)]
        self.version = subprocess.run([self.bin("python"), "-c", "import importlib.metadata as m; "
                                       "print(m.version('neutron'))"], capture_output=True, text=True,
                                      check=False).stdout.strip() or "unknown"
        self.uwsgi_version = subprocess.run([self.bin("uwsgi"), "--version"], capture_output=True, text=True,
                                            check=False).stdout.strip() or "unknown"
        say(f"neutron-db-manage upgrade heads (neutron {self.version})")
        started = time.monotonic()
        log = self.base / "db-manage.log"
        with open(log, "wb") as out:
            result = subprocess.run([self.bin("neutron-db-manage"), *config_args, "upgrade", "heads"],
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    env=self.env(), timeout=900, check=False)
        if result.returncode != 0:
            raise CompareError(f"neutron-db-manage upgrade heads exited with {result.returncode}:\n{tail(log)}")
        self.migrate_seconds = time.monotonic() - started
        say(f"migrations done in {self.migrate_seconds:.0f} s")
        self.port = free_port()
        # NOTE: the settings of Neutron's WSGI guide (doc/source/admin/config-wsgi.rst) and
        # devstack's, serving HTTP itself (http-socket) on a loopback port instead of a unix
        # socket behind Apache; processes = the Baryon worker count.
        uwsgi_ini = self.base / "neutron-api-uwsgi.ini"
        uwsgi_ini.write_text(f"""[uwsgi]
http-socket = 127.0.0.1:{self.port}
home = {self.venv}
module = neutron.wsgi.api:application
master = true
processes = {self.workers}
threads = {self.threads}
lazy-apps = true
enable-threads = true
add-header = Connection: close
buffer-size = 65535
hook-master-start = unix_signal:15 gracefully_kill_them_all
thunder-lock = true
worker-reload-mercy = 90
exit-on-reload = false
die-on-term = true
need-app = true
disable-logging = true
""")
        self.api = spawn("neutron-api (uWSGI)", [self.bin("uwsgi"), "--ini", str(uwsgi_ini)],
                         self.base / "neutron-api.log", env=self.env(), cwd=self.base)
        self.rpc = spawn("neutron-rpc-server", [self.bin("neutron-rpc-server"), *config_args],
                         self.base / "neutron-rpc-server.log", env=self.env(), cwd=self.base)
        self.periodic = spawn("neutron-periodic-workers", [self.bin("neutron-periodic-workers"), *config_args],
                              self.base / "neutron-periodic-workers.log", env=self.env(), cwd=self.base)
        procs = [p for p in (self.api, self.rpc, self.periodic) if p is not None]
        waited = wait_until("Neutron's API", lambda: http_ok(self.endpoint + V2 + "/networks"), procs)
        say(f"Neutron API answering on {self.endpoint} after {waited:.1f} s")

    def pids(self) -> list[int]:
        return [p.pid for p in (self.api, self.rpc, self.periodic) if p is not None and p.alive()]

    def procs(self) -> list[Started]:
        return [p for p in (self.api, self.rpc, self.periodic) if p is not None]

    def check_alive(self) -> None:
        for proc in self.procs():
            if not proc.alive():
                raise CompareError(f"{proc.name} exited with {proc.popen.returncode}; last lines of {proc.log}:\n"
                                   f"{tail(proc.log)}")

    def log_errors(self) -> dict[str, dict[str, int]]:
        """Per process: ERROR lines by logger, and exceptions of the tracebacks (class names)."""
        found: dict[str, dict[str, int]] = {}
        for proc in self.procs():
            try:
                lines = proc.log.read_text(errors="replace").splitlines()
            except OSError:
                continue
            counts: Counter[str] = Counter()
            for line in lines:
                match = LOG_ERROR.search(line)
                if match:
                    counts[f"ERROR {match.group(1)}"] += 1
                match = EXCEPTION_LINE.match(line)
                if match:
                    counts[f"traceback {match.group(1).rsplit('.', 1)[-1]}"] += 1
            if counts:
                found[proc.name] = dict(counts.most_common())
        return found

    def stop(self) -> None:
        for proc in (self.api, self.rpc, self.periodic):
            if proc is not None:
                proc.stop()


def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=10).status_code == 200
    except httpx.HTTPError:
        return False


# --------------------------------------------------------------------------- measuring


@dataclass
class Side:
    """What the workload needs of one server: its name, endpoint and the PIDs of its processes."""

    name: str  # "Baryon", "Neutron"
    endpoint: str
    pids: Callable[[], list[int]]
    database_pids: Callable[[], list[int]] = list  # the database server both sides share


def memory(pids: list[int]) -> dict:
    """Summed VmRSS and PSS of the processes and all their descendants."""
    tree = api.process_tree(pids)
    return {"rss": sum(api.rss_bytes(p) for p in tree), "pss": sum((labkit.pss_kib(p) or 0) * 1024 for p in tree),
            "processes": len(tree)}


def settings(side: Side, clients: int, args: argparse.Namespace) -> api.Settings:
    return api.Settings(endpoint=side.endpoint, clients=clients, duration=args.duration, ports=args.ports,
                        samples=args.samples, list_samples=args.list_samples, warmup=args.warmup,
                        server_pids=side.pids(), headers={})


def warm_up(side: Side, requests: int = 20) -> None:
    """A few GETs, so that every worker has loaded its application (uWSGI's lazy-apps)."""
    with httpx.Client(base_url=side.endpoint, timeout=60) as client:
        for path in ("/", f"{V2}/networks", f"{V2}/ports?limit=1", f"{V2}/extensions") * (requests // 4):
            client.get(path)


def settle(side: Side, timeout: float = SETTLE_TIMEOUT) -> float:
    """Wait (at most ``timeout``) until the side's processes and the database server each use
    under ``IDLE_PCT`` of one CPU over a 2 s window: what a clean-up left them to do in the
    background (Neutron's notifiers, InnoDB's purge of the deleted rows) is then done. Returns the
    seconds waited."""
    return api.wait_idle(lambda: [side.pids(), side.database_pids()], IDLE_PCT, timeout)


def throughput_only(side: Side, clients: int, args: argparse.Namespace) -> dict:
    """bench/api.py's throughput phase alone (its own network, cleaned up after)."""
    bench = api.Bench(settings(side, clients, args))
    results = api.Results(side.endpoint, time.strftime("%Y-%m-%dT%H:%M:%S"), {"clients": clients})
    try:
        bench.phase_throughput(results)
    except (api.BenchError, httpx.HTTPError) as exc:
        results.error = f"{type(exc).__name__}: {exc}"
        say(f"{side.name}, {clients} clients: {results.error}")
    finally:
        results.cleanup = bench.cleanup()
        bench.client.close()
    return {"throughput": results.throughput, "peak_rss": results.rss.get("peak_during_load"),
            "cleanup": results.cleanup, "error": results.error}


def one_round(side: Side, args: argparse.Namespace) -> dict:
    """bench/api.py's workload (throughput at the first client count), then the throughput
    phase alone at each further count."""
    say(f"{side.name}: bench/api.py's workload ({args.client_counts[0]} clients in its throughput phase)")
    started = time.monotonic()
    results = api.Bench(settings(side, args.client_counts[0], args)).run()
    print(api.table(results), file=sys.stderr, flush=True)
    record = {"workload": asdict(results),
              "throughput": {args.client_counts[0]: {"throughput": results.throughput,
                                                     "peak_rss": results.rss.get("peak_during_load"),
                                                     "error": results.error}}}
    for clients in args.client_counts[1:]:
        waited = settle(side)
        say(f"{side.name}: throughput phase with {clients} clients, {args.duration:g} s (after {waited:g} s "
            "for the server to settle)")
        record["throughput"][clients] = throughput_only(side, clients, args)
        t = record["throughput"][clients]["throughput"]
        if t:
            say(f"{side.name}: {clients} clients: {t['ports_per_s']} ports/s, {t['errors']} errors "
                f"{t['error_kinds'] or ''}")
    record["seconds"] = round(time.monotonic() - started, 1)
    return record


def cpu_snapshot(pids: list[int]) -> tuple[float, float, float]:
    """(machine busy, machine total, this run's) CPU seconds: this run's is its servers' (with
    their children), the databases' and RabbitMQ's, and this process's (the load generator)."""
    busy, total = api.machine_cpu_seconds()
    own = resource.getrusage(resource.RUSAGE_SELF)
    return busy, total, api.tree_cpu_seconds(pids) + own.ru_utime + own.ru_stime


def machine_share(before: tuple[float, float, float], after: tuple[float, float, float]) -> dict:
    """How busy the machine was over a window, and how much of that was other processes' (the
    machine is shared: those figures compare only when others took little)."""
    total = max(after[1] - before[1], 1e-9)
    busy, ours = after[0] - before[0], after[2] - before[2]
    return {"busy_pct": round(100 * busy / total, 1), "ours_pct": round(100 * ours / total, 1),
            "others_pct": round(max(0.0, 100 * (busy - ours) / total), 1)}


def fill_cidr(index: int) -> str:
    """The /20 (4,094 addresses) of the fill's network ``index``: 10.200.0.0/20, 10.200.16.0/20..."""
    return f"10.{200 + index // 16}.{(index % 16) * 16}.0/20"


def fill(side: Side, ports: int, per_network: int, clients: int) -> dict:
    """``ports`` ports on new networks of ``per_network`` ports each (a /20 subnet each), by bulk
    POSTs; then one list of all the ports. Timed, with the RSS of the side's processes after the
    list and the peak during both.

    NOTE: several networks, not one: Neutron's IPAM (neutrondb_ipam ``_generate_ips``) reads every
    allocation of the subnet into a netaddr IPSet for each address it allocates, so the fill of
    one subnet costs O(n^2): 10,000 ports on one /16 took Neutron over an hour here (5,000 after
    40 minutes, 1.7 ports/s and falling). The RSS with 10,000 ports present does not depend on how
    they are spread."""
    sampler = api.RssSampler(side.pids())
    sampler.start()
    count = -(-ports // per_network)
    out: dict = {"ports": ports, "networks": count}
    try:
        tag = secrets.token_hex(4)
        networks = []
        with httpx.Client(base_url=side.endpoint, timeout=LONG_TIMEOUT) as client:
            for index in range(count):
                body = {"network": {"name": f"compare-fill-{tag}-{index}"}}
                networks.append(api.expect(client.post(f"{V2}/networks", json=body), 201,
                                           "create network")["network"]["id"])
                body = {"subnet": {"network_id": networks[-1], "ip_version": 4, "cidr": fill_cidr(index),
                                   "name": f"compare-fill-{tag}-{index}"}}
                api.expect(client.post(f"{V2}/subnets", json=body), 201, "create subnet")
        batches = []  # (network, ports in the POST)
        for index, network in enumerate(networks):
            on_network = min(per_network, ports - index * per_network)
            batches += [(network, min(BULK, on_network - start)) for start in range(0, on_network, BULK)]
        pool_clients: list[httpx.Client] = []
        local = threading.local()
        retries: list[int] = []  # the batches sent again (list.append is atomic)

        def post(index: int) -> None:
            client = getattr(local, "client", None)
            if client is None:
                client = local.client = httpx.Client(base_url=side.endpoint, timeout=LONG_TIMEOUT)
                pool_clients.append(client)
            network, size = batches[index]
            items = [{"network_id": network, "name": f"compare-fill-{index}-{i}"} for i in range(size)]
            response = client.post(f"{V2}/ports", json={"ports": items})
            for _ in range(FILL_RETRIES):
                # NOTE: Neutron picks each MAC at random and refuses a whole bulk POST with a 409
                # (NeutronDbObjectDuplicateEntry on (network_id, mac_address)) when two collide;
                # a bulk POST is all or nothing, so it is sent again, as a client would.
                if response.status_code != 409 or "DuplicateEntry" not in response.text:
                    break
                retries.append(index)
                response = client.post(f"{V2}/ports", json={"ports": items})
            created = api.expect(response, 201, "bulk create ports")["ports"]
            if len(created) != len(items):
                raise CompareError(f"bulk create ports: {len(created)} created of {len(items)}")

        say(f"{side.name}: filling {ports} ports on {count} networks ({len(batches)} bulk POSTs, {clients} clients)")
        started = time.perf_counter()
        executor = ThreadPoolExecutor(max_workers=clients)
        try:
            for future in [executor.submit(post, i) for i in range(len(batches))]:
                future.result()
        finally:
            # NOTE: on an error or Ctrl-C, the POSTs not yet sent are dropped (only those in
            # flight are waited for).
            executor.shutdown(wait=True, cancel_futures=True)
            for client in pool_clients:
                client.close()
        out["fill_seconds"] = round(time.perf_counter() - started, 2)
        out["fill_retries"] = len(retries)  # bulk POSTs refused for a duplicate MAC and sent again
        out["memory_after_fill"] = memory(side.pids())
        with httpx.Client(base_url=side.endpoint, timeout=LONG_TIMEOUT) as client:
            started = time.perf_counter()
            response = client.get(f"{V2}/ports")  # every port there is: the fill's (the rounds cleaned up)
            out["list_seconds"] = round(time.perf_counter() - started, 2)
            out["listed"] = len(api.expect(response, 200, "list ports")["ports"])
        if out["listed"] < ports:
            raise CompareError(f"{side.name}: list ports returned {out['listed']} ports, expected at least {ports}")
        out["memory"] = memory(side.pids())
        say(f"{side.name}: {ports} ports in {out['fill_seconds']} s ({len(retries)} bulk POSTs sent again); "
            f"listed {out['listed']} in "
            f"{out['list_seconds']} s; RSS {api.mib(out['memory']['rss'])}")
    finally:
        out["peak_rss"] = sampler.stop()
    return out


# --------------------------------------------------------------------------- the run


@dataclass
class Stack:
    base: Path
    database: MariaDBServer
    rabbitmq: RabbitMQ
    neutron: Neutron
    baryon: BaryonServer
    baryon_url: str
    neutron_url: str


@contextlib.contextmanager
def started(args: argparse.Namespace) -> Iterator[Stack]:
    """The private MariaDB, RabbitMQ, Neutron and Baryon; all stopped, by PID, on the way out."""
    base = Path(tempfile.mkdtemp(prefix="baryon-bench-compare-"))
    database = MariaDBServer(base / "mariadb")
    rabbitmq = RabbitMQ(base / "rabbitmq")
    neutron = Neutron(base / "neutron", args.neutron_venv, args.workers, args.neutron_threads,
                      args.neutron_rpc_workers)
    baryon: BaryonServer | None = None
    try:
        say(f"starting a private MariaDB in {base}")
        database.start()
        baryon_url = database.create_database(run_api.DATABASE)
        neutron_url = database.create_database("neutron")
        say("starting a private RabbitMQ")
        rabbitmq.start(args.neutron_venv / "bin" / "python")
        say(f"starting Neutron ({args.workers} uWSGI processes x {args.neutron_threads} threads, "
            "neutron-rpc-server, neutron-periodic-workers)")
        neutron.start(neutron_url, rabbitmq.url)
        quotas = "\n".join(f"{name} = -1" for name in QUOTAS)
        baryon = BaryonServer(base / "baryon", baryon_url, workers=args.workers, extra="debug = false",
                              sections=f"[quotas]\n{quotas}\n\n{ML2}")
        say(f"starting baryon server ({args.workers} workers)")
        baryon.start()
        yield Stack(base, database, rabbitmq, neutron, baryon, baryon_url, neutron_url)
    finally:
        # NOTE: Ctrl-C and SIGTERM are ignored while everything is stopped, so that a second
        # one cannot leave a process behind.
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            say("stopping everything this run started")
            for stop in (neutron.stop, baryon.stop if baryon else None, rabbitmq.stop, database.stop):
                if stop is None:
                    continue
                try:
                    stop()
                except Exception as exc:  # noqa: BLE001 - stop the others all the same
                    say(f"while stopping: {exc!r}")
            if args.keep:
                say(f"kept {base}")
            else:
                shutil.rmtree(base, ignore_errors=True)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def run(args: argparse.Namespace) -> dict:
    record: dict = {"machine": labkit.machine(), "args": {k: (str(v) if isinstance(v, Path) else v)
                                                          for k, v in vars(args).items()}}
    run_started = time.monotonic()
    with started(args) as stack:
        record["startup_seconds"] = round(time.monotonic() - run_started, 1)
        record["neutron_migrate_seconds"] = round(stack.neutron.migrate_seconds, 1)
        database = lambda: [stack.database.pid] if stack.database.pid else []  # noqa: E731
        baryon = Side("Baryon", stack.baryon.endpoint, lambda: [stack.baryon.process.pid], database)
        neutron = Side("Neutron", stack.neutron.endpoint, stack.neutron.pids, database)
        sides = (baryon, neutron)
        record["versions"] = {
            "neutron": stack.neutron.version, "uwsgi": stack.neutron.uwsgi_version,
            "rabbitmq": stack.rabbitmq.version, "mariadb": run_api.database_version("mariadb", stack.baryon_url),
            "python_baryon": platform.python_version(),
            "python_neutron": subprocess.run([str(args.neutron_venv / "bin" / "python"), "-c",
                                              "import platform; print(platform.python_version())"],
                                             capture_output=True, text=True, check=False).stdout.strip(),
            "baryon": labkit.revision()}
        for side in sides:
            warm_up(side)
        say(f"at rest: {SETTLE:g} s of quiet, then the RSS of each side")
        time.sleep(SETTLE)
        record["at_rest"] = {side.name: memory(side.pids()) for side in sides}
        record["at_rest"]["RabbitMQ"] = memory(stack.rabbitmq.pids())
        record["at_rest"]["MariaDB"] = memory([stack.database.pid]) if stack.database.pid else None
        for name, mem in record["at_rest"].items():
            if mem:
                say(f"at rest: {name} {api.mib(mem['rss'])} RSS ({mem['processes']} processes), "
                    f"PSS {api.mib(mem['pss'])}")
        record["rounds"] = {side.name: [] for side in sides}

        def ours() -> list[int]:
            return [stack.baryon.process.pid, *stack.neutron.pids(), *stack.rabbitmq.pids(),
                    *([stack.database.pid] if stack.database.pid else [])]

        for number in range(1, args.rounds + 1):
            for side in sides:
                say(f"round {number} of {args.rounds}: {side.name}")
                stack.neutron.check_alive()
                if args.wait_quiet:
                    run_api.wait_quiet(args.wait_quiet)
                settle(side)
                before = cpu_snapshot(ours())
                record["rounds"][side.name].append(one_round(side, args))
                record["rounds"][side.name][-1]["machine_cpu"] = machine_share(before, cpu_snapshot(ours()))
        record["after_rounds"] = {side.name: memory(side.pids()) for side in sides}
        record["fill"] = {}
        for side in sides:
            stack.neutron.check_alive()
            if args.wait_quiet:
                run_api.wait_quiet(args.wait_quiet)
            record["fill"][side.name] = fill(side, args.fill_ports, args.fill_per_network, args.workers)
        record["end"] = {"RabbitMQ": memory(stack.rabbitmq.pids()),
                         "MariaDB": memory([stack.database.pid]) if stack.database.pid else None}
        record["neutron_log_errors"] = stack.neutron.log_errors()
        record["baryon_log_errors"] = run_api.server_log_errors(stack.baryon)
        stack.neutron.check_alive()
    record["run_seconds"] = round(time.monotonic() - run_started, 1)
    return record


# --------------------------------------------------------------------------- the report


def median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def latency_p50(record: dict, side: str, name: str) -> float | None:
    return median([(r["workload"]["latency"].get(name) or {}).get("p50_ms") for r in record["rounds"][side]])


def rate(record: dict, side: str, clients: int) -> tuple[float | None, int]:
    """(median ports/s over the rounds, errors added up)."""
    runs = [r["throughput"].get(clients) or {} for r in record["rounds"][side]]
    rates = [(run.get("throughput") or {}).get("ports_per_s") for run in runs]
    errors = sum((run.get("throughput") or {}).get("errors", 0) for run in runs)
    errors += sum(1 for run in runs if run.get("error"))
    return median(rates), errors


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} ms"


def gib_or_mib(value: int | None) -> str:
    if not value:
        return "-"
    return f"{value / 2**30:.2f} GiB" if value >= 2**30 else f"{value / 2**20:,.0f} MiB"


def times(b: float | None, n: float | None) -> str:
    """Baryon's figure as a multiple of Neutron's (throughput: higher is better)."""
    if not b or not n:
        return "-"
    return f"{b / n:,.1f}x"


def fraction(b: float | None, n: float | None) -> str:
    """Baryon's figure as a fraction of Neutron's (latency, memory: lower is better)."""
    if not b or not n:
        return "-"
    return f"1/{n / b:,.1f}"


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else labkit.verdict(ok)


def rows(record: dict, args: argparse.Namespace) -> list[tuple[str, str, str, str, str]]:
    out = []
    for clients in args.client_counts:
        (b, b_err), (n, n_err) = rate(record, "Baryon", clients), rate(record, "Neutron", clients)
        ok = None if b is None or not n else (b >= TARGET_RATE_RATIO * n and b_err == 0)
        out.append((f"port creates/s, {clients} clients, {args.duration:g} s (errors)",
                    f"{b or 0:,.1f} ({b_err})", f"{n or 0:,.1f} ({n_err})", times(b, n),
                    f">= {TARGET_RATE_RATIO:g}x, 0 errors: {verdict(ok)}"))
    list_label = f"list {args.ports:,} ports"
    for name, label in (("create port", "create port"), ("show port", "show port"), ("list ports", list_label)):
        b, n = latency_p50(record, "Baryon", name), latency_p50(record, "Neutron", name)
        ok = None if b is None or n is None else b * TARGET_LATENCY_FRACTION <= n
        out.append((f"{label} p50", ms(b), ms(n), fraction(b, n), f"<= 1/{TARGET_LATENCY_FRACTION:g}: {verdict(ok)}"))
    rest_b, rest_n = (record["at_rest"][s]["rss"] for s in ("Baryon", "Neutron"))
    out.append(("server RSS at rest (all processes)", gib_or_mib(rest_b), gib_or_mib(rest_n), fraction(rest_b, rest_n),
                f"<= 1/{TARGET_RSS_FRACTION:g}: {verdict(rest_b * TARGET_RSS_FRACTION <= rest_n)}"))
    fill_b, fill_n = (record["fill"][s]["memory"]["rss"] for s in ("Baryon", "Neutron"))
    out.append((f"server RSS with {args.fill_ports:,} ports (all processes)", gib_or_mib(fill_b), gib_or_mib(fill_n),
                fraction(fill_b, fill_n),
                f"<= 1/{TARGET_RSS_FRACTION:g}: {verdict(fill_b * TARGET_RSS_FRACTION <= fill_n)}"))
    # Figures without a target, for context.
    for name in ("create network", "create subnet", *api.L3_LATENCIES):
        b, n = latency_p50(record, "Baryon", name), latency_p50(record, "Neutron", name)
        if b is not None or n is not None:
            out.append((f"{name} p50", ms(b), ms(n), fraction(b, n), ""))
    for clients in args.client_counts:
        b = median([((r["throughput"].get(clients) or {}).get("throughput") or {}).get("latency", {}).get("p50_ms")
                    for r in record["rounds"]["Baryon"]])
        n = median([((r["throughput"].get(clients) or {}).get("throughput") or {}).get("latency", {}).get("p50_ms")
                    for r in record["rounds"]["Neutron"]])
        out.append((f"create port under load p50, {clients} clients", ms(b), ms(n), fraction(b, n), ""))
    pss_b, pss_n = (record["at_rest"][s]["pss"] for s in ("Baryon", "Neutron"))
    out.append(("server PSS at rest (shared pages counted once)", gib_or_mib(pss_b), gib_or_mib(pss_n),
                fraction(pss_b, pss_n), ""))
    procs_b, procs_n = (record["at_rest"][s]["processes"] for s in ("Baryon", "Neutron"))
    out.append(("server processes", str(procs_b), str(procs_n), "", ""))
    idle_b, idle_n = (record["after_rounds"][s]["rss"] for s in ("Baryon", "Neutron"))
    out.append(("server RSS after the rounds (idle)", gib_or_mib(idle_b), gib_or_mib(idle_n),
                fraction(idle_b, idle_n), ""))
    peak_b, peak_n = (record["fill"][s]["peak_rss"] for s in ("Baryon", "Neutron"))
    out.append(("server RSS peak during the fill and the list", gib_or_mib(peak_b), gib_or_mib(peak_n),
                fraction(peak_b, peak_n), ""))
    fb, fn = (record["fill"][s]["fill_seconds"] for s in ("Baryon", "Neutron"))
    networks = record["fill"]["Baryon"].get("networks", 1)
    out.append((f"fill: {args.fill_ports:,} ports on {networks} network(s), bulk POSTs of {BULK}, "
                f"{args.workers} clients",
                f"{fb:,.1f} s", f"{fn:,.1f} s", fraction(fb, fn), ""))
    lb, ln = (record["fill"][s]["list_seconds"] for s in ("Baryon", "Neutron"))
    out.append((f"list all {args.fill_ports:,} ports (one request)", f"{lb:,.2f} s", f"{ln:,.2f} s",
                fraction(lb, ln), ""))
    return out


NOTES = [
    "- notes: Neutron 29 ships no neutron-server (its console scripts: neutron-rpc-server, "
    "neutron-periodic-workers, the agents...): the API is `neutron.wsgi.api:application` under uWSGI, which reads "
    "its config files from OS_NEUTRON_CONFIG_DIR / OS_NEUTRON_CONFIG_FILES. Without DHCP agents, Neutron logs "
    "a warning (\"No more DHCP agents\") at each port create; without Nova and Placement, the segments plugin's "
    "Nova notifier (loaded by ML2 to delete a network's segments) fails in a background thread at each network "
    "deletion (MissingAuthPlugin tracebacks), which no API call sees; `oslo_cache.memcache_pool` cannot load "
    "(no memcache module), which nothing here uses. The fill spreads its ports over networks of "
    "--fill-per-network ports: Neutron's IPAM reads every allocation of a subnet for each address it hands out, "
    "so filling one subnet costs O(n^2) (10,000 ports on one /16 took Neutron over an hour here).",
]


def report(record: dict, args: argparse.Namespace) -> tuple[list[str], str, str]:
    """(the Markdown lines of the section's body, the report printed on stdout, each round's
    figures for the section's code block)."""
    table = labkit.table(("figure", "Baryon", "Neutron", "ratio (Baryon : Neutron)", "target met?"), rows(record, args))
    v, m = record["versions"], record["machine"]
    infra = []
    for name in ("RabbitMQ", "MariaDB"):
        rest, end = record["at_rest"].get(name), record["end"].get(name)
        if rest:
            infra.append(f"{name} {api.mib(rest['rss'])} at rest, {api.mib(end['rss']) if end else '-'} at the end")
    per_round = []
    for side in ("Baryon", "Neutron"):
        for number, r in enumerate(record["rounds"][side], 1):
            lat = r["workload"]["latency"]
            rates = ", ".join(
                f"{c} clients {((r['throughput'].get(c) or {}).get('throughput') or {}).get('ports_per_s', '-')}/s"
                for c in args.client_counts)
            cpu = r.get("machine_cpu") or {}
            per_round.append(f"  {side} round {number} ({r['seconds']:g} s; machine {cpu.get('busy_pct', '-')}% busy, "
                             f"other processes {cpu.get('others_pct', '-')}%): create port p50 "
                             f"{(lat.get('create port') or {}).get('p50_ms', '-')} ms, show port p50 "
                             f"{(lat.get('show port') or {}).get('p50_ms', '-')} ms, list p50 "
                             f"{(lat.get('list ports') or {}).get('p50_ms', '-')} ms; {rates}"
                             + (f"; FAILED: {r['workload']['error']}" if r["workload"].get("error") else ""))
    body = [
        f"- versions: Neutron {v['neutron']} (PyPI) under uWSGI {v['uwsgi']}, Python {v['python_neutron']}; "
        f"{v['rabbitmq']}; {v['mariadb']}; Baryon on Python {v['python_baryon']}",
        f"- set-up: one private MariaDB for both (separate databases), {args.workers} API workers each (Neutron: "
        f"uWSGI processes x {args.neutron_threads} thread(s), plus neutron-rpc-server with {args.neutron_rpc_workers} "
        "RPC worker(s) and its state-report worker, and neutron-periodic-workers), ML2 flat/vlan/vxlan with "
        "openvswitch and l2population and port_security, "
        "the router service plugin, noauth, every quota unlimited, debug off on both sides; a private RabbitMQ for "
        "Neutron; no agents",
        f"- figures: medians over {args.rounds} round(s), alternating Baryon, Neutron; throughput errors added up over "
        "the rounds; RSS: VmRSS summed over every process of a side (PSS beside it counts pages shared between "
        "forked workers once)",
        f"- infrastructure, apart: {'; '.join(infra)}",
        f"- server logs: Baryon {record['baryon_log_errors']} error lines; Neutron: "
        + ("; ".join(f"{name}: " + ", ".join(f"{what} x{count}" for what, count in counts.items())
                     for name, counts in record["neutron_log_errors"].items()) or "no error lines"),
        *NOTES,
        f"- durations: start-up {record['startup_seconds']:g} s (Neutron's migrations "
        f"{record['neutron_migrate_seconds']:g} s), "
        f"whole run {record['run_seconds']:g} s",
        "", *table]
    text = "\n".join([
        f"Baryon vs Neutron {v['neutron']}, {m['date']}", "", *table, "", "per round:", *per_round, "",
        *[line[2:] for line in body if line.startswith("- ")]])
    return body, text, "\n".join(["per round:", *per_round])


# --------------------------------------------------------------------------- command line


RECORDED_OPTIONS = ("workers", "rounds", "duration", "clients", "fill_ports", "fill_per_network", "ports", "samples",
                    "list_samples", "warmup", "neutron_threads", "neutron_rpc_workers", "quick", "client_counts")


def load_record(path: Path, args: argparse.Namespace) -> dict:
    """A record written by ``--json``, with the options of its run put back in ``args``."""
    record = json.loads(path.read_text())
    for name in RECORDED_OPTIONS:
        if name in record["args"]:
            setattr(args, name, record["args"][name])
    for runs in record["rounds"].values():
        for r in runs:
            r["throughput"] = {int(k): v for k, v in r["throughput"].items()}
    return record


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=2, help="API workers of each side (uWSGI processes for Neutron)")
    p.add_argument("--rounds", type=int, default=2, help="workload rounds on each side, alternating")
    p.add_argument("--duration", type=float, default=30.0, help="seconds of each throughput phase")
    p.add_argument("--clients", default="8,32", help="client counts of the throughput phases, comma-separated")
    p.add_argument("--fill-ports", type=int, help="ports present for the second RSS figure (default 10000; "
                                                      "500 with --quick)")
    p.add_argument("--fill-per-network", type=int, default=1000,
                   help="ports on each network of the fill (at most 4000: a /20 each)")
    p.add_argument("--ports", type=int, default=1000, help="bench/api.py --ports: ports on the listed network")
    p.add_argument("--samples", type=int, default=200, help="bench/api.py --samples")
    p.add_argument("--list-samples", type=int, default=20, help="bench/api.py --list-samples")
    p.add_argument("--warmup", type=int, default=10, help="bench/api.py --warmup")
    p.add_argument("--neutron-venv", type=Path, default=DEFAULT_VENV, help="made by bench/neutron_setup.sh")
    p.add_argument("--neutron-threads", type=int, default=1,
                   help="threads per uWSGI process (1: Neutron's WSGI guide, which sets none)")
    p.add_argument("--neutron-rpc-workers", type=int, default=1,
                   help="rpc_workers of neutron-rpc-server (1: Neutron's default on 2 CPUs)")
    p.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                   help="before each round and each fill, wait up to this long for the machine to be under 15%% "
                        "busy (a shared machine)")
    p.add_argument("--quick", action="store_true", help="small numbers, for a smoke run")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (configs, logs)")
    p.add_argument("--write", action="store_true", help=f"replace the section {HEADING!r} of --results")
    p.add_argument("--results", type=Path, default=ROOT / "bench" / "RESULTS.md")
    p.add_argument("--json", type=Path, metavar="OUT", help="also write the whole record as JSON")
    p.add_argument("--from-json", type=Path, metavar="IN",
                   help="run nothing: report (and --write) the record a run wrote with --json")
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.duration = 1, 5.0
        args.fill_ports = args.fill_ports or 500
        args.ports, args.samples, args.list_samples, args.warmup = 200, 20, 5, 2
    try:
        args.client_counts = [int(c) for c in args.clients.split(",") if c.strip()]
    except ValueError:
        p.error("--clients is a comma-separated list of numbers, e.g. 8,32")
    args.fill_ports = args.fill_ports or 10_000
    if not 1 <= args.fill_per_network <= 4000:
        p.error("--fill-per-network must be 1..4000 (each fill network has a /20)")
    if not args.client_counts or min(args.client_counts) < 1 or args.workers < 1 or args.rounds < 1 \
            or args.duration <= 0 or args.fill_ports < 1 or args.neutron_threads < 1 or args.neutron_rpc_workers < 1:
        p.error("--clients, --workers, --rounds, --duration, --fill-ports, --neutron-threads and "
                "--neutron-rpc-workers must be positive")
    if args.from_json:
        pass
    elif os.geteuid() != 0:
        p.error("run as root (MariaDB and RabbitMQ run privately as root here)")
    args.neutron_venv = args.neutron_venv.absolute()
    if not args.from_json and not (args.neutron_venv / "bin" / "neutron-db-manage").exists():
        p.error(f"no Neutron in {args.neutron_venv}: run bench/neutron_setup.sh first")
    # NOTE: SIGTERM (and SIGINT, ignored in a background job otherwise) end the run through every
    # ``finally``, so that everything started is stopped.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.default_int_handler)
    if args.from_json:
        record = load_record(args.from_json, args)
    else:
        try:
            record = run(args)
        except KeyboardInterrupt:
            say("interrupted: everything started was stopped")
            return 130
        except CompareError as exc:
            say(f"FAILED: {exc}")
            return 1
        if args.json:
            args.json.write_text(json.dumps(record, indent=1, default=str) + "\n")
            say(f"record written to {args.json} (re-render it with --from-json)")
    try:
        body, text, details = report(record, args)
    except Exception:
        if not args.json:
            print(json.dumps(record, default=str))  # the figures are not lost
        raise
    print(text)
    if args.write:
        defaults = p.parse_args([])
        defaults.fill_ports = 10_000
        varied = ("workers", "neutron_threads", "neutron_rpc_workers") if args.quick else \
            ("workers", "rounds", "duration", "fill_ports", "fill_per_network", "neutron_threads",
             "neutron_rpc_workers")
        command = labkit.command_line("bench/compare_neutron.py", args, defaults, varied)
        if args.clients != defaults.clients:
            command = command.replace(" --write", f" --clients {args.clients} --write")
        if args.quick:
            command = command.replace(" --write", " --quick --write")
        targets = ("Issue's targets, as ratios measured in one run on the same machine: port creates/s with 8 and 32 "
                   "clients Baryon >= 10x Neutron with zero errors; p50 of create port, show port and list 1,000 ports "
                   "Baryon <= 1/5 of Neutron's; server RSS (all processes) at rest and with 10,000 ports Baryon <= 1/5 "
                   "of Neutron's.")
        labkit.write_section(args.results, HEADING, labkit.section(
            HEADING, "bench/compare_neutron.py", targets, record["machine"], command, body, details))
        say(f"wrote {HEADING!r} in {args.results}")
    failed = any(r["workload"].get("error") for runs in record["rounds"].values() for r in runs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
