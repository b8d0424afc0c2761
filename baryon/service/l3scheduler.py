"""L3 scheduling: the L3 agent hosting each router, where its ports are bound, and the router's
status while it has none or waits for it (Neutron's l3_agent_scheduler, LeastRoutersScheduler,
legacy routers: one agent per router, no HA).

What this module keeps true, in the caller's transaction:

- A router is bound (``bindings.bind_router``, so the change log says so) to at most one L3 agent.
  The automatic scheduler picks an eligible one: ``agent_type`` "L3 agent", ``admin_state_up``,
  alive (a heartbeat within ``[DEFAULT] agent_down_time``), ``configurations.agent_mode``
  ``legacy`` or ``dvr_snat`` (or none said); least loaded first (fewest routers bound), then host
  name, then id. Unlike DHCP, the agent's host need not reach the router's networks (Neutron's
  legacy scheduler does not ask).
- Every port of a router bound to the agent of host H (its gateway ``network:router_gateway`` and
  its interfaces ``network:router_interface``) has ``binding:host_id`` H and is bound there as any
  port (``Ports.rehost``: ``vif_type`` ovs when H's Open vSwitch agent is alive and reaches the
  port's network, else ``binding_failed``); the ports of an unbound router have none. Ports added
  later are created on the router's host (``host_of``). Each port moved is a port update.
- A router that has just been (re)placed, or has no agent, is ``ALLOCATING`` with a
  ``status_reason`` (``WAITING``, ``UNSCHEDULED``) until its L3 agent reports it ACTIVE or ERROR
  (``portstatus``); see ``routers`` for why Baryon differs from Neutron there.

When:

- ``schedule(session, router)``: a router created, or given a gateway or an interface, while no
  agent hosts it (``routers``): bound to an eligible agent if there is one;
- ``bind``/``unbind``: the admin's scheduler API (``agentschedulers``): as Neutron, a removal is
  not rescheduled; ``deleting`` an L3 agent unbinds its routers (not rescheduled either);
- ``reported(event)`` (``agents.AgentHooks``), once an agent's report has committed: an L3 agent
  that came up (registered, restarted with ``start_flag``, came back alive) takes the routers no
  agent hosts (``router_auto_schedule``, each in its own transaction, as Neutron's
  ``auto_schedule_routers``); the Open vSwitch agent of a host coming up binds again that host's
  router ports that could not bind. Every L3 agent report runs the failover when
  ``allow_automatic_l3agent_failover`` is true (Neutron's default: false): the routers of enabled
  L3 agents silent for more than 2 x ``agent_down_time`` move to an eligible agent, with their
  ports; with none eligible they stay (as Neutron's ``reschedule_routers_from_down_agents``).

NOTE: the failover runs on heartbeats, not on a timer, as in ``dhcpscheduler`` (see there why).

Ordering: whatever changes a router's binding, ports' hosts or status locks the router row first
(``SELECT ... FOR UPDATE``; SQLite serialises writers anyway), then its ports; it decides on what
it re-reads under that lock, so concurrent schedulers (API workers, servers, a failover racing an
admin placement) never bind a router twice. The (router, agent) primary key refuses the same
binding twice; the router lock refuses a second agent. Floating IPs are not touched here (an
association locks its floating IP before the router).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from baryon.db import models as m
from baryon.service import agents, bindings, feed, l3ports, ml2
from baryon.service.agents import AGENT_TYPE_L3, AGENT_TYPE_OVS, Reported
from baryon.service.base import Env, bump
from baryon.service.l3 import ROUTER_GATEWAY, ROUTER_INTERFACE
from baryon.service.ports import Ports
from baryon.service.routers import ALLOCATING, UNSCHEDULED, WAITING, bodies as router_bodies

_A, _B = m.Agent, m.RouterL3AgentBinding

AGENT_MODES = ("legacy", "dvr_snat")  # the modes that host legacy routers, with SNAT


@dataclass(frozen=True)
class Candidate:
    agent_id: str
    host: str
    load: int  # routers bound to it


def eligible_mode(configurations: dict) -> bool:
    """Whether an L3 agent reporting ``configurations`` hosts legacy routers (no ``agent_mode``:
    Neutron's default, legacy)."""
    return configurations.get("agent_mode", "legacy") in AGENT_MODES


def choose(candidates: Iterable[Candidate]) -> Candidate | None:
    """The least loaded candidate, ties broken by host and id."""
    return min(candidates, key=lambda c: (c.load, c.host, c.agent_id), default=None)


def lock_router(session: Session, router_id: str) -> m.Router | None:
    return session.execute(select(m.Router).where(m.Router.id == router_id)
                           .with_for_update()).scalar_one_or_none()


class L3Scheduler:
    def __init__(self, env: Env):
        self.env = env
        self.ports = Ports(env)
        self.down_time = env.settings.DEFAULT.agent_down_time

    # ---------------------------------------------------------------- in the caller's transaction

    def host_of(self, session: Session, router_id: str) -> str:
        """The host of the L3 agent hosting the router ("" when none): where its new ports go."""
        return session.execute(select(_A.host).join(_B, _B.l3_agent_id == _A.id)
                               .where(_B.router_id == router_id)).scalar() or ""

    def schedule(self, session: Session, router: m.Router, host: str | None = None) -> bool:
        """After ``router`` (locked, or new) was created or given ports: with no agent, bind it to an
        eligible one if any, else mark it unscheduled; with one, bring any of its ports that is not
        on the agent's host there (a port attached by id). True if it was bound now. ``host``: its
        host as the caller read it under the router's lock (``host_of``), not read again."""
        session.flush()
        if host is None:
            host = self.host_of(session, router.id)
        if host:
            self._move_ports(session, router.id, host)
            return False
        chosen = choose(self._candidates(session))
        agent = session.get(m.Agent, chosen.agent_id) if chosen is not None else None
        self._place(session, router, agent)
        return agent is not None

    def bind(self, session: Session, router: m.Router, agent: m.Agent) -> None:
        """The admin placed ``router`` (locked, hosted nowhere) on ``agent``: its ports follow; logged."""
        self._place(session, router, agent, log=True)

    def unbind(self, session: Session, router: m.Router, agent_id: str) -> int:
        """Take ``router`` (locked) off ``agent_id``: its ports lose their host; logged. Returns the
        bindings removed (0: it was not there, nothing changes)."""
        removed = bindings.unbind_router(session, router.id, agent_id)
        session.flush()  # NOTE: sessions do not autoflush: what follows must not see it bound
        if removed:
            self._place(session, router, None, log=True)
        return removed

    def deleting(self, session: Session, agent: m.Agent) -> None:
        """``agent`` is being deleted: its routers (in id order) lose it and their ports' host."""
        if agent.agent_type != AGENT_TYPE_L3:
            return
        router_ids = session.execute(select(_B.router_id).where(_B.l3_agent_id == agent.id)
                                     .order_by(_B.router_id)).scalars().all()
        for router_id in router_ids:
            router = lock_router(session, router_id)
            if router is not None:
                self.unbind(session, router, agent.id)

    # ---------------------------------------------------------------- after a report

    def reported(self, event: Reported) -> None:
        options = self.env.settings.DEFAULT
        if event.agent_type == AGENT_TYPE_OVS and event.came_up:
            self.env.write(lambda session: self._rebind_ports(session, event.host))
        elif event.agent_type == AGENT_TYPE_L3:
            if event.came_up and options.router_auto_schedule:
                self.auto_schedule(event.host)
            if options.allow_automatic_l3agent_failover:
                self.fail_over()

    def auto_schedule(self, host: str) -> int:
        """Give the L3 agent of ``host`` (if eligible) the routers no agent hosts, oldest first;
        returns how many it took."""
        with self.env.db.read() as session:
            candidates = [c for c in self._candidates(session) if c.host == host]
            if not candidates:
                return 0
            agent_id = candidates[0].agent_id
            unhosted = session.execute(select(m.Router.id).where(m.Router.id.not_in(select(_B.router_id)))
                                       .order_by(m.Router.created_at, m.Router.id)).scalars().all()
        taken = 0
        for router_id in unhosted:
            taken += self.env.write(lambda session, rid=router_id: self._schedule_to(session, rid, agent_id))
        return taken

    def fail_over(self) -> int:
        """Move the routers of the L3 agents dead for long to eligible ones; returns how many routers
        were moved (none when no agent is eligible: they stay, as in Neutron)."""
        with self.env.db.read() as session:
            dead = session.execute(select(_B.router_id).join(_A, _A.id == _B.l3_agent_id)
                                   .where(*self._dead()).distinct().order_by(_B.router_id)).scalars().all()
            if not dead or not self._candidates(session):
                return 0
        return sum(self.env.write(lambda session, rid=router_id: self._fail_over(session, rid)) for router_id in dead)

    # ---------------------------------------------------------------- the work

    def _schedule_to(self, session: Session, router_id: str, agent_id: str) -> int:
        router = lock_router(session, router_id)
        if router is None or self._bound(session, router_id):  # re-read under the lock
            return 0
        if not any(c.agent_id == agent_id for c in self._candidates(session)):
            return 0
        agent = session.get(m.Agent, agent_id)
        self._place(session, router, agent, log=True)
        return 1

    def _fail_over(self, session: Session, router_id: str) -> int:
        router = lock_router(session, router_id)
        if router is None:
            return 0
        dead = session.execute(select(_A.id).join(_B, _B.l3_agent_id == _A.id)
                               .where(_B.router_id == router_id, *self._dead())).scalars().all()
        if not dead:  # re-read under the lock: another worker may have moved it
            return 0
        chosen = choose(self._candidates(session))
        if chosen is None:
            return 0
        for agent_id in dead:
            bindings.unbind_router(session, router_id, agent_id)
        session.flush()
        self._place(session, router, session.get(m.Agent, chosen.agent_id), log=True)
        return 1

    def _place(self, session: Session, router: m.Router, agent: m.Agent | None, *, log: bool = False) -> None:
        """Bind ``router`` to ``agent`` (None: leave it unbound), move its ports to that host, and
        mark it ALLOCATING until the agent reports it. ``log``: record the router's update (a
        caller that logs the router itself, as create and the router API do, says False)."""
        if agent is not None:
            bindings.bind_router(session, router.id, agent)
            session.flush()
        self._move_ports(session, router.id, agent.host if agent is not None else "")
        wanted = (ALLOCATING, WAITING if agent is not None else UNSCHEDULED)
        if (router.status, router.status_reason) == wanted:
            return
        router.status, router.status_reason = wanted
        if log:
            bump(router)
            session.flush()
            feed.record(session, "router", "update", router_bodies(session, [router])[0])

    def _move_ports(self, session: Session, router_id: str, host: str) -> None:
        """The router's ports not on ``host`` moved there (only those are loaded: an interface added
        to a big router does not read all of its ports)."""
        for row in self._router_ports(session, router_id, not_on=host):
            if self.ports.rehost(session, row, host):
                l3ports.changed(self.env, session, row)

    def _rebind_ports(self, session: Session, host: str) -> None:
        """The router ports of ``host`` that could not bind, bound again (its OVS agent came up)."""
        for row in session.execute(select(m.Port).where(
                m.Port.device_owner.in_((ROUTER_GATEWAY, ROUTER_INTERFACE)), m.Port.binding_host_id == host,
                m.Port.binding_vif_type != ml2.VIF_TYPE_OVS).order_by(m.Port.id)).scalars().all():
            if self.ports.rebind(session, row):
                l3ports.changed(self.env, session, row)

    # ---------------------------------------------------------------- reads

    @staticmethod
    def _router_ports(session: Session, router_id: str, not_on: str | None = None) -> list[m.Port]:
        """The router's ports (``not_on``: those whose ``binding:host_id`` is not that host), by id."""
        stmt = select(m.Port).where(m.Port.id.in_(select(m.RouterPort.port_id).where(m.RouterPort.router_id == router_id)))
        if not_on is not None:
            stmt = stmt.where(m.Port.binding_host_id != not_on)
        return list(session.execute(stmt.order_by(m.Port.id)).scalars())

    @staticmethod
    def _bound(session: Session, router_id: str) -> bool:
        return session.execute(select(_B.l3_agent_id).where(_B.router_id == router_id).limit(1)).first() is not None

    def _candidates(self, session: Session) -> list[Candidate]:
        loads = select(_B.l3_agent_id, func.count().label("load")).group_by(_B.l3_agent_id).subquery()
        rows = session.execute(select(_A.id, _A.host, _A.configurations, func.coalesce(loads.c.load, 0))
                               .outerjoin(loads, loads.c.l3_agent_id == _A.id).where(*self._eligible()))
        return [Candidate(agent_id, host, load) for agent_id, host, configurations, load in rows
                if eligible_mode(agents.configurations_of(configurations))]

    @staticmethod
    def _cutoff(seconds: int) -> dt.datetime:
        return agents.utcnow() - dt.timedelta(seconds=seconds)

    def _eligible(self) -> tuple:
        return (_A.agent_type == AGENT_TYPE_L3, _A.admin_state_up.is_(True),
                _A.heartbeat_timestamp >= self._cutoff(self.down_time))

    def _dead(self) -> tuple:
        return (_A.agent_type == AGENT_TYPE_L3, _A.admin_state_up.is_(True),
                _A.heartbeat_timestamp < self._cutoff(2 * self.down_time))
