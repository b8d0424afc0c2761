"""What one host's L3 agent needs to know: its L3 view (pure, frozen, JSON-ready).

The server computes an ``L3View`` for the L3 agent of a host (``baryon.service.l3view``) and serves
it over the agent API (``GET /agent/v1/hosts/{host}/l3``); the agent rebuilds it from JSON and plans
from it (``baryon.agent.plan.l3``). Nothing here does I/O.

Contents: every router scheduled to this host's L3 agent (``router_l3_agent_bindings``) that is
``admin_state_up`` (a router set down is not in the view: its namespace must go, as Neutron's L3
agent removes it), with

- ``gateway``: its gateway port (``network:router_gateway``, the ``qg-`` device) or None; its
  subnets carry the external subnets' ``gateway_ip`` (the default route's next hop);
- ``enable_snat``: ``external_gateway_info.enable_snat`` (False without a gateway);
- ``interfaces``: its interface ports (``network:router_interface``, the ``qr-`` devices), by id;
- ``routes``: its extra routes (``routes``), sorted;
- ``floating_ips``: the floating IPs associated through it (``router_id`` this router, a fixed
  port and address set), by id;
- ``status``/``status_reason`` of the router and ``status`` of each floating IP: what the server
  holds now. The agent reports a status only where what it built differs from these (level
  triggered: a status the server resets, e.g. a floating IP moved to another port and DOWN until
  wired again, is reported again by the agent's next run, which the changed view starts).

Every port carries its network's MTU and, for each fixed IP, the subnet it is on (CIDR, gateway,
IPv6 modes), so the agent knows each address's prefix length and the router advertisements to send.

``etag`` is a digest of everything but ``seq`` and ``etag``, as in ``baryon.model.host``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from baryon.model.etag import digest


@dataclass(frozen=True, order=True)
class RouterSubnet:
    id: str
    cidr: str
    ip_version: int
    gateway_ip: str | None = None
    ipv6_ra_mode: str | None = None  # slaac | dhcpv6-stateful | dhcpv6-stateless | None
    ipv6_address_mode: str | None = None


@dataclass(frozen=True, order=True)
class RouterPort:
    """A router's port: its ``qr-`` (interface) or ``qg-`` (gateway) device."""

    id: str
    network_id: str
    mac_address: str
    mtu: int
    fixed_ips: tuple[tuple[str, str], ...]  # (subnet id, address), in the port's order
    subnets: tuple[RouterSubnet, ...] = ()  # the subnets of its fixed IPs, sorted by id

    def subnet(self, subnet_id: str) -> RouterSubnet | None:
        return next((s for s in self.subnets if s.id == subnet_id), None)


@dataclass(frozen=True, order=True)
class Route:
    destination: str  # CIDR
    nexthop: str


@dataclass(frozen=True, order=True)
class FloatingIp:
    id: str
    floating_ip_address: str
    fixed_ip_address: str
    port_id: str  # the fixed port
    status: str = ""  # as the server holds it


@dataclass(frozen=True, order=True)
class Router:
    id: str
    enable_snat: bool = False
    gateway: RouterPort | None = None
    interfaces: tuple[RouterPort, ...] = ()  # sorted by id
    routes: tuple[Route, ...] = ()  # sorted
    floating_ips: tuple[FloatingIp, ...] = ()  # sorted by id
    status: str = ""  # as the server holds it
    status_reason: str = ""


@dataclass(frozen=True)
class L3View:
    host: str
    seq: int = 0
    routers: tuple[Router, ...] = ()  # sorted by id
    etag: str = field(default="", compare=False)

    def router(self, router_id: str) -> Router | None:
        return next((r for r in self.routers if r.id == router_id), None)

    def with_etag(self) -> L3View:
        return replace(self, etag=digest(self))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> L3View:
        return cls(host=data["host"], seq=int(data.get("seq", 0)), etag=data.get("etag", ""),
                   routers=tuple(_router(r) for r in data.get("routers", ())))


def _port(data: dict[str, Any]) -> RouterPort:
    return RouterPort(id=data["id"], network_id=data["network_id"], mac_address=data["mac_address"],
                      mtu=int(data["mtu"]),
                      fixed_ips=tuple(tuple(ip) for ip in data.get("fixed_ips", ())),  # type: ignore[misc]
                      subnets=tuple(RouterSubnet(**s) for s in data.get("subnets", ())))


def _router(data: dict[str, Any]) -> Router:
    gateway = data.get("gateway")
    return Router(id=data["id"], enable_snat=bool(data.get("enable_snat", False)),
                  gateway=_port(gateway) if gateway else None,
                  interfaces=tuple(_port(p) for p in data.get("interfaces", ())),
                  routes=tuple(Route(**r) for r in data.get("routes", ())),
                  floating_ips=tuple(FloatingIp(**f) for f in data.get("floating_ips", ())),
                  status=data.get("status", ""), status_reason=data.get("status_reason") or "")
