"""The agents on the lab's nodes: started inside each node's namespaces, as on a real host.

Each agent runs as ``baryon agent <kind>`` with the node's Neutron-format files
(``nodes/<node>/etc/neutron.conf`` and ``ml2_conf.ini``), with ``OVS_RUNDIR`` naming the node's
Open vSwitch, a pidfile under ``nodes/<node>/run`` and its log under ``nodes/<node>/log``. It
reaches the server over the management network. ``ensure_running`` starts what is not running
and waits until the server sees every agent alive.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

from baryon.lab import host
from baryon.lab.api import Api, ApiError
from baryon.lab.ovs import NodeOvs
from baryon.lab.state import LabPaths
from baryon.lab.topology import Node, Topology

AGENT_TYPES = {"ovs": "Open vSwitch agent", "dhcp": "DHCP agent", "l3": "L3 agent"}
CONFIG_FILES = {"ovs": ("neutron.conf", "ml2_conf.ini"), "dhcp": ("neutron.conf", "dhcp_agent.ini"),
                "l3": ("neutron.conf", "l3_agent.ini")}


def pidfile(paths: LabPaths, node: str, kind: str) -> Path:
    return paths.run(node) / f"{kind}-agent.pid"


def pid(paths: LabPaths, node: str, kind: str) -> int | None:
    return host.running(pidfile(paths, node, kind), paths.marker)


def start(paths: LabPaths, node: Node, kind: str) -> subprocess.Popen[bytes] | int:
    """Start the agent unless it runs; returns the new process, or the PID of the running one."""
    current = pid(paths, node.name, kind)
    if current is not None:
        return current
    etc, log = paths.etc(node.name), paths.log(node.name)
    log.mkdir(parents=True, exist_ok=True)
    files = [arg for name in CONFIG_FILES[kind] for arg in ("--config-file", str(etc / name))]
    place = NodeOvs(node.name, node.netns, paths).place()
    argv = place.argv([sys.executable, "-m", "baryon", "agent", kind, *files])
    with open(log / f"{kind}-agent.log", "ab") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    pidfile(paths, node.name, kind).write_text(f"{proc.pid}\n")
    return proc


def alive(api: Api, node: str, kind: str, since: dt.datetime | None = None) -> bool:
    """The server sees the agent alive; with ``since``, registered (``started_at``) at or after it:
    a restarted agent is not taken for the killed one, whose last heartbeat still counts."""
    try:
        found = api.get("/v2.0/agents", host=node, agent_type=AGENT_TYPES[kind])["agents"]
    except ApiError:
        return False
    return any(agent["alive"] and (since is None or _moment(agent["started_at"]) >= since) for agent in found)


def _moment(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S")


def ensure_running(topology: Topology, paths: LabPaths, kinds: tuple[str, ...], timeout: float = 30) -> list[str]:
    """Start every agent of ``kinds`` on the nodes that run it; wait until all are alive. Returns
    the started ones as "node/kind"."""
    wanted = [(node, kind) for node in topology.nodes for kind in node.agents if kind in kinds]
    since = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)  # started_at has whole seconds
    procs = {(node.name, kind): start(paths, node, kind) for node, kind in wanted}
    api = Api(topology.api_url, timeout=5)

    def exited(proc: subprocess.Popen[bytes] | int) -> bool:
        # NOTE: a child we started is asked directly: its /proc cmdline is briefly empty while it
        # execs (nsenter -> env -> python), which host.ours would take for an exit.
        return proc.poll() is not None if isinstance(proc, subprocess.Popen) else not host.ours(proc, paths.marker)

    def all_alive() -> bool:
        for (node, kind), proc in procs.items():
            if exited(proc):
                tail = (paths.log(node) / f"{kind}-agent.log").read_text(errors="replace").splitlines()[-10:]
                raise host.LabError(f"the {kind} agent on {node} exited:\n  " + "\n  ".join(tail))
        return all(alive(api, node, kind, since if isinstance(proc, subprocess.Popen) else None)
                   for (node, kind), proc in procs.items())

    host.wait_for(all_alive, timeout, "the agents to report alive", interval=0.1)
    return [f"{node}/{kind}" for node, kind in procs]
