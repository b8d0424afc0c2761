"""``baryon.debug.porttimeline`` and ``baryon.debug.portreport``: the timeline from the change
log and the agents' logs, the text a person reads and the JSON."""

from __future__ import annotations

import datetime as dt
import json

from baryon.debug import porttimeline as pt
from baryon.debug.portreport import EXIT_DIFFERENCES, EXIT_OK, PortReport, render, to_json
from baryon.debug.portstate import Finding

CHANGES = [
    {"seq": 29, "action": "create", "created_at": "2026-11-26T05:26:15Z",
     "changed": {"id": "p1", "status": "DOWN", "binding:vif_type": "ovs", "binding:host_id": "compute1"}},
    {"seq": 30, "action": "update", "created_at": "2026-11-26T05:26:15Z", "changed": {"status": "ACTIVE"}},
]
OVS_LOG = """2026-11-26 05:26:10,000 INFO baryon.agent: ovs agent on host compute1, server http://10.20.0.2:9696
2026-11-26 05:26:10,200 INFO baryon.agent.firewall: firewall: chains written 16, deleted 0; sets created 0, swapped 0, destroyed 0
2026-11-26 05:26:10,300 INFO baryon.agent.ovs: seq 0: 4 OVSDB op(s), flows br-int +4/-0
2026-11-26 05:26:15,290 INFO baryon.agent.firewall: firewall: chains written 13, deleted 0; sets created 2, swapped 0, destroyed 0
2026-11-26 05:26:15,300 INFO baryon.agent.ovs: seq 29: 0 OVSDB op(s), flows br-tun +7/-0
2026-11-26 05:26:15,327 INFO baryon.agent.ovs: seq 29: 1 OVSDB op(s), flows unchanged
Traceback (most recent call last):
2026-11-26 05:26:16,000 INFO baryon.agent.ovs: seq 31: 1 OVSDB op(s), flows unchanged
"""
DHCP_LOG = """2026-11-26 05:26:12,000 INFO baryon.agent.dhcp: seq 18: 1 StartDnsmasq, 1 WriteFiles in 88 ms
2026-11-26 05:26:15,226 INFO baryon.agent.dhcp: seq 29: 1 ReloadDnsmasq, 1 WriteFiles in 14 ms
"""


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def test_parse_log() -> None:
    lines = pt.parse_log(OVS_LOG)
    assert len(lines) == 7  # the traceback line is not a log line
    assert lines[0].at == at("2026-11-26 05:26:10") and lines[0].logger == "baryon.agent"
    assert [ln.seq for ln in lines] == [None, None, 0, None, 29, 29, 31]
    assert lines[3].at == at("2026-11-26 05:26:15.290")


def test_parse_log_in_a_local_zone() -> None:
    [line] = pt.parse_log(DHCP_LOG.splitlines()[0], dt.timezone(dt.timedelta(hours=2)))
    assert line.at == at("2026-11-26 03:26:12")


def steps() -> list[pt.Step]:
    return pt.timeline(CHANGES, "compute1", pt.parse_log(OVS_LOG), {"network": pt.parse_log(DHCP_LOG)})


def test_timeline_complete() -> None:
    found = {s.name: s for s in steps()}
    assert list(found) == ["created", "bound", "firewall applied", "wired", "DHCP entry served", "ACTIVE"]
    assert found["created"].at == at("2026-11-26 05:26:15") and found["created"].source == "change log seq 29"
    assert found["bound"].source == "change log seq 29" and found["bound"].detail == "compute1"
    assert found["firewall applied"].at == at("2026-11-26 05:26:15.290")
    # the first run at the binding's sequence that changed OVSDB, not the one that changed flows only
    assert found["wired"].at == at("2026-11-26 05:26:15.327")
    assert found["wired"].source == "compute1: OVS agent log" and found["wired"].precision == "1 ms"
    assert found["DHCP entry served"].at == at("2026-11-26 05:26:15.226")
    assert found["DHCP entry served"].source == "network: DHCP agent log"
    assert found["ACTIVE"].source == "change log seq 30" and found["ACTIVE"].precision == "1 s"
    assert pt.in_order(found.values())


def test_timeline_bound_later_and_never_active() -> None:
    changes = [{**CHANGES[0], "changed": {"binding:vif_type": "unbound"}},
               {"seq": 31, "action": "update", "created_at": "2026-11-26T05:26:16Z",
                "changed": {"binding:vif_type": "ovs", "binding:host_id": "compute1"}}]
    found = {s.name: s for s in pt.timeline(changes, "compute1", pt.parse_log(OVS_LOG), {})}
    assert found["bound"].source == "change log seq 31"
    assert found["wired"].at == at("2026-11-26 05:26:16")
    assert found["firewall applied"].at is None  # nothing written between binding and wiring
    assert found["ACTIVE"].at is None
    assert found["DHCP entry served"].source == "no DHCP agent serves its network"
    assert not pt.in_order(found.values())


def test_timeline_without_changes_or_logs() -> None:
    found = pt.timeline([], "compute1", [], {"network": []})
    assert [s.at for s in found] == [None] * 6
    assert found[4].detail == "creation not in the change log"
    found = pt.timeline(CHANGES, "compute1", [], {"network": []})
    assert found[4].detail == "no DHCP agent run wrote files after the port's creation"


def test_the_earliest_dhcp_agent_serves() -> None:
    later = DHCP_LOG.replace("05:26:15,226", "05:26:17,000")
    found = pt.timeline(CHANGES, "compute1", [], {"n1": pt.parse_log(later), "n2": pt.parse_log(DHCP_LOG)})
    assert found[4].source == "n2: DHCP agent log"


