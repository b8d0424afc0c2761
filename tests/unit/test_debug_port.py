"""``baryon.debug.portstate``: a port's expected state beside its observed state -> findings."""

from __future__ import annotations

import pytest

from baryon.agent.plan.flows import Flow as PlannedFlow
from baryon.debug import portstate as ps
from baryon.model.ovs import AGENT_COOKIE, ObservedPort, SetPortTag

PORT = {"id": "6c879368-b627-4617-b43b-14cfe385d0a0", "mac_address": "fa:16:3e:31:6f:ac",
        "binding:host_id": "compute1", "binding:vif_type": "ovs", "status": "ACTIVE"}
QVO = "qvo6c879368-b6"


def statuses(findings: list[ps.Finding]) -> list[tuple[str, str]]:
    return [(f.status, f.what) for f in findings]


# ---------------------------------------------------------------- binding and status


def test_binding_bound_with_a_live_agent_is_ok() -> None:
    found = ps.compare_binding(PORT, True)
    assert [f.status for f in found] == ["ok", "ok"]
    assert found[1].node == "compute1"


@pytest.mark.parametrize(("port", "alive", "expected"), [
    ({**PORT, "binding:host_id": ""}, None, [("missing", "binding:host_id")]),
    ({**PORT, "binding:vif_type": "binding_failed", "binding:vif_details": {"reason": "no live agent"}}, True,
     [("differs", "binding:vif_type"), ("ok", "Open vSwitch agent")]),
    (PORT, False, [("ok", "binding:vif_type"), ("differs", "Open vSwitch agent")]),
    (PORT, None, [("ok", "binding:vif_type")]),
])
def test_binding_problems(port: dict, alive: bool | None, expected: list) -> None:
    assert statuses(ps.compare_binding(port, alive)) == expected


def test_binding_failed_says_why() -> None:
    port = {**PORT, "binding:vif_type": "binding_failed", "binding:vif_details": {"reason": "no live agent"}}
    assert ps.compare_binding(port, True)[0].observed == "binding_failed (no live agent)"


def test_status_against_the_hosts_plan() -> None:
    assert ps.compare_status("c1", "ACTIVE", "ACTIVE", None).ok
    down = ps.compare_status("c1", "ACTIVE", "DOWN", "no VIF with iface-id x on br-int")
    assert (down.status, down.expected, down.observed) == ("differs", "ACTIVE", "DOWN (no VIF with iface-id x on br-int)")
    assert ps.compare_status("c1", "DOWN", "DOWN", "admin_state_up is false").ok
    assert ps.compare_status("c1", "ACTIVE", None, None).status == "missing"


# ---------------------------------------------------------------- devices


IP_LINK = """1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT
8: tap6c879368-b6@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 qdisc noqueue master qbr6c879368-b6
9: qbr6c879368-b6: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 qdisc noqueue state UP
10: qvo6c879368-b6@qvb6c879368-b6: <BROADCAST,MULTICAST,PROMISC,UP,LOWER_UP> mtu 1450
"""


def test_link_names() -> None:
    assert ps.link_names(IP_LINK) == {"lo", "tap6c879368-b6", "qbr6c879368-b6", "qvo6c879368-b6"}
    assert ps.link_names("") == set()


def test_devices_missing_and_present() -> None:
    found = ps.compare_devices("c1", "", ["tap6c879368-b6", "qbr6c879368-b6", "qvb6c879368-b6", QVO],
                               ps.link_names(IP_LINK))
    assert statuses(found) == [("ok", "tap6c879368-b6"), ("ok", "qbr6c879368-b6"), ("missing", "qvb6c879368-b6"),
                               ("ok", QVO)]
    inside = ps.compare_devices("network", "qdhcp-n1", ["ns-6c879368-b6"], set())
    assert statuses(inside) == [("missing", "ns-6c879368-b6 (in qdhcp-n1)")]


# ---------------------------------------------------------------- the VIF


def vif(**changes: object) -> ObservedPort:
    base = dict(name=QVO, bridge="br-int", external_ids=(("attached-mac", PORT["mac_address"]), ("iface-id", PORT["id"])),
                other_config=(("net_uuid", "n1"), ("tag", "1")), tag=1, ofport=2)
    return ObservedPort(**{**base, **changes})  # type: ignore[arg-type]


def test_vif_all_ok() -> None:
    found = ps.compare_vif("c1", "br-int", QVO, PORT, vif(), 1, None)
    assert [f.status for f in found] == ["ok"] * 4
    assert found[-1].observed == "1"


def test_vif_missing() -> None:
    assert statuses(ps.compare_vif("c1", "br-int", QVO, PORT, None, 1, None)) == [("missing", f"br-int port {QVO}")]


