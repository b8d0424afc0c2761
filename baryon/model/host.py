"""What one host's Open vSwitch agent needs to know: the host view (pure, frozen, JSON-ready).

The server computes a ``HostView`` per host (``baryon.service.hostview``) and serves it over the
agent API; the agent rebuilds the same type from JSON and plans from it. Nothing here does I/O.

Contents, and only these (an agent never receives other hosts' data beyond l2population's):

- ``ports``: the ports bound to this host (``binding:host_id`` == host and ``binding:vif_type``
  ``ovs``), VM ports and network-owned ports (``network:dhcp``, ``network:router_interface``,
  ``network:router_gateway``) alike;
- ``networks``: the networks of those ports, each with the segment its ports are bound to;
- ``remote_ports``: l2population's forwarding entries: for each tunnelled network of this host,
  the ports of that network bound to *other* hosts, with those hosts' tunnel endpoint
  (``tunneling_ip`` of their live OVS agent) — the VXLAN peers, the unicast MACs and, for the
  ARP responder, their IPs;
- ``security_groups``: the groups of this host's ports, their rules, and for each group that a
  rule names as ``remote_group_id`` its members' addresses (for the firewall);
- ``address_groups``: for each address group a rule of those groups names as
  ``remote_address_group_id``, its CIDRs (address-group).

``etag`` is a digest of the canonical JSON of everything but ``seq`` and ``etag``: equal etags mean
equal views, which is how the server's watch knows whether this host has anything new.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from baryon.model.etag import digest

VXLAN, FLAT, VLAN = "vxlan", "flat", "vlan"
TUNNEL_TYPES = (VXLAN,)


@dataclass(frozen=True, order=True)
class Segment:
    network_type: str  # vxlan | flat | vlan
    segmentation_id: int | None  # VNI or VLAN id; None for flat
    physical_network: str | None  # None for vxlan


@dataclass(frozen=True, order=True)
class Network:
    id: str
    segment: Segment
    mtu: int


@dataclass(frozen=True, order=True)
class AddressPair:
    ip_address: str  # an address or a CIDR
    mac_address: str


@dataclass(frozen=True, order=True)
class Port:
    id: str
    network_id: str
    mac_address: str
    fixed_ips: tuple[str, ...]  # addresses, sorted
    device_owner: str
    admin_state_up: bool
    # NOTE: no status: it is what agents report; in the view it would send each agent its own
    # report back as a change (one more round per port wired).
    port_security_enabled: bool
    security_groups: tuple[str, ...] = ()  # ids, sorted
    allowed_address_pairs: tuple[AddressPair, ...] = ()


@dataclass(frozen=True, order=True)
class RemotePort:
    """A port of one of this host's tunnelled networks, bound to another host (l2population)."""

    network_id: str
    host: str
    tunnel_ip: str
    mac_address: str
    fixed_ips: tuple[str, ...] = ()


@dataclass(frozen=True, order=True)
class Rule:
    id: str
    direction: str  # ingress | egress
    ethertype: str  # IPv4 | IPv6
    protocol: str | None  # a name (tcp, udp, icmp, ...) or a number as a string; None: any
    port_range_min: int | None
    port_range_max: int | None
    remote_ip_prefix: str | None
    remote_group_id: str | None
    remote_address_group_id: str | None = None


@dataclass(frozen=True, order=True)
class SecurityGroup:
    id: str
    rules: tuple[Rule, ...]  # sorted by id
    stateful: bool = True


@dataclass(frozen=True, order=True)
class GroupMembers:
    """The addresses of the ports in a group some rule of this host names as its remote group."""

    security_group_id: str
    addresses: tuple[str, ...]  # sorted; fixed IPs and allowed address pairs' addresses


@dataclass(frozen=True, order=True)
class AddressGroup:
    """The CIDRs of an address group some rule of this host names as its remote address group."""

    id: str
    addresses: tuple[str, ...]  # sorted; normalised CIDRs of both IP versions


@dataclass(frozen=True)
class HostView:
    host: str
    seq: int = 0  # the change-log sequence this view reflects
    ports: tuple[Port, ...] = ()  # sorted by id
    networks: tuple[Network, ...] = ()  # sorted by id
    remote_ports: tuple[RemotePort, ...] = ()  # sorted
    security_groups: tuple[SecurityGroup, ...] = ()  # sorted by id
    group_members: tuple[GroupMembers, ...] = ()  # sorted by group id
    address_groups: tuple[AddressGroup, ...] = ()  # sorted by id
    etag: str = field(default="", compare=False)

    def network(self, network_id: str) -> Network | None:
        for net in self.networks:
            if net.id == network_id:
                return net
        return None

    def with_etag(self) -> HostView:
        """This view with ``etag`` set from its content (``seq`` excluded)."""
        return replace(self, etag=digest(self))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any], previous: tuple[dict[str, Any], HostView] | None = None) -> HostView:
        """The view ``to_json`` made ``data`` from. ``previous``: an earlier view as it came and as
        built; each section of ``data`` equal to that section of the earlier data is taken from the
        earlier view (the same objects: comparing them later is immediate).

        NOTE: a change of a group's members changes one section of a view of 1,000 ports: the
        agent compares the others as dicts instead of building 1,000 ports again, and its planners
        find them identical."""
        values: dict[str, Any] = {}
        for name, parse in _SECTIONS.items():
            raw = data.get(name, ())
            if previous is not None and previous[0].get(name, ()) == raw:
                values[name] = getattr(previous[1], name)
            else:
                values[name] = tuple(parse(item) for item in raw)
        return cls(host=data["host"], seq=int(data.get("seq", 0)), etag=data.get("etag", ""), **values)


def _port(data: dict[str, Any]) -> Port:
    values = {f.name: data[f.name] for f in fields(Port) if f.name in data}
    values["fixed_ips"] = tuple(values.get("fixed_ips", ()))
    values["security_groups"] = tuple(values.get("security_groups", ()))
    values["allowed_address_pairs"] = tuple(AddressPair(**p) for p in values.get("allowed_address_pairs", ()))
    return Port(**values)


_SECTIONS: dict[str, Any] = {  # a section of the view -> how one item of it is built from JSON
    "ports": _port,
    "networks": lambda n: Network(n["id"], Segment(**n["segment"]), int(n["mtu"])),
    "remote_ports": lambda r: RemotePort(**{**r, "fixed_ips": tuple(r.get("fixed_ips", ()))}),
    "security_groups": lambda g: SecurityGroup(g["id"], tuple(Rule(**r) for r in g["rules"]), g.get("stateful", True)),
    "group_members": lambda m: GroupMembers(m["security_group_id"], tuple(m["addresses"])),
    "address_groups": lambda a: AddressGroup(a["id"], tuple(a["addresses"])),
}
