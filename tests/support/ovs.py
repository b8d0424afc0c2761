"""A throwaway Open vSwitch for functional tests: one network namespace, its own daemons and files.

``OvsNode`` creates a network namespace named ``bto-<hex>`` (so a run that crashed is recognisable
in ``ip netns ls``), then starts ovsdb-server and ovs-vswitchd inside it with their database,
sockets, pidfiles and logs under one directory, as ``baryon.lab.ovs`` does for a lab node:
ovsdb-server listens on ``punix:<dir>/run/db.sock`` and on ``ptcp:6640:127.0.0.1`` inside the
namespace (Neutron's default ``ovsdb_connection``; unreachable from the root namespace). OVS's
default paths (/var/run/openvswitch) are never used: every call names the node's sockets.

Daemons are stopped by the PID in their own pidfiles, and only if that process's command line
names the node's directory; the namespace is deleted last. Nothing touches the root namespace.

pytest fixture (registered in tests/conftest.py ``pytest_plugins``):

- ``ovs_node``: a started ``OvsNode`` for one test, under ``tmp_path``; stopped and its
  namespace deleted in the finalizer whatever the test did. Skipped when not root.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from baryon.agent.drivers.netns import Namespaces
from baryon.agent.drivers.ovsdb import Ovsdb
from baryon.lab import host

__all__ = ["NETNS_PREFIX", "OvsNode", "ovs_node"]

NETNS_PREFIX = "bto-"
SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")


class OvsNode:
    """One namespace with its own ovsdb-server and ovs-vswitchd, all files under ``base``."""

    def __init__(self, base: Path, netns: str | None = None) -> None:
        self.base = base
        self.netns = netns or NETNS_PREFIX + secrets.token_hex(4)
        self.rundir = base / "run"
        self.dbdir = base / "db"
        self.logdir = base / "log"
        self.db_file = self.dbdir / "conf.db"
        self.db_sock = self.rundir / "db.sock"
        self.connection = f"unix:{self.db_sock}"
        self.tcp = "tcp:127.0.0.1:6640"  # only inside self.netns
        self.env = {"OVS_RUNDIR": str(self.rundir), "OVS_DBDIR": str(self.dbdir),
                    "OVS_LOGDIR": str(self.logdir), "OVS_SYSCONFDIR": str(base / "etc")}

    # ------------------------------------------------------------ commands

    def run(self, argv: Sequence[str], *, check: bool = True, input: str | None = None,
            timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the namespace with the node's OVS environment; raise on failure."""
        env = [f"{k}={v}" for k, v in self.env.items()]
        return host.run(["ip", "netns", "exec", self.netns, "env", *env, *argv], check=check, input=input,
                        timeout=timeout)

    def vsctl(self, *args: str, timeout: int = 10) -> str:
        """``ovs-vsctl`` against this node's database (waits for ovs-vswitchd unless ``--no-wait``)."""
        return self.run(["ovs-vsctl", f"--db={self.connection}", f"--timeout={timeout}", *args],
                        timeout=timeout + 5).stdout

    def link_names(self) -> set[str]:
        """The names of the node's links, read over netlink (as the agents read them)."""
        return {link.name for link in Namespaces(self.netns).links([None])[None]}

    def bridge_ports(self, bridge: str = "br-int") -> dict[str, dict[str, str]]:
        """Each port of ``bridge`` -> its Interface's external_ids (one OVSDB read, as the agents')."""
        with Ovsdb(self.connection) as db:
            return {p.name: dict(p.external_ids) for p in db.observe([bridge]).ports}

    # ------------------------------------------------------------ daemons

    def pidfile(self, daemon: str) -> Path:
        return self.rundir / f"{daemon}.pid"

    def pid(self, daemon: str) -> int | None:
        """The daemon's PID if it runs and is this node's (its command line names ``base``)."""
        return host.running(self.pidfile(daemon), str(self.base))

    def start(self) -> OvsNode:
        for sub in (self.rundir, self.dbdir, self.logdir, self.base / "etc"):
            sub.mkdir(parents=True, exist_ok=True)
        host.ensure_netns(self.netns)
        if not self.db_file.exists():
            host.run(["ovsdb-tool", "create", str(self.db_file), str(SCHEMA)])
        self.start_ovsdb()
        self.vsctl("--no-wait", "init")
        self.start_vswitchd()
        return self

    def start_ovsdb(self) -> None:
        """ovsdb-server on the node's database file; ``--detach`` returns once it listens."""
        self.run(["ovsdb-server", str(self.db_file), f"--remote=punix:{self.db_sock}",
                  "--remote=ptcp:6640:127.0.0.1", f"--pidfile={self.pidfile('ovsdb-server')}",
                  f"--unixctl={self.rundir / 'ovsdb-server.ctl'}", "--detach", "--no-chdir",
                  f"--log-file={self.logdir / 'ovsdb-server.log'}", "-vconsole:off"])

    def start_vswitchd(self) -> None:
        self.run(["ovs-vswitchd", self.connection, f"--pidfile={self.pidfile('ovs-vswitchd')}",
                  f"--unixctl={self.rundir / 'ovs-vswitchd.ctl'}", "--detach", "--no-chdir",
                  f"--log-file={self.logdir / 'ovs-vswitchd.log'}", "-vconsole:off"])

    def stop_daemon(self, daemon: str) -> None:
        """SIGTERM (then SIGKILL) the PID in the daemon's pidfile, only if it is this node's."""
        pid = host.read_pid(self.pidfile(daemon))
        if pid is not None:
            host.stop_pid(pid, str(self.base))

    def stop(self) -> None:
        """Stop both daemons and delete the namespace; safe to call at any stage, and twice."""
        try:
            self.stop_daemon("ovs-vswitchd")
            self.stop_daemon("ovsdb-server")
        finally:
            host.remove_netns(self.netns)


@pytest.fixture
def ovs_node(tmp_path: Path) -> Iterator[OvsNode]:
    if os.geteuid() != 0:
        pytest.skip("ovs_node creates a network namespace and runs Open vSwitch: it needs root")
    node = OvsNode(tmp_path / "ovs")
    try:
        node.start()
        yield node
    finally:
        node.stop()
