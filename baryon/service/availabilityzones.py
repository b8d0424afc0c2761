"""Availability zones: Neutron's availability_zone extension (``agents_db.AgentAvailabilityZoneMixin``).

A zone is what agents report (``availability_zone`` in their state, from their ``[AGENT]
availability_zone``, ``nova`` by default): a zone of DHCP agents is a zone for networks, one of
L3 agents a zone for routers; other agents' zones are none. ``GET /v2.0/availability_zones``
lists each (name, resource) once, ``available`` when at least one of its agents is enabled
(``admin_state_up``), else ``unavailable``. As Neutron: every registered agent counts, alive
or not (a zone does not vanish while its agents restart), and any caller may list them.

Hints (``availability_zone_hints`` of networks and routers) must name zones that agents of the
matching type report, else 404 ``AvailabilityZoneNotFound`` (``validate``). A resource's
``availability_zones`` are the zones of the agents hosting it (``of_networks``, ``of_routers``):
the DHCP agents a network is scheduled to, the L3 agent a router is. NOTE: scheduling does not
follow hints, as with Neutron's default schedulers (``WeightScheduler``, ``LeastRoutersScheduler``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from baryon.db import models as m
from baryon.service import errors
from baryon.service.agents import AGENT_TYPE_DHCP, AGENT_TYPE_L3
from baryon.service.base import Env
from baryon.service.context import Context

# resource -> the agents whose zones are that resource's
AGENT_TYPES = {"network": AGENT_TYPE_DHCP, "router": AGENT_TYPE_L3}
RESOURCES = {agent_type: resource for resource, agent_type in AGENT_TYPES.items()}
FILTERS = ("name", "resource", "state")


def zones(rows: Iterable[tuple[str, str | None, bool]]) -> list[dict]:
    """Each (zone, resource) once from ``(agent_type, availability_zone, admin_state_up)`` rows,
    sorted by resource then name; agents without a zone or of another type give none."""
    enabled: dict[tuple[str, str], bool] = {}
    for agent_type, zone, admin_state_up in rows:
        resource = RESOURCES.get(agent_type)
        if resource is None or not zone:
            continue
        enabled[(resource, zone)] = enabled.get((resource, zone), False) or bool(admin_state_up)
    return [{"name": zone, "resource": resource, "state": "available" if up else "unavailable"}
            for (resource, zone), up in sorted(enabled.items())]


def matching(found: list[dict], filters: dict[str, list[Any]]) -> list[dict]:
    """``found`` narrowed by ``filters`` (each key: any of its values)."""
    return [z for z in found if all(z[key] in values for key, values in filters.items())]


def validate(session: Session, resource: str, hints: list[str]) -> None:
    """Every hint a zone that agents serving ``resource`` report, else 404 (the first unknown one)."""
    if not hints:
        return
    known = set(session.execute(select(m.Agent.availability_zone).where(
        m.Agent.agent_type == AGENT_TYPES[resource], m.Agent.availability_zone.in_(sorted(set(hints))))).scalars())
    for hint in hints:
        if hint not in known:
            raise errors.AvailabilityZoneNotFound(availability_zone=hint)


def _hosting(session: Session, key: Any, agent_key: Any, ids: list[str]) -> dict[str, list[str]]:
    result: dict[str, set[str]] = defaultdict(set)
    if ids:
        for rid, zone in session.execute(select(key, m.Agent.availability_zone)
                                         .join(m.Agent, m.Agent.id == agent_key).where(key.in_(ids))):
            if zone:
                result[rid].add(zone)
    return {rid: sorted(found) for rid, found in result.items()}


def of_networks(session: Session, network_ids: list[str]) -> dict[str, list[str]]:
    """network id -> the zones of the DHCP agents it is scheduled to (absent: none)."""
    b = m.NetworkDhcpAgentBinding
    return _hosting(session, b.network_id, b.dhcp_agent_id, network_ids)


def of_routers(session: Session, router_ids: list[str]) -> dict[str, list[str]]:
    """router id -> the zones of the L3 agents hosting it (absent: none)."""
    b = m.RouterL3AgentBinding
    return _hosting(session, b.router_id, b.l3_agent_id, router_ids)


def hints_of(text: str) -> list[str]:
    """A row's stored hints (comma-separated) as the API shows them."""
    return [z for z in text.split(",") if z]


class AvailabilityZones:
    def __init__(self, env: Env):
        self.env = env

    def list(self, _ctx: Context, filters: dict[str, list[Any]]) -> list[dict]:
        stmt = select(m.Agent.agent_type, m.Agent.availability_zone, m.Agent.admin_state_up).where(
            m.Agent.agent_type.in_(sorted(RESOURCES)), m.Agent.availability_zone.is_not(None))
        with self.env.db.read() as session:
            rows = [tuple(r) for r in session.execute(stmt)]
        return matching(zones(rows), filters)
