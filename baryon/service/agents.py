"""Agents: registration and heartbeats, and ``/v2.0/agents`` (list, show, update, delete).

Agents register themselves: ``Agents.report_state`` creates the row of an (agent_type, host) on
its first report and updates it on every later one (the heartbeat), as Neutron's
``create_or_update_agent``. ``alive`` is never stored: every read computes it, as Neutron does,
as "the last heartbeat is at most ``[DEFAULT] agent_down_time`` seconds old", so an agent that
stops reporting turns dead without anything being written.

Change log (resource type ``agent``): a registration is a ``create``. A report is an ``update``
only when it changes the agent: its binary, topic, configurations, resource versions or
availability zone; a restart (``start_flag``: a new ``started_at``); or a return from the dead.
A heartbeat that changes nothing but ``heartbeat_timestamp`` is not logged: agents report every
few seconds, and the log is for changes. Admin updates are logged; a delete is logged together
with the removal of the agent's scheduling bindings (``service.bindings``).

``realised_seq``: the change-log sequence up to which the agent has realised its host's view,
shown besides Neutron's fields: the highest it reported (``service.portstatus``), or more: while
its view keeps the etag the agent reported with it, every later change left the agent current
(``realised``, given by ``Services``: ``HostViews.realised``), so an agent that no change concerns
needs to report nothing for the log's moves. Filters and sorts on it use the reported value.
Like a heartbeat, a report is not logged: logging it would move the sequence the agents report on.

Scheduling follows the reports (``AgentHooks``, given by ``Services``: the DHCP and L3 schedulers,
as a ``HookChain``): after each report has committed, ``reported`` gets a ``Reported`` saying
whether the agent came up (registered, restarted, or came back from the dead) or only
heartbeated; ``deleting`` runs inside an agent's delete, before its bindings go. A hook that
fails is logged: the report stands.

The ``agent_type`` filter ignores case: ``?agent_type=DHCP Agent`` finds the DHCP agents, as on
Neutron's usual MySQL database (case-insensitive collation), where clients rely on it (tempest's
DHCP scheduler tests and neutron-tempest-plugin's port tests ask for "DHCP Agent").

Policy, as Neutron's: agents are admin-only. A non-admin lists none, and gets a 404 for any
agent (Neutron hides what its policy does not let the caller see).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any, Protocol

import orjson
from prometheus_client import Counter
from sqlalchemy import ColumnElement, and_, false, func, or_, select
from sqlalchemy.orm import Session

from baryon.db import models as m
from baryon.service import bindings, errors, feed, ml2, query
from baryon.service.base import Env, new_id, now
from baryon.service.context import Context

LOG = logging.getLogger(__name__)
HEARTBEATS = Counter("baryon_agent_heartbeats_received", "Agent reports (heartbeats) committed, by agent type",
                     ["agent_type"])

AGENT_TYPE_OVS = "Open vSwitch agent"
AGENT_TYPE_DHCP = "DHCP agent"
AGENT_TYPE_L3 = "L3 agent"

# Neutron's binary and topic for the agent types Baryon runs (clients filter on both).
DEFAULTS: dict[str, tuple[str, str]] = {
    AGENT_TYPE_OVS: ("neutron-openvswitch-agent", "N/A"),
    AGENT_TYPE_DHCP: ("neutron-dhcp-agent", "dhcp_agent"),
    AGENT_TYPE_L3: ("neutron-l3-agent", "l3_agent"),
}
# The configurations key whose value is an agent's load (Neutron's dhcp_load_type = networks).
LOAD_KEYS = {AGENT_TYPE_DHCP: "networks"}


def _agent_type_filter(values: list[Any]) -> ColumnElement[bool]:
    """``agent_type`` in ``values``, whatever the case (module doc)."""
    return func.lower(m.Agent.agent_type).in_([str(v).lower() for v in values if v is not None])


LISTING = query.Listing(
    model=m.Agent,
    columns={
        "id": m.Agent.id, "agent_type": m.Agent.agent_type, "binary": m.Agent.binary, "topic": m.Agent.topic,
        "host": m.Agent.host, "admin_state_up": m.Agent.admin_state_up, "description": m.Agent.description,
        "availability_zone": m.Agent.availability_zone, "created_at": m.Agent.created_at,
        "started_at": m.Agent.started_at, "heartbeat_timestamp": m.Agent.heartbeat_timestamp,
        "realised_seq": m.Agent.realised_seq,
    },
    # NOTE: "alive" is a placeholder for the keys; each Agents service binds it to its agent_down_time.
    special={"alive": lambda _values: false(), "agent_type": _agent_type_filter},
    sortable=frozenset({"id", "agent_type", "binary", "topic", "host", "admin_state_up", "description",
                        "availability_zone", "created_at", "started_at", "heartbeat_timestamp",
                        "realised_seq"}),
)


def timestamp(value: dt.datetime | None) -> str | None:
    """Neutron shows agent times as ``YYYY-MM-DD HH:MM:SS`` (UTC), unlike the standard attributes."""
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else None


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _json(value: dict) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _dict(text: str | None) -> dict:
    try:
        value = orjson.loads(text) if text else {}
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def configurations_of(text: str | None) -> dict:
    """An agent row's ``configurations`` as a dict ({} when unreadable)."""
    return _dict(text)


