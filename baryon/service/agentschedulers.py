"""Where networks and routers are placed: Neutron's dhcp_agent_scheduler and l3_agent_scheduler.

Views (admin-only, as Neutron's policy: a non-admin gets 403 before anything is looked up):
- ``/v2.0/agents/{id}/dhcp-networks``: the networks a DHCP agent serves; add one (the agent must be
  an enabled DHCP agent, else ``InvalidDHCPAgent``, a 404; already served by it: 409); remove one
  (not served by it: 409). ``/v2.0/networks/{id}/dhcp-agents``: the DHCP agents serving a network
  (an unknown network simply has none, as in Neutron).
- ``/v2.0/agents/{id}/l3-routers``: the routers an L3 agent hosts; add one (an enabled L3 agent,
  else ``InvalidL3Agent``; a router is hosted by one agent: adding it to another is a 409, adding
  it again to the same one changes nothing); remove one (not hosted there: nothing to do, as in
  Neutron). ``/v2.0/routers/{id}/l3-agents``: the L3 agents hosting a router, with ``ha_state``
  (null: Baryon's routers are not HA).

A DHCP placement made or removed here brings or takes the agent's DHCP port, as the automatic
scheduler's (``dhcpscheduler``): an admin may place a network without DHCP subnets, which gets its
port when it gets one. A router placed or removed here takes its ports with it, to the agent's
host or to none, and goes ALLOCATING until that agent reports it (``l3scheduler``). As in
Neutron, a removal is not rescheduled.

Ordering: a router's binding is written with its router row locked (``FOR UPDATE``), so two
concurrent placements of one router cannot both succeed; a network's DHCP bindings and ports change
with its network row locked, as in ``dhcpscheduler``, and the (network, agent) primary key refuses
the same binding twice. The automatic L3 scheduler takes the same router lock.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from baryon.db import models as m
from baryon.service import agents, errors
from baryon.service.agents import AGENT_TYPE_DHCP, AGENT_TYPE_L3
from baryon.service.base import Env
from baryon.service.context import Context
from baryon.service.dhcpscheduler import DhcpScheduler, check_network
from baryon.service.l3scheduler import L3Scheduler

RenderRows = Callable[[Session, list], list[dict]]


def _admin(ctx: Context, action: str) -> None:
    if not ctx.is_admin:
        raise errors.PolicyNotAuthorized(rule=f"rule:{action}")


def _router(session: Session, router_id: str, *, for_update: bool = False) -> m.Router:
    stmt = select(m.Router).where(m.Router.id == router_id)
    row = session.execute(stmt.with_for_update() if for_update else stmt).scalar_one_or_none()
    if row is None:
        raise errors.RouterNotFound(router_id=router_id)
    return row


class AgentSchedulers:
    def __init__(self, env: Env, agents_service: agents.Agents, dhcp: DhcpScheduler, l3: L3Scheduler,
                 render_networks: RenderRows, render_routers: RenderRows):
        self.env = env
        self.agents = agents_service
        self.dhcp = dhcp
        self.l3 = l3
        self.render_networks = render_networks
        self.render_routers = render_routers

    def _hosting(self, session: Session, agent_ids: list[str]) -> list[m.Agent]:
        if not agent_ids:
            return []
        return list(session.execute(select(m.Agent).where(m.Agent.id.in_(agent_ids))
                                    .order_by(m.Agent.host, m.Agent.id)).scalars())

    # ---------------------------------------------------------------- DHCP

    def networks_on_dhcp_agent(self, ctx: Context, agent_id: str) -> list[dict]:
        _admin(ctx, "get_dhcp-networks")
        with self.env.db.read() as session:
            agents.load(session, ctx, agent_id)
            rows = session.execute(
                select(m.Network).join(m.NetworkDhcpAgentBinding, m.NetworkDhcpAgentBinding.network_id == m.Network.id)
                .where(m.NetworkDhcpAgentBinding.dhcp_agent_id == agent_id)
                .order_by(m.Network.created_at, m.Network.id)).scalars().all()
            return self.render_networks(session, list(rows))

    def dhcp_agents_hosting_network(self, ctx: Context, network_id: str) -> list[dict]:
        _admin(ctx, "get_dhcp-agents")
        with self.env.db.read() as session:
            ids = session.execute(select(m.NetworkDhcpAgentBinding.dhcp_agent_id)
                                  .where(m.NetworkDhcpAgentBinding.network_id == network_id)).scalars().all()
            return self.agents.render(self._hosting(session, list(ids)))

    def add_network_to_dhcp_agent(self, ctx: Context, agent_id: str, network_id: str) -> None:
        _admin(ctx, "create_dhcp-network")

        def work(session: Session) -> None:
            network = check_network(session, network_id)
            agent = agents.load_of_type(session, agent_id, AGENT_TYPE_DHCP, errors.InvalidDHCPAgent)
            if session.get(m.NetworkDhcpAgentBinding, (network_id, agent_id)) is not None:
                raise errors.NetworkHostedByDHCPAgent(network_id=network_id, agent_id=agent_id)
            self.dhcp.bind(session, network, agent)

        self.env.write(work)

    def remove_network_from_dhcp_agent(self, ctx: Context, agent_id: str, network_id: str) -> None:
        _admin(ctx, "delete_dhcp-network")

        def work(session: Session) -> None:
            agent = agents.load(session, ctx, agent_id)
            if not self.dhcp.unbind(session, network_id, agent):
                raise errors.NetworkNotHostedByDhcpAgent(network_id=network_id, agent_id=agent_id)

        self.env.write(work)

    # ---------------------------------------------------------------- L3

    def routers_on_l3_agent(self, ctx: Context, agent_id: str) -> list[dict]:
        _admin(ctx, "get_l3-routers")
        with self.env.db.read() as session:
            agents.load(session, ctx, agent_id)
            rows = session.execute(
                select(m.Router).join(m.RouterL3AgentBinding, m.RouterL3AgentBinding.router_id == m.Router.id)
                .where(m.RouterL3AgentBinding.l3_agent_id == agent_id)
                .order_by(m.Router.created_at, m.Router.id)).scalars().all()
            return self.render_routers(session, list(rows))

    def l3_agents_hosting_router(self, ctx: Context, router_id: str) -> list[dict]:
        _admin(ctx, "get_l3-agents")
        with self.env.db.read() as session:
            _router(session, router_id)
            ids = session.execute(select(m.RouterL3AgentBinding.l3_agent_id)
                                  .where(m.RouterL3AgentBinding.router_id == router_id)).scalars().all()
            return [{**body, "ha_state": None} for body in self.agents.render(self._hosting(session, list(ids)))]

    def add_router_to_l3_agent(self, ctx: Context, agent_id: str, router_id: str) -> None:
        _admin(ctx, "create_l3-router")

        def work(session: Session) -> None:
            router = _router(session, router_id, for_update=True)
            agent = agents.load_of_type(session, agent_id, AGENT_TYPE_L3, errors.InvalidL3Agent)
            hosts = session.execute(select(m.RouterL3AgentBinding.l3_agent_id)
                                    .where(m.RouterL3AgentBinding.router_id == router_id)).scalars().all()
            if agent_id in hosts:
                return
            if hosts:
                raise errors.RouterHostedByL3Agent(router_id=router_id, agent_id=hosts[0])
            self.l3.bind(session, router, agent)

        self.env.write(work)

    def remove_router_from_l3_agent(self, ctx: Context, agent_id: str, router_id: str) -> None:
        _admin(ctx, "delete_l3-router")

        def work(session: Session) -> None:
            agents.load(session, ctx, agent_id)
            router = _router(session, router_id, for_update=True)
            self.l3.unbind(session, router, agent_id)

        self.env.write(work)
