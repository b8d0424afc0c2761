"""How the debugging tools reach a deployment: its API and a shell on each of its nodes.

``LabReach(lab)`` reaches a ``baryon lab``: the API at the lab's loopback address, and every node
through its namespaces (``Lab.place``: the node's network and mount namespaces, ``OVS_RUNDIR``
naming its Open vSwitch), as ``baryon lab exec`` does. A node is named as ports'
``binding:host_id`` name their host (the lab's node names). Read-only: nothing here changes a node.

- ``api``: the lab's ``baryon.lab.api.Api`` (admin, noauth; with the lab's agent secret, for ``/agent/v1``).
- ``run(node, argv)``: a command on a node, its stdout (``DebugError`` naming the command and its
  stderr when it fails, unless ``check=False``).
- ``in_namespace(node, namespace, argv)``: a command inside one of the node's namespaces
  (``qrouter-``, ``qdhcp-``): ``ip netns exec`` run on the node.
- ``port(ref)``: a port by id, by name, or by the name of a lab VM (its port): the API's body.
- ``vm_of_port(port_id)``: the lab VM plugged on a port, if any.
- ``nodes()``: the lab's nodes that run Open vSwitch (where ports live).
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from baryon.lab import configs, vms
from baryon.lab.api import Api, ApiError
from baryon.lab.lab import Lab
from baryon.lab.topology import Node


class DebugError(RuntimeError):
    pass


class LabReach:
    def __init__(self, lab: Lab, timeout: float = 30) -> None:
        self.lab = lab
        self.topology = lab.topology
        self.api = Api(self.topology.api_url, timeout=timeout, agent_secret=configs.lab_secret(lab.paths.root))
        self.timeout = timeout

    def node(self, name: str) -> Node:
        for node in self.topology.nodes:
            if node.name == name:
                return node
        raise DebugError(f"no node {name!r} in the lab (nodes: {', '.join(n.name for n in self.topology.nodes)})")

    def nodes(self) -> list[Node]:
        return [n for n in self.topology.nodes if n.runs_ovs]

    def run(self, node: str, argv: Sequence[str], *, check: bool = True) -> str:
        command = self.lab.place(self.node(node)).argv(argv)
        proc = subprocess.run(command, capture_output=True, text=True, timeout=self.timeout, check=False)
        if check and proc.returncode != 0:
            raise DebugError(f"on {node}: {' '.join(argv)}: exit {proc.returncode}: {proc.stderr.strip()}")
        return proc.stdout

    def in_namespace(self, node: str, namespace: str, argv: Sequence[str], *, check: bool = True) -> str:
        return self.run(node, ["ip", "netns", "exec", namespace, *argv], check=check)

    def port(self, ref: str) -> dict:
        """The port ``ref`` names: a port id, a port name, or a lab VM's name."""
        try:
            return self.api.get(f"/v2.0/ports/{ref}")["port"]
        except ApiError as exc:
            if exc.status != 404:
                raise DebugError(str(exc)) from None
        named = self.api.get("/v2.0/ports", name=ref)["ports"]
        if len(named) == 1:
            return named[0]
        if len(named) > 1:
            raise DebugError(f"{len(named)} ports are named {ref!r}: give its id")
        vm = next((v for v in vms.load_all(self.lab.paths) if v.name == ref), None)
        if vm is not None and vm.port_id:
            return self.api.get(f"/v2.0/ports/{vm.port_id}")["port"]
        raise DebugError(f"no port, port name or lab VM named {ref!r}")

    def vm_of_port(self, port_id: str) -> vms.Vm | None:
        return next((vm for vm in vms.load_all(self.lab.paths) if vm.port_id == port_id), None)