def is_alive(heartbeat: dt.datetime, down_time: int, moment: dt.datetime) -> bool:
    return (moment - heartbeat).total_seconds() <= down_time


def render(row: m.Agent, down_time: int, moment: dt.datetime) -> dict:
    """The agent as an admin sees it (Neutron's ``_make_agent_dict``); no description is null."""
    return {
        "id": row.id, "agent_type": row.agent_type, "binary": row.binary, "topic": row.topic, "host": row.host,
        "admin_state_up": row.admin_state_up, "alive": is_alive(row.heartbeat_timestamp, down_time, moment),
        "availability_zone": row.availability_zone, "description": row.description or None,
        "created_at": timestamp(row.created_at), "started_at": timestamp(row.started_at),
        "heartbeat_timestamp": timestamp(row.heartbeat_timestamp),
        "configurations": _dict(row.configurations), "resource_versions": _dict(row.resource_versions),
        "resources_synced": None, "realised_seq": row.realised_seq,
    }


def ovs_agent(session: Session, host: str, down_time: int) -> ml2.OvsAgent | None:
    """The Open vSwitch agent registered on ``host``, as port binding sees it."""
    row = session.execute(select(m.Agent.heartbeat_timestamp, m.Agent.configurations).where(
        m.Agent.agent_type == AGENT_TYPE_OVS, m.Agent.host == host)).first()
    if row is None:
        return None
    return ml2.OvsAgent(host=host, alive=is_alive(row.heartbeat_timestamp, down_time, utcnow()),
                        configurations=_dict(row.configurations), heartbeat=row.heartbeat_timestamp,
                        down_time=down_time)


def ovs_configurations(session: Session, hosts: list[str]) -> dict[str, dict]:
    """The configurations of the Open vSwitch agents registered on ``hosts`` (alive or not)."""
    if not hosts:
        return {}
    return {host: _dict(text) for host, text in session.execute(
        select(m.Agent.host, m.Agent.configurations).where(m.Agent.agent_type == AGENT_TYPE_OVS,
                                                           m.Agent.host.in_(sorted(hosts))))}


