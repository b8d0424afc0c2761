"""One Open vSwitch per node: its ovsdb-server and ovs-vswitchd, with the node's own files.

Each node's daemons run inside the node's network and mount namespaces, with their database,
sockets, pidfiles and logs under ``nodes/<node>/`` in the lab's state directory, never at OVS's
default paths. ovsdb-server also listens on ``tcp:127.0.0.1:6640`` (the seed's
``ovsdb_connection``): loopback is private to the node's namespace, so every node has its own.
Every call names the node's sockets (``--db=unix:...``, ``OVS_RUNDIR``).

Settings, as a Neutron node on the userspace datapath would tune them:

- NOTE: ``other_config:stats-update-interval`` is ``STATS_UPDATE_MS`` (OVS's default: 5 s).
  Every interval ovs-vswitchd's main thread asks the kernel for every port's counters (one
  RTM_GETLINK each, on the userspace datapath) and writes them to the Interface rows: with
  1,000 ports on a node that is a quarter of its idle CPU (19 -> 14 ms/s measured here), and a
  stall of its main loop, which also runs the datapath, every 5 s. Nothing here reads those
  columns; ``ovs-ofctl dump-ports`` still gives live counters.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from baryon.lab import host
from baryon.lab.state import LabPaths

SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
DAEMONS = ("ovsdb-server", "ovs-vswitchd")
STATS_UPDATE_MS = 60000  # other_config:stats-update-interval (module doc)


@dataclass(frozen=True)
class NodeOvs:
    node: str
    netns: str
    paths: LabPaths

    @property
    def rundir(self) -> Path:
        return self.paths.run(self.node)

    @property
    def db_sock(self) -> Path:
        return self.rundir / "db.sock"

    @property
    def db_file(self) -> Path:
        return self.paths.db(self.node) / "conf.db"

    def pidfile(self, daemon: str) -> Path:
        return self.rundir / f"{daemon}.pid"

    def env(self) -> tuple[tuple[str, str], ...]:
        """The environment that points OVS's tools at this node's files (``lab exec`` uses it too)."""
        return (("OVS_RUNDIR", str(self.rundir)), ("OVS_DBDIR", str(self.paths.db(self.node))),
                ("OVS_LOGDIR", str(self.paths.log(self.node))), ("OVS_SYSCONFDIR", str(self.paths.etc(self.node))))

    def place(self) -> host.Place:
        return host.Place(self.netns, self.paths.mnt_file(self.node), self.env())

    def pid(self, daemon: str) -> int | None:
        return host.running(self.pidfile(daemon), self.paths.marker)

    def ensure_running(self) -> None:
        """Start whichever daemon is not running (the database is created once and kept)."""
        for sub in (self.rundir, self.paths.db(self.node), self.paths.log(self.node)):
            sub.mkdir(parents=True, exist_ok=True)
        place = self.place()
        if not self.db_file.exists():
            host.run(["ovsdb-tool", "create", str(self.db_file), str(SCHEMA)])
        log = self.paths.log(self.node)
        if self.pid("ovsdb-server") is None:
            place.run(["ovsdb-server", str(self.db_file), f"--remote=punix:{self.db_sock}",
                       "--remote=ptcp:6640:127.0.0.1", f"--pidfile={self.pidfile('ovsdb-server')}",
                       "--detach", "--no-chdir",
                       f"--log-file={log / 'ovsdb-server.log'}", "-vconsole:off"])
            self.vsctl("--no-wait", "init", "--", "set", "Open_vSwitch", ".",
                       f"other_config:stats-update-interval={STATS_UPDATE_MS}")
        if self.pid("ovs-vswitchd") is None:
            # NOTE: no --unixctl: the default control socket, $OVS_RUNDIR/<daemon>.<pid>.ctl, is where
            # a bare ovs-appctl looks (through the pidfile), as `lab exec NODE -- ovs-appctl` runs it.
            place.run(["ovs-vswitchd", f"unix:{self.db_sock}", f"--pidfile={self.pidfile('ovs-vswitchd')}",
                       "--detach", "--no-chdir",
                       f"--log-file={log / 'ovs-vswitchd.log'}", "-vconsole:off"])

    def stop(self) -> None:
        for daemon in reversed(DAEMONS):
            self.stop_daemon(daemon)

    def stop_daemon(self, daemon: str) -> None:
        """Stop one of the node's daemons by its pidfile's PID (SIGTERM, then SIGKILL), if it is
        ours; ``ensure_running`` starts it again, with the node's own files (a fault to inject:
        ovs-vswitchd restarted under the agents, its flows gone)."""
        pid = host.read_pid(self.pidfile(daemon))
        if pid is not None:
            host.stop_pid(pid, self.paths.marker)

    def vsctl(self, *args: str, timeout: int = 10) -> str:
        """``ovs-vsctl`` against this node's database; returns stdout."""
        argv = ["ovs-vsctl", f"--db=unix:{self.db_sock}", f"--timeout={timeout}", *args]
        return self.place().run(argv).stdout

    def ensure_bridge(self, bridge: str, ports: tuple[str, ...] = ()) -> None:
        """A netdev bridge with ``ports`` (may_exist semantics: an existing one is left as it is)."""
        args = ["--", "--may-exist", "add-br", bridge, "--", "set", "Bridge", bridge, "datapath_type=netdev"]
        for port in ports:
            args += ["--", "--may-exist", "add-port", bridge, port]
        self.vsctl(*args)
