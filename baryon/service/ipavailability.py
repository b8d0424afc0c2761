"""IP availability per network and subnet: Neutron's network-ip-availability extension, with its
network-ip-availability-details attribute.

Read-only, computed from the subnets, their allocation pools and the IP allocations of ports, in
one read transaction. As Neutron's ``IpAvailabilityMixin`` (``neutron/db/network_ip_availability_db.py``)
and ``IpAvailabilityDetailsDbMixin``:

- a subnet's ``total_ips`` is the sum of its allocation pools' sizes, or the size of its CIDR when
  it has no pool; its ``used_ips`` counts every address allocated on it, inside a pool or not;
- a network's ``total_ips`` and ``used_ips`` are its subnets' sums (0 without a subnet);
- ``ip_availability_details`` (subnet and network): ``total_ips_in_subnet`` (the CIDR's size,
  less the network and broadcast addresses for IPv4), ``total_ips_in_allocation_pool`` (0 without a
  pool), ``used_ips_in_subnet`` and ``used_ips_in_allocation_pool`` (addresses inside a pool);
- filters: ``network_id``, ``network_name``, ``project_id``/``tenant_id`` (the network's) and
  ``ip_version``, which keeps only the subnets of that version and drops the networks without one
  (Neutron filters its outer-joined query on the subnet's version);
- Neutron's policy is admin only, for every network: a listing by anyone else is empty and a
  show is refused with ``PolicyNotAuthorized`` (the API answers 404, as Neutron's show does). A
  network that does not exist is ``NetworkNotFound``.

NOTE: totals can exceed 64 bits (two IPv6 /64 pools already do): callers must serialise them
with a JSON encoder that takes Python integers of any size.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from baryon.db import models as m
from baryon.service import errors
from baryon.service.base import Env
from baryon.service.context import Context

# filter -> network column; ip_version is applied to the subnets
NETWORK_FILTERS = {"network_id": m.Network.id, "network_name": m.Network.name,
                   "project_id": m.Network.project_id, "tenant_id": m.Network.project_id}
FILTERS = frozenset(NETWORK_FILTERS) | {"ip_version"}


def _details() -> dict[str, int]:
    return {"total_ips_in_subnet": 0, "total_ips_in_allocation_pool": 0,
            "used_ips_in_subnet": 0, "used_ips_in_allocation_pool": 0}


def subnet_availability(subnet: m.Subnet, pools: list[tuple[str, str]], addresses: Iterable[str]) -> dict:
    """One ``subnet_ip_availability`` entry (pure): ``pools`` as (first_ip, last_ip)."""
    network = ipaddress.ip_network(subnet.cidr, strict=False)
    ranges = [(int(ipaddress.ip_address(first)), int(ipaddress.ip_address(last))) for first, last in pools]
    in_pools = sum(last - first + 1 for first, last in ranges)
    used = used_in_pools = 0
    for address in addresses:
        used += 1
        value = int(ipaddress.ip_address(address))
        used_in_pools += sum(1 for first, last in ranges if first <= value <= last)
    in_subnet = network.num_addresses - (2 if subnet.ip_version == 4 else 0)
    return {
        "subnet_id": subnet.id, "ip_version": subnet.ip_version, "cidr": subnet.cidr, "subnet_name": subnet.name,
        "used_ips": used, "total_ips": in_pools if ranges else network.num_addresses,
        "ip_availability_details": {"total_ips_in_subnet": max(in_subnet, 0), "total_ips_in_allocation_pool": in_pools,
                                    "used_ips_in_subnet": used, "used_ips_in_allocation_pool": used_in_pools},
    }


class IpAvailability:
    def __init__(self, env: Env):
        self.env = env

    def list(self, ctx: Context, filters: dict[str, list[Any]]) -> list[dict]:
        if not ctx.is_admin:
            return []
        with self.env.db.read() as session:
            return self._compute(session, filters)

    def get(self, ctx: Context, network_id: str) -> dict:
        with self.env.db.read() as session:
            found = self._compute(session, {"network_id": [network_id]})
        if not found:
            raise errors.NetworkNotFound(net_id=network_id)
        if not ctx.is_admin:
            raise errors.PolicyNotAuthorized(rule="rule:get_network_ip_availability")
        return found[0]

    def _compute(self, session: Session, filters: dict[str, list[Any]]) -> list[dict]:
        nets = select(m.Network.id, m.Network.name, m.Network.project_id)
        for key, values in filters.items():
            if key in NETWORK_FILTERS:
                nets = nets.where(NETWORK_FILTERS[key].in_(values))
        networks = list(session.execute(nets.order_by(m.Network.id)))
        if not networks:
            return []
        # NOTE: subqueries, not lists of ids: a listing of every network stays one bounded statement.
        subnets = select(m.Subnet).where(m.Subnet.network_id.in_(nets.with_only_columns(m.Network.id)))
        if filters.get("ip_version"):
            subnets = subnets.where(m.Subnet.ip_version.in_(filters["ip_version"]))
        by_network: dict[str, list[m.Subnet]] = defaultdict(list)
        for subnet in session.execute(subnets.order_by(m.Subnet.id)).scalars():
            by_network[subnet.network_id].append(subnet)
        subnet_ids = subnets.with_only_columns(m.Subnet.id)
        pools: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for row in session.execute(select(m.AllocationPool.subnet_id, m.AllocationPool.first_ip,
                                          m.AllocationPool.last_ip).where(m.AllocationPool.subnet_id.in_(subnet_ids))):
            pools[row.subnet_id].append((row.first_ip, row.last_ip))
        addresses: dict[str, list[str]] = defaultdict(list)
        for row in session.execute(select(m.IPAllocation.subnet_id, m.IPAllocation.ip_address).where(
                m.IPAllocation.subnet_id.in_(subnet_ids))):
            addresses[row.subnet_id].append(row.ip_address)
        result = []
        for net in networks:
            if filters.get("ip_version") and not by_network.get(net.id):
                continue
            entries = [subnet_availability(s, pools[s.id], addresses[s.id]) for s in by_network.get(net.id, [])]
            details = _details()
            for entry in entries:
                for key, value in entry["ip_availability_details"].items():
                    details[key] += value
            result.append({
                "network_id": net.id, "network_name": net.name, "tenant_id": net.project_id,
                "project_id": net.project_id, "subnet_ip_availability": entries,
                "used_ips": sum(e["used_ips"] for e in entries), "total_ips": sum(e["total_ips"] for e in entries),
                "ip_availability_details": details,
            })
        return result