def test_vif_on_another_bridge() -> None:
    [found] = ps.compare_vif("c1", "br-int", QVO, PORT, vif(bridge="br-ex"), 1, None)
    assert (found.status, found.expected, found.observed) == ("differs", "on br-int", "on br-ex")


def test_vif_wrong_ids_no_ofport_and_a_tag_the_plan_would_change() -> None:
    op = SetPortTag(QVO, 1, (("net_uuid", "n1"), ("tag", "1")))
    found = ps.compare_vif("c1", "br-int", QVO, PORT,
                           vif(external_ids=(("iface-id", PORT["id"]),), tag=4095, ofport=None), 1, op)
    assert statuses(found) == [("ok", f"br-int port {QVO} iface-id"), ("missing", f"br-int port {QVO} attached-mac"),
                               ("missing", f"br-int port {QVO} ofport"),
                               ("differs", f"br-int port {QVO} tag and other_config")]
    assert found[-1].expected == "tag=1 net_uuid=n1 tag=1"
    assert found[-1].observed == "tag=4095 net_uuid=n1 tag=1"


def test_vif_mac_differs_and_case_is_ignored() -> None:
    upper = vif(external_ids=(("attached-mac", PORT["mac_address"].upper()), ("iface-id", PORT["id"])))
    assert ps.compare_vif("c1", "br-int", QVO, PORT, upper, 1, None)[1].ok
    other = vif(external_ids=(("attached-mac", "fa:16:3e:00:00:01"), ("iface-id", "x")))
    found = ps.compare_vif("c1", "br-int", QVO, PORT, other, 1, None)
    assert [f.status for f in found[:2]] == ["differs", "differs"]


def test_vif_of_a_port_without_local_vlan() -> None:
    found = ps.compare_vif("c1", "br-int", QVO, PORT, vif(tag=4095), None, None)
    assert found[-1].ok and found[-1].expected == "no local VLAN (port down)"


# ---------------------------------------------------------------- flows


DESIRED_TUN = (
    PlannedFlow(4, 1, "tun_id=0x5", "push_vlan:0x8100,set_field:4099->vlan_vid,resubmit(,10)").render(),
    PlannedFlow(4, 0, "", "drop").render(),
    PlannedFlow(22, 1, "dl_vlan=3", "pop_vlan,set_field:0x5->tun_id,output:vxlan-0a0a0a01").render(),
    PlannedFlow(20, 2, "dl_vlan=7,dl_dst=fa:16:3e:31:6f:ac", "pop_vlan,set_field:0x9->tun_id,output:vxlan-0a0a0a0b").render(),
    PlannedFlow(21, 1, "arp,dl_vlan=7,arp_tpa=10.0.0.5", "IN_PORT").render(),
    PlannedFlow(0, 1, "in_port=patch-int", "resubmit(,2)").render(),
)
DUMPED_TUN = [
    ' cookie=0xb4770, table=4, priority=1,tun_id=0x5 actions=push_vlan:0x8100,set_field:4099->vlan_vid,resubmit(,10)',
    ' cookie=0xb4770, table=4, priority=0 actions=drop',
    ' cookie=0xb4770, table=22, priority=1,dl_vlan=3 actions=pop_vlan,set_field:0x5->tun_id,output:"vxlan-0a0a0a01"',
    ' cookie=0xb4770, table=20, priority=2,dl_vlan=7,dl_dst=fa:16:3e:31:6f:ac '
    'actions=pop_vlan,set_field:0x9->tun_id,output:"vxlan-0a0a0a0b"',
    ' cookie=0xb4770, table=21, priority=1,arp,dl_vlan=7,arp_tpa=10.0.0.5 actions=IN_PORT',
    ' cookie=0xb4770, priority=1,in_port="patch-int" actions=resubmit(,2)',
]


def test_parse_flow_both_spellings_alike() -> None:
    for planned, dumped in zip(DESIRED_TUN, DUMPED_TUN):
        assert ps.parse_flow(planned) == ps.parse_flow(dumped)
    flow = ps.parse_flow(DUMPED_TUN[2])
    assert flow == ps.Flow(22, 1, "dl_vlan=3", "pop_vlan,set_field:0x5->tun_id,output:vxlan-0a0a0a01", AGENT_COOKIE)
    assert flow.rule == "table=22,priority=1,dl_vlan=3"
    assert ps.parse_flow("NXST_FLOW reply (xid=0x4):") is None
    assert ps.parse_flow("cookie=0xb4771, table=20, priority=1,vlan_tci=0x0001/0x0fff actions=output:2").cookie == 0xB4771


