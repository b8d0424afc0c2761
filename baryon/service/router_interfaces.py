"""Router interfaces: ``add_router_interface`` and ``remove_router_interface``, Neutron's rules.

Called by ``routers.Routers`` with the router row already locked (``SELECT ... FOR UPDATE``), in
its transaction: two concurrent adds of one subnet run one after the other, and the second sees
the first's interface (400 "Router already has a port on subnet").

Add by subnet: a new port holding the subnet's ``gateway_ip`` (device_owner
``network:router_interface``, the router's project); an IPv6 subnet joins the router's existing
IPv6 interface on the same network instead, as Neutron's multi-prefix ports. Add by port: the
port (without a device, with fixed IPs) becomes the router's. A router never gets two interfaces
on one subnet, nor subnets whose CIDRs overlap (the gateway's network counts).
Remove by port or by subnet: refused while a floating IP or a route needs the subnet (409).
The result is Neutron's interface info: ``id`` (the router), ``tenant_id``/``project_id`` (the
port's), ``port_id``, ``network_id``, ``subnet_id``, ``subnet_ids``.
"""

from __future__ import annotations

import ipaddress

from sqlalchemy import select
from sqlalchemy.orm import Session

from baryon.db import models as m
from baryon.service import errors, l3, l3ports, ports as ports_service, subnets as subnets_service
from baryon.service.base import Env
from baryon.service.context import Context
from baryon.service.subnets import pools_of


def _bad(msg: str) -> errors.BadRequest:
    return errors.BadRequest(resource="router", msg=msg)


def ports_of(session: Session, router: m.Router) -> list[m.Port]:
    """The router's ports (interfaces and gateway), in a stable order."""
    ids = [rp.port_id for rp in router.ports]
    if not ids:
        return []
    return list(session.execute(select(m.Port).where(m.Port.id.in_(ids)).order_by(m.Port.created_at, m.Port.id))
                .scalars())


def _is_v6(address: str) -> bool:
    return ipaddress.ip_address(address).version == 6


def check_subnets_free(session: Session, ports: list[m.Port], new: list[m.Subnet]) -> None:
    """Neutron's ``_check_for_dup_router_subnets``: no second port on a subnet, no overlapping
    CIDRs among the router's subnets (all of the gateway network's subnets count)."""
    new_ids = {s.id for s in new}
    attached: list[str] = []
    for port in ports:
        for address in port.fixed_ips:
            if address.subnet_id in new_ids:
                raise _bad(f"Router already has a port on subnet {address.subnet_id}")
            if port.device_owner == l3.ROUTER_GATEWAY:
                attached.extend(session.execute(select(m.Subnet.id).where(
                    m.Subnet.network_id == port.network_id)).scalars())
            else:
                attached.append(address.subnet_id)
    if not attached:
        return
    existing = session.execute(select(m.Subnet.id, m.Subnet.cidr).where(
        m.Subnet.id.in_(list(dict.fromkeys(attached)))).order_by(m.Subnet.created_at, m.Subnet.id)).all()
    for sub_id, cidr in existing:
        for subnet in new:
            a, b = ipaddress.ip_network(cidr), ipaddress.ip_network(subnet.cidr)
            if a.version == b.version and a.overlaps(b):
                raise _bad(f"Cidr {subnet.cidr} of subnet {subnet.id} overlaps with cidr {cidr} of subnet {sub_id}")


def _subnets_of(session: Session, port: m.Port) -> list[m.Subnet]:
    """The subnets of the port's addresses, in the order of its addresses."""
    subnets = [session.get(m.Subnet, a.subnet_id) for a in port.fixed_ips]
    return [s for s in subnets if s is not None]  # an address references its subnet


def _check_address_mode(subnet: m.Subnet) -> None:
    if subnet.ip_version == 6 and subnet.ipv6_ra_mode is None and subnet.ipv6_address_mode is not None:
        raise _bad(f"IPv6 subnet {subnet.id} configured to receive RAs from an external router cannot be added "
                   f"to Neutron Router.")


