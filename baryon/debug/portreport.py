"""``baryon debug port``'s report: its parts, as text a person reads and as JSON (pure).

Sections: intent (the API's port, its network and segment, DHCP agents, routers, floating IPs),
host (every thing checked, node by node, "ok" or the difference), differences (only those,
with both values), timeline (each step's time after creation and its source), notes (what was
not checked, and why).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from baryon.debug.portstate import Finding, differences
from baryon.debug.porttimeline import Step

EXIT_OK, EXIT_DIFFERENCES = 0, 3
WIDTH = 150  # the host section's lines are cut there (the differences section never is)
MARK = {"ok": "ok", "missing": "MISSING", "unexpected": "UNEXPECTED", "differs": "DIFFERS"}


@dataclass(frozen=True)
class PortReport:
    intent: dict
    findings: tuple[Finding, ...] = ()
    timeline: tuple[Step, ...] = ()
    realised: tuple[tuple[str, str, int | None, bool], ...] = ()  # (agent type, host, realised_seq, done)
    last_seq: int | None = None  # the port's last change-log sequence
    notes: tuple[str, ...] = field(default=())

    @property
    def differences(self) -> list[Finding]:
        return differences(self.findings)

    @property
    def exit_status(self) -> int:
        return EXIT_DIFFERENCES if self.differences else EXIT_OK


def to_json(report: PortReport) -> dict:
    created = next((s.at for s in report.timeline if s.name == "created"), None)
    return {
        "intent": report.intent,
        "findings": [f.to_json() for f in report.findings],
        "differences": [f.to_json() for f in report.differences],
        "timeline": [s.to_json(created) for s in report.timeline],
        "realised": [{"agent_type": t, "host": h, "realised_seq": seq, "realised_port": done}
                     for t, h, seq, done in report.realised],
        "last_seq": report.last_seq,
        "notes": list(report.notes),
        "exit_status": report.exit_status,
    }


def render(report: PortReport) -> str:
    out: list[str] = []
    _intent(out, report.intent)
    _host(out, report.findings)
    _differences(out, report.differences)
    _timeline(out, report)
    if report.notes:
        out += ["", "Notes"] + [f"  - {note}" for note in report.notes]
    return "\n".join(out) + "\n"


def _intent(out: list[str], i: dict) -> None:
    net = i.get("network") or {}
    seg = net.get("segment") or {}
    seg_text = seg.get("network_type") or "?"
    if seg.get("segmentation_id") is not None:
        seg_text += f" {'VNI' if seg.get('network_type') == 'vxlan' else 'VLAN'} {seg['segmentation_id']}"
    if seg.get("physical_network"):
        seg_text += f" on {seg['physical_network']}"
    title = f"Port {i['id']}" + (f" ({i['name']})" if i.get("name") else "")
    title += f", VM {i['vm']}" if i.get("vm") else ""
    out += [title, "", "Intent (API)"]
    rows = [
        ("network", f"{net.get('name') or ''} {net.get('id', '')}".strip() + f"  [{seg_text}, MTU {net.get('mtu')}]"),
        ("fixed IPs", ", ".join(f"{ip['ip_address']} ({ip['subnet_id'][:8]})" for ip in i.get("fixed_ips", ())) or "-"),
        ("MAC", i.get("mac_address")),
        ("owner", f"{i.get('device_owner') or '-'}  device {i.get('device_id') or '-'}"),
        ("binding", f"host {i.get('host') or '-'}, vif_type {i.get('vif_type')}, "
                    f"details {_compact(i.get('vif_details'))}"),
        ("status", i.get("status")),
        ("security", f"port_security_enabled {i.get('port_security_enabled')}, groups "
                     f"{', '.join(g[:8] for g in i.get('security_groups', ())) or '-'}"),
        ("DHCP agents", ", ".join(i.get("dhcp_agents", ())) or "-"),
        ("routers", ", ".join(f"{r['name'] or r['id'][:8]} on {r['host'] or '?'}" for r in i.get("routers", ()))
         or "-"),
        ("floating IPs", ", ".join(f"{f['floating_ip_address']} ({f['status']})" for f in i.get("floating_ips", ()))
         or "-"),
    ]
    out += [f"  {key:<13} {value}" for key, value in rows]


def _compact(details: object) -> str:
    if not isinstance(details, dict) or not details:
        return "-"
    return ", ".join(f"{k}={v}" for k, v in sorted(details.items()) if k != "bound_drivers")


def _host(out: list[str], findings: Sequence[Finding]) -> None:
    out += ["", "Host (expected: what the agents' planners want for the server's view; observed: the node)"]
    node = None
    for finding in findings:
        if finding.node != node:
            node = finding.node
            out.append(f"  [{node or 'API'}]")
        value = finding.observed if finding.ok else None
        if value and (value == "present" or value in finding.what):
            value = None  # the line names it already
        what = finding.what if len(finding.what) <= WIDTH else finding.what[:WIDTH - 3] + "..."
        out.append(f"    {MARK[finding.status]:<10} {finding.area:<9} {what}" + (f"  ({value})" if value else ""))


def _differences(out: list[str], found: Sequence[Finding]) -> None:
    out += ["", f"Differences: {len(found) or 'none'}"]
    for f in found:
        out.append(f"  {MARK[f.status]} {f.area} on {f.node or 'API'}: {f.what}")
        out.append(f"      expected: {f.expected if f.expected is not None else '(nothing)'}")
        out.append(f"      observed: {f.observed if f.observed is not None else '(nothing)'}")


def _timeline(out: list[str], report: PortReport) -> None:
    created = next((s.at for s in report.timeline if s.name == "created"), None)
    out += ["", "Timeline (after creation; change log: whole seconds, agents' logs: milliseconds)"]
    for step in report.timeline:
        if step.at is None:
            when = "—"
        elif created is None:
            when = step.at.strftime("%H:%M:%S.%f")[:-3]
        elif step.precision == "1 s":
            when = f"+{(step.at - created).total_seconds():.0f} s    "
        else:
            when = f"+{(step.at - created).total_seconds():.3f} s"
        at = step.at.strftime("%H:%M:%S.%f")[:-3] if step.at else "not seen"
        detail = f"  {step.detail}" if step.detail else ""
        out.append(f"  {step.name:<18} {when:>11}  {at:<12}  [{step.source}]{detail}")
    if report.realised:
        out.append(f"  realised (now): the port's last change is seq {report.last_seq}")
        for agent_type, host, seq, done in report.realised:
            out.append(f"    {agent_type} on {host}: realised_seq {seq}  {'yes' if done else 'NOT YET'}")