def load(session: Session, ctx: Context, agent_id: str, *, for_update: bool = False) -> m.Agent:
    stmt = select(m.Agent).where(m.Agent.id == agent_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = session.execute(stmt).scalar_one_or_none() if ctx.is_admin else None
    if row is None:
        raise errors.AgentNotFound(id=agent_id)
    return row


def load_of_type(session: Session, agent_id: str, agent_type: str, invalid: type[errors.AgentNotFound]) -> m.Agent:
    """An enabled agent of ``agent_type`` (the scheduler's target), else ``invalid`` (a 404)."""
    row = session.execute(select(m.Agent).where(m.Agent.id == agent_id)).scalar_one_or_none()
    if row is None:
        raise errors.AgentNotFound(id=agent_id)
    if row.agent_type != agent_type or not row.admin_state_up:
        raise invalid(id=agent_id)
    return row


@dataclasses.dataclass(frozen=True)
class Reported:
    """What one committed report changed, for the schedulers."""

    agent_type: str
    host: str
    created: bool = False
    started: bool = False  # start_flag: the agent (re)started
    revived: bool = False  # it was dead (no heartbeat for agent_down_time)

    @property
    def came_up(self) -> bool:
        return self.created or self.started or self.revived


class AgentHooks(Protocol):
    def reported(self, event: Reported) -> None:
        """After a report has committed, in its own transactions."""

    def deleting(self, session: Session, agent: m.Agent) -> None:
        """In the transaction deleting ``agent``, before its scheduling bindings go."""


class HookChain:
    """Several schedulers' ``AgentHooks`` as one, called in order. A ``reported`` hook that fails
    is logged and the next one still runs (each works in its own transactions)."""

    def __init__(self, *hooks: AgentHooks):
        self.hooks = hooks

    def reported(self, event: Reported) -> None:
        for hook in self.hooks:
            try:
                hook.reported(event)
            except Exception:  # noqa: BLE001 - the report has committed; the other schedulers still run
                LOG.warning("scheduling after the report of %s on %s failed", event.agent_type, event.host,
                            exc_info=True)

    def deleting(self, session: Session, agent: m.Agent) -> None:
        for hook in self.hooks:
            hook.deleting(session, agent)


class Agents:
    def __init__(self, env: Env, hooks: AgentHooks | None = None):
        self.env = env
        self.hooks = hooks
        # rows -> {agent id: realised sequence} for those that are current beyond their report
        self.realised: Callable[[list[m.Agent]], dict[str, int]] | None = None
        self.down_time = env.settings.DEFAULT.agent_down_time
        self.listing = dataclasses.replace(LISTING, special={**LISTING.special, "alive": self._alive_filter})

    def render(self, rows: list[m.Agent]) -> list[dict]:
        moment = utcnow()
        return [render(r, self.down_time, moment) for r in rows]

    def _alive_filter(self, values: list[Any]) -> ColumnElement[bool]:
        alive = m.Agent.heartbeat_timestamp >= utcnow() - dt.timedelta(seconds=self.down_time)
        return or_(*(alive if value else ~alive for value in set(values)))

    # ---------------------------------------------------------------- read

    def get(self, ctx: Context, agent_id: str) -> dict:
        with self.env.db.read() as session:
            rows = [load(session, ctx, agent_id)]
        return self._shown(rows)[0]

    def list(self, ctx: Context, q: query.ListQuery) -> list[dict]:
        if not ctx.is_admin:
            return []
        with self.env.db.read() as session:
            stmt = query.build(session, self.listing, None, q, lambda marker: errors.AgentNotFound(id=marker))
            rows = list(session.execute(stmt).scalars())
        return self._shown(rows)

    def _shown(self, rows: list[m.Agent]) -> list[dict]:
        """As rendered, with ``realised_seq`` as far as the agent is current (see the module doc)."""
        bodies = self.render(rows)
        current = self.realised(rows) if self.realised is not None and rows else {}
        for body in bodies:
            body["realised_seq"] = max(body["realised_seq"], current.get(body["id"], 0))
        return bodies

    # ---------------------------------------------------------------- update, delete

    def update(self, ctx: Context, agent_id: str, attrs: dict, if_match: int | None = None) -> dict:
        """``admin_state_up`` and ``description``. Agents have no revision number: like Neutron,
        an ``If-Match`` header is not checked against them."""

        def work(session: Session) -> dict:
            row = load(session, ctx, agent_id)
            changed = False
            if "admin_state_up" in attrs and attrs["admin_state_up"] != row.admin_state_up:
                row.admin_state_up = attrs["admin_state_up"]
                changed = True
            if "description" in attrs and (attrs["description"] or "") != row.description:
                row.description = attrs["description"] or ""
                changed = True
            session.flush()
            body = self.render([row])[0]
            if changed:
                feed.record(session, "agent", "update", body)
            return body

        return self.env.write(work)

    def delete(self, ctx: Context, agent_id: str, if_match: int | None = None) -> None:
        def work(session: Session) -> None:
            row = load(session, ctx, agent_id)
            body = self.render([row])[0]
            if self.hooks is not None:
                self.hooks.deleting(session, row)
            bindings.unbind_agent(session, row)
            session.flush()
            session.delete(row)
            feed.record(session, "agent", "delete", body)

        self.env.write(work)

    # ---------------------------------------------------------------- registration, heartbeats

    def report_state(self, ctx: Context, state: dict) -> tuple[dict, bool]:
        """Register the agent ``(state["agent_type"], state["host"])`` or record its heartbeat.

        ``state`` carries the keys of Neutron's ``agent_state`` (see ``api.schemas.agent.REPORT``);
        ``binary`` and ``topic`` default to Neutron's for the known agent types. A new agent is
        enabled unless ``[DEFAULT] enable_new_agents`` is false. Returns the agent and whether it was
        created. Logged only when it changes something but the heartbeat (see the module doc).
        """
        if not ctx.is_admin:
            raise errors.PolicyNotAuthorized(rule="rule:report_state")
        agent_type, host = state["agent_type"], state["host"]
        binary, topic = DEFAULTS.get(agent_type, (None, "N/A"))
        binary, topic = state.get("binary") or binary, state.get("topic") or topic
        if binary is None:
            raise errors.InvalidInput(error_message=f"binary is required for agent type '{agent_type}'")
        configurations = state.get("configurations") or {}
        key = LOAD_KEYS.get(agent_type)
        raw_load = configurations.get(key, 0) if key else 0
        wanted: dict[str, Any] = {
            "binary": binary, "topic": topic, "configurations": _json(configurations),
            "load": raw_load if isinstance(raw_load, int) and not isinstance(raw_load, bool) else 0,
        }
        if "availability_zone" in state:
            wanted["availability_zone"] = state["availability_zone"]
        if state.get("resource_versions"):
            wanted["resource_versions"] = _json(state["resource_versions"])

        def work(session: Session) -> tuple[dict, Reported]:
            moment = now()
            row = session.execute(select(m.Agent).where(
                and_(m.Agent.agent_type == agent_type, m.Agent.host == host))).scalar_one_or_none()
            if row is None:
                initial = {"availability_zone": None, "resource_versions": "{}", **wanted}
                row = m.Agent(id=new_id(), agent_type=agent_type, host=host, description="",
                              admin_state_up=self.env.settings.DEFAULT.enable_new_agents,
                              created_at=moment, started_at=moment, heartbeat_timestamp=moment, **initial)
                session.add(row)
                session.flush()
                body = self.render([row])[0]
                feed.record(session, "agent", "create", body)
                return body, Reported(agent_type, host, created=True)
            event = Reported(agent_type, host, started=bool(state.get("start_flag")),
                             revived=not is_alive(row.heartbeat_timestamp, self.down_time, utcnow()))
            changed = event.started or event.revived
            for column, value in wanted.items():
                if getattr(row, column) != value:
                    setattr(row, column, value)
                    changed = True
            if event.started:
                row.started_at = moment
            row.heartbeat_timestamp = moment
            session.flush()
            body = self.render([row])[0]
            if changed:
                feed.record(session, "agent", "update", body)
            return body, event

        body, event = self.env.write(work)
        HEARTBEATS.labels(agent_type).inc()
        if self.hooks is not None:
            try:
                self.hooks.reported(event)
            except Exception:  # noqa: BLE001 - the report has committed; its answer must not say otherwise
                LOG.warning("scheduling after the report of %s on %s failed", agent_type, host, exc_info=True)
        return body, event.created