def _info(router: m.Router, project_id: str, port_id: str, network_id: str, subnet_id: str,
          subnet_ids: list[str]) -> dict:
    return {"id": router.id, "tenant_id": project_id, "project_id": project_id, "port_id": port_id,
            "network_id": network_id, "subnet_id": subnet_id, "subnet_ids": subnet_ids}


# ---------------------------------------------------------------- add


def add(env: Env, session: Session, ctx: Context, router: m.Router, info: dict, host: str = "") -> dict:
    """``host``: where the router's L3 agent is (a new interface port is created bound there; a
    port attached by id is moved there by the scheduler)."""
    if "port_id" in info:
        port, subnets = _add_port(env, session, ctx, router, info["port_id"])
    else:
        port, subnets = _add_subnet(env, session, ctx, router, info["subnet_id"], host)
    return _info(router, port.project_id, port.id, port.network_id, subnets[-1].id, [s.id for s in subnets])


def _add_subnet(env: Env, session: Session, ctx: Context, router: m.Router,
                subnet_id: str, host: str) -> tuple[m.Port, list[m.Subnet]]:
    subnet = subnets_service.load_visible(session, ctx, subnet_id)
    session.refresh(subnet, with_for_update=True)  # its gateway_ip holds still until this commits (subnets)
    if not subnet.gateway_ip:
        raise _bad("Subnet for router interface must have a gateway IP")
    if subnet.project_id != ctx.project_id and not ctx.is_admin:
        raise _bad(f"Cannot add interface to router because subnet {subnet_id} is not owned by project making "
                   f"the request")
    _check_address_mode(subnet)
    ports = ports_of(session, router)
    check_subnets_free(session, ports, [subnet])
    wanted = {"subnet_id": subnet.id, "ip_address": subnet.gateway_ip}
    if subnet.ip_version == 6:
        for port in ports:
            if (port.device_owner == l3.ROUTER_INTERFACE and port.network_id == subnet.network_id
                    and any(_is_v6(a.ip_address) for a in port.fixed_ips)):
                held = [{"subnet_id": a.subnet_id, "ip_address": a.ip_address} for a in port.fixed_ips]
                l3ports.readdress(env, session, port, held + [wanted])
                return port, [subnet]
    port = l3ports.create(env, session, network_id=subnet.network_id, project_id=router.project_id,
                          device_id=router.id, device_owner=l3.ROUTER_INTERFACE, fixed_ips=[wanted], host=host)
    router.ports.append(m.RouterPort(router_id=router.id, port_id=port.id, port_type=l3.ROUTER_INTERFACE))
    return port, [subnet]


def _add_port(env: Env, session: Session, ctx: Context, router: m.Router,
              port_id: str) -> tuple[m.Port, list[m.Subnet]]:
    ports_service.load_visible(session, ctx, port_id)
    port = session.execute(select(m.Port).where(m.Port.id == port_id).with_for_update()
                           .execution_options(populate_existing=True)).scalar_one_or_none()
    if port is None:  # deleted while we waited for its lock
        raise errors.PortNotFound(port_id=port_id)
    if port.device_id:
        raise errors.PortInUse(port_id=port.id, net_id=port.network_id, device_id=port.device_id)
    if not port.fixed_ips:
        raise _bad("Router port must have at least one fixed IP")
    subnets = _subnets_of(session, port)
    for subnet in subnets:
        _check_address_mode(subnet)
    ports = ports_of(session, router)
    if any(_is_v6(a.ip_address) for a in port.fixed_ips):
        for other in ports:
            if other.network_id == port.network_id and any(_is_v6(a.ip_address) for a in other.fixed_ips):
                raise _bad(f"Router already contains IPv6 port {other.id} belonging to network id "
                           f"{other.network_id}. Only one IPv6 port from the same network subnet can be "
                           f"connected to a router.")
    check_subnets_free(session, ports, subnets)
    if len([s for s in subnets if s.ip_version == 4]) > 1:
        raise _bad("Cannot have multiple IPv4 subnets on router port")
    if not ctx.is_admin:
        for address, subnet in zip(port.fixed_ips, subnets):
            ip = ipaddress.ip_address(address.ip_address)
            inside = any(first <= ip <= last for first, last in pools_of(subnet))
            if not inside and subnet.project_id != ctx.project_id:
                raise _bad(f"Cannot add interface to router because specified port {port.id} has an IP address "
                           f"out of the allocation pool of subnet {subnet.id}, which is not owned by the "
                           f"project making the request")
    port.device_id, port.device_owner = router.id, l3.ROUTER_INTERFACE
    router.ports.append(m.RouterPort(router_id=router.id, port_id=port.id, port_type=l3.ROUTER_INTERFACE))
    l3ports.changed(env, session, port)
    return port, subnets


