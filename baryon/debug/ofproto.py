"""Reading Open vSwitch's own explanations: ``ofproto/trace`` and ``dpif/show`` output (pure).

``ovs-appctl ofproto/trace BRIDGE FLOW`` is read-only: it runs the flow tables on a made-up
packet and prints every table it crosses, following patch ports into the next bridge, then the
datapath actions the packet would get. This module turns that text into data; ``baryon.debug.trace``
runs the commands. Nothing here does I/O.

- ``parse_trace(text) -> OfTrace``: the bridges crossed (``Section``: bridge, nesting depth, the
  table ``Step``s with their match, priority, cookie, actions and OVS's notes such as
  ``-> no learned MAC for destination, flooding``), the final datapath actions and their outputs.
- ``parse_datapath_actions(text) -> list[DpOutput]``: where the packet leaves the datapath: a
  datapath port, a VXLAN tunnel (remote and local IP, VNI), or nothing (``drop``). ``clone(...)``
  (flooding) is opened; VLAN pushes, ``set(...)`` and the like are not outputs.
- ``parse_dpif_show(text) -> list[DpPort]``: every port as ``ovs-appctl dpif/show`` lists it:
  bridge, name, OpenFlow and datapath port numbers, type and options; ``by_datapath_port``
  indexes them for reading datapath actions.
- ``flow_spec(...)``: the FLOW argument of ``ofproto/trace`` for one packet.

Measured on OVS 3.1 (userspace ``netdev`` datapath); ``tests/unit/test_debug_trace_ofproto.py``
keeps real samples.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TUNNEL_TYPES = frozenset({"vxlan", "geneve", "gre", "stt"})
_BRIDGE_RE = re.compile(r'^(?P<indent>\s*)bridge\("(?P<name>[^"]+)"\)\s*$')
_STEP_RE = re.compile(r"^\s*(?P<table>\d+)\.\s+(?P<rest>.*)$")
_DPIF_BRIDGE_RE = re.compile(r"^\s{2}(?P<name>\S+):\s*$")
_DPIF_PORT_RE = re.compile(r"^\s{4}(?P<name>\S+) (?P<ofport>\d+)/(?P<dp>\d+|none):\s*\((?P<type>[^:)]*)(?::\s*(?P<opts>.*))?\)\s*$")


@dataclass(frozen=True)
class Step:
    """One table a packet crossed: ``table``, the flow's match (``""`` for a catch-all), priority,
    cookie (None when the flow has none), its actions one per line, and OVS's notes (``-> ...``,
    ``>> ...``)."""

    table: int
    match: str
    priority: int | None
    cookie: int | None
    actions: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        match = f" {self.match}" if self.match else ""
        prio = f" priority {self.priority}" if self.priority is not None else ""
        return f"table {self.table}{prio}{match}: {','.join(self.actions) or '(no action)'}"


@dataclass(frozen=True)
class Section:
    bridge: str
    depth: int  # 0: the packet's main path; >0: a copy (flooding, clone) followed inside a step
    steps: tuple[Step, ...] = ()

    @property
    def notes(self) -> tuple[str, ...]:
        return tuple(note for step in self.steps for note in step.notes)


@dataclass(frozen=True)
class DpOutput:
    kind: str  # "port" | "tunnel"
    port: int | None = None  # the datapath port (kind "port"), or the tunnel's underlay port
    remote_ip: str | None = None
    local_ip: str | None = None
    vni: int | None = None


@dataclass(frozen=True)
class OfTrace:
    sections: tuple[Section, ...]
    final_flow: str
    datapath_actions: str
    outputs: tuple[DpOutput, ...]
    errors: tuple[str, ...] = ()

    @property
    def dropped(self) -> bool:
        return not self.outputs

    def main_sections(self) -> tuple[Section, ...]:
        return tuple(s for s in self.sections if s.depth == 0)

    def last_step(self) -> Step | None:
        steps = [step for section in self.sections for step in section.steps]
        return steps[-1] if steps else None

    def flooded(self) -> bool:
        return any("flooding" in note for section in self.sections for note in section.notes)


@dataclass(frozen=True)
class DpPort:
    bridge: str
    name: str
    ofport: int
    type: str
    options: dict[str, str] = field(default_factory=dict)
    dp: int | None = None  # the datapath port; None for a patch port


# ---------------------------------------------------------------- ofproto/trace


def parse_trace(text: str) -> OfTrace:
    """The trace's text as data. A copy of the packet followed inside a step (flooding, a
    ``clone``) is printed indented by four spaces per level: such a section gets its ``depth``,
    and the lines after it that are indented less belong to the step it interrupted."""
    opened: list[dict] = []  # every section, in the order the trace opens them
    stack: list[dict] = []  # the open sections, innermost last
    final_flow, actions = "", ""
    errors: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or set(stripped) == {"-"}:
            continue
        indent = len(line) - len(line.lstrip(" "))
        bridge = _BRIDGE_RE.match(line)
        if bridge:
            depth = len(bridge["indent"]) // 4
            del stack[depth:]
            section = {"bridge": bridge["name"], "depth": depth, "steps": []}
            opened.append(section)
            stack.append(section)
            continue
        found = _STEP_RE.match(line)
        is_step = bool(found and _looks_like_step(found["rest"]))
        if not is_step and not line.startswith(" "):
            del stack[:]
            key, _, value = line.partition(":")
            if key == "Final flow":
                final_flow = value.strip()
            elif key == "Datapath actions":
                actions = value.strip()
            elif "error" in line.lower() or "failed" in line.lower():
                errors.append(stripped)
            continue
        while len(stack) > 1 and indent < 4 * stack[-1]["depth"] + (0 if is_step else 4):
            stack.pop()
        if not stack:
            continue
        section = stack[-1]
        if is_step:
            section["steps"].append({"table": int(found["table"]), "actions": [], "notes": [],
                                     **_step_head(found["rest"])})
        elif section["steps"]:
            step = section["steps"][-1]
            if stripped.startswith(("->", ">>")):
                step["notes"].append(stripped[2:].strip())
            else:
                step["actions"].append(stripped)
    sections = tuple(Section(s["bridge"], s["depth"], tuple(
        Step(t["table"], t["match"], t["priority"], t["cookie"], tuple(t["actions"]), tuple(t["notes"]))
        for t in s["steps"])) for s in opened)
    return OfTrace(sections, final_flow, actions, tuple(parse_datapath_actions(actions)), tuple(errors))


def _looks_like_step(rest: str) -> bool:
    return "priority" in rest or rest.startswith("No match")


def _step_head(rest: str) -> dict:
    """``in_port=1, priority 1, cookie 0xb4770`` -> match, priority, cookie."""
    if rest.startswith("No match"):
        return {"match": "(no match)", "priority": None, "cookie": None}
    parts = [p.strip() for p in rest.split(", ")]
    match, priority, cookie = [], None, None
    for part in parts:
        if part.startswith("priority "):
            priority = int(part.split()[1])
        elif part.startswith("cookie "):
            cookie = int(part.split()[1], 16)
        else:
            match.append(part)
    return {"match": ", ".join(match), "priority": priority, "cookie": cookie}


# ---------------------------------------------------------------- datapath actions


def split_top(text: str) -> list[str]:
    """``a,b(c,d),e`` -> ``["a", "b(c,d)", "e"]``."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    tail = text[start:].strip()
    if tail:
        parts.append(tail)
    return [p for p in parts if p]


