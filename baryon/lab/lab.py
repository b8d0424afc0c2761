"""``lab up``, ``lab down`` and ``lab status``: build, remove and describe the whole lab.

``up`` is idempotent and repairs: each step converges (``ensure_*``), so a second ``up`` leaves a
running lab as it is and rebuilds whatever is missing (a killed daemon, a lost namespace, a
half-finished first ``up``). ``down`` removes everything the lab made, found three ways so that
it works after a crash too: every process whose command line names the state directory (the
lab's daemons and agents, and the dnsmasq processes the DHCP agent started in its qdhcp-
namespaces), every process inside one of the lab's namespaces, and every namespace whose name
carries the lab's prefix; then the mounts and files under the state directory.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from baryon.lab import agents, configs, fabric, host, server
from baryon.lab.ovs import NodeOvs
from baryon.lab.state import LabParams, LabPaths
from baryon.lab.topology import DEFAULT_PREFIX, Node, Topology, describe

Progress = Callable[[str], None]
REQUIRED_COMMANDS = ("ip", "nsenter", "unshare", "ethtool", "ovs-vsctl", "ovsdb-server", "ovs-vswitchd",
                     "ovsdb-tool", "mount", "umount")
# Agent kinds the lab starts on the nodes that run them (the L3 agent comes later).
AVAILABLE_AGENTS: tuple[str, ...] = ("ovs", "dhcp", "l3")

STOP_PASSES = 3  # looks for processes naming the lab's directory, in `down`


def _quiet(_message: str) -> None:
    pass


@dataclass
class Lab:
    """A lab at a state directory. ``owns_prefix``: its namespaces may be removed by ``down``
    (the prefix is recorded in its lab.json, or was named explicitly)."""

    paths: LabPaths
    params: LabParams
    owns_prefix: bool = True

    @classmethod
    def open(cls, state_dir: Path, prefix: str | None = None, computes: int | None = None,
             api_port: int | None = None, agents: bool | None = None) -> Lab:
        """The lab at ``state_dir``: its recorded parameters, overridden by those given."""
        paths = LabPaths(state_dir.resolve())
        recorded = paths.read_params()
        params = LabParams(
            prefix=prefix or (recorded.prefix if recorded else DEFAULT_PREFIX),
            computes=computes if computes is not None else (recorded.computes if recorded else 2),
            api_port=api_port if api_port is not None else (recorded.api_port if recorded else 9696),
            agents=agents if agents is not None else (recorded.agents if recorded else True))
        owns = prefix is not None or (recorded is not None and recorded.prefix == params.prefix)
        return cls(paths, params, owns)

    @property
    def topology(self) -> Topology:
        return describe(self.params.prefix, self.params.computes, self.params.api_port)

    def ovs(self, node: Node) -> NodeOvs:
        return NodeOvs(node.name, node.netns, self.paths)

    def place(self, node: Node) -> host.Place:
        """Where a command runs "logged in" to ``node``: its namespaces, its OVS's files."""
        if node.runs_ovs:
            return self.ovs(node).place()
        return host.Place(node.netns, self.paths.mnt_file(node.name))

    # ------------------------------------------------------------ up

    def up(self, progress: Progress = _quiet) -> None:
        missing = [c for c in REQUIRED_COMMANDS if shutil.which(c) is None]
        if missing:
            raise host.LabError(f"missing commands: {', '.join(missing)} (run bin/setup --lab)")
        recorded = self.paths.read_params()
        if recorded and _shape(recorded) != _shape(self.params) and host.list_netns(recorded.prefix):
            raise host.LabError(
                f"a lab with {recorded.computes} computes, prefix {recorded.prefix!r} and API port "
                f"{recorded.api_port} is already up at {self.paths.root}; `baryon lab down` first")
        if recorded is None and host.list_netns(self.params.prefix):
            # NOTE: lab.json is written before any namespace is made, so namespaces with our prefix
            # and no record here belong to another lab (another state directory): never adopt them.
            raise host.LabError(
                f"namespaces named {self.params.prefix}* exist but are not this lab's ({self.paths.root} has no "
                "lab.json): another lab uses that prefix; choose another with --prefix, or bring that one down "
                "with `baryon lab --state-dir ITS_DIR down`")
        _check_traversable(self.paths.root)
        topology = self.topology
        started = time.monotonic()

        def step(message: str) -> None:
            progress(f"[{time.monotonic() - started:5.2f}s] {message}")

        self.paths.write_params(self.params)
        host.ensure_private_dir(self.paths.ns_dir)
        fabric.ensure_fabric(topology)
        step(f"fabric {topology.fabric_netns}: bridges {', '.join(topology.fabric_bridges)}")
        for node in topology.nodes:
            host.ensure_netns(node.netns)
            host.ensure_node_mountns(node.netns, self.paths.mnt_file(node.name))
            fabric.ensure_node_links(topology, node)
            self.write_configs(topology, node)
        step(f"nodes: {', '.join(n.name for n in topology.nodes)} (namespaces, links, addresses, configs)")

        ovs_nodes = [n for n in topology.nodes if n.runs_ovs]

        def start_ovs(node: Node) -> None:
            ovs = self.ovs(node)
            ovs.ensure_running()
            fabric.ensure_node_bridges(node, ovs)

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(start_ovs, ovs_nodes))
        step(f"Open vSwitch on {', '.join(n.name for n in ovs_nodes)}: ovsdb-server, ovs-vswitchd, "
             "br-phy (local_ip), br-ex on network")
        pid = server.ensure_running(topology, self.paths)
        step(f"server on controller (PID {pid}): {topology.server_url} for agents, {topology.api_url} "
             "on this machine")
        if self.params.agents:
            started_agents = agents.ensure_running(topology, self.paths, AVAILABLE_AGENTS)
            step(f"agents alive: {', '.join(started_agents) or 'none'}")
        else:
            step("agents: not started (--no-agents)")

    def write_configs(self, topology: Topology, node: Node) -> None:
        """The node's configuration files (its agents' INI files, dnsmasq's directories) under the
        lab's state directory: what ``up`` writes for each node, and what a caller that builds the
        nodes itself (bench/tempest_agents.py) writes before starting their agents."""
        etc = self.paths.etc(node.name)
        files = configs.node_files(topology, node, str(self.paths.lib(node.name)), str(self.paths.root))
        if files:
            etc.mkdir(parents=True, exist_ok=True)
            lib = self.paths.lib(node.name)
            lib.mkdir(parents=True, exist_ok=True)
            # dnsmasq drops its privileges to nobody and re-reads its files on SIGHUP: every
            # directory down to the agents' state must be traversable whatever the umask.
            for path in (self.paths.root, lib.parent.parent, lib.parent, lib):
                path.chmod(0o755)
        for name, text in files.items():
            path = etc / name
            if not path.exists() or path.read_text() != text:
                path.write_text(text)
            path.chmod(0o600)  # neutron.conf holds the lab's agent secret; only root's agents read these

    # ------------------------------------------------------------ down

    def down(self, progress: Progress = _quiet) -> None:
        """Remove everything of this lab; safe to run at any point, also twice."""
        started = time.monotonic()

        def step(message: str) -> None:
            progress(f"[{time.monotonic() - started:5.2f}s] {message}")

        # The lab's processes (server, OVS, agents) and theirs (dnsmasq in qdhcp- namespaces): every
        # one names the state directory in its command line (its pidfile or configuration is there).
        # NOTE: again until none is left: an agent being stopped may still start a daemon (a DHCP
        # agent's run respawning a dnsmasq just stopped), which the first look did not see.
        stopped = 0
        for _ in range(STOP_PASSES):
            pids = host.pids_naming(self.paths.marker) if self.paths.root.exists() else []
            if not pids:
                break
            host.stop_pids(pids, self.paths.marker)
            stopped += len(pids)
        step(f"stopped {stopped} process{'es' if stopped != 1 else ''} naming {self.paths.root}")
        names = host.list_netns(self.params.prefix) if self.owns_prefix else []
        if not self.owns_prefix and host.list_netns(self.params.prefix):
            step(f"left the {self.params.prefix}* namespaces alone: {self.paths.root} has no lab.json, so they "
                 "are not known to be this lab's (give --prefix to remove them)")
        inodes = {i for i in (host.netns_inode(host.netns_path(n)) for n in names) if i is not None}
        mnt_inodes = {i for i in (host.netns_inode(f) for f in self._mnt_files()) if i is not None}
        strays = set(host.pids_in_namespaces(inodes, "net")) | set(host.pids_in_namespaces(mnt_inodes, "mnt"))
        host.kill_pids(strays)
        if strays:
            step(f"stopped {len(strays)} other process{'es' if len(strays) != 1 else ''} inside the lab")
        for name in names:
            host.remove_netns(name)
        step(f"removed {len(names)} namespace{'s' if len(names) != 1 else ''}"
             + (f" ({', '.join(names)})" if names else ""))
        if self.paths.root.exists():
            host.remove_mounts(self.paths.root)
            for child in ("ns", "nodes", "vms", "lab.json", configs.SECRET_FILE):
                target = self.paths.root / child
                if target.is_dir():
                    shutil.rmtree(target, ignore_errors=True)
                elif target.exists():
                    target.unlink()
            try:
                self.paths.root.rmdir()
            except OSError:
                pass
        step(f"removed {self.paths.root}")

    def _mnt_files(self) -> list[Path]:
        return sorted(self.paths.ns_dir.glob("*.mnt")) if self.paths.ns_dir.exists() else []

    # ------------------------------------------------------------ status

    def status(self) -> dict:
        """What is up: nodes (namespace, addresses, processes with PIDs) and VMs; JSON-ready."""
        from baryon.lab import vms

        topology = self.topology
        present = set(host.list_netns(self.params.prefix))
        nodes = []
        for node in topology.nodes:
            processes = []
            if node.runs_ovs:
                ovs = self.ovs(node)
                processes += [{"name": d, "pid": ovs.pid(d)} for d in ("ovsdb-server", "ovs-vswitchd")]
            if node.role == "controller":
                processes.append({"name": "baryon-server", "pid": server.pid(self.paths)})
            for kind in node.agents:
                if kind in AVAILABLE_AGENTS and self.params.agents:
                    processes.append({"name": f"{kind}-agent", "pid": agents.pid(self.paths, node.name, kind)})
            nodes.append({"name": node.name, "role": node.role, "netns": node.netns, "up": node.netns in present,
                          "mgmt_ip": node.mgmt_ip, "local_ip": node.local_ip,
                          "addresses": [link.address for link in node.links if link.address]
                          + list(node.loopback_addresses),
                          "processes": processes})
        return {"state_dir": str(self.paths.root), "prefix": self.params.prefix,
                "computes": self.params.computes, "api_url": topology.api_url, "server_url": topology.server_url,
                "up": topology.fabric_netns in present and server.pid(self.paths) is not None,
                "nodes": nodes, "vms": [vm.as_dict() for vm in vms.load_all(self.paths)]}


def _shape(params: LabParams) -> tuple:
    """What cannot change under a running lab (agents can be started or not by a later up)."""
    return params.prefix, params.computes, params.api_port


def _check_traversable(root: Path) -> None:
    """dnsmasq (the DHCP agent's) drops its privileges to nobody and re-reads its files under the
    state directory on SIGHUP: every directory above it must let others through (o+x)."""
    for parent in root.resolve().parents:
        if parent.exists() and not parent.stat().st_mode & 0o001:
            raise host.LabError(f"{parent} is not traversable by other users (mode {parent.stat().st_mode & 0o777:o}): "
                                f"dnsmasq, which runs as nobody, could not read its files under {root}; "
                                f"chmod o+x {parent}, or choose another --state-dir")
