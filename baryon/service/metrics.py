"""Gauges read from the database at scrape time: the change log's progress and every agent's.

``StateCollector`` is a prometheus_client collector: each ``collect()`` runs one read
transaction (the change log's sequence and the agents table) and computes, as every API read
does, liveness from the heartbeat and ``[DEFAULT] agent_down_time``, and the realised sequences
as ``/v2.0/agents`` does, so any API worker answers the same.

- ``baryon_change_log_seq``: the change log's last sequence;
- per agent (``agent_type``, ``host``): ``baryon_agent_realised_seq`` (the sequence up to which the
  agent has realised its host's view, as ``/v2.0/agents`` shows it), ``baryon_agent_seq_lag`` (the
  log's sequence minus that: it grows while an agent that stopped reporting falls behind the
  changes that concern it), ``baryon_agent_alive``
  (1 or 0) and ``baryon_agent_heartbeat_age_seconds``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import select

from baryon.db import models as m
from baryon.service import feed
from baryon.service.agents import is_alive, utcnow
from baryon.service.base import Env

LABELS = ["agent_type", "host"]


@dataclass(frozen=True)
class AgentProgress:
    agent_type: str
    host: str
    realised_seq: int
    heartbeat: dt.datetime


def families(seq: int, agents: list[AgentProgress], down_time: int, moment: dt.datetime) -> list[GaugeMetricFamily]:
    """The gauges of one scrape (pure)."""
    log = GaugeMetricFamily("baryon_change_log_seq", "The change log's last sequence number", value=seq)
    realised = GaugeMetricFamily("baryon_agent_realised_seq", "The highest change-log sequence the agent reported "
                                 "realised on its host", labels=LABELS)
    lag = GaugeMetricFamily("baryon_agent_seq_lag", "The change log's sequence minus the agent's realised sequence",
                            labels=LABELS)
    alive = GaugeMetricFamily("baryon_agent_alive", "1 if the agent's last heartbeat is at most agent_down_time old",
                              labels=LABELS)
    age = GaugeMetricFamily("baryon_agent_heartbeat_age_seconds", "Seconds since the agent's last heartbeat",
                            labels=LABELS)
    for agent in agents:
        labels = [agent.agent_type, agent.host]
        realised.add_metric(labels, agent.realised_seq)
        lag.add_metric(labels, max(0, seq - agent.realised_seq))
        alive.add_metric(labels, 1 if is_alive(agent.heartbeat, down_time, moment) else 0)
        age.add_metric(labels, max(0.0, (moment - agent.heartbeat).total_seconds()))
    return [log, realised, lag, alive, age]


class StateCollector:
    """``realised``: agent rows -> {agent id: realised sequence beyond its report}
    (``HostViews.realised``, as ``/v2.0/agents`` shows it); None: the reported one."""

    def __init__(self, env: Env, realised: Callable[[list[m.Agent]], dict[str, int]] | None = None) -> None:
        self.env = env
        self.realised = realised

    def read(self) -> tuple[int, list[AgentProgress]]:
        with self.env.db.read() as session:
            seq = feed.last_seq(session)
            rows = list(session.execute(select(m.Agent).order_by(m.Agent.agent_type, m.Agent.host)).scalars())
        current = self.realised(rows) if self.realised is not None and rows else {}
        return seq, [AgentProgress(r.agent_type, r.host, max(r.realised_seq, current.get(r.id, 0)),
                                   r.heartbeat_timestamp) for r in rows]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        seq, agents = self.read()
        yield from families(seq, agents, self.env.settings.DEFAULT.agent_down_time, utcnow())
