"""What one host's DHCP agent needs to know: its DHCP view (pure, frozen, JSON-ready).

The server computes a ``DhcpView`` for the DHCP agent of a host (``baryon.service.dhcpview``)
and serves it over the agent API (``GET /agent/v1/hosts/{host}/dhcp``); the agent rebuilds it
from JSON and plans from it (``baryon.agent.plan.dhcp``). Nothing here does I/O.

Contents: every network scheduled to this host's DHCP agent that has at least one subnet with
``enable_dhcp`` and is ``admin_state_up`` (others are not in the view: their namespace and dnsmasq
must go), with

- ``subnets``: all its subnets (DHCP-enabled or not, as dnsmasq's options need the
  routes of both), with what dnsmasq serves;
- ``dhcp_port``: the port of ``device_owner`` ``network:dhcp`` that the server created for this
  agent on this network (``device_id`` ``dhcp<host uuid>-<network id>`` as Neutron's): its
  MAC and fixed IPs are the DHCP server's addresses in the ``qdhcp-`` namespace; None until the
  server has made it;
- ``ports``: every port of the network that has fixed IPs (VM, router and DHCP ports alike), with
  the hostname dnsmasq gives it (Neutron's ``host-10-0-0-5``, or its ``dns_name``) and its
  ``extra_dhcp_opts``.

``etag`` is a digest of everything but ``seq`` and ``etag``, as in ``baryon.model.host``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from baryon.model.etag import digest


@dataclass(frozen=True, order=True)
class HostRoute:
    destination: str  # CIDR
    nexthop: str


@dataclass(frozen=True, order=True)
class DhcpSubnet:
    id: str
    cidr: str
    ip_version: int
    enable_dhcp: bool
    gateway_ip: str | None
    dns_nameservers: tuple[str, ...] = ()  # in the subnet's order
    host_routes: tuple[HostRoute, ...] = ()  # in the subnet's order
    ipv6_address_mode: str | None = None  # dhcpv6-stateful | dhcpv6-stateless | slaac | None
    ipv6_ra_mode: str | None = None


@dataclass(frozen=True, order=True)
class DhcpOption:
    opt_name: str  # e.g. "mtu", "26", "tftp-server", "bootfile-name"
    opt_value: str
    ip_version: int = 4


@dataclass(frozen=True, order=True)
class DhcpPort:
    id: str
    mac_address: str
    fixed_ips: tuple[tuple[str, str], ...]  # (subnet id, address), sorted
    hostname: str  # host-10-0-0-5, or the port's dns_name
    device_owner: str = ""
    extra_dhcp_opts: tuple[DhcpOption, ...] = ()


@dataclass(frozen=True, order=True)
class DhcpNetwork:
    id: str
    mtu: int
    subnets: tuple[DhcpSubnet, ...]  # sorted by id
    ports: tuple[DhcpPort, ...]  # sorted by id
    dhcp_port: DhcpPort | None = None
    dns_domain: str = "openstacklocal"


@dataclass(frozen=True)
class DhcpView:
    host: str
    seq: int = 0
    lease_duration: int = 86400  # seconds; Neutron's [DEFAULT] dhcp_lease_duration
    networks: tuple[DhcpNetwork, ...] = ()  # sorted by id
    etag: str = field(default="", compare=False)

    def network(self, network_id: str) -> DhcpNetwork | None:
        return next((n for n in self.networks if n.id == network_id), None)

    def with_etag(self) -> DhcpView:
        return replace(self, etag=digest(self))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DhcpView:
        return cls(host=data["host"], seq=int(data.get("seq", 0)), etag=data.get("etag", ""),
                   lease_duration=int(data.get("lease_duration", 86400)),
                   networks=tuple(_network(n) for n in data.get("networks", ())))


def _port(data: dict[str, Any]) -> DhcpPort:
    return DhcpPort(id=data["id"], mac_address=data["mac_address"],
                    fixed_ips=tuple(tuple(ip) for ip in data.get("fixed_ips", ())),  # type: ignore[misc]
                    hostname=data["hostname"], device_owner=data.get("device_owner", ""),
                    extra_dhcp_opts=tuple(DhcpOption(**o) for o in data.get("extra_dhcp_opts", ())))


def _subnet(data: dict[str, Any]) -> DhcpSubnet:
    return DhcpSubnet(id=data["id"], cidr=data["cidr"], ip_version=int(data["ip_version"]),
                      enable_dhcp=bool(data["enable_dhcp"]), gateway_ip=data.get("gateway_ip"),
                      dns_nameservers=tuple(data.get("dns_nameservers", ())),
                      host_routes=tuple(HostRoute(**r) for r in data.get("host_routes", ())),
                      ipv6_address_mode=data.get("ipv6_address_mode"), ipv6_ra_mode=data.get("ipv6_ra_mode"))


def _network(data: dict[str, Any]) -> DhcpNetwork:
    port = data.get("dhcp_port")
    return DhcpNetwork(id=data["id"], mtu=int(data["mtu"]), subnets=tuple(_subnet(s) for s in data["subnets"]),
                       ports=tuple(_port(p) for p in data["ports"]), dhcp_port=_port(port) if port else None,
                       dns_domain=data.get("dns_domain", "openstacklocal"))