# ---------------------------------------------------------------- remove


def confirm_not_in_use(session: Session, router: m.Router, subnet: m.Subnet) -> None:
    """An interface stays while a floating IP reaches a port on its subnet through this router,
    or a route's nexthop is on its subnet."""
    net = ipaddress.ip_network(subnet.cidr)
    on_subnet = select(m.IPAllocation.port_id).where(m.IPAllocation.subnet_id == subnet.id)
    for address in session.execute(select(m.FloatingIP.fixed_ip_address).where(
            m.FloatingIP.router_id == router.id, m.FloatingIP.fixed_ip_address.is_not(None),
            m.FloatingIP.fixed_port_id.in_(on_subnet))).scalars():
        if ipaddress.ip_address(address) in net:
            raise errors.RouterInterfaceInUseByFloatingIP(router_id=router.id, subnet_id=subnet.id)
    for route in router.routes:
        if ipaddress.ip_address(route.nexthop) in net:
            raise errors.RouterInterfaceInUseByRoute(router_id=router.id, subnet_id=subnet.id)


def remove(env: Env, session: Session, ctx: Context, router: m.Router, info: dict) -> dict:
    if "port_id" in info:
        return _remove_port(env, session, router, info["port_id"], info.get("subnet_id"))
    return _remove_subnet(env, session, ctx, router, info["subnet_id"])


def _detach(env: Env, session: Session, router: m.Router, port: m.Port) -> None:
    for rp in [rp for rp in router.ports if rp.port_id == port.id]:
        router.ports.remove(rp)
    session.flush()
    l3ports.delete(env, session, port)


def _remove_port(env: Env, session: Session, router: m.Router, port_id: str, subnet_id: str | None) -> dict:
    if not any(rp.port_id == port_id and rp.port_type == l3.ROUTER_INTERFACE for rp in router.ports):
        raise errors.RouterInterfaceNotFound(router_id=router.id, port_id=port_id)
    port = session.get(m.Port, port_id)
    assert port is not None  # router_ports.port_id references it
    subnet_ids = [a.subnet_id for a in port.fixed_ips]
    if subnet_id and subnet_id not in subnet_ids:
        raise errors.SubnetMismatchForPort(port_id=port_id, subnet_id=subnet_id)
    for subnet in _subnets_of(session, port):
        confirm_not_in_use(session, router, subnet)
    result = _info(router, port.project_id, port.id, port.network_id, subnet_ids[0], subnet_ids)
    _detach(env, session, router, port)
    return result


def _remove_subnet(env: Env, session: Session, ctx: Context, router: m.Router, subnet_id: str) -> dict:
    subnet = subnets_service.load_visible(session, ctx, subnet_id)
    interfaces = [p for p in ports_of(session, router)
                  if p.device_owner == l3.ROUTER_INTERFACE and p.network_id == subnet.network_id]
    if interfaces:
        confirm_not_in_use(session, router, subnet)
    for port in interfaces:
        held = [a for a in port.fixed_ips]
        if subnet_id not in {a.subnet_id for a in held}:
            continue
        result = _info(router, port.project_id, port.id, port.network_id, subnet.id, [subnet.id])
        if len(held) > 1:  # a multi-prefix IPv6 port loses this prefix only
            l3ports.readdress(env, session, port, [{"subnet_id": a.subnet_id, "ip_address": a.ip_address}
                                                   for a in held if a.subnet_id != subnet_id])
        else:
            _detach(env, session, router, port)
        return result
    raise errors.RouterInterfaceNotFoundForSubnet(router_id=router.id, subnet_id=subnet_id)
