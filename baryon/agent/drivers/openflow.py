"""OpenFlow tables of one node's bridges, through ``ovs-ofctl`` (the only code that runs it).

``OpenFlow(rundir)``: ``rundir`` is the ``OVS_RUNDIR`` of the node's ovs-vswitchd. Every command
names the bridge's management socket explicitly (``unix:<rundir>/<bridge>.mgmt``), never OVS's
default paths, and speaks OpenFlow 1.4 (bundles need it).

- ``replace_flows(bridge, flows)``: makes the bridge's flows with cookie ``AGENT_COOKIE`` exactly
  ``flows`` (each must carry that cookie, or nothing is sent) and leaves every other flow alone,
  above all the flows that br-tun's table 10 ``learn``s (``LEARNED_COOKIE``): replacing br-tun's
  flows never flushes learned MACs. How: ``ovs-ofctl diff-flows <bridge> /dev/stdin`` compares ``flows`` with
  the switch's table, as parsed; if something differs, ONE ``ovs-ofctl --bundle add-flows`` carries
  all the changes atomically: ``delete_strict`` for each of our flows that is no longer wanted
  (cookie mask -1: only an ``AGENT_COOKIE`` flow can match it), then ``add`` for each new or
  changed flow (an add replaces the flow of the same table, priority and match, so a changed flow
  is one add). Flows that do not differ are not touched (their counters and durations go on) and
  traffic through them never stops; when nothing differs no bundle is sent. Returns the changes.
- ``diff_flows(bridge, flows)``: the same comparison, read-only.
- ``flow_count(bridge)``: how many flows carry ``AGENT_COOKIE`` (one aggregate request).
- ``dump_flows(bridge)``: the table as text, ports by name (debugging and tests).

Ports: ``flows`` may name ports in ``in_port=<name>`` and ``output:<name>``, the only places the
planner names them. ``diff-flows`` does not resolve names in a file, so this driver does, from the
bridge's port list (``dump-ports-desc``), just before the diff; the ports must exist in
ovs-vswitchd by then (``Ovsdb.apply`` waits for that). A name found nowhere is left as written and
ovs-ofctl rejects the flow ("unknown port"). Numbers and reserved names (``LOCAL``, ``NORMAL``,
``IN_PORT``...) are used as they are.

Failures raise ``OpenFlowError`` with ovs-ofctl's own message, and change nothing: a flow that
does not parse fails the diff before anything is sent, a flow the switch rejects fails the bundle
as a whole.

NOTE: "unchanged" means unchanged as parsed and as printed. Actions must be written the way an
OpenFlow 1.4 switch reports them back, or the diff sees a difference and re-adds the flow on every
replace: ``pop_vlan`` (not ``strip_vlan``), ``push_vlan:0x8100,set_field:<4096+vid>->vlan_vid`` on
untagged packets and ``set_field:<4096+vid>->vlan_vid`` on tagged ones (not ``mod_vlan_vid``),
``set_field:<vni>->tun_id`` (not ``set_tunnel``), ``set_field:...->eth_src|arp_op|arp_sha|arp_spa``
(not ``mod_dl_src`` or ``load:...->NXM_...``). ``resubmit``, ``move``, ``learn``, ``output``,
``NORMAL``, ``drop``, ``goto_table`` and matches (names included) compare equal as written.

NOTE: the bundle's lines are the flows as diff-flows prints them (ports by number, resolved just
before), so what is added is exactly what was compared. diff-flows does not print flow flags
(``send_flow_rem``...): the agent's flows have none. A flow of another cookie with the same table,
priority and match as a wanted flow is replaced by it (a table holds one flow per rule).

NOTE: the diff and the bundle are two requests: a flow learned in between is not seen by the
diff and, having another cookie, is not touched by the bundle either. This driver assumes it is
the only writer of ``AGENT_COOKIE`` flows on the bridge.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from baryon.model.ovs import AGENT_COOKIE

PROTOCOL = "OpenFlow14"
DEFAULT_TIMEOUT = 30.0
DIFF_FOUND = 2  # ovs-ofctl diff-flows' exit status when the two sides differ
_FLOW_COUNT = re.compile(r"\bflow_count=(\d+)")
_STDIN_LINE = re.compile(r"/dev/stdin:(\d+):")
_PORT_DESC = re.compile(r"^\s*(\d+|LOCAL)\((.*)\): addr:", re.MULTILINE)
_PORT_REF = re.compile(r"(?<![\w.])(in_port=|output:)([\w.-]+)(?=[,)\s]|$)")
_RESERVED_PORTS = frozenset({"in_port", "table", "normal", "flood", "all", "controller", "local", "any", "none",
                             "unset"})
# diff-flows prints "<rule> cookie=0x.. [idle_timeout=..] [hard_timeout=..] [importance=..] actions=.."
_VERSION_FIELDS = ("cookie=", "idle_timeout=", "hard_timeout=", "importance=")


class OpenFlowError(RuntimeError):
    """``ovs-ofctl`` failed; ``stderr`` is what it said."""

    def __init__(self, message: str, *, bridge: str, stderr: str = "") -> None:
        super().__init__(message)
        self.bridge = bridge
        self.stderr = stderr


@dataclass(frozen=True)
class FlowChanges:
    """What ``replace_flows`` changed (or ``diff_flows`` would), flows as ovs-ofctl prints them
    (ports by number). ``added``: new or changed flows; ``deleted``: our flows removed."""

    added: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.deleted)

    def bundle(self) -> str:
        """The ``add-flows`` file: deletions first, then additions, one flow mod a line."""
        lines = [f"delete_strict {_rule(flow)} cookie={AGENT_COOKIE:#x}/-1" for flow in self.deleted]
        lines += [f"add {flow}" for flow in self.added]
        return "".join(f"{line}\n" for line in lines)


class OpenFlow:
    def __init__(self, rundir: str | Path, *, timeout: float = DEFAULT_TIMEOUT, ofctl: str = "ovs-ofctl") -> None:
        self.rundir = str(rundir)
        self.timeout = timeout
        self.ofctl = ofctl
        self._env = {**os.environ, "OVS_RUNDIR": self.rundir}

    def target(self, bridge: str) -> str:
        return f"unix:{self.rundir}/{bridge}.mgmt"

    def _run(self, bridge: str, command: str, *args: str, options: Sequence[str] = (), stdin: str | None = None,
             ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
        # NOTE: no ``--timeout``: it costs ovs-ofctl ~13 ms per run here; subprocess's timeout kills it.
        argv = [self.ofctl, "-O", PROTOCOL, *options, command, self.target(bridge), *args]
        try:
            proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=self._env,
                                  timeout=self.timeout, check=False)
        except FileNotFoundError:
            raise OpenFlowError(f"{self.ofctl}: command not found", bridge=bridge) from None
        except subprocess.TimeoutExpired:
            raise OpenFlowError(f"{self.ofctl} {command} {bridge}: no answer in {self.timeout:g} s",
                                bridge=bridge) from None
        if proc.returncode not in ok:
            stderr = proc.stderr.strip()
            raise OpenFlowError(f"{self.ofctl} {command} {bridge}: {stderr or f'exit {proc.returncode}'}",
                                bridge=bridge, stderr=stderr)
        return proc

    def replace_flows(self, bridge: str, flows: Sequence[str]) -> FlowChanges:
        """Make ``bridge``'s ``AGENT_COOKIE`` flows exactly ``flows``, in one atomic bundle, touching
        no other flow; nothing is sent when nothing differs (see the module doc)."""
        changes = self.diff_flows(bridge, flows)
        foreign = [flow for flow in changes.added if _cookie(flow) != AGENT_COOKIE]
        if foreign:  # it could never be deleted again: refuse before anything is sent
            raise OpenFlowError(f"replace_flows {bridge}: flows without cookie={AGENT_COOKIE:#x}: {foreign}",
                                bridge=bridge)
        if changes:
            self._run(bridge, "add-flows", "-", options=["--bundle"], stdin=changes.bundle())
        return changes

    def diff_flows(self, bridge: str, flows: Sequence[str]) -> FlowChanges:
        """What ``replace_flows(bridge, flows)`` would change (read-only)."""
        text = "".join(f"{flow}\n" for flow in flows)
        if _PORT_REF.search(text):
            text = resolve_ports(text, self.port_numbers(bridge))
        # NOTE: /dev/stdin, not "-": diff-flows takes a name without "/" or ":" for a switch.
        try:
            proc = self._run(bridge, "diff-flows", "/dev/stdin", stdin=text, ok=(0, DIFF_FOUND))
        except OpenFlowError as exc:
            line = _STDIN_LINE.search(exc.stderr)
            if line is None or not 0 < int(line.group(1)) <= len(flows):
                raise
            raise OpenFlowError(f"{exc} (in {flows[int(line.group(1)) - 1]!r})", bridge=bridge,
                                stderr=exc.stderr) from None
        return parse_diff(proc.stdout)

    def port_numbers(self, bridge: str) -> dict[str, str]:
        """Port name -> OpenFlow port number (``LOCAL`` for the bridge's own port)."""
        out = self._run(bridge, "dump-ports-desc").stdout
        return {name: number for number, name in _PORT_DESC.findall(out)}

    def flow_count(self, bridge: str) -> int:
        """The number of flows on ``bridge`` whose cookie is exactly ``AGENT_COOKIE``."""
        # NOTE: --no-names: with a match argument, ovs-ofctl otherwise first fetches the port and
        # table names over two more connections (~15 ms here instead of ~4 ms).
        out = self._run(bridge, "dump-aggregate", f"cookie={AGENT_COOKIE:#x}/-1", options=["--no-names"]).stdout
        match = _FLOW_COUNT.search(out)
        if match is None:
            raise OpenFlowError(f"dump-aggregate {bridge}: no flow_count in {out.strip()!r}", bridge=bridge)
        return int(match.group(1))

    def dump_flows(self, bridge: str, *, stats: bool = False) -> list[str]:
        """The bridge's flows, one string each, ports by name (with counters and durations if ``stats``)."""
        out = self._run(bridge, "dump-flows", options=["--names", "--stats" if stats else "--no-stats"]).stdout
        return [line.strip() for line in out.splitlines()
                if line.strip() and not line.startswith(("OFPST_", "NXST_"))]


# ---------------------------------------------------------------- text (pure)


def resolve_ports(text: str, numbers: Mapping[str, str]) -> str:
    """``in_port=<name>`` and ``output:<name>`` with the port's number, for the names in ``numbers``."""

    def number(match: re.Match[str]) -> str:
        key, name = match.groups()
        if name.isdigit() or name.lower() in _RESERVED_PORTS or name not in numbers:
            return match.group(0)
        return key + numbers[name]

    return _PORT_REF.sub(number, text)


def parse_diff(out: str) -> FlowChanges:
    """``diff-flows <switch> <wanted>`` output -> the changes that make the switch's flows with
    ``AGENT_COOKIE`` the wanted ones: every "+" flow is added; a "-" flow is deleted only if it
    carries ``AGENT_COOKIE`` and no "+" flow of the same rule (table, priority, match) replaces it."""
    added, removed = [], []
    for line in out.splitlines():
        if line[:1] == "+":
            added.append(line[1:].strip())
        elif line[:1] == "-":
            removed.append(line[1:].strip())
    replaced = {_rule(flow) for flow in added}
    deleted = [flow for flow in removed if _cookie(flow) == AGENT_COOKIE and _rule(flow) not in replaced]
    return FlowChanges(tuple(added), tuple(deleted))


def _head(flow: str) -> list[str]:
    return flow.partition(" actions=")[0].split()


def _rule(flow: str) -> str:
    """A printed flow's table, priority and match, as ``delete_strict`` takes them (table 0, which
    diff-flows leaves out, made explicit: without a table a delete applies to every table)."""
    tokens = [t for t in _head(flow) if not t.startswith(_VERSION_FIELDS)]
    if not any(t.startswith("table=") for t in tokens):
        tokens.insert(0, "table=0")
    return " ".join(tokens)


def _cookie(flow: str) -> int:
    value = next((t.partition("=")[2] for t in _head(flow) if t.startswith("cookie=")), "0")
    return int(value, 0)
