"""Scheduling bindings: which DHCP agents serve a network, which L3 agent hosts a router.

Rows: ``network_dhcp_agent_bindings`` (network, DHCP agent) and ``router_l3_agent_bindings``
(router, L3 agent). Every binding added or removed goes to the change log, so that an agent
watching the log learns what was placed on, or taken off, its host:

- resource type ``network_dhcp_agent_binding`` (resource id: the network) or
  ``router_l3_agent_binding`` (resource id: the router);
- action ``create`` or ``delete``;
- body ``{"network_id" | "router_id", "agent_id", "host"}``.

The database cascades these rows when their network, router or agent goes; the ``unbind_*``
helpers remove them first, so that the log says so. Callers hold the transaction
(``Env.write``); nothing here checks policy.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from baryon.db import models as m
from baryon.service import feed

DHCP = "network_dhcp_agent_binding"
L3 = "router_l3_agent_binding"


def bind_network(session: Session, network_id: str, agent: m.Agent) -> None:
    session.add(m.NetworkDhcpAgentBinding(network_id=network_id, dhcp_agent_id=agent.id))
    feed.record(session, DHCP, "create", {"network_id": network_id, "agent_id": agent.id, "host": agent.host},
                resource_id=network_id)


def bind_router(session: Session, router_id: str, agent: m.Agent) -> None:
    session.add(m.RouterL3AgentBinding(router_id=router_id, l3_agent_id=agent.id))
    feed.record(session, L3, "create", {"router_id": router_id, "agent_id": agent.id, "host": agent.host},
                resource_id=router_id)


def unbind_network(session: Session, network_id: str, agent_id: str | None = None) -> int:
    """Remove the network's DHCP bindings (to ``agent_id`` only, when given); returns how many."""
    stmt = (select(m.NetworkDhcpAgentBinding, m.Agent.host)
            .join(m.Agent, m.Agent.id == m.NetworkDhcpAgentBinding.dhcp_agent_id)
            .where(m.NetworkDhcpAgentBinding.network_id == network_id))
    if agent_id is not None:
        stmt = stmt.where(m.NetworkDhcpAgentBinding.dhcp_agent_id == agent_id)
    return _remove(session, DHCP, "network_id", [(b, b.network_id, b.dhcp_agent_id, host)
                                                 for b, host in session.execute(stmt)])


def unbind_router(session: Session, router_id: str, agent_id: str | None = None) -> int:
    """Remove the router's L3 bindings (to ``agent_id`` only, when given); returns how many."""
    stmt = (select(m.RouterL3AgentBinding, m.Agent.host)
            .join(m.Agent, m.Agent.id == m.RouterL3AgentBinding.l3_agent_id)
            .where(m.RouterL3AgentBinding.router_id == router_id))
    if agent_id is not None:
        stmt = stmt.where(m.RouterL3AgentBinding.l3_agent_id == agent_id)
    return _remove(session, L3, "router_id", [(b, b.router_id, b.l3_agent_id, host)
                                             for b, host in session.execute(stmt)])


def unbind_agent(session: Session, agent: m.Agent) -> None:
    """Remove every binding of the agent (it is being deleted)."""
    dhcp = session.execute(select(m.NetworkDhcpAgentBinding)
                           .where(m.NetworkDhcpAgentBinding.dhcp_agent_id == agent.id)).scalars().all()
    _remove(session, DHCP, "network_id", [(b, b.network_id, agent.id, agent.host) for b in dhcp])
    l3 = session.execute(select(m.RouterL3AgentBinding)
                         .where(m.RouterL3AgentBinding.l3_agent_id == agent.id)).scalars().all()
    _remove(session, L3, "router_id", [(b, b.router_id, agent.id, agent.host) for b in l3])


def _remove(session: Session, kind: str, key: str, found: list[tuple[object, str, str, str]]) -> int:
    """Delete the bindings now (flushed), not at the end of the transaction: a binding has no ORM
    relationship to its router, network or agent, so the unit of work would otherwise be free to
    delete the parent first and the database's ON DELETE CASCADE would take the binding before
    the ORM's own DELETE of it (SQLAlchemy's "expected to delete 1 row(s); 0 were matched")."""
    for binding, resource_id, agent_id, host in found:
        session.delete(binding)
        feed.record(session, kind, "delete", {key: resource_id, "agent_id": agent_id, "host": host},
                    resource_id=resource_id)
    if found:
        session.flush()
    return len(found)
