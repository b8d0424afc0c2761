"""DHCP views: what one host's DHCP agent needs, computed from the database.

``compute(session, host, options)`` builds the ``baryon.model.dhcp.DhcpView`` of ``host``
exactly as that module documents it, with ``etag`` set:

- ``networks``: the networks bound to the DHCP agent of ``host`` (``network_dhcp_agent_bindings``,
  whatever the agent's state: a disabled or silent agent keeps serving what it has, as Neutron's)
  that have at least one subnet with ``enable_dhcp`` and are ``admin_state_up`` (Neutron's DHCP
  agent serves no network an admin has set down); each with its MTU and ``dns_domain`` (the
  network's own, else ``[DEFAULT] dns_domain``);
- per network, ``subnets``: all of them (DHCP or not), their DNS servers and host routes in the
  subnet's order; ``ports``: every port with fixed IPs, its fixed IPs, its ``extra_dhcp_opts`` (in
  the port's order) and its hostname: its ``dns_name`` when set, else Neutron's ``host-`` + its
  first fixed IP (in the port's order) with ``.`` and ``:`` turned into ``-`` (``host-10-0-0-5``);
  ``dhcp_port``: the port of ``device_owner`` ``network:dhcp`` and ``device_id``
  ``dhcpscheduler.device_id(host, network)``, if the server has made it;
- ``lease_duration``: ``[DEFAULT] dhcp_lease_duration`` (-1: infinite).

A constant number of queries (8 with networks to serve, 2 without), whatever the number of
networks and ports: everything is selected through the host's bindings, never one query per row.
Consistency as ``hostview``: ``seq`` is read first, in the same read transaction, so the view
reflects at least ``seq``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from baryon.config import Settings
from baryon.db import models as m
from baryon.model import dhcp as dm
from baryon.service import feed
from baryon.service.agents import AGENT_TYPE_DHCP
from baryon.service.dhcpscheduler import DEVICE_OWNER, device_id

_B, _S, _P, _IP = m.NetworkDhcpAgentBinding, m.Subnet, m.Port, m.IPAllocation


@dataclass(frozen=True)
class Options:
    lease_duration: int = 86400
    dns_domain: str = "openstacklocal"

    @classmethod
    def from_settings(cls, settings: Settings) -> Options:
        return cls(lease_duration=settings.DEFAULT.dhcp_lease_duration, dns_domain=settings.DEFAULT.dns_domain)


def hostname(dns_name: str, first_ip: str) -> str:
    """The name dnsmasq gives a port: its ``dns_name``, else Neutron's ``host-10-0-0-5``."""
    return dns_name or "host-" + first_ip.replace(".", "-").replace(":", "-")


def _served(host: str) -> Select:
    """The ids of the networks in the view: bound to the host's DHCP agent, up, with a DHCP subnet."""
    bound = (select(_B.network_id).join(m.Agent, m.Agent.id == _B.dhcp_agent_id)
             .join(m.Network, m.Network.id == _B.network_id)
             .where(m.Agent.agent_type == AGENT_TYPE_DHCP, m.Agent.host == host, m.Network.admin_state_up.is_(True)))
    return select(_S.network_id).where(_S.enable_dhcp.is_(True), _S.network_id.in_(bound)).distinct()


def compute(session: Session, host: str, options: Options = Options()) -> dm.DhcpView:
    seq = feed.last_seq(session)  # NOTE: first (see the module doc)
    served = _served(host)
    networks = session.execute(select(m.Network.id, m.Network.mtu, m.Network.dns_domain)
                               .where(m.Network.id.in_(served))).all()
    if not networks:
        return dm.DhcpView(host=host, seq=seq, lease_duration=options.lease_duration).with_etag()
    subnets = _subnets(session, served)
    ports: dict[str, list[dm.DhcpPort]] = defaultdict(list)
    dhcp_ports: dict[str, dm.DhcpPort] = {}
    for row, port in _ports(session, served):
        ports[row.network_id].append(port)
        if row.device_owner == DEVICE_OWNER and row.device_id == device_id(host, row.network_id):
            dhcp_ports[row.network_id] = port
    return dm.DhcpView(host=host, seq=seq, lease_duration=options.lease_duration, networks=tuple(
        dm.DhcpNetwork(id=n.id, mtu=n.mtu, dns_domain=n.dns_domain or options.dns_domain,
                       subnets=tuple(sorted(subnets[n.id])), ports=tuple(sorted(ports[n.id])),
                       dhcp_port=dhcp_ports.get(n.id))
        for n in sorted(networks, key=lambda n: n.id))).with_etag()