def _inner(action: str) -> str:
    return action[action.index("(") + 1:action.rindex(")")]


def parse_datapath_actions(text: str) -> list[DpOutput]:
    outputs: list[DpOutput] = []
    for action in split_top(text.strip()):
        if action.isdigit():
            outputs.append(DpOutput("port", port=int(action)))
        elif action.startswith("clone("):
            outputs += parse_datapath_actions(_inner(action))
        elif action.startswith("tnl_push("):
            outputs.append(_tunnel(action))
    return outputs


def _tunnel(action: str) -> DpOutput:
    ipv4 = re.search(r"ipv4\(src=([\d.]+),dst=([\d.]+)", action)
    vni = re.search(r"vni=(0x[0-9a-f]+|\d+)", action)
    out = re.search(r"out_port\((\d+)\)", action)
    return DpOutput("tunnel", port=int(out[1]) if out else None,
                    local_ip=ipv4[1] if ipv4 else None, remote_ip=ipv4[2] if ipv4 else None,
                    vni=int(vni[1], 0) if vni else None)


# ---------------------------------------------------------------- dpif/show


def parse_dpif_show(text: str) -> list[DpPort]:
    """Every port of every bridge, with its datapath port number (None for patch ports). NOTE:
    tunnel ports of one type share one datapath port (``vxlan_sys_4789``): look them up by name or
    ``options["remote_ip"]``, and datapath outputs with ``by_datapath_port``."""
    ports: list[DpPort] = []
    bridge = None
    for line in text.splitlines():
        found = _DPIF_BRIDGE_RE.match(line)
        if found:
            bridge = found["name"]
            continue
        found = _DPIF_PORT_RE.match(line)
        if found and bridge is not None:
            options = {}
            for item in (found["opts"] or "").split(", "):
                if "=" in item:
                    key, value = item.split("=", 1)
                    options[key.strip()] = value.strip()
            dp = None if found["dp"] == "none" else int(found["dp"])
            ports.append(DpPort(bridge, found["name"], int(found["ofport"]), found["type"].strip(), options, dp))
    return ports


def by_datapath_port(ports: list[DpPort]) -> dict[int, DpPort]:
    """Datapath port number -> the one port behind it (tunnel and patch ports left out)."""
    return {p.dp: p for p in ports if p.dp is not None and p.type not in TUNNEL_TYPES}


# ---------------------------------------------------------------- the packet


def flow_spec(*, in_port: str, proto: str, dl_src: str, dl_dst: str, nw_src: str, nw_dst: str,
              dport: int | None = None, sport: int | None = None, tun_id: int | None = None,
              tun_src: str | None = None, tun_dst: str | None = None, ttl: int = 64) -> str:
    """The FLOW argument of ``ofproto/trace`` for one IPv4 packet (an ICMP echo request, or a TCP
    SYN / UDP datagram to ``dport``)."""
    parts = [f"in_port={in_port}"]
    if tun_id is not None:
        parts += [f"tun_id={tun_id:#x}", f"tun_src={tun_src}", f"tun_dst={tun_dst}"]
    parts += [proto, f"dl_src={dl_src}", f"dl_dst={dl_dst}", f"nw_src={nw_src}", f"nw_dst={nw_dst}",
              f"nw_ttl={ttl}"]
    if proto == "icmp":
        parts += ["icmp_type=8", "icmp_code=0"]
    else:
        parts += [f"tp_src={sport or 40000}", f"tp_dst={dport or 0}"]
        if proto == "tcp":
            parts.append("tcp_flags=syn")
    return ",".join(parts)
