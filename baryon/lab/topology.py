"""The lab's topology as a pure description: nodes, their namespaces, links, addresses and names.

``describe(prefix, computes, api_port)`` returns a ``Topology``; nothing here touches the host,
so the whole layout (and every derived name) is unit-tested without root. The host-touching
code in ``baryon.lab`` builds exactly what this describes and nothing else, which is what lets
``lab down`` remove exactly what ``lab up`` made.

Layout (every name below is prefixed, in the root's /run/netns, e.g. ``blab-network``):

- ``fabric``: the machine room. Three Linux bridges: ``mgmt`` (the management network,
  10.20.0.0/24: agents reach the server there), ``tunnel`` (the underlay, 10.10.10.0/24: the
  nodes' ``local_ip``) and ``physnet1`` (the flat provider network behind br-ex).
- ``controller``: the server (``eth0`` on mgmt).
- ``network``: OVS; ``eth0`` on mgmt, ``eth1`` on the underlay as a port of ``br-phy`` (which holds
  ``local_ip`` 10.10.10.1, the seed's value), ``eth2`` on physnet1 as a port of ``br-ex``.
- ``computeN``: OVS; ``eth0`` on mgmt, ``eth1`` a port of ``br-phy`` holding ``local_ip``.
- ``external``: the world upstream of physnet1: ``eth0`` with 203.0.113.1/24 (the external
  subnet's gateway) and 198.51.100.1/32 on ``lo`` (an "internet host").
- VMs: one namespace each (``<prefix>vm-<name>``), their ``eth0`` the peer of ``tap<port>``
  on a node, plugged as os-vif's hybrid plug does.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

IFNAMSIZ = 15  # interface names are at most 15 bytes (IFNAMSIZ 16 with the NUL)
DEVICE_NAME_LEN = 14  # Neutron's device names: 3-character prefix + 11 characters of the port id

MGMT_CIDR = "10.20.0.0/24"
TUNNEL_CIDR = "10.10.10.0/24"
EXTERNAL_CIDR = "203.0.113.0/24"
EXTERNAL_GATEWAY = "203.0.113.1"
INTERNET_HOST = "198.51.100.1"
PHYSNET = "physnet1"
OVSDB_TCP = "tcp:127.0.0.1:6640"  # the seed's ovsdb_connection: loopback is private to a node

DEFAULT_PREFIX = "blab-"
MAX_COMPUTES = 64
_PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{0,9}-$")
_VM_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")


class TopologyError(ValueError):
    """An impossible topology request (bad prefix, compute count, VM name ...)."""


@dataclass(frozen=True)
class Link:
    """A veth from a node to one of the fabric's bridges.

    ``node_if`` is the node's end (``eth0``...), ``fabric_if`` the end enslaved to ``bridge`` in
    the fabric namespace. ``ovs_bridge`` names the OVS bridge that takes ``node_if`` as a port
    (the address, if any, then sits on that bridge's internal port, as DATAPLANE.md requires for
    a VXLAN endpoint); ``None`` means the address sits on ``node_if`` itself.
    """

    node_if: str
    fabric_if: str
    bridge: str
    address: str | None  # "10.20.0.3/24"
    ovs_bridge: str | None = None


@dataclass(frozen=True)
class Node:
    name: str
    role: str  # controller | network | compute | external
    netns: str
    links: tuple[Link, ...]
    runs_ovs: bool
    agents: tuple[str, ...]  # agent kinds this node runs once they exist: ovs, dhcp, l3
    mgmt_ip: str | None
    local_ip: str | None
    bridge_mappings: tuple[tuple[str, str], ...] = ()
    loopback_addresses: tuple[str, ...] = ()

    @property
    def ovs_bridges(self) -> tuple[str, ...]:
        """The OVS bridges the lab (the "host") makes; br-int and br-tun are the agents' and os-vif's."""
        return tuple(link.ovs_bridge for link in self.links if link.ovs_bridge)


@dataclass(frozen=True)
class Topology:
    prefix: str
    api_port: int
    computes: int
    fabric_netns: str
    fabric_bridges: tuple[str, ...]
    nodes: tuple[Node, ...]
    server_ip: str
    server_port: int = 9696

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise TopologyError(f"no node {name!r} in this lab (nodes: {', '.join(n.name for n in self.nodes)})")

    @property
    def server_url(self) -> str:
        """Where agents on the nodes reach the server: its management address."""
        return f"http://{self.server_ip}:{self.server_port}"

    @property
    def api_url(self) -> str:
        """Where clients on the machine reach the server: a loopback listener in the root namespace."""
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def namespaces(self) -> tuple[str, ...]:
        return (self.fabric_netns, *(n.netns for n in self.nodes))


def validate_prefix(prefix: str) -> str:
    if not _PREFIX_RE.match(prefix):
        raise TopologyError(f"lab prefix {prefix!r} must be 1-10 lowercase letters or digits, starting with a "
                            "letter, followed by '-' (e.g. 'blab-')")
    return prefix


def check_ifname(name: str) -> str:
    """Return ``name`` if the kernel accepts it as an interface name, else raise ``TopologyError``."""
    raw = name.encode()
    if not raw or len(raw) > IFNAMSIZ or any(c in name for c in "/: \t\n") or name in (".", ".."):
        raise TopologyError(f"{name!r} is not a valid interface name (1-{IFNAMSIZ} bytes, no '/', ':' or space)")
    return name


def _host(cidr: str, index: int) -> str:
    return str(ipaddress.ip_network(cidr)[index])


def _with_len(cidr: str, address: str) -> str:
    return f"{address}/{ipaddress.ip_network(cidr).prefixlen}"


def compute_names(computes: int) -> tuple[str, ...]:
    return tuple(f"compute{i}" for i in range(1, computes + 1))


def describe(prefix: str = DEFAULT_PREFIX, computes: int = 2, api_port: int = 9696) -> Topology:
    """The whole lab for ``computes`` compute nodes; pure and deterministic."""
    validate_prefix(prefix)
    if not 0 <= computes <= MAX_COMPUTES:
        raise TopologyError(f"--computes must be between 0 and {MAX_COMPUTES}, not {computes}")
    if not 1 <= api_port <= 65535:
        raise TopologyError(f"--api-port must be a TCP port (1-65535), not {api_port}")

    def mgmt(name: str, index: int) -> Link:
        return Link("eth0", check_ifname(f"m-{name}"), "mgmt", _with_len(MGMT_CIDR, _host(MGMT_CIDR, index)))

    def tunnel(name: str, index: int) -> Link:
        return Link("eth1", check_ifname(f"t-{name}"), "tunnel",
                    _with_len(TUNNEL_CIDR, _host(TUNNEL_CIDR, index)), ovs_bridge="br-phy")

    nodes = [
        Node("controller", "controller", prefix + "controller", (mgmt("controller", 2),), runs_ovs=False,
             agents=(), mgmt_ip=_host(MGMT_CIDR, 2), local_ip=None),
        Node("network", "network", prefix + "network",
             (mgmt("network", 3), tunnel("network", 1),
              Link("eth2", check_ifname("p-network"), PHYSNET, None, ovs_bridge="br-ex")),
             runs_ovs=True, agents=("ovs", "dhcp", "l3"), mgmt_ip=_host(MGMT_CIDR, 3),
             local_ip=_host(TUNNEL_CIDR, 1), bridge_mappings=((PHYSNET, "br-ex"),)),
    ]
    for i, name in enumerate(compute_names(computes), start=1):
        nodes.append(Node(name, "compute", prefix + name, (mgmt(name, 10 + i), tunnel(name, 10 + i)),
                          runs_ovs=True, agents=("ovs",), mgmt_ip=_host(MGMT_CIDR, 10 + i),
                          local_ip=_host(TUNNEL_CIDR, 10 + i)))
    nodes.append(Node("external", "external", prefix + "external",
                      (Link("eth0", check_ifname("p-external"), PHYSNET,
                            _with_len(EXTERNAL_CIDR, EXTERNAL_GATEWAY)),),
                      runs_ovs=False, agents=(), mgmt_ip=None, local_ip=None,
                      loopback_addresses=(f"{INTERNET_HOST}/32",)))
    return Topology(prefix=prefix, api_port=api_port, computes=computes, fabric_netns=prefix + "fabric",
                    fabric_bridges=("mgmt", "tunnel", PHYSNET), nodes=tuple(nodes),
                    server_ip=_host(MGMT_CIDR, 2))


# ---------------------------------------------------------------- VMs and Neutron's device names


def device_names(port_id: str) -> dict[str, str]:
    """os-vif's hybrid-plug names for a port: tap/qbr/qvb/qvo + the first 11 characters of its id."""
    short = port_id[:DEVICE_NAME_LEN - 3]
    return {kind: check_ifname(f"{kind}{short}") for kind in ("tap", "qbr", "qvb", "qvo")}


def validate_vm_name(name: str) -> str:
    if not _VM_NAME_RE.match(name):
        raise TopologyError(f"VM name {name!r} must be 1-40 characters of letters, digits, '.', '_' or '-', "
                            "starting with a letter or digit")
    return name


def vm_netns(prefix: str, name: str) -> str:
    return f"{prefix}vm-{validate_vm_name(name)}"
