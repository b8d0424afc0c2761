"""A port's expected state beside its observed state, compared (pure: values in, findings out).

``baryon debug port`` (``baryon.debug.port``) gathers both sides: what the agents' own pure
planners want on a node for the view the server gives that node's agent (the expected side), and
what the node has (the observed side: ``ip -o link``, OVSDB rows, ``ovs-ofctl dump-flows``,
``iptables-save``, a dnsmasq host file, a router namespace's nat table). The functions here turn
each pair into ``Finding``s, one per thing checked, in a stable order:

- ``status`` "ok" when both sides agree; otherwise "missing" (expected, not there),
  "unexpected" (there, not expected) or "differs" (both there, not equal), with both values.
- ``area`` says what kind of thing: ``binding``, ``status``, ``device``, ``ovs-port``, ``flow``,
  ``firewall``, ``dhcp``, ``nat``; ``node`` where it is (``""`` for the API's side).

Nothing here does I/O, reads a clock or a global: equal inputs give equal findings.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

from baryon.model.ovs import AGENT_COOKIE, ObservedPort, SetPortTag

OK, MISSING, UNEXPECTED, DIFFERS = "ok", "missing", "unexpected", "differs"
AREAS = ("binding", "status", "device", "ovs-port", "flow", "firewall", "dhcp", "nat")


@dataclass(frozen=True)
class Finding:
    area: str
    node: str
    what: str  # the thing checked, named as a person finds it on the node
    status: str  # OK | MISSING | UNEXPECTED | DIFFERS
    expected: str | None = None
    observed: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == OK

    def to_json(self) -> dict:
        return asdict(self)


def differences(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if not f.ok]


# ---------------------------------------------------------------- intent vs the host's plan


def compare_binding(port: Mapping, ovs_agent_alive: bool | None) -> list[Finding]:
    """The binding the API shows: bound to a host (vif_type ovs) whose OVS agent is alive."""
    host = port.get("binding:host_id") or ""
    vif_type = port.get("binding:vif_type") or ""
    if not host:
        return [Finding("binding", "", "binding:host_id", MISSING, "a host", "(none): nothing is wired")]
    findings = []
    if vif_type == "ovs":
        findings.append(Finding("binding", "", "binding:vif_type", OK, "ovs", vif_type))
    else:
        reason = (port.get("binding:vif_details") or {}).get("reason")
        findings.append(Finding("binding", "", "binding:vif_type", DIFFERS, "ovs",
                                f"{vif_type} ({reason})" if reason else vif_type))
    if ovs_agent_alive is not None:
        findings.append(Finding("binding", host, "Open vSwitch agent", OK if ovs_agent_alive else DIFFERS,
                                "alive", "alive" if ovs_agent_alive else "dead (no heartbeat)"))
    return findings


def compare_status(node: str, api_status: str, planned: str | None, down_reason: str | None) -> Finding:
    """The port's status in the API beside the one its host's planner computes now."""
    if planned is None:
        return Finding("status", node, "port status", MISSING, api_status, "the port is not in the host's view")
    shown = planned if planned == "ACTIVE" or not down_reason else f"{planned} ({down_reason})"
    return Finding("status", node, "port status (API / host's plan)", OK if planned == api_status else DIFFERS,
                   api_status, shown)


# ---------------------------------------------------------------- devices


def link_names(ip_o_link: str) -> set[str]:
    """Interface names in ``ip -o link`` output (``qvo...@qvb...`` -> ``qvo...``)."""
    names = set()
    for line in ip_o_link.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            names.add(parts[1].strip().split("@", 1)[0])
    return names


def compare_devices(node: str, place: str, expected: Sequence[str], observed: set[str]) -> list[Finding]:
    """Each expected device present in ``place`` (the node, or one of its namespaces)."""
    where = f" (in {place})" if place else ""
    return [Finding("device", node, f"{name}{where}", OK if name in observed else MISSING,
                    "present", "present" if name in observed else None) for name in expected]


# ---------------------------------------------------------------- the VIF on br-int


def compare_vif(node: str, bridge: str, name: str, port: Mapping, observed: ObservedPort | None,
                local_vlan: int | None, tag_op: SetPortTag | None) -> list[Finding]:
    """The port's OVS port on br-int: iface-id and attached-mac, its OpenFlow port, and its tag
    and other_config beside what the OVS agent's plan sets (``tag_op``: the plan's ``SetPortTag``
    for it, present only when the switch differs from the plan)."""
    what = f"{bridge} port {name}"
    if observed is None:
        return [Finding("ovs-port", node, what, MISSING, f"iface-id={port['id']}", None)]
    if observed.bridge != bridge:
        return [Finding("ovs-port", node, what, DIFFERS, f"on {bridge}", f"on {observed.bridge}")]
    ids = dict(observed.external_ids)
    findings = [
        _equal("ovs-port", node, f"{what} iface-id", port["id"], ids.get("iface-id")),
        _equal("ovs-port", node, f"{what} attached-mac", port["mac_address"].lower(),
               (ids.get("attached-mac") or "").lower() or None),
        Finding("ovs-port", node, f"{what} ofport", OK if observed.ofport else MISSING,
                "an OpenFlow port", str(observed.ofport) if observed.ofport else None),
    ]
    if local_vlan is None:
        findings.append(Finding("ovs-port", node, f"{what} tag", OK, "no local VLAN (port down)", str(observed.tag)))
    elif tag_op is None:
        findings.append(Finding("ovs-port", node, f"{what} tag", OK, str(local_vlan), str(observed.tag)))
    else:
        other = dict(observed.other_config)
        want = f"tag={tag_op.tag} " + " ".join(f"{k}={v}" for k, v in tag_op.other_config)
        have = f"tag={observed.tag} " + " ".join(f"{k}={other.get(k)}" for k, _ in tag_op.other_config)
        findings.append(Finding("ovs-port", node, f"{what} tag and other_config", DIFFERS, want.strip(), have.strip()))
    return findings


def _equal(area: str, node: str, what: str, expected: str, observed: str | None) -> Finding:
    if observed is None:
        return Finding(area, node, what, MISSING, expected, None)
    return Finding(area, node, what, OK if observed == expected else DIFFERS, expected, observed)


# ---------------------------------------------------------------- flows


@dataclass(frozen=True, order=True)
class Flow:
    """One flow as (table, priority, match) -> actions, spelled alike whether rendered by the
    planner or dumped by ``ovs-ofctl -O OpenFlow14 --names --no-stats`` (port names unquoted)."""

    table: int
    priority: int
    match: str
    actions: str
    cookie: int = AGENT_COOKIE

    @property
    def rule(self) -> str:
        return f"table={self.table},priority={self.priority}" + (f",{self.match}" if self.match else "")

    def text(self) -> str:
        return f"{self.rule} actions={self.actions}"


_QUOTED_NAME = re.compile(r'"([^"]*)"')


def parse_flow(text: str) -> Flow | None:
    """A flow from the planner (``cookie=..,table=..,priority=..,<match>,actions=..``) or from
    ``dump-flows`` (``cookie=.., table=.., priority=..,<match> actions=..``); None if it is not one."""
    text = _QUOTED_NAME.sub(r"\1", text.strip())
    head, sep, actions = text.partition("actions=")
    if not sep:
        return None
    fields: dict[str, str] = {}
    match: list[str] = []
    for token in (t.strip() for t in head.replace(" ", ",").split(",")):
        if not token:
            continue
        key, _, value = token.partition("=")
        if key in ("cookie", "table", "priority", "duration", "n_packets", "n_bytes", "idle_age", "hard_age"):
            fields[key] = value
        else:
            match.append(token)
    try:
        cookie = int(fields.get("cookie", "0").split("/")[0], 0)
        return Flow(int(fields.get("table", "0")), int(fields.get("priority", "32768")), ",".join(match),
                    actions.strip(), cookie)
    except ValueError:
        return None


@dataclass(frozen=True)
class FlowKeys:
    """What makes a flow concern the port: exact match tokens (``dl_vlan=3``, ``tun_id=0x5``,
    ``in_port=qvo...``, ``arp_tpa=10.0.0.5``), exact action tokens (``set_field:4099->vlan_vid``,
    ``set_field:0x5->tun_id``) and words found anywhere (its MAC)."""

    match: frozenset[str] = frozenset()
    actions: frozenset[str] = frozenset()
    words: tuple[str, ...] = ()

    def concern(self, flow: Flow) -> bool:
        if self.match.intersection(flow.match.split(",")):
            return True
        if self.actions.intersection(flow.actions.split(",")):
            return True
        return any(word in flow.match or word in flow.actions for word in self.words)


def flow_keys(*, vlan: int | None = None, vni: int | None = None, mac: str | None = None,
              ips: Sequence[str] = (), ports: Sequence[str] = ()) -> FlowKeys:
    """The keys of a port's flows: on its host its network's local VLAN and VNI, its VIF, its
    MAC and IPv4s; on another host only its MAC and IPv4s (l2population's entries)."""
    match: set[str] = {f"in_port={p}" for p in ports}
    actions: set[str] = set()
    if vlan is not None:
        match.add(f"dl_vlan={vlan}")
        actions.add(f"set_field:{0x1000 + vlan}->vlan_vid")
    if vni is not None:
        match.add(f"tun_id={vni:#x}")
        actions.add(f"set_field:{vni:#x}->tun_id")
    match.update(f"arp_tpa={ip}" for ip in ips if ":" not in ip)
    return FlowKeys(frozenset(match), frozenset(actions), (mac.lower(),) if mac else ())


def compare_flows(node: str, bridge: str, desired: Sequence[str], observed: Sequence[str],
                  keys: FlowKeys) -> list[Finding]:
    """The flows of ``bridge`` (cookie ``AGENT_COOKIE``) that concern the port, desired beside observed."""
    want = {f.rule: f for f in (parse_flow(t) for t in desired) if f is not None and keys.concern(f)}
    have = {f.rule: f for f in (parse_flow(t) for t in observed)
            if f is not None and f.cookie == AGENT_COOKIE and keys.concern(f)}
    findings = []
    for rule in sorted(set(want) | set(have), key=lambda r: (want.get(r) or have[r])):
        w, h = want.get(rule), have.get(rule)
        what = f"{bridge} {rule}"
        if h is None:
            findings.append(Finding("flow", node, what, MISSING, f"actions={w.actions}", None))
        elif w is None:
            findings.append(Finding("flow", node, what, UNEXPECTED, None, f"actions={h.actions}"))
        else:
            findings.append(Finding("flow", node, what, OK if w.actions == h.actions else DIFFERS,
                                    f"actions={w.actions}", f"actions={h.actions}"))
    return findings


# ---------------------------------------------------------------- firewall


Chains = Mapping[str, Sequence[str]]  # chain name -> its rules, as iptables-save prints them


def compare_firewall(node: str, family: str, table: str, desired: Chains, observed: Chains,
                     port_chains: Sequence[str], devices: Sequence[str]) -> list[Finding]:
    """The port's own chains (``neutron-openvswi-i/o/s<id>``: whole, rule for rule) and its rules
    in the shared chains (those naming one of its ``devices``: tap, qvb), desired beside observed."""
    findings = []
    where = f"{family} {table}"
    for chain in sorted(set(port_chains) & (set(desired) | set(observed))):
        want, have = desired.get(chain), observed.get(chain)
        what = f"{where} chain {chain}"
        if have is None:
            findings.append(Finding("firewall", node, what, MISSING, _rules(want), None))
        elif want is None:
            findings.append(Finding("firewall", node, what, UNEXPECTED, None, _rules(have)))
        elif tuple(want) == tuple(have):
            findings.append(Finding("firewall", node, what, OK, _rules(want), _rules(have)))
        else:
            findings.append(Finding("firewall", node, what, DIFFERS, *_first_difference(want, have)))
    own = set(port_chains)
    for chain in sorted((set(desired) | set(observed)) - own):
        want = [r for r in desired.get(chain, ()) if _names_any(r, devices)]
        have = [r for r in observed.get(chain, ()) if _names_any(r, devices)]
        if want or have:
            findings += compare_lines("firewall", node, f"{where} chain {chain}", want, have)
    return findings


def _names_any(rule: str, devices: Sequence[str]) -> bool:
    words = set(rule.split())
    return any(device in words for device in devices)


def _rules(rules: Sequence[str] | None) -> str:
    n = len(rules or ())
    return f"{n} rule{'' if n == 1 else 's'}"


def _first_difference(want: Sequence[str], have: Sequence[str]) -> tuple[str, str]:
    for i, (w, h) in enumerate(zip(want, have)):
        if w != h:
            return f"{_rules(want)}; rule {i + 1}: {w}", f"{_rules(have)}; rule {i + 1}: {h}"
    i = min(len(want), len(have))
    return (f"{_rules(want)}; rule {i + 1}: {want[i] if i < len(want) else '(end)'}",
            f"{_rules(have)}; rule {i + 1}: {have[i] if i < len(have) else '(end)'}")


# ---------------------------------------------------------------- lines: DHCP host entries, NAT rules


def compare_lines(area: str, node: str, where: str, expected: Sequence[str], observed: Sequence[str]) -> list[Finding]:
    """Lines expected in ``where`` beside those there (as multisets: order aside, duplicates count)."""
    want, have = Counter(expected), Counter(observed)
    findings = []
    for line in sorted(set(want) | set(have), key=lambda s: (s not in want, s)):
        w, h = want[line], have[line]
        what = f"{where}: {line}"
        if w == h:
            findings.append(Finding(area, node, what, OK, line, line))
        elif h < w:
            findings.append(Finding(area, node, what, MISSING, line, None if not h else f"{h} of {w}"))
        else:
            findings.append(Finding(area, node, what, UNEXPECTED, None if not w else f"{w} time(s)",
                                    line if not w else f"{h} times"))
    return findings


def mentions_address(line: str, addresses: Iterable[str]) -> bool:
    """``line`` names one of ``addresses`` as a whole address (``10.0.0.5``, ``10.0.0.5/32``; not ``10.0.0.50``)."""
    return any(re.search(rf"(?<![\w.:]){re.escape(a)}(?![\w.:]|:\d)", line) for a in addresses)


def dhcp_host_lines(host_file: str, mac: str) -> list[str]:
    """A dnsmasq host file's lines for one MAC (``<mac>,...``)."""
    mac = mac.lower()
    return [line for line in host_file.splitlines() if line.lower().startswith(mac + ",")]
