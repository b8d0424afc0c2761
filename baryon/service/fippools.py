"""Floating IP pools: Neutron's floatingip-pools extension (``l3_fip_pools_db.FloatingIPPoolsDbMixin``).

A pool is an IPv4 subnet of an external network (Baryon has no fip64: IPv6 subnets are no pool).
Every caller sees every pool: external networks are reachable by all projects, and Neutron reads
their subnets with an elevated context. Each entry: ``subnet_id``, ``subnet_name``, ``network_id``,
``cidr``, and ``project_id``/``tenant_id``, which Neutron sets to the *caller's* project.
``filters`` (``network_id``, ``subnet_id``, ``subnet_name``, ``cidr``: lists of "any of" values)
narrow the list. NOTE: Neutron's plugin accepts these filters but ignores them (it lists every
pool); Baryon applies them, which a client filtering expects and one not filtering cannot tell.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from baryon.db import models as m
from baryon.service.base import Env
from baryon.service.context import Context

FILTERS = {"network_id": m.Subnet.network_id, "subnet_id": m.Subnet.id, "subnet_name": m.Subnet.name,
           "cidr": m.Subnet.cidr}


class FloatingIPPools:
    def __init__(self, env: Env):
        self.env = env

    def list(self, ctx: Context, filters: dict[str, list[Any]]) -> list[dict]:
        stmt = (select(m.Subnet.id, m.Subnet.name, m.Subnet.network_id, m.Subnet.cidr)
                .join(m.Network, m.Network.id == m.Subnet.network_id)
                .where(m.Network.router_external.is_(True), m.Subnet.ip_version == 4))
        for key, values in filters.items():
            stmt = stmt.where(FILTERS[key].in_(values))
        with self.env.db.read() as session:
            rows = list(session.execute(stmt.order_by(m.Subnet.id)))
        return [{"subnet_id": r.id, "subnet_name": r.name, "network_id": r.network_id, "cidr": r.cidr,
                 "tenant_id": ctx.project_id, "project_id": ctx.project_id} for r in rows]