def test_flow_keys_on_its_host_and_on_a_peer() -> None:
    here = ps.flow_keys(vlan=3, vni=5, mac="FA:16:3E:31:6F:AC", ips=["10.0.0.5", "fd00::5"], ports=[QVO])
    assert here.match == {"dl_vlan=3", "tun_id=0x5", "arp_tpa=10.0.0.5", f"in_port={QVO}"}
    assert here.actions == {"set_field:4099->vlan_vid", "set_field:0x5->tun_id"}
    assert here.words == ("fa:16:3e:31:6f:ac",)
    concerned = [ps.parse_flow(f) for f in DESIRED_TUN if here.concern(ps.parse_flow(f))]
    assert [(f.table, f.priority) for f in concerned] == [(4, 1), (22, 1), (20, 2), (21, 1)]
    peer = ps.flow_keys(mac="fa:16:3e:31:6f:ac", ips=["10.0.0.9"])
    assert [(f.table, f.priority) for f in map(ps.parse_flow, DESIRED_TUN) if peer.concern(f)] == [(20, 2)]


KEYS = ps.flow_keys(vlan=3, vni=5, mac="fa:16:3e:31:6f:ac", ips=["10.0.0.5"])


def test_flows_all_there() -> None:
    found = ps.compare_flows("c1", "br-tun", DESIRED_TUN, DUMPED_TUN, KEYS)
    assert [f.status for f in found] == ["ok"] * 4
    assert [f.what for f in found] == ["br-tun table=4,priority=1,tun_id=0x5", "br-tun table=20,priority=2,"
                                       "dl_vlan=7,dl_dst=fa:16:3e:31:6f:ac", "br-tun table=21,priority=1,arp,"
                                       "dl_vlan=7,arp_tpa=10.0.0.5", "br-tun table=22,priority=1,dl_vlan=3"]


def test_flow_missing_unexpected_and_differs() -> None:
    dumped = [line for line in DUMPED_TUN if "tun_id=0x5 " not in line]
    dumped = [line.replace("output:\"vxlan-0a0a0a01\"", "output:\"vxlan-0a0a0a02\"") for line in dumped]
    dumped.append(' cookie=0xb4770, table=20, priority=2,dl_vlan=3,dl_dst=fa:16:3e:99:99:99 actions=drop')
    dumped.append(' cookie=0x1234, table=22, priority=9,dl_vlan=3 actions=drop')  # not the agent's: ignored
    found = ps.compare_flows("c1", "br-tun", DESIRED_TUN, dumped, KEYS)
    assert statuses(found) == [
        ("missing", "br-tun table=4,priority=1,tun_id=0x5"),
        ("unexpected", "br-tun table=20,priority=2,dl_vlan=3,dl_dst=fa:16:3e:99:99:99"),
        ("ok", "br-tun table=20,priority=2,dl_vlan=7,dl_dst=fa:16:3e:31:6f:ac"),
        ("ok", "br-tun table=21,priority=1,arp,dl_vlan=7,arp_tpa=10.0.0.5"),
        ("differs", "br-tun table=22,priority=1,dl_vlan=3"),
    ]
    assert found[0].expected == "actions=push_vlan:0x8100,set_field:4099->vlan_vid,resubmit(,10)"
    assert found[0].observed is None
    assert found[1].expected is None and found[1].observed == "actions=drop"
    assert found[4].observed == "actions=pop_vlan,set_field:0x5->tun_id,output:vxlan-0a0a0a02"


def test_flows_that_do_not_concern_the_port_are_not_compared() -> None:
    assert ps.compare_flows("c1", "br-tun", DESIRED_TUN, [], ps.flow_keys(mac="fa:16:3e:00:00:00")) == []


# ---------------------------------------------------------------- firewall


ID10 = PORT["id"][:10]
I, O, S = (f"neutron-openvswi-{k}{ID10}" for k in "ios")
TAP, QVB = "tap6c879368-b6", "qvb6c879368-b6"
FWD_IN = f'-m physdev --physdev-in {TAP} --physdev-is-bridged -m comment --comment "x" -j neutron-openvswi-sg-chain'
FWD_OUT = f'-m physdev --physdev-out {TAP} --physdev-is-bridged -m comment --comment "x" -j neutron-openvswi-sg-chain'
OTHER = '-m physdev --physdev-in tapffffffff-ff --physdev-is-bridged -j neutron-openvswi-sg-chain'
DESIRED_FILTER = {
    I: ("-m state --state RELATED,ESTABLISHED -j RETURN", "-j neutron-openvswi-sg-fallback"),
    O: ("-j " + S, "-j neutron-openvswi-sg-fallback"),
    S: (f"-s 10.0.0.5/32 -m mac --mac-source {PORT['mac_address']} -j RETURN", "-j DROP"),
    "neutron-openvswi-FORWARD": (FWD_OUT, FWD_IN, OTHER),
    "neutron-openvswi-sg-fallback": ("-j DROP",),
}


