"""Real agents beside bench/tempest.py's server: a lab's network node (and computes), built as
``baryon lab up`` builds them, minus the lab's own server.

tempest's server runs in the machine's namespace (it must reach Keystone and memcached on the
loopback); the nodes run in namespaces of their own. They meet without touching the root
namespace: ``listener()`` opens a socket *inside* the controller node's namespace, on the lab's
management address (``10.20.0.2:9696``, the ``server_url`` every node's ``neutron.conf`` names),
and the server serves it beside its loopback port (``baryon server --listen-fd``), the mirror
image of what the lab does with its loopback listener. A socket keeps the namespace it was opened
in, whichever process then uses it.

``AgentNodes`` lifecycle: ``build()`` (fabric, nodes, their OVS daemons and configuration with a
fresh agent secret), ``listener()`` (for the server), ``start_agents(client)`` (the agents of every
node, until the server sees them all alive), ``census()`` (what the agents built: ``qdhcp-`` and
``qrouter-`` namespaces, dnsmasq processes), ``down()``. Everything lives under a directory of its
own in /tmp (mode 0755: dnsmasq, which drops to nobody, reads its files there) and namespaces with
a random prefix of its own (``bt`` + 6 hex digits + ``-``); ``down()`` is ``Lab.down`` (processes
naming that directory, by PID, then those inside the run's namespaces, then the namespaces and
mounts), safe at any point of ``build()`` and twice.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import labkit

from baryon.lab import agents, configs, fabric, host
from baryon.lab.lab import REQUIRED_COMMANDS, Lab
from baryon.lab.state import LabParams, LabPaths
from baryon.lab.topology import Node

AGENT_TYPES = agents.AGENT_TYPES  # kind -> Neutron's agent_type
ALIVE_TIMEOUT = 60.0
# NOTE: the lab's values (configs.server_conf, node_neutron_conf): agents report every 5 s, so the
# server calls one dead after 15 s without a heartbeat (Neutron's 30 s and 75 s, scaled down).
AGENT_DOWN_TIME = 15


class AgentNodesError(RuntimeError):
    """The nodes or their agents could not be brought up; the message says which and why."""


@dataclass(frozen=True)
class Census:
    """What the agents built, at one moment: on the network node, the namespaces of networks
    served (``qdhcp-``) and routers (``qrouter-``); on the machine, the run's dnsmasq processes."""

    qdhcp: int
    qrouter: int
    dnsmasq: int

    def as_dict(self) -> dict[str, int]:
        return {"qdhcp": self.qdhcp, "qrouter": self.qrouter, "dnsmasq": self.dnsmasq}


class Watch:
    """``census()`` every ``interval`` seconds in a thread while tempest runs: the peaks, and
    the agents that died (``stop()`` returns them)."""

    def __init__(self, nodes: AgentNodes, interval: float = 10.0) -> None:
        self.nodes, self.interval = nodes, interval
        self.peak = Census(0, 0, 0)
        self.samples = 0
        self.died: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="agent-census", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            now = self.nodes.census()
            self.peak = Census(*(max(a, b) for a, b in zip(self.peak.as_dict().values(), now.as_dict().values())))
            self.samples += 1
            self.died.update(self.nodes.exited())

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join(30)
        return {"peak": self.peak.as_dict(), "samples": self.samples, "interval_seconds": self.interval,
                "agents_died": sorted(self.died)}


def settle(nodes: AgentNodes, client: httpx.Client, timeout: float = 120.0) -> dict:
    """After the run: wait until what the agents built matches what is left in the server (one
    ``qdhcp-`` namespace and one dnsmasq per network with a DHCP-enabled subnet, one ``qrouter-``
    per router). Returns both sides and the seconds it took (``converged`` False: never did)."""
    subnets = client.get("/subnets", params={"fields": ["network_id", "enable_dhcp"]}).json()["subnets"]
    routers = client.get("/routers", params={"fields": "id"}).json()["routers"]
    left = {"networks": len(client.get("/networks", params={"fields": "id"}).json()["networks"]),
            "dhcp_networks": len({s["network_id"] for s in subnets if s["enable_dhcp"]}), "routers": len(routers)}
    started = time.monotonic()
    while True:
        now = nodes.census()
        converged = (now.qdhcp, now.dnsmasq, now.qrouter) == (left["dhcp_networks"], left["dhcp_networks"],
                                                              left["routers"])
        if converged or time.monotonic() - started >= timeout:
            return {"left_in_server": left, "on_nodes": now.as_dict(), "converged": converged,
                    "seconds": round(time.monotonic() - started, 1), "agents_not_running": nodes.exited()}
        time.sleep(1.0)


