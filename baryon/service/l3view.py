"""L3 views: what one host's L3 agent needs, computed from the database.

``compute(session, host)`` builds the ``baryon.model.l3.L3View`` of ``host`` exactly as that
module documents it, with ``etag`` set:

- ``routers``: the routers bound to the L3 agent of ``host`` (``router_l3_agent_bindings``,
  whatever the agent's state: a disabled or silent agent keeps what it hosts until the scheduler
  moves it, as Neutron's) that are ``admin_state_up``;
- per router: its gateway port (``routers.gw_port_id``) and ``enable_snat`` (False without a
  gateway); its interface ports (``router_ports`` of type ``network:router_interface``); its extra
  routes; its floating IPs that have a fixed port and address (``floatingips.router_id``);
- per port: its network's MTU, its fixed IPs in the port's order (``ipallocations.position``) and
  the subnets they are on, sorted by id.

A constant number of queries (8 with routers to serve, 2 without), whatever the number of
routers, ports and floating IPs: everything is selected through the host's bindings, never one
query per row. Consistency as ``hostview``: ``seq`` is read first, in the same read transaction,
so the view reflects at least ``seq``.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from baryon.db import models as m
from baryon.model import l3 as lm
from baryon.service import feed
from baryon.service.agents import AGENT_TYPE_L3
from baryon.service.l3 import ROUTER_INTERFACE

_B, _R, _RP, _P, _IP, _S = m.RouterL3AgentBinding, m.Router, m.RouterPort, m.Port, m.IPAllocation, m.Subnet


def _hosted(host: str) -> Select:
    """The ids of the routers in the view: bound to the host's L3 agent, and up."""
    return (select(_B.router_id).join(m.Agent, m.Agent.id == _B.l3_agent_id).join(_R, _R.id == _B.router_id)
            .where(m.Agent.agent_type == AGENT_TYPE_L3, m.Agent.host == host, _R.admin_state_up.is_(True)))


def compute(session: Session, host: str) -> lm.L3View:
    seq = feed.last_seq(session)  # NOTE: first (see the module doc)
    hosted = _hosted(host)
    routers = session.execute(select(_R.id, _R.enable_snat, _R.gw_port_id, _R.status, _R.status_reason)
                              .where(_R.id.in_(hosted))).all()
    if not routers:
        return lm.L3View(host=host, seq=seq).with_etag()
    ports = _ports(session, hosted)
    interfaces: dict[str, list[lm.RouterPort]] = defaultdict(list)
    for router_id, port_id, port_type in session.execute(
            select(_RP.router_id, _RP.port_id, _RP.port_type).where(_RP.router_id.in_(hosted))):
        if port_type == ROUTER_INTERFACE and port_id in ports:
            interfaces[router_id].append(ports[port_id])
    routes: dict[str, list[lm.Route]] = defaultdict(list)
    for router_id, destination, nexthop in session.execute(
            select(m.RouterRoute.router_id, m.RouterRoute.destination, m.RouterRoute.nexthop)
            .where(m.RouterRoute.router_id.in_(hosted))):
        routes[router_id].append(lm.Route(destination, nexthop))
    fips: dict[str, list[lm.FloatingIp]] = defaultdict(list)
    f_ = m.FloatingIP
    for fip in session.execute(select(f_.id, f_.router_id, f_.floating_ip_address, f_.fixed_ip_address,
                                      f_.fixed_port_id, f_.status).where(f_.router_id.in_(hosted), f_.fixed_port_id.is_not(None),
                                                              f_.fixed_ip_address.is_not(None))):
        fips[fip.router_id].append(lm.FloatingIp(id=fip.id, floating_ip_address=fip.floating_ip_address,
                                                 fixed_ip_address=fip.fixed_ip_address, port_id=fip.fixed_port_id,
                                                 status=fip.status))
    result = []
    for r in sorted(routers, key=lambda r: r.id):
        gateway = ports.get(r.gw_port_id) if r.gw_port_id else None
        result.append(lm.Router(
            id=r.id, enable_snat=bool(r.enable_snat) and gateway is not None, gateway=gateway,
            interfaces=tuple(sorted(interfaces[r.id], key=lambda p: p.id)), routes=tuple(sorted(routes[r.id])),
            floating_ips=tuple(sorted(fips[r.id], key=lambda f: f.id)), status=r.status,
            status_reason=r.status_reason or ""))
    return lm.L3View(host=host, seq=seq, routers=tuple(result)).with_etag()


def _ports(session: Session, hosted: Select) -> dict[str, lm.RouterPort]:
    """Every port of the hosted routers (gateways and interfaces), by id."""
    of_routers = select(_RP.port_id).where(_RP.router_id.in_(hosted))
    ips: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for port_id, subnet_id, address in session.execute(
            select(_IP.port_id, _IP.subnet_id, _IP.ip_address).where(_IP.port_id.in_(of_routers))
            .order_by(_IP.port_id, _IP.position)):
        ips[port_id].append((subnet_id, address))
    subnets = {s.id: lm.RouterSubnet(id=s.id, cidr=s.cidr, ip_version=s.ip_version, gateway_ip=s.gateway_ip,
                                     ipv6_ra_mode=s.ipv6_ra_mode, ipv6_address_mode=s.ipv6_address_mode)
               for s in session.execute(select(_S.id, _S.cidr, _S.ip_version, _S.gateway_ip, _S.ipv6_ra_mode,
                                               _S.ipv6_address_mode).where(_S.id.in_(
                                                   select(_IP.subnet_id).where(_IP.port_id.in_(of_routers)))))}
    rows = session.execute(select(_P.id, _P.network_id, _P.mac_address, m.Network.mtu)
                           .join(m.Network, m.Network.id == _P.network_id).where(_P.id.in_(of_routers))).all()
    result = {}
    for r in rows:
        held = tuple(ips.get(r.id, ()))
        result[r.id] = lm.RouterPort(
            id=r.id, network_id=r.network_id, mac_address=r.mac_address, mtu=r.mtu, fixed_ips=held,
            subnets=tuple(sorted({subnets[s] for s, _a in held if s in subnets}, key=lambda s: s.id)))
    return result