def fw(observed: dict) -> list[ps.Finding]:
    return ps.compare_firewall("c1", "ipv4", "filter", DESIRED_FILTER, observed, [I, O, S], [TAP, QVB])


def test_firewall_all_there() -> None:
    found = fw(dict(DESIRED_FILTER))
    assert all(f.ok for f in found)
    assert [f.what for f in found] == [f"ipv4 filter chain {c}" for c in sorted([I, O, S])] + [
        f"ipv4 filter chain neutron-openvswi-FORWARD: {FWD_IN}", f"ipv4 filter chain neutron-openvswi-FORWARD: {FWD_OUT}"]
    assert found[0].expected == "2 rules"


def test_firewall_chain_missing_differs_and_shared_rules_missing() -> None:
    observed = {k: v for k, v in DESIRED_FILTER.items() if k != S}
    observed[I] = ("-m state --state RELATED,ESTABLISHED -j RETURN", "-j ACCEPT", "-j neutron-openvswi-sg-fallback")
    observed["neutron-openvswi-FORWARD"] = (FWD_OUT, OTHER)
    found = [f for f in fw(observed) if not f.ok]
    assert statuses(found) == [("differs", f"ipv4 filter chain {I}"), ("missing", f"ipv4 filter chain {S}"),
                               ("missing", f"ipv4 filter chain neutron-openvswi-FORWARD: {FWD_IN}")]
    assert found[0].expected == "2 rules; rule 2: -j neutron-openvswi-sg-fallback"
    assert found[0].observed == "3 rules; rule 2: -j ACCEPT"
    assert found[1].expected == "2 rules"


def test_firewall_a_chain_shorter_than_wanted() -> None:
    observed = {**DESIRED_FILTER, O: ("-j " + S,)}
    [found] = [f for f in fw(observed) if not f.ok]
    assert (found.expected, found.observed) == ("2 rules; rule 2: -j neutron-openvswi-sg-fallback",
                                                "1 rule; rule 2: (end)")


def test_firewall_unexpected_chain_and_rule() -> None:
    desired = {k: v for k, v in DESIRED_FILTER.items() if k not in (I, O, S)}
    desired["neutron-openvswi-FORWARD"] = (OTHER,)
    found = ps.compare_firewall("c1", "ipv4", "filter", desired, DESIRED_FILTER, [I, O, S], [TAP, QVB])
    assert {f.status for f in found} == {"unexpected"}
    assert len(found) == 5


# ---------------------------------------------------------------- lines


def test_lines_as_multisets() -> None:
    found = ps.compare_lines("dhcp", "network", "host", ["a", "b", "b"], ["b", "c", "a"])
    assert [(f.status, f.what, f.expected, f.observed) for f in found] == [
        ("ok", "host: a", "a", "a"), ("missing", "host: b", "b", "1 of 2"), ("unexpected", "host: c", None, "c")]
    too_many = ps.compare_lines("nat", "network", "chain", ["x"], ["x", "x"])
    assert [(f.status, f.expected, f.observed) for f in too_many] == [("unexpected", "1 time(s)", "2 times")]
    assert ps.compare_lines("nat", "n", "c", [], []) == []


def test_mentions_address() -> None:
    assert ps.mentions_address("-d 203.0.113.5/32 -j DNAT --to-destination 10.0.0.5", ["10.0.0.5"])
    assert ps.mentions_address("-s 10.0.0.5/32 -j SNAT --to-source 203.0.113.5", ["10.0.0.5"])
    assert not ps.mentions_address("-s 10.0.0.50/32 -j SNAT", ["10.0.0.5"])
    assert not ps.mentions_address("-s 110.0.0.5/32 -j SNAT", ["10.0.0.5"])
    assert not ps.mentions_address("-j SNAT", [])


def test_dhcp_host_lines() -> None:
    text = ("fa:16:3e:31:6f:ac,host-10-0-0-5.openstacklocal.,10.0.0.5\n"
            "fa:16:3e:00:00:01,host-10-0-0-2.openstacklocal.,10.0.0.2\n"
            "FA:16:3E:31:6F:AC,tag:dhcpv6,host-fd00--5.openstacklocal.,[fd00::5]\n")
    assert ps.dhcp_host_lines(text, "fa:16:3e:31:6f:ac") == [text.splitlines()[0], text.splitlines()[2]]
    assert ps.dhcp_host_lines("", "fa:16:3e:31:6f:ac") == []


def test_differences_keeps_only_the_bad() -> None:
    found = ps.compare_lines("dhcp", "n", "h", ["a", "b"], ["a"])
    assert ps.differences(found) == [found[1]]
    assert found[0].to_json() == {"area": "dhcp", "node": "n", "what": "h: a", "status": "ok", "expected": "a",
                                  "observed": "a"}
