"""Status reports of an agent: the status of the ports it wired, the sequence it realised.

``StatusReports.report(ctx, host, agent_type, seq, statuses)``, in one transaction:

- the agent ``(agent_type, host)`` must be registered (else ``AgentNotFoundByTypeHost``, 404);
- each reported port bound to ``host`` (``binding:host_id`` == host, ``binding:vif_type`` ovs)
  whose status differs takes the reported one: a new revision, and a port ``update`` in the
  change log, as every port change. Other ids (unknown, bound elsewhere, not bound) are ignored
  and returned as such: a report about a port that moved away must not undo its new host's;
- the agent's ``realised_seq`` becomes ``seq`` when that is larger (never logged: see ``agents``).

Ports are locked (``FOR UPDATE``) before the agent row, and the change counter last (``feed``).
Returns the ids updated and ignored (sorted) and the change log's sequence after the commit.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from baryon.db import models as m
from baryon.service import errors, feed, hostview, ml2
from baryon.service.base import Env, bump
from baryon.service.context import Context
from baryon.service.ports import Ports
from baryon.service.render import CHUNK

STATUSES = ("ACTIVE", "DOWN")


class StatusReports:
    def __init__(self, env: Env, ports: Ports):
        self.env = env
        self.ports = ports

    def report(self, ctx: Context, host: str, agent_type: str, seq: int, statuses: dict[str, str]) -> dict:
        hostview.check(ctx, "report_port_status")

        def work(session: Session) -> tuple[list[str], list[str]]:
            rows = self._bound_ports(session, host, sorted(statuses))
            agent = session.execute(select(m.Agent).where(m.Agent.agent_type == agent_type, m.Agent.host == host)
                                    .with_for_update()).scalar_one_or_none()
            if agent is None:
                raise errors.AgentNotFoundByTypeHost(agent_type=agent_type, host=host)
            changed = [row for row in rows if row.status != statuses[row.id]]
            for row in changed:
                row.status = statuses[row.id]
                bump(row)
            session.flush()
            for body in self.ports.render(session, changed):
                feed.record(session, "port", "update", body)
            if seq > agent.realised_seq:
                agent.realised_seq = seq
            bound = {row.id for row in rows}
            return sorted(row.id for row in changed), sorted(set(statuses) - bound)

        updated, ignored = self.env.write(work)
        with self.env.db.read() as session:
            current = feed.last_seq(session)
        return {"seq": current, "updated": updated, "ignored": ignored}

    @staticmethod
    def _bound_ports(session: Session, host: str, ids: list[str]) -> list[m.Port]:
        rows: list[m.Port] = []
        for start in range(0, len(ids), CHUNK):
            rows += session.execute(select(m.Port).where(
                m.Port.id.in_(ids[start:start + CHUNK]), m.Port.binding_host_id == host,
                m.Port.binding_vif_type == ml2.VIF_TYPE_OVS).order_by(m.Port.id).with_for_update()).scalars()
        return rows