class AgentNodes:
    def __init__(self, computes: int = 0, say: Callable[[str], None] = print) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="baryon-bench-tempest-lab-", dir="/tmp"))
        self.dir.chmod(0o755)
        prefix = f"bt{secrets.token_hex(3)}-"
        self.lab = Lab(LabPaths(self.dir / "state"), LabParams(prefix=prefix, computes=computes, api_port=9696),
                       owns_prefix=True)
        self.topology = self.lab.topology
        self.say = say

    @property
    def paths(self) -> LabPaths:
        return self.lab.paths

    @property
    def agent_nodes(self) -> list[Node]:
        return [node for node in self.topology.nodes if node.agents]

    @property
    def wanted(self) -> list[tuple[str, str]]:
        """(node, kind) of every agent the run starts."""
        return [(node.name, kind) for node in self.agent_nodes for kind in node.agents]

    def build(self) -> str:
        """The fabric, every node (namespaces, links, configuration) and its OVS daemons, as
        ``Lab.up`` makes them; returns the agents' shared secret (the server's to know)."""
        missing = [c for c in REQUIRED_COMMANDS if shutil.which(c) is None]
        if missing:
            raise AgentNodesError(f"missing commands: {', '.join(missing)} (run bin/setup --lab)")
        if host.list_netns(self.lab.params.prefix):  # a random prefix: never seen, but never adopt
            raise AgentNodesError(f"namespaces named {self.lab.params.prefix}* exist already")
        self.paths.write_params(self.lab.params)  # first: down() after a crash knows the prefix
        host.ensure_private_dir(self.paths.ns_dir)
        fabric.ensure_fabric(self.topology)
        for node in self.topology.nodes:
            host.ensure_netns(node.netns)
            host.ensure_node_mountns(node.netns, self.paths.mnt_file(node.name))
            fabric.ensure_node_links(self.topology, node)
            # NOTE: the lab's own writer (node_files, then the modes dnsmasq needs to read them).
            self.lab.write_configs(self.topology, node)
        for node in self.topology.nodes:
            if node.runs_ovs:
                ovs = self.lab.ovs(node)
                ovs.ensure_running()
                fabric.ensure_node_bridges(node, ovs)
        secret = configs.lab_secret(self.paths.root)
        if not secret:
            raise AgentNodesError(f"no agent secret in {self.paths.root}")
        self.say(f"nodes {', '.join(n.name for n in self.topology.nodes)} in namespaces "
                 f"{self.lab.params.prefix}* (state {self.paths.root})")
        return secret

    def listener(self) -> socket.socket:
        """A listening socket in the controller's namespace on the management address the nodes'
        agents reach the server at; the caller hands it to the server and closes its own copy."""
        controller = self.topology.node("controller")

        def listen() -> socket.socket:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.topology.server_ip, self.topology.server_port))
            sock.listen(256)
            return sock

        with labkit.NetnsThread(host.netns_path(controller.netns)) as thread:
            return thread.call(listen)

    def start_agents(self, client: httpx.Client, timeout: float = ALIVE_TIMEOUT) -> dict[str, int]:
        """Start every node's agents; wait until the server lists each alive (``client``: the
        admin's, on the server's API). Returns "node/kind" -> PID."""
        started: dict[tuple[str, str], subprocess.Popen[bytes] | int] = {}
        for node in self.agent_nodes:
            for kind in node.agents:
                started[(node.name, kind)] = agents.start(self.paths, node, kind)
        deadline = time.monotonic() + timeout
        while True:
            for (node, kind), proc in started.items():
                if isinstance(proc, subprocess.Popen) and proc.poll() is not None:
                    tail = (self.paths.log(node) / f"{kind}-agent.log").read_text(errors="replace")[-2000:]
                    raise AgentNodesError(f"the {kind} agent on {node} exited ({proc.returncode}):\n{tail}")
            response = client.get("/agents")
            alive = {(a["host"], a["agent_type"]) for a in response.json().get("agents", []) if a["alive"]} \
                if response.status_code == 200 else set()
            if all((node, AGENT_TYPES[kind]) in alive for node, kind in started):
                break
            if time.monotonic() >= deadline:
                raise AgentNodesError(f"the agents were not all alive after {timeout:g} s "
                                      f"(GET /v2.0/agents: {response.status_code}; alive: {sorted(alive)})")
            time.sleep(0.2)
        pids = {f"{node}/{kind}": (proc.pid if isinstance(proc, subprocess.Popen) else proc)
                for (node, kind), proc in started.items()}
        self.say("agents alive: " + ", ".join(f"{name} (PID {pid})" for name, pid in pids.items()))
        return pids

    def census(self) -> Census:
        """Namespaces on the network node (its private /run/netns, seen through its DHCP agent's
        root) and the run's dnsmasq processes."""
        names: list[str] = []
        pid = agents.pid(self.paths, "network", "dhcp") or agents.pid(self.paths, "network", "l3")
        if pid is not None:
            try:
                names = [p.name for p in Path(f"/proc/{pid}/root/run/netns").iterdir()]
            except OSError:
                names = []
        return Census(qdhcp=sum(n.startswith("qdhcp-") for n in names),
                      qrouter=sum(n.startswith("qrouter-") for n in names),
                      dnsmasq=len(labkit.dnsmasq_pids(self.paths.marker)))

    def exited(self) -> list[str]:
        """The agents no longer running ("node/kind"): one that died mid-run explains failures."""
        return [f"{node}/{kind}" for node, kind in self.wanted if agents.pid(self.paths, node, kind) is None]

    def down(self, keep_logs: Path | None = None) -> None:
        """Everything of the nodes, by PID and by the run's prefix (``Lab.down``); with
        ``keep_logs``, the nodes' logs are copied there first."""
        if keep_logs is not None and self.paths.root.exists():
            for node in self.topology.nodes:
                if self.paths.log(node.name).exists():
                    shutil.copytree(self.paths.log(node.name), keep_logs / node.name, dirs_exist_ok=True)
        try:
            self.lab.down(lambda message: self.say(f"nodes down: {message}"))
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
