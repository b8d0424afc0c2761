"""DHCP scheduling: the DHCP agents serving each network, and their DHCP ports (Neutron's
dhcp_agent_scheduler, and the port Neutron's DHCP agent asks its server for).

What this module keeps true, in the caller's transaction:

- A network with at least one subnet with ``enable_dhcp`` is bound (``bindings.bind_network``, so
  the change log says so) to ``[DEFAULT] dhcp_agents_per_network`` DHCP agents, when that many
  are eligible: ``agent_type`` "DHCP agent", ``admin_state_up``, alive, on a host whose Open
  vSwitch agent (registered, alive or not: Neutron's ``filter_hosts_with_network_access``) reaches
  one of the network's segments. Least loaded first: fewest bound networks (counted from the
  bindings: the ``networks`` agents report lag behind), then host name, then id. A network whose
  last DHCP subnet goes (deleted, or DHCP turned off) loses all its bindings.
- Each binding (network, agent) of a network with DHCP subnets has one port: ``device_owner``
  ``network:dhcp``, ``device_id`` ``dhcp<uuid5(NAMESPACE_DNS, host)>-<network id>`` (Neutron's),
  ``binding:host_id`` the agent's host (bound like any port: ``vif_type`` ovs when that host's
  Open vSwitch agent is alive), its network's project, no security groups, and one fixed IP on
  each DHCP subnet: the lowest free address (EUI-64 on SLAAC subnets; at most
  ``max_fixed_ips_per_port``; a full subnet is skipped). Made with the binding, re-addressed as
  DHCP subnets come and go (the addresses it holds are kept), deleted with the binding. The server
  makes it, as Neutron's RPC does for its agent: no quota check.

When:

- ``settle(session, network_id)``: a DHCP subnet created or deleted, DHCP turned on or off
  (``subnets``): schedule the network (up to the number wanted) and address its DHCP ports, or,
  with no DHCP subnet left, unbind it;
- ``bind``/``unbind``: the admin's scheduler API (``agentschedulers``); ``deleting`` an agent;
- ``reported(event)`` (``agents.AgentHooks``), once an agent's report has committed: a DHCP agent
  that came up (registered, restarted with ``start_flag``, came back alive) takes the networks
  lacking agents (``network_auto_schedule``, each in its own transaction, as Neutron's
  ``auto_schedule_networks``); so does the DHCP agent of a host whose Open vSwitch agent came up,
  whose DHCP ports that could not bind are bound again. Every DHCP agent report runs the failover
  (``allow_automatic_dhcp_failover``): the bindings of enabled DHCP agents silent for more than
  2 x ``agent_down_time`` (Neutron's agent_dead_limit: down for longer than agent_down_time) go,
  with their ports, and those networks are scheduled again, as long as a DHCP agent is eligible.

NOTE: the failover runs on heartbeats, not on a timer. Neutron runs it every agent_down_time/2 s
in a periodic task of each server. A network can only move to a live DHCP agent, and a live agent
reports every ``report_interval`` anyway: its report is the tick. Nothing runs while no DHCP agent
reports, every API worker and server takes part without a leader or a timer per process, and
tests trigger it with a report. Its cost on a heartbeat with nothing to do is one SELECT.

Ordering: whatever changes a network's bindings or DHCP ports locks the network's row first
(``SELECT ... FOR UPDATE``; SQLite serialises writers anyway) and decides on what it re-reads
under that lock, so concurrent schedulers (API workers, servers, a failover racing a subnet
create) never bind a network to more agents than wanted; the (network, agent) primary key refuses
the same binding twice.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, lazyload

from baryon.db import models as m
from baryon.service import agents, bindings, errors, ipam, l3ports, ml2
from baryon.service.agents import AGENT_TYPE_DHCP, AGENT_TYPE_OVS, Reported
from baryon.service.base import Env
from baryon.service.ports import Ports

DEVICE_OWNER = "network:dhcp"
_A, _B = m.Agent, m.NetworkDhcpAgentBinding


def device_id(host: str, network_id: str) -> str:
    """Neutron's ``device_id`` of the DHCP port of ``host``'s agent on a network."""
    return f"dhcp{uuid.uuid5(uuid.NAMESPACE_DNS, host)}-{network_id}"


@dataclass(frozen=True)
class Candidate:
    agent_id: str
    host: str
    load: int  # networks bound to it


def choose(candidates: Iterable[Candidate], needed: int) -> list[Candidate]:
    """The ``needed`` least loaded candidates, ties broken by host and id."""
    return sorted(candidates, key=lambda c: (c.load, c.host, c.agent_id))[:max(needed, 0)]


def reaches(configurations: dict | None, segments: Sequence[ml2.Segment]) -> bool:
    """Whether an Open vSwitch agent reporting ``configurations`` (None: none registered) reaches
    one of ``segments``."""
    if configurations is None:
        return False
    agent = ml2.OvsAgent(host="", alive=True, configurations=configurations)
    return any(ml2.unreachable(agent, segment) is None for segment in segments)


class DhcpScheduler:
    def __init__(self, env: Env):
        self.env = env
        self.ports = Ports(env)
        options = env.settings.DEFAULT
        self.per_network = options.dhcp_agents_per_network
        self.down_time = options.agent_down_time

    # ---------------------------------------------------------------- in the caller's transaction

    def settle(self, session: Session, network_id: str) -> None:
        """After the network's DHCP subnets changed: schedule and address it, or unbind it."""
        network = lock_network(session, network_id)
        if network is None:
            return
        subnets = dhcp_subnets(session, network_id)
        if not subnets:
            for agent_id, host in self._bound(session, network_id):
                self._unbind(session, network_id, agent_id, host)
            return
        self._fill(session, network)
        self._sync_ports(session, network, subnets)

    def bind(self, session: Session, network: m.Network, agent: m.Agent) -> None:
        """Bind ``network`` (locked: ``lock_network``) to ``agent`` and give the agent its port."""
        bindings.bind_network(session, network.id, agent)
        session.flush()
        subnets = dhcp_subnets(session, network.id)
        if subnets:
            self._sync_ports(session, network, subnets)

    def unbind(self, session: Session, network_id: str, agent: m.Agent) -> int:
        """Remove the network from ``agent``, with its DHCP port; returns the bindings removed."""
        lock_network(session, network_id)
        return self._unbind(session, network_id, agent.id, agent.host)

    def deleting(self, session: Session, agent: m.Agent) -> None:
        """``agent`` is being deleted: its DHCP ports go with its bindings (networks in id order)."""
        if agent.agent_type != AGENT_TYPE_DHCP:
            return
        network_ids = session.execute(select(_B.network_id).where(_B.dhcp_agent_id == agent.id)
                                      .order_by(_B.network_id)).scalars().all()
        for network_id in network_ids:
            self.unbind(session, network_id, agent)

    # ---------------------------------------------------------------- after a report

    def reported(self, event: Reported) -> None:
        options = self.env.settings.DEFAULT
        if event.agent_type == AGENT_TYPE_OVS and event.came_up:
            self.env.write(lambda session: self._rebind_ports(session, event.host))
            if options.network_auto_schedule:
                self.auto_schedule(event.host)
        elif event.agent_type == AGENT_TYPE_DHCP:
            if event.came_up and options.network_auto_schedule:
                self.auto_schedule(event.host)
            if options.allow_automatic_dhcp_failover:
                self.fail_over()

    def auto_schedule(self, host: str) -> int:
        """Give the DHCP agent of ``host`` (if eligible) the networks with DHCP subnets that lack
        agents and that it can reach; returns how many it took."""
        with self.env.db.read() as session:
            agent_id = session.execute(select(_A.id).where(
                _A.agent_type == AGENT_TYPE_DHCP, _A.host == host, _A.admin_state_up.is_(True),
                _A.heartbeat_timestamp >= self._cutoff(self.down_time))).scalar_one_or_none()
            if agent_id is None:
                return 0
            counts = select(_B.network_id, func.count().label("agents")).group_by(_B.network_id).subquery()
            lacking = session.execute(
                select(m.Network.id).outerjoin(counts, counts.c.network_id == m.Network.id)
                .where(m.Network.id.in_(select(m.Subnet.network_id).where(m.Subnet.enable_dhcp.is_(True))),
                       func.coalesce(counts.c.agents, 0) < self.per_network,
                       m.Network.id.not_in(select(_B.network_id).where(_B.dhcp_agent_id == agent_id)))
                .order_by(m.Network.created_at, m.Network.id)).scalars().all()
        taken = 0
        for network_id in lacking:
            taken += self.env.write(lambda session, nid=network_id: self._schedule_to(session, nid, agent_id))
        return taken

    def fail_over(self) -> int:
        """Take the networks off the DHCP agents dead for long and schedule them again (where some
        eligible agent reaches them); returns how many networks were taken off."""
        with self.env.db.read() as session:
            dead = session.execute(select(_B.network_id).join(_A, _A.id == _B.dhcp_agent_id)
                                   .where(*self._dead()).distinct().order_by(_B.network_id)).scalars().all()
            if not dead or not self._any_eligible(session):
                return 0  # NOTE: as Neutron: with no DHCP agent to move to, the bindings stay
        for network_id in dead:
            self.env.write(lambda session, nid=network_id: self._fail_over(session, nid))
        return len(dead)

    # ---------------------------------------------------------------- the work

    def _schedule_to(self, session: Session, network_id: str, agent_id: str) -> int:
        network = lock_network(session, network_id)
        if network is None:
            return 0
        subnets = dhcp_subnets(session, network_id)
        if not subnets:
            return 0
        added = self._fill(session, network, only=agent_id)
        self._sync_ports(session, network, subnets)
        return added

    def _fail_over(self, session: Session, network_id: str) -> None:
        network = lock_network(session, network_id)
        if network is None:
            return
        dead = session.execute(select(_A.id, _A.host).join(_B, _B.dhcp_agent_id == _A.id)
                               .where(_B.network_id == network_id, *self._dead())).all()
        for agent_id, host in dead:  # re-read under the lock: another worker may have moved it
            self._unbind(session, network_id, agent_id, host)
        subnets = dhcp_subnets(session, network_id)
        if dead and subnets:
            self._fill(session, network)
            self._sync_ports(session, network, subnets)

    def _fill(self, session: Session, network: m.Network, only: str | None = None) -> int:
        """Bind ``network`` to eligible agents (``only`` that one) until it has the number wanted."""
        bound = {agent_id for agent_id, _host in self._bound(session, network.id)}
        needed = self.per_network - len(bound)
        if needed <= 0:
            return 0
        chosen = choose(self._candidates(session, network, bound, only), needed)
        for candidate in chosen:
            agent = session.get(m.Agent, candidate.agent_id)
            assert agent is not None
            bindings.bind_network(session, network.id, agent)
        session.flush()
        return len(chosen)

    def _candidates(self, session: Session, network: m.Network, bound: set[str],
                    only: str | None) -> list[Candidate]:
        loads = select(_B.dhcp_agent_id, func.count().label("load")).group_by(_B.dhcp_agent_id).subquery()
        stmt = (select(_A.id, _A.host, func.coalesce(loads.c.load, 0))
                .outerjoin(loads, loads.c.dhcp_agent_id == _A.id).where(*self._eligible()))
        if only is not None:
            stmt = stmt.where(_A.id == only)
        rows = [row for row in session.execute(stmt) if row[0] not in bound]
        if not rows:
            return []
        segments = [ml2.Segment(s.network_type, s.physical_network, s.segmentation_id) for s in session.execute(
            select(m.NetworkSegment).where(m.NetworkSegment.network_id == network.id)).scalars()]
        configurations = agents.ovs_configurations(session, sorted({host for _id, host, _load in rows}))
        return [Candidate(agent_id, host, load) for agent_id, host, load in rows
                if reaches(configurations.get(host), segments)]

    def _sync_ports(self, session: Session, network: m.Network, subnets: list[m.Subnet]) -> None:
        """Each bound agent's DHCP port, with one address per DHCP subnet."""
        existing = {row.device_id: row for row in session.execute(select(m.Port).where(
            m.Port.network_id == network.id, m.Port.device_owner == DEVICE_OWNER)).scalars()}
        for _agent_id, host in self._bound(session, network.id):
            row = existing.get(device_id(host, network.id))
            held = {a.subnet_id: a.ip_address for a in row.fixed_ips} if row is not None else {}
            requests = self._requests(session, subnets, held)
            if row is None:
                if requests:
                    l3ports.create(self.env, session, network_id=network.id, project_id=network.project_id,
                                   device_id=device_id(host, network.id), device_owner=DEVICE_OWNER,
                                   fixed_ips=requests, host=host)
            elif {r["subnet_id"] for r in requests} != set(held):
                l3ports.readdress(self.env, session, row, requests)

    def _requests(self, session: Session, subnets: list[m.Subnet], held: dict[str, str]) -> list[dict]:
        """The DHCP port's fixed IPs: on each DHCP subnet, the address it holds, else the lowest free
        one (EUI-64 on SLAAC: left to the allocation); a full subnet is skipped."""
        requests = []
        for subnet in subnets[:max(self.env.settings.DEFAULT.max_fixed_ips_per_port, 0)]:
            address = held.get(subnet.id)
            auto = ipam.is_auto_address_subnet(subnet.ip_version, subnet.ipv6_address_mode, subnet.ipv6_ra_mode)
            if address is None and not auto:
                address = self.ports.lowest_free(session, subnet)
                if address is None:
                    continue
            requests.append({"subnet_id": subnet.id} if address is None else
                            {"subnet_id": subnet.id, "ip_address": address})
        return requests

    def _unbind(self, session: Session, network_id: str, agent_id: str, host: str) -> int:
        for row in session.execute(select(m.Port).where(
                m.Port.network_id == network_id, m.Port.device_owner == DEVICE_OWNER,
                m.Port.device_id == device_id(host, network_id))).scalars().all():
            l3ports.delete(self.env, session, row)
        removed = bindings.unbind_network(session, network_id, agent_id)
        session.flush()  # NOTE: sessions do not autoflush: what follows must not see it bound
        return removed

    def _rebind_ports(self, session: Session, host: str) -> None:
        """The DHCP ports of ``host`` that could not bind, bound again (its OVS agent came up)."""
        for row in session.execute(select(m.Port).where(
                m.Port.device_owner == DEVICE_OWNER, m.Port.binding_host_id == host,
                m.Port.binding_vif_type != ml2.VIF_TYPE_OVS).order_by(m.Port.id)).scalars().all():
            if self.ports.rebind(session, row):
                l3ports.changed(self.env, session, row)

    # ---------------------------------------------------------------- reads

    @staticmethod
    def _bound(session: Session, network_id: str) -> list[tuple[str, str]]:
        return [(agent_id, host) for agent_id, host in session.execute(
            select(_A.id, _A.host).join(_B, _B.dhcp_agent_id == _A.id)
            .where(_B.network_id == network_id).order_by(_A.host, _A.id))]

    @staticmethod
    def _cutoff(seconds: int) -> dt.datetime:
        return agents.utcnow() - dt.timedelta(seconds=seconds)

    def _eligible(self) -> tuple:
        return (_A.agent_type == AGENT_TYPE_DHCP, _A.admin_state_up.is_(True),
                _A.heartbeat_timestamp >= self._cutoff(self.down_time))

    def _dead(self) -> tuple:
        return (_A.agent_type == AGENT_TYPE_DHCP, _A.admin_state_up.is_(True),
                _A.heartbeat_timestamp < self._cutoff(2 * self.down_time))

    def _any_eligible(self, session: Session) -> bool:
        return session.execute(select(_A.id).where(*self._eligible()).limit(1)).first() is not None


def lock_network(session: Session, network_id: str) -> m.Network | None:
    return session.execute(select(m.Network).where(m.Network.id == network_id)
                           .with_for_update()).scalar_one_or_none()


def dhcp_subnets(session: Session, network_id: str) -> list[m.Subnet]:
    """The network's subnets with ``enable_dhcp``, oldest first."""
    return list(session.execute(select(m.Subnet).where(m.Subnet.network_id == network_id,
                                                       m.Subnet.enable_dhcp.is_(True))
                                .options(lazyload(m.Subnet.dns_nameservers), lazyload(m.Subnet.host_routes))
                                .order_by(m.Subnet.created_at, m.Subnet.id)).scalars())


def check_network(session: Session, network_id: str) -> m.Network:
    """The network, locked for a scheduling change; ``NetworkNotFound`` when there is none."""
    network = lock_network(session, network_id)
    if network is None:
        raise errors.NetworkNotFound(net_id=network_id)
    return network