def _subnets(session: Session, served: Select) -> dict[str, list[dm.DhcpSubnet]]:
    servers: dict[str, list[str]] = defaultdict(list)
    for subnet_id, address in session.execute(
            select(m.DnsNameserver.subnet_id, m.DnsNameserver.address).join(_S, _S.id == m.DnsNameserver.subnet_id)
            .where(_S.network_id.in_(served)).order_by(m.DnsNameserver.subnet_id, m.DnsNameserver.position)):
        servers[subnet_id].append(address)
    routes: dict[str, list[dm.HostRoute]] = defaultdict(list)
    for subnet_id, destination, nexthop in session.execute(
            select(m.HostRoute.subnet_id, m.HostRoute.destination, m.HostRoute.nexthop)
            .join(_S, _S.id == m.HostRoute.subnet_id).where(_S.network_id.in_(served))
            .order_by(m.HostRoute.subnet_id, m.HostRoute.position)):
        routes[subnet_id].append(dm.HostRoute(destination, nexthop))
    result: dict[str, list[dm.DhcpSubnet]] = defaultdict(list)
    for r in session.execute(select(_S.id, _S.network_id, _S.cidr, _S.ip_version, _S.enable_dhcp, _S.gateway_ip,
                                    _S.ipv6_address_mode, _S.ipv6_ra_mode).where(_S.network_id.in_(served))):
        result[r.network_id].append(dm.DhcpSubnet(
            id=r.id, cidr=r.cidr, ip_version=r.ip_version, enable_dhcp=r.enable_dhcp, gateway_ip=r.gateway_ip,
            dns_nameservers=tuple(servers.get(r.id, ())), host_routes=tuple(routes.get(r.id, ())),
            ipv6_address_mode=r.ipv6_address_mode, ipv6_ra_mode=r.ipv6_ra_mode))
    return result


def _ports(session: Session, served: Select) -> list[tuple]:
    """(row, ``DhcpPort``) of every port of the served networks that has a fixed IP."""
    ips: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for port_id, subnet_id, address in session.execute(
            select(_IP.port_id, _IP.subnet_id, _IP.ip_address).where(_IP.network_id.in_(served))
            .order_by(_IP.port_id, _IP.position)):
        ips[port_id].append((subnet_id, address))
    opts: dict[str, list[dm.DhcpOption]] = defaultdict(list)
    o_ = m.ExtraDhcpOpt
    for port_id, name, value, version in session.execute(
            select(o_.port_id, o_.opt_name, o_.opt_value, o_.ip_version).join(_P, _P.id == o_.port_id)
            .where(_P.network_id.in_(served)).order_by(o_.port_id, o_.position)):
        opts[port_id].append(dm.DhcpOption(name, value, version))
    rows = session.execute(select(_P.id, _P.network_id, _P.mac_address, _P.device_owner, _P.device_id, _P.dns_name)
                           .where(_P.network_id.in_(served))).all()
    return [(r, dm.DhcpPort(id=r.id, mac_address=r.mac_address, fixed_ips=tuple(sorted(ips[r.id])),
                            hostname=hostname(r.dns_name, ips[r.id][0][1]), device_owner=r.device_owner,
                            extra_dhcp_opts=tuple(opts.get(r.id, ()))))
            for r in rows if ips.get(r.id)]
