"""Status reports of an agent: what it wired or built on its host, the sequence it realised.

``StatusReports.report(ctx, host, report)``, in one transaction, for a ``Report`` of the agent
``(report.agent_type, host)``:

- the agent must be registered (else ``AgentNotFoundByTypeHost``, 404);
- ``ports`` (the Open vSwitch agent's): each reported port bound to ``host`` (``binding:host_id``
  == host, ``binding:vif_type`` ovs) whose status differs takes the reported one (ACTIVE, DOWN);
- ``routers`` (the L3 agent's): each reported router bound to an L3 agent of ``host`` takes the
  reported status, ACTIVE (``status_reason`` null) or ERROR (``status_reason`` the agent's reason);
- ``floatingips`` (the L3 agent's): each reported floating IP associated through such a router
  takes the reported status (ACTIVE, DOWN, ERROR);
- each one that changes gets a new revision and an ``update`` in the change log, as any change of
  it; one that does not change is left alone. Other ids (unknown, elsewhere, not bound) are
  ignored and returned as such: a report about something that moved away must not undo what its
  new host says;
- the agent's ``realised_seq`` becomes ``seq`` when that is larger (never logged: see ``agents``).

Lock order (``FOR UPDATE``): floating IPs, then routers, then ports, then the agent row, and the
change counter last (``feed``). Floating IPs come before routers as in an association (which
locks the floating IP, its port, then the router); routers before ports as in every router
change. An agent reports either ports (Open vSwitch) or routers and floating IPs (L3), so the
association's port-before-router order never meets this one's within a report.
Returns the ids updated and ignored (sorted, all kinds together) and the change log's sequence
after the commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from baryon.db import models as m
from baryon.service import errors, feed, hostview, l3, ml2, routers
from baryon.service.agents import AGENT_TYPE_L3
from baryon.service.base import Env, bump
from baryon.service.context import Context
from baryon.service.ports import Ports
from baryon.service.render import CHUNK

STATUSES = ("ACTIVE", "DOWN")  # of a port
ROUTER_STATUSES = ("ACTIVE", "ERROR")
FLOATINGIP_STATUSES = ("ACTIVE", "DOWN", "ERROR")
NO_REASON = "the L3 agent could not build the router"  # an ERROR reported without a reason


@dataclass(frozen=True)
class RouterStatus:
    status: str  # ROUTER_STATUSES
    reason: str | None = None


@dataclass(frozen=True)
class Report:
    """A status report's body (``POST /agent/v1/hosts/{host}/status``), parsed."""

    agent_type: str
    seq: int
    ports: dict[str, str] = field(default_factory=dict)
    routers: dict[str, RouterStatus] = field(default_factory=dict)
    floatingips: dict[str, str] = field(default_factory=dict)
    etag: str | None = None  # the etag of the view realised at ``seq``


def _hosted_routers(host: str) -> Select:
    """The ids of the routers bound to an L3 agent of ``host``."""
    return (select(m.RouterL3AgentBinding.router_id).join(m.Agent, m.Agent.id == m.RouterL3AgentBinding.l3_agent_id)
            .where(m.Agent.agent_type == AGENT_TYPE_L3, m.Agent.host == host))


def _router_wanted(reported: RouterStatus) -> tuple[str, str | None]:
    if reported.status == "ACTIVE":
        return "ACTIVE", None
    return reported.status, reported.reason or NO_REASON


class StatusReports:
    def __init__(self, env: Env, ports: Ports):
        self.env = env
        self.ports = ports

    def report(self, ctx: Context, host: str, report: Report) -> dict:
        hostview.check(ctx, "report_port_status")

        def work(session: Session) -> tuple[list[str], list[str]]:
            hosted = _hosted_routers(host)
            fips = self._locked(session, m.FloatingIP, sorted(report.floatingips), m.FloatingIP.router_id.in_(hosted))
            routers_ = self._locked(session, m.Router, sorted(report.routers), m.Router.id.in_(hosted))
            ports = self._locked(session, m.Port, sorted(report.ports), m.Port.binding_host_id == host,
                                 m.Port.binding_vif_type == ml2.VIF_TYPE_OVS)
            agent = session.execute(select(m.Agent).where(m.Agent.agent_type == report.agent_type,
                                                          m.Agent.host == host).with_for_update()).scalar_one_or_none()
            if agent is None:
                raise errors.AgentNotFoundByTypeHost(agent_type=report.agent_type, host=host)
            changed_ports = [row for row in ports if row.status != report.ports[row.id]]
            for row in changed_ports:
                row.status = report.ports[row.id]
                bump(row)
            changed_routers = [row for row in routers_
                               if (row.status, row.status_reason) != _router_wanted(report.routers[row.id])]
            for row in changed_routers:
                row.status, row.status_reason = _router_wanted(report.routers[row.id])
                bump(row)
            changed_fips = [row for row in fips if row.status != report.floatingips[row.id]]
            for row in changed_fips:
                row.status = report.floatingips[row.id]
                bump(row)
            session.flush()
            for body in self.ports.render(session, changed_ports):
                feed.record(session, "port", "update", body)
            for body in routers.bodies(session, changed_routers):
                feed.record(session, "router", "update", body)
            for body in l3.floatingip_bodies(session, changed_fips):
                feed.record(session, "floatingip", "update", body)
            if report.seq > agent.realised_seq or (report.seq == agent.realised_seq and report.etag):
                agent.realised_seq, agent.realised_etag = report.seq, report.etag
            known = {row.id for row in [*ports, *routers_, *fips]}
            reported = {*report.ports, *report.routers, *report.floatingips}
            return (sorted(row.id for row in [*changed_ports, *changed_routers, *changed_fips]),
                    sorted(reported - known))

        updated, ignored = self.env.write(work)
        with self.env.db.read() as session:
            current = feed.last_seq(session)
        return {"seq": current, "updated": updated, "ignored": ignored}

    @staticmethod
    def _locked(session: Session, model: type, ids: list[str], *where: object) -> list:
        """The rows of ``model`` among ``ids`` that match ``where``, locked, in id order."""
        rows: list = []
        for start in range(0, len(ids), CHUNK):
            rows += session.execute(select(model).where(model.id.in_(ids[start:start + CHUNK]), *where)
                                    .order_by(model.id).with_for_update()).scalars()
        return rows