def test_realised() -> None:
    agents = [{"agent_type": "Open vSwitch agent", "host": "compute1", "realised_seq": 33},
              {"agent_type": "DHCP agent", "host": "network", "realised_seq": 12}]
    assert pt.realised(agents, 30) == [("Open vSwitch agent", "compute1", 33, True), ("DHCP agent", "network", 12, False)]


# ---------------------------------------------------------------- the report


INTENT = {
    "id": "p1", "name": "web", "vm": "v1",
    "network": {"id": "n1", "name": "t1", "mtu": 1450,
                "segment": {"network_type": "vxlan", "segmentation_id": 5, "physical_network": None}},
    "fixed_ips": [{"subnet_id": "s1234567890", "ip_address": "10.0.0.5"}], "mac_address": "fa:16:3e:31:6f:ac",
    "device_owner": "compute:nova", "device_id": "d1", "host": "compute1", "vif_type": "ovs",
    "vif_details": {"ovs_hybrid_plug": True}, "status": "ACTIVE", "security_groups": ["g1234567890"],
    "port_security_enabled": True, "dhcp_agents": ["network"],
    "routers": [{"id": "r1", "name": "r1", "status": "ACTIVE", "host": "network"}],
    "floating_ips": [{"id": "f1", "floating_ip_address": "203.0.113.5", "router_id": "r1", "status": "ACTIVE"}],
}
HEALTHY = (Finding("binding", "", "binding:vif_type", "ok", "ovs", "ovs"),
           Finding("device", "compute1", "tap6c879368-b6", "ok", "present", "present"),
           Finding("ovs-port", "compute1", "br-int port qvo tag", "ok", "3", "3"))
BROKEN = (*HEALTHY, Finding("flow", "compute1", "br-tun table=4,priority=1,tun_id=0x5", "missing",
                            "actions=push_vlan:0x8100,set_field:4099->vlan_vid,resubmit(,10)", None))


def test_render_healthy() -> None:
    report = PortReport(INTENT, HEALTHY, tuple(steps()), (("Open vSwitch agent", "compute1", 33, True),), 30)
    text = render(report)
    assert report.exit_status == EXIT_OK
    assert text.startswith("Port p1 (web), VM v1\n")
    assert "  network       t1 n1  [vxlan VNI 5, MTU 1450]\n" in text
    assert "  floating IPs  203.0.113.5 (ACTIVE)\n" in text
    assert "  routers       r1 on network\n" in text
    assert "  [API]\n    ok         binding   binding:vif_type  (ovs)\n" in text
    assert "    ok         device    tap6c879368-b6\n" in text  # "present" is not repeated
    assert "    ok         ovs-port  br-int port qvo tag  (3)\n" in text
    assert "Differences: none\n" in text
    assert "  created               +0 s      05:26:15.000  [change log seq 29]\n" in text
    assert "  wired                 +0.327 s  05:26:15.327  [compute1: OVS agent log]  seq 29: 1 OVSDB op(s)" in text
    assert "    Open vSwitch agent on compute1: realised_seq 33  yes\n" in text


def test_render_broken_and_notes() -> None:
    report = PortReport(INTENT, BROKEN, (), (("DHCP agent", "network", 12, False),), 30, ("a note",))
    text = render(report)
    assert report.exit_status == EXIT_DIFFERENCES
    assert "    MISSING    flow      br-tun table=4,priority=1,tun_id=0x5\n" in text
    assert ("Differences: 1\n  MISSING flow on compute1: br-tun table=4,priority=1,tun_id=0x5\n"
            "      expected: actions=push_vlan:0x8100,set_field:4099->vlan_vid,resubmit(,10)\n"
            "      observed: (nothing)\n") in text
    assert "NOT YET" in text
    assert text.endswith("Notes\n  - a note\n")


def test_render_cuts_long_lines_in_the_host_section_only() -> None:
    long = Finding("firewall", "c1", "x" * 300, "missing", "a", None)
    text = render(PortReport(INTENT, (long,)))
    assert "x" * 147 + "...\n" in text
    assert "x" * 300 in text  # in the differences


def test_json() -> None:
    report = PortReport(INTENT, BROKEN, tuple(steps()), (("DHCP agent", "network", 12, False),), 30, ("n",))
    data = json.loads(json.dumps(to_json(report)))
    assert set(data) == {"intent", "findings", "differences", "timeline", "realised", "last_seq", "notes",
                         "exit_status"}
    assert data["exit_status"] == 3 and data["last_seq"] == 30 and data["notes"] == ["n"]
    assert len(data["findings"]) == 4 and data["differences"] == [data["findings"][-1]]
    assert data["differences"][0] == {"area": "flow", "node": "compute1", "what": "br-tun table=4,priority=1,tun_id=0x5",
                                      "status": "missing",
                                      "expected": "actions=push_vlan:0x8100,set_field:4099->vlan_vid,resubmit(,10)",
                                      "observed": None}
    wired = next(s for s in data["timeline"] if s["step"] == "wired")
    assert wired == {"step": "wired", "at": "2026-11-26T05:26:15.327000+00:00", "after_created_s": 0.327,
                     "source": "compute1: OVS agent log", "detail": "seq 29: 1 OVSDB op(s), flows unchanged",
                     "precision": "1 ms"}
    assert data["realised"] == [{"agent_type": "DHCP agent", "host": "network", "realised_seq": 12,
                                 "realised_port": False}]
