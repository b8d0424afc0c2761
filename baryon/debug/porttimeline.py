"""A port's provisioning timeline, from the change log and the agents' logs (pure).

Inputs: the port's change-log entries (``GET /agent/v1/changes?resource_id=``: seq, action,
created_at in whole seconds UTC, the fields that changed), the log lines of the OVS agent of its
host and of the DHCP agents of its network (``<time> <LEVEL> <logger>: <message>``, milliseconds,
the node's local time; a run that changed something logs ``seq N: ...``, the change-log sequence
its view reflected), and the agents' ``realised_seq``.

Steps, each with its time and where the time comes from (None: not seen):

- ``created``: the log's ``create`` entry;
- ``bound``: the first entry that makes ``binding:vif_type`` ``ovs`` (the server bound it);
- ``firewall applied``: the OVS agent's last ``firewall:`` line (chains written) between the
  binding and ``wired``: the agent writes filters before it tags a port;
- ``wired``: the OVS agent's first run at a sequence >= the binding's that changed OVSDB (the tag);
- ``DHCP entry served``: a DHCP agent's first run at a sequence >= the creation's that wrote
  files (the host entry; dnsmasq re-reads them on the SIGHUP of the same run);
- ``ACTIVE``: the first entry that makes ``status`` ``ACTIVE`` (the OVS agent's report).

NOTE: the change log keeps whole seconds, the logs milliseconds: a step from a log can appear
up to a second "before" one from the change log; ``precision`` says which is which.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) (\w+) ([\w.]+): (.*)$")
_SEQ = re.compile(r"^seq (\d+): (.*)$")
_OVSDB_OPS = re.compile(r"(\d+) OVSDB op")


@dataclass(frozen=True)
class LogLine:
    at: dt.datetime  # aware, UTC
    logger: str
    message: str

    @property
    def seq(self) -> int | None:
        found = _SEQ.match(self.message)
        return int(found.group(1)) if found else None


@dataclass(frozen=True)
class Step:
    name: str
    at: dt.datetime | None
    source: str  # where the time comes from
    detail: str = ""
    precision: str = ""  # "1 s" (change log) or "1 ms" (an agent's log)

    def to_json(self, created: dt.datetime | None) -> dict:
        return {"step": self.name, "at": self.at.isoformat() if self.at else None,
                "after_created_s": _offset(self.at, created), "source": self.source, "detail": self.detail,
                "precision": self.precision}


def _offset(at: dt.datetime | None, created: dt.datetime | None) -> float | None:
    return None if at is None or created is None else round((at - created).total_seconds(), 3)


def parse_log(text: str, tz: dt.tzinfo = dt.UTC) -> list[LogLine]:
    """An agent's log lines with their times (``tz``: the zone the log was written in)."""
    lines = []
    for raw in text.splitlines():
        found = _LINE.match(raw)
        if found:
            day, ms, _level, logger, message = found.groups()
            at = dt.datetime.strptime(day, "%Y-%m-%d %H:%M:%S").replace(microsecond=int(ms) * 1000, tzinfo=tz)
            lines.append(LogLine(at.astimezone(dt.UTC), logger, message))
    return lines


def change_time(entry: Mapping) -> dt.datetime:
    return dt.datetime.strptime(entry["created_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def _first_change(changes: Sequence[Mapping], test) -> Mapping | None:  # noqa: ANN001
    return next((c for c in changes if c["action"] != "delete" and test(c.get("changed") or {})), None)


def timeline(changes: Sequence[Mapping], host: str, ovs_log: Sequence[LogLine],
             dhcp_logs: Mapping[str, Sequence[LogLine]]) -> list[Step]:
    """The steps (see the module docstring), in their order of definition."""
    created = _first_change(changes, lambda c: True)
    bound = _first_change(changes, lambda c: c.get("binding:vif_type") == "ovs")
    active = _first_change(changes, lambda c: c.get("status") == "ACTIVE")
    steps = [_logged("created", created, "change log"), _logged("bound", bound, "change log", host)]
    wired = None
    if bound is not None:
        wired = next((line for line in ovs_log if (line.seq or -1) >= bound["seq"]
                      and line.at >= change_time(bound) and _ovsdb_ops(line.message)), None)
    firewall = None
    if wired is not None:
        floor = change_time(bound)
        firewall = next((line for line in reversed(ovs_log) if line.message.startswith("firewall: chains written")
                         and floor <= line.at <= wired.at), None)
    agent = f"{host}: OVS agent log"
    steps.append(Step("firewall applied", firewall.at if firewall else None, agent,
                      firewall.message if firewall else "no firewall write seen between binding and wiring",
                      "1 ms" if firewall else ""))
    steps.append(Step("wired", wired.at if wired else None, agent, wired.message if wired else "",
                      "1 ms" if wired else ""))
    served = _dhcp_served(created, dhcp_logs)
    steps.append(served)
    steps.append(_logged("ACTIVE", active, "change log", "status ACTIVE (reported by the OVS agent)"))
    return steps


def _logged(name: str, entry: Mapping | None, source: str, detail: str = "") -> Step:
    if entry is None:
        return Step(name, None, source, detail)
    return Step(name, change_time(entry), f"{source} seq {entry['seq']}", detail, "1 s")


def _ovsdb_ops(message: str) -> bool:
    found = _OVSDB_OPS.search(message)
    return bool(found) and int(found.group(1)) > 0


def _dhcp_served(created: Mapping | None, dhcp_logs: Mapping[str, Sequence[LogLine]]) -> Step:
    if not dhcp_logs:
        return Step("DHCP entry served", None, "no DHCP agent serves its network")
    if created is None:
        return Step("DHCP entry served", None, "DHCP agent log", "creation not in the change log")
    found = []
    for node, lines in sorted(dhcp_logs.items()):
        line = next((ln for ln in lines if (ln.seq or -1) >= created["seq"] and "WriteFiles" in ln.message
                     and ln.at >= change_time(created)), None)
        if line is not None:
            found.append((line.at, node, line))
    if not found:
        return Step("DHCP entry served", None, ", ".join(f"{n}: DHCP agent log" for n in sorted(dhcp_logs)),
                    "no DHCP agent run wrote files after the port's creation")
    at, node, line = min(found, key=lambda item: item[0])
    return Step("DHCP entry served", at, f"{node}: DHCP agent log", line.message, "1 ms")


def in_order(steps: Iterable[Step]) -> bool:
    """Every step has a time, and ``created`` <= ``bound`` <= ``wired`` <= ``ACTIVE`` (seconds:
    the change log's resolution), firewall <= wired."""
    at = {s.name: s.at for s in steps}
    if any(v is None for v in at.values()):
        return False
    second = dt.timedelta(seconds=1)
    return (at["created"] <= at["bound"] <= at["wired"] + second and at["wired"] <= at["ACTIVE"] + second
            and at["firewall applied"] <= at["wired"] and at["created"] <= at["DHCP entry served"] + second)


def realised(agents: Iterable[Mapping], last_seq: int) -> list[tuple[str, str, int | None, bool]]:
    """(agent type, host, realised_seq, realised the port's last change?) for the given agents."""
    return [(a["agent_type"], a["host"], a.get("realised_seq"), (a.get("realised_seq") or 0) >= last_seq)
            for a in agents]
