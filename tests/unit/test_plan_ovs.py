"""The OVS agent's pure planner: for a host view, settings, an observed switch and the flows last
applied, the exact ops, port statuses, local VLANs and flows.

``realise`` plays the drivers: it applies a plan's ops to an ``ObservedSwitch`` the way the real
switch would end up (ports get an ofport, tags and other_config keys are set, the bridge's count of
agent flows becomes the number of flows replaced). That the flows parse, work and compare equal to
what the switch reports back (so that re-applying them touches none) is checked on a real Open
vSwitch in ``tests/functional/test_plan_flows_on_ovs.py``; here only that no older spelling creeps in.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from dataclasses import replace

import pytest

from baryon.agent.plan.ovs import (ACTIVE, DOWN, Plan, allocate_vlans, interface_name, patch_names, plan,
                                   tunnel_port_name)
from baryon.model.host import HostView, Network, Port, RemotePort, Segment
from baryon.model.ovs import (DEAD_VLAN, DeletePort, EnsureBridge, EnsurePort, ObservedBridge, ObservedPort,
                              ObservedSwitch, Op, OvsAgentSettings, ReplaceFlows, SetPortTag)

HOST = "compute1"
LOCAL_IP = "10.10.10.2"
SETTINGS = OvsAgentSettings(host=HOST, local_ip=LOCAL_IP, bridge_mappings=(("physnet1", "br-ex"),),
                            datapath_type="netdev", l2_population=True, arp_responder=True)

NET_A = "aaaaaaaa-0000-4000-8000-00000000000a"  # vxlan 1001
NET_B = "bbbbbbbb-0000-4000-8000-00000000000b"  # vxlan 1002
NET_F = "ffffffff-0000-4000-8000-00000000000f"  # flat on physnet1
NET_V = "cccccccc-0000-4000-8000-00000000000c"  # vlan 200 on physnet1
NETWORKS = {
    NET_A: Network(NET_A, Segment("vxlan", 1001, None), 1450),
    NET_B: Network(NET_B, Segment("vxlan", 1002, None), 1450),
    NET_F: Network(NET_F, Segment("flat", None, "physnet1"), 1500),
    NET_V: Network(NET_V, Segment("vlan", 200, "physnet1"), 1500),
}

PORT_A1 = Port("a1000000-0000-4000-8000-000000000001", NET_A, "fa:16:3e:00:00:a1", ("192.168.10.11",),
               "compute:nova", True, True)
PORT_A2 = Port("a2000000-0000-4000-8000-000000000002", NET_A, "fa:16:3e:00:00:a2", ("192.168.10.12",),
               "compute:nova", True, True)
PORT_B1 = Port("b1000000-0000-4000-8000-000000000001", NET_B, "fa:16:3e:00:00:b1", ("192.168.20.11",),
               "compute:nova", True, True)
PORT_F1 = Port("f1000000-0000-4000-8000-000000000001", NET_F, "fa:16:3e:00:00:f1", ("203.0.113.11",),
               "compute:nova", True, True)
PORT_V1 = Port("c1000000-0000-4000-8000-000000000001", NET_V, "fa:16:3e:00:00:c1", ("10.0.200.11",),
               "compute:nova", True, True)

# A's ports on compute2 (10.10.10.3) and compute3 (10.10.10.4); B's on compute2.
REMOTE_A_C2 = RemotePort(NET_A, "compute2", "10.10.10.3", "fa:16:3e:00:02:a1", ("192.168.10.21",))
REMOTE_A_C3 = RemotePort(NET_A, "compute3", "10.10.10.4", "fa:16:3e:00:03:a1", ("192.168.10.31",))
REMOTE_B_C2 = RemotePort(NET_B, "compute2", "10.10.10.3", "fa:16:3e:00:02:b1", ("192.168.20.21",))

C = "cookie=0xb4770,"
DEAD_DROP = f"{C}table=0,priority=65535,dl_vlan=4095,actions=drop"
INT_BR_EX_DROP = f"{C}table=0,priority=2,in_port=int-br-ex,actions=drop"
INT_TAIL = (
    f"{C}table=0,priority=0,actions=resubmit(,60)",
    f"{C}table=23,priority=0,actions=drop",
    f"{C}table=24,priority=0,actions=drop",
    f"{C}table=25,priority=0,actions=drop",
    f"{C}table=60,priority=3,actions=NORMAL",
)
INT_DEFAULT = (DEAD_DROP, INT_BR_EX_DROP, *INT_TAIL)
LEARN = (f"{C}table=10,priority=1,actions=learn(table=20,hard_timeout=300,priority=1,cookie=0xb4771,"
         "NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],"
         "load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:NXM_OF_IN_PORT[]),output:patch-int")
TUN_0 = (f"{C}table=0,priority=1,in_port=patch-int,actions=resubmit(,2)",)
TUN_0_DROP = (f"{C}table=0,priority=0,actions=drop",)
TUN_2 = (
    f"{C}table=2,priority=1,arp,dl_dst=ff:ff:ff:ff:ff:ff,actions=resubmit(,21)",
    f"{C}table=2,priority=0,dl_dst=00:00:00:00:00:00/01:00:00:00:00:00,actions=resubmit(,20)",
    f"{C}table=2,priority=0,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=resubmit(,22)",
)
TUN_4_A = f"{C}table=4,priority=1,tun_id=0x3e9,actions=push_vlan:0x8100,set_field:4097->vlan_vid,resubmit(,10)"
TUN_4_DROP = f"{C}table=4,priority=0,actions=drop"
TUN_20_DEFAULT = f"{C}table=20,priority=0,actions=resubmit(,22)"
TUN_21_DEFAULT = f"{C}table=21,priority=0,actions=resubmit(,22)"
TUN_22_DROP = f"{C}table=22,priority=0,actions=drop"
TUN_DEFAULT = (*TUN_0, *TUN_0_DROP, *TUN_2, TUN_4_DROP, LEARN, TUN_20_DEFAULT, TUN_21_DEFAULT, TUN_22_DROP)
EX_DEFAULT = (f"{C}table=0,priority=2,in_port=phy-br-ex,actions=drop", f"{C}table=0,priority=0,actions=NORMAL")

PATCHES = (
    EnsurePort("br-int", "patch-tun", "patch", (("peer", "patch-int"),)),
    EnsurePort("br-tun", "patch-int", "patch", (("peer", "patch-tun"),)),
    EnsurePort("br-int", "int-br-ex", "patch", (("peer", "phy-br-ex"),)),
    EnsurePort("br-ex", "phy-br-ex", "patch", (("peer", "int-br-ex"),)),
)
BRIDGES = tuple(EnsureBridge(b, "netdev", "secure") for b in ("br-int", "br-tun", "br-ex"))


def arp_reply(mac: str, ip: str) -> str:
    return ("move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],"
            f"set_field:{mac}->eth_src,set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],"
            f"move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],set_field:{mac}->arp_sha,"
            f"set_field:{ip}->arp_spa,IN_PORT")


def flat_in(vlan: int) -> str:
    """br-int: untagged frames from br-ex get the flat network's local VLAN."""
    return (f"{C}table=0,priority=3,in_port=int-br-ex,vlan_tci=0x0000/0x1fff,"
            f"actions=push_vlan:0x8100,set_field:{4096 + vlan}->vlan_vid,resubmit(,60)")


def vxlan_options(remote_ip: str) -> tuple[tuple[str, str], ...]:
    return (("df_default", "true"), ("dst_port", "4789"), ("egress_pkt_mark", "0"), ("in_key", "flow"),
            ("local_ip", LOCAL_IP), ("out_key", "flow"), ("remote_ip", remote_ip))


def local_vlan_config(port: Port, vlan: int) -> tuple[tuple[str, str], ...]:
    seg = NETWORKS[port.network_id].segment
    return (("net_uuid", port.network_id), ("network_type", seg.network_type),
            ("physical_network", seg.physical_network or "None"),
            ("segmentation_id", "None" if seg.segmentation_id is None else str(seg.segmentation_id)),
            ("tag", str(vlan)))


def view(*ports: Port, remote: tuple[RemotePort, ...] = ()) -> HostView:
    nets = sorted({NETWORKS[p.network_id] for p in ports}, key=lambda n: n.id)
    return HostView(host=HOST, ports=tuple(sorted(ports)), networks=tuple(nets), remote_ports=tuple(sorted(remote)))


def qvo(port_id: str) -> str:
    return f"qvo{port_id[:11]}"


def vif(port_id: str, ofport: int | None = 10, tag: int | None = None,
        other_config: tuple[tuple[str, str], ...] = (), name: str | None = None) -> ObservedPort:
    """A VM's port on br-int as os-vif plugs it (hybrid: the qvo end of the veth)."""
    return ObservedPort(name or qvo(port_id), "br-int", "",
                        external_ids=(("attached-mac", "fa:16:3e:00:00:99"), ("iface-id", port_id),
                                      ("iface-status", "active")),
                        other_config=other_config, tag=tag, ofport=ofport)


def switch(*ports: ObservedPort, bridges: tuple[ObservedBridge, ...] = ()) -> ObservedSwitch:
    return ObservedSwitch(bridges=bridges or (ObservedBridge("br-int", "netdev", ""),), ports=ports)


def realise(observed: ObservedSwitch, ops: tuple[Op, ...]) -> ObservedSwitch:
    """The switch after the drivers carried out ``ops`` (what the next observation returns)."""
    bridges = {b.name: b for b in observed.bridges}
    ports = {p.name: p for p in observed.ports}
    ofport = max((p.ofport or 0 for p in ports.values()), default=0)
    for op in ops:
        if isinstance(op, EnsureBridge):
            old = bridges.get(op.name, ObservedBridge(op.name))
            bridges[op.name] = replace(old, datapath_type=op.datapath_type, fail_mode=op.fail_mode)
        elif isinstance(op, EnsurePort):
            old = ports.get(op.name)
            if old is None:
                ofport += 1
                old = ObservedPort(op.name, op.bridge, ofport=ofport)
            ports[op.name] = replace(old, bridge=op.bridge, type=op.type, options=tuple(sorted(op.options)))
        elif isinstance(op, SetPortTag):
            old = ports[op.name]
            other = tuple(sorted({**dict(old.other_config), **dict(op.other_config)}.items()))
            ports[op.name] = replace(old, tag=op.tag, other_config=other)
        elif isinstance(op, DeletePort):
            del ports[op.name]
        elif isinstance(op, ReplaceFlows):
            bridges[op.bridge] = replace(bridges[op.bridge], flow_count=len(op.flows))
    return ObservedSwitch(tuple(bridges.values()), tuple(ports.values()))


def converge(v: HostView, observed: ObservedSwitch, settings: OvsAgentSettings = SETTINGS,
             applied: dict[str, tuple[str, ...]] | None = None) -> tuple[Plan, ObservedSwitch]:
    """Plan and apply once; return the plan and the switch as it is afterwards."""
    result = plan(v, settings, observed, applied or {})
    return result, realise(observed, result.ops)


def steady(v: HostView, observed: ObservedSwitch,
           settings: OvsAgentSettings = SETTINGS) -> tuple[ObservedSwitch, dict[str, tuple[str, ...]]]:
    """The switch and the applied flows once the agent has realised ``v`` (checked: a second plan is empty)."""
    first, after = converge(v, observed, settings)
    assert plan(v, settings, after, first.flows).ops == ()
    return after, first.flows


def flows_of(p: Plan, bridge: str) -> tuple[str, ...]:
    return next(op.flows for op in p.ops if isinstance(op, ReplaceFlows) and op.bridge == bridge)


def table(flows: tuple[str, ...], number: int) -> list[str]:
    return [f for f in flows if f.startswith(f"{C}table={number},")]


def lla(mac: str) -> str:
    """The EUI-64 link-local address of ``mac`` (universal/local bit flipped, ff:fe in the middle)."""
    octets = [int(x, 16) for x in mac.split(":")]
    octets[0] ^= 2
    words = [octets[0] << 8 | octets[1], octets[2] << 8 | 0xFF, 0xFE << 8 | octets[3], octets[4] << 8 | octets[5]]
    return str(ipaddress.IPv6Address("fe80::" + ":".join(f"{w:x}" for w in words)))


def guard(port: Port, name: str | None = None) -> tuple[str, ...]:
    """br-int's spoofing checks for a VM port with one IPv4 address and no address pairs."""
    vif_name = name or qvo(port.id)
    at = f"in_port={vif_name}"
    return (
        f"{C}table=0,priority=10,arp,{at},actions=resubmit(,24)",
        f"{C}table=0,priority=10,icmp6,{at},icmp_type=136,actions=resubmit(,24)",
        f"{C}table=0,priority=9,{at},actions=resubmit(,25)",
        f"{C}table=24,priority=2,arp,{at},arp_spa={port.fixed_ips[0]},actions=resubmit(,25)",
        f"{C}table=24,priority=2,icmp6,{at},icmp_type=136,nd_target={lla(port.mac_address)},actions=resubmit(,25)",
        f"{C}table=25,priority=2,{at},dl_src={port.mac_address},actions=resubmit(,60)",
    )


def merged(*groups: tuple[str, ...]) -> tuple[str, ...]:
    """Flows sorted as the planner sorts them: table, priority descending, match, actions."""
    def key(flow: str) -> tuple[int, int, str, str]:
        head, actions = flow.split(",actions=")
        fields = head.split(",")
        return int(fields[1].split("=")[1]), -int(fields[2].split("=")[1]), ",".join(fields[3:]), actions
    return tuple(sorted((f for group in groups for f in group), key=key))


# ---------------------------------------------------------------- names


def test_names_follow_neutron() -> None:
    assert tunnel_port_name("10.10.10.11") == "vxlan-0a0a0a0b"
    assert tunnel_port_name("192.168.0.1") == "vxlan-c0a80001"
    six = tunnel_port_name("fd00::1")
    assert six.startswith("vxlan-") and len(six) == 15 and six == tunnel_port_name("fd00::1")
    assert patch_names("br-ex") == ("int-br-ex", "phy-br-ex")
    long_int, long_phy = patch_names("br-provider-long")
    assert (len(long_int), len(long_phy)) == (15, 15)
    assert long_int == interface_name("br-provider-long", "int-") and long_int.startswith("int-br-pr")
    assert long_int[4:9] == long_phy[4:9] and long_int != long_phy


# ---------------------------------------------------------------- from nothing


def test_empty_host_gets_bridges_patches_and_default_flows() -> None:
    result = plan(HostView(host=HOST), SETTINGS, ObservedSwitch(), {})
    assert result.ops == (
        *BRIDGES, *PATCHES,
        ReplaceFlows("br-int", INT_DEFAULT),
        ReplaceFlows("br-tun", TUN_DEFAULT),
        ReplaceFlows("br-ex", EX_DEFAULT),
    )
    assert result.port_status == {} and result.local_vlans == {} and result.down_reasons == {}
    assert result.flows == {"br-int": INT_DEFAULT, "br-tun": TUN_DEFAULT, "br-ex": EX_DEFAULT}


def test_host_without_tunnels_or_mappings_has_only_br_int() -> None:
    settings = OvsAgentSettings(host=HOST, datapath_type="system")
    result = plan(HostView(host=HOST), settings, ObservedSwitch(), {})
    assert result.ops == (EnsureBridge("br-int", "system", "secure"),
                          ReplaceFlows("br-int", (DEAD_DROP, *INT_TAIL)))
    # OVS reports the system datapath as "": already right.
    observed = ObservedSwitch((ObservedBridge("br-int", "", "secure", 6),))
    assert plan(HostView(host=HOST), settings, observed, result.flows).ops == ()


def test_first_vm_port_on_a_vxlan_network() -> None:
    observed = switch(vif(PORT_A1.id, ofport=7))
    result = plan(view(PORT_A1), SETTINGS, observed, {})
    tun = (*TUN_0, *TUN_0_DROP, *TUN_2,
           TUN_4_A, TUN_4_DROP,
           LEARN, TUN_20_DEFAULT, TUN_21_DEFAULT, TUN_22_DROP)
    assert result.ops == (
        *BRIDGES, *PATCHES,
        SetPortTag(qvo(PORT_A1.id), 1, local_vlan_config(PORT_A1, 1)),
        ReplaceFlows("br-int", merged(INT_DEFAULT, guard(PORT_A1))),
        ReplaceFlows("br-tun", tun),
        ReplaceFlows("br-ex", EX_DEFAULT),
    )
    assert result.local_vlans == {NET_A: 1}
    assert result.port_status == {PORT_A1.id: ACTIVE}
    assert not any(op.name.startswith("vxlan-") for op in result.ops if isinstance(op, EnsurePort))


def test_first_vm_port_on_a_running_agent_touches_only_its_tag_its_guard_and_br_tun() -> None:
    observed, applied = steady(HostView(host=HOST), ObservedSwitch())
    observed = replace(observed, ports=(*observed.ports, vif(PORT_A1.id)))
    result = plan(view(PORT_A1), SETTINGS, observed, applied)
    assert result.ops == (
        SetPortTag(qvo(PORT_A1.id), 1, local_vlan_config(PORT_A1, 1)),
        ReplaceFlows("br-int", merged(INT_DEFAULT, guard(PORT_A1))),
        ReplaceFlows("br-tun", (*TUN_0, *TUN_0_DROP, *TUN_2,
                                TUN_4_A,
                                TUN_4_DROP, LEARN, TUN_20_DEFAULT, TUN_21_DEFAULT, TUN_22_DROP)),
    )


def test_port_in_view_before_its_vif_is_down_and_provisioned() -> None:
    result = plan(view(PORT_A1), SETTINGS, ObservedSwitch(), {})
    assert result.port_status == {PORT_A1.id: DOWN}
    assert result.down_reasons == {PORT_A1.id: f"no VIF with iface-id {PORT_A1.id} on br-int"}
    assert result.local_vlans == {NET_A: 1}
    # A VIF whose ofport is not assigned yet is tagged but not ACTIVE.
    result = plan(view(PORT_A1), SETTINGS, switch(vif(PORT_A1.id, ofport=-1)), {})
    assert result.port_status == {PORT_A1.id: DOWN}
    assert SetPortTag(qvo(PORT_A1.id), 1, local_vlan_config(PORT_A1, 1)) in result.ops


# ---------------------------------------------------------------- two hosts share a network


def test_two_hosts_share_a_network() -> None:
    v = view(PORT_A1, remote=(REMOTE_A_C2,))
    result = plan(v, SETTINGS, switch(vif(PORT_A1.id)), {})
    assert EnsurePort("br-tun", "vxlan-0a0a0a03", "vxlan", vxlan_options("10.10.10.3")) in result.ops
    assert flows_of(result, "br-tun") == (
        *TUN_0,
        f"{C}table=0,priority=1,in_port=vxlan-0a0a0a03,actions=resubmit(,4)",
        *TUN_0_DROP, *TUN_2,
        TUN_4_A,
        TUN_4_DROP, LEARN,
        f"{C}table=20,priority=2,dl_vlan=1,dl_dst=fa:16:3e:00:02:a1,"
        "actions=pop_vlan,set_field:0x3e9->tun_id,output:vxlan-0a0a0a03",
        TUN_20_DEFAULT,
        f"{C}table=21,priority=1,arp,dl_vlan=1,arp_tpa=192.168.10.21,"
        f"actions={arp_reply('fa:16:3e:00:02:a1', '192.168.10.21')}",
        TUN_21_DEFAULT,
        f"{C}table=22,priority=1,dl_vlan=1,actions=pop_vlan,set_field:0x3e9->tun_id,output:vxlan-0a0a0a03",
        TUN_22_DROP,
    )
    assert result.port_status == {PORT_A1.id: ACTIVE}


def test_flooding_reaches_only_the_hosts_of_each_network() -> None:
    v = view(PORT_A1, PORT_B1, remote=(REMOTE_A_C2, REMOTE_A_C3, REMOTE_B_C2))
    result = plan(v, replace(SETTINGS, arp_responder=False), switch(vif(PORT_A1.id), vif(PORT_B1.id)), {})
    tunnels = [op for op in result.ops if isinstance(op, EnsurePort) and op.type == "vxlan"]
    assert tunnels == [EnsurePort("br-tun", "vxlan-0a0a0a03", "vxlan", vxlan_options("10.10.10.3")),
                       EnsurePort("br-tun", "vxlan-0a0a0a04", "vxlan", vxlan_options("10.10.10.4"))]
    assert result.local_vlans == {NET_A: 1, NET_B: 2}
    tun = flows_of(result, "br-tun")
    assert table(tun, 22) == [
        f"{C}table=22,priority=1,dl_vlan=1,actions=pop_vlan,set_field:0x3e9->tun_id,output:vxlan-0a0a0a03,"
        "output:vxlan-0a0a0a04",
        f"{C}table=22,priority=1,dl_vlan=2,actions=pop_vlan,set_field:0x3ea->tun_id,output:vxlan-0a0a0a03",
        TUN_22_DROP,
    ]
    assert table(tun, 20) == [
        f"{C}table=20,priority=2,dl_vlan=1,dl_dst=fa:16:3e:00:02:a1,"
        "actions=pop_vlan,set_field:0x3e9->tun_id,output:vxlan-0a0a0a03",
        f"{C}table=20,priority=2,dl_vlan=1,dl_dst=fa:16:3e:00:03:a1,"
        "actions=pop_vlan,set_field:0x3e9->tun_id,output:vxlan-0a0a0a04",
        f"{C}table=20,priority=2,dl_vlan=2,dl_dst=fa:16:3e:00:02:b1,"
        "actions=pop_vlan,set_field:0x3ea->tun_id,output:vxlan-0a0a0a03",
        TUN_20_DEFAULT,
    ]
    assert table(tun, 21) == [] and table(tun, 2) == list(TUN_2[1:])  # no ARP responder


def test_without_l2population_flooding_goes_to_every_tunnel_and_nothing_is_preinstalled() -> None:
    v = view(PORT_A1, PORT_B1, remote=(REMOTE_A_C3, REMOTE_B_C2))
    result = plan(v, replace(SETTINGS, l2_population=False), switch(), {})
    tun = flows_of(result, "br-tun")
    outputs = "output:vxlan-0a0a0a03,output:vxlan-0a0a0a04"
    assert table(tun, 22) == [
        f"{C}table=22,priority=1,dl_vlan=1,actions=pop_vlan,set_field:0x3e9->tun_id,{outputs}",
        f"{C}table=22,priority=1,dl_vlan=2,actions=pop_vlan,set_field:0x3ea->tun_id,{outputs}",
        TUN_22_DROP,
    ]
    assert table(tun, 20) == [TUN_20_DEFAULT]  # learning (table 10) fills table 20
    assert table(tun, 21) == [] and table(tun, 2) == list(TUN_2[1:])  # the ARP responder needs l2population


def test_remote_entries_that_cannot_be_wired_are_ignored() -> None:
    mine = RemotePort(NET_A, HOST, LOCAL_IP, "fa:16:3e:00:00:77", ())
    garbage = RemotePort(NET_A, "compute9", "not-an-ip", "fa:16:3e:00:00:78", ())
    bad_mac = RemotePort(NET_A, "compute2", "10.10.10.3", "nonsense", ("192.168.10.99", "fd00::9"))
    foreign = RemotePort(NET_B, "compute2", "10.10.10.3", "fa:16:3e:00:02:b1", ())  # not a network of ours
    result = plan(view(PORT_A1, remote=(mine, garbage, bad_mac, foreign)), SETTINGS, switch(), {})
    assert [op.name for op in result.ops if isinstance(op, EnsurePort) and op.type == "vxlan"] == ["vxlan-0a0a0a03"]
    tun = result.flows["br-tun"]
    assert not [f for f in tun if "priority=2,dl_vlan" in f or "arp_tpa" in f]  # no unicast, no ARP for a bad MAC
    assert f"{C}table=22,priority=1,dl_vlan=1,actions=pop_vlan,set_field:0x3e9->tun_id,output:vxlan-0a0a0a03" in tun


# ---------------------------------------------------------------- restarts


def test_restart_with_everything_in_place_emits_nothing() -> None:
    v = view(PORT_A1, PORT_F1, remote=(REMOTE_A_C2, REMOTE_A_C3))
    observed, applied = steady(v, switch(vif(PORT_A1.id), vif(PORT_F1.id)))
    result = plan(v, SETTINGS, observed, applied)
    assert result.ops == ()
    assert result.port_status == {PORT_A1.id: ACTIVE, PORT_F1.id: ACTIVE}
    assert result.flows == applied


def test_restart_with_nothing_applied_only_replaces_flows() -> None:
    v = view(PORT_A1, PORT_F1, remote=(REMOTE_A_C2,))
    observed, applied = steady(v, switch(vif(PORT_A1.id), vif(PORT_F1.id)))
    result = plan(v, SETTINGS, observed, {})
    assert result.ops == tuple(ReplaceFlows(b, applied[b]) for b in ("br-int", "br-tun", "br-ex"))
    assert result.local_vlans == {NET_A: 1, NET_F: 2}


def test_local_vlans_are_recovered_from_other_config() -> None:
    # Another agent run gave A VLAN 7 and F VLAN 3; the port of F lost its tag but kept other_config.
    observed = switch(vif(PORT_A1.id, tag=7, other_config=local_vlan_config(PORT_A1, 7)),
                      vif(PORT_F1.id, tag=None, other_config=local_vlan_config(PORT_F1, 3)),
                      vif(PORT_B1.id))
    result = plan(view(PORT_A1, PORT_B1, PORT_F1), SETTINGS, observed, {})
    assert result.local_vlans == {NET_A: 7, NET_B: 1, NET_F: 3}
    assert [op for op in result.ops if isinstance(op, SetPortTag)] == [
        SetPortTag(qvo(PORT_B1.id), 1, local_vlan_config(PORT_B1, 1)),
        SetPortTag(qvo(PORT_F1.id), 3, local_vlan_config(PORT_F1, 3)),
    ]
    assert flat_in(3) in result.flows["br-int"]


def test_local_vlan_recovered_from_a_bare_tag_and_conflicts_resolved_by_majority() -> None:
    # No other_config (an older agent): the tag and the iface-id say which network. Two ports of A
    # say 5, a stale port of B also says 5: A keeps 5 (more ports), B gets the smallest free VLAN.
    observed = switch(vif(PORT_A1.id, tag=5), vif(PORT_A2.id, tag=5), vif(PORT_B1.id, tag=5))
    result = plan(view(PORT_A1, PORT_A2, PORT_B1), SETTINGS, observed, {})
    assert result.local_vlans == {NET_A: 5, NET_B: 1}
    assert allocate_vlans([NET_A, NET_B], {}) == {NET_A: 1, NET_B: 2}
    assert allocate_vlans([NET_B], {(NET_A, 1): 3, (NET_B, 2): 1}) == {NET_B: 2}


def test_ovs_restart_flow_count_mismatch_replaces_flows() -> None:
    v = view(PORT_A1, remote=(REMOTE_A_C2,))
    observed, applied = steady(v, switch(vif(PORT_A1.id)))
    flushed = replace(observed, bridges=tuple(replace(b, flow_count=0) if b.name == "br-tun" else b
                                               for b in observed.bridges))
    assert plan(v, SETTINGS, flushed, applied).ops == (ReplaceFlows("br-tun", applied["br-tun"]),)
    # Count unknown (not read this round): trust what was applied.
    unknown = replace(observed, bridges=tuple(replace(b, flow_count=None) for b in observed.bridges))
    assert plan(v, SETTINGS, unknown, applied).ops == ()
    # A bridge that vanished is recreated and gets its flows back, whatever was applied.
    gone = replace(observed, bridges=tuple(b for b in observed.bridges if b.name != "br-ex"))
    assert plan(v, SETTINGS, gone, applied).ops == (EnsureBridge("br-ex", "netdev", "secure"),
                                                   ReplaceFlows("br-ex", applied["br-ex"]))


def test_bridge_with_the_wrong_datapath_or_fail_mode_is_reconfigured() -> None:
    observed, applied = steady(HostView(host=HOST), ObservedSwitch())
    standalone = replace(observed, bridges=tuple(replace(b, fail_mode="") if b.name == "br-ex" else b
                                                 for b in observed.bridges))
    assert plan(HostView(host=HOST), SETTINGS, standalone, applied).ops == (
        EnsureBridge("br-ex", "netdev", "secure"), ReplaceFlows("br-ex", EX_DEFAULT))


def test_changed_local_ip_reconfigures_the_tunnel_ports_in_place() -> None:
    v = view(PORT_A1, remote=(REMOTE_A_C2,))
    observed, applied = steady(v, switch(vif(PORT_A1.id)))
    moved = replace(SETTINGS, local_ip="10.10.10.9")
    options = tuple((k, "10.10.10.9" if k == "local_ip" else val) for k, val in vxlan_options("10.10.10.3"))
    assert plan(v, moved, observed, applied).ops == (EnsurePort("br-tun", "vxlan-0a0a0a03", "vxlan", options),)


# ---------------------------------------------------------------- isolation


def test_unknown_iface_id_goes_to_the_dead_vlan() -> None:
    stray = vif("99999999-0000-4000-8000-000000000009", ofport=12)
    unplugged = vif("88888888-0000-4000-8000-000000000008", ofport=-1)
    already_dead = vif("77777777-0000-4000-8000-000000000007", ofport=13, tag=DEAD_VLAN)
    plain = ObservedPort("eth9", "br-int", "", ofport=14)  # no iface-id: not ours, left alone
    observed, applied = steady(HostView(host=HOST), switch(plain))
    observed = replace(observed, ports=(*observed.ports, stray, unplugged, already_dead))
    result = plan(HostView(host=HOST), SETTINGS, observed, applied)
    assert result.ops == (
        SetPortTag(unplugged.name, DEAD_VLAN),
        SetPortTag(stray.name, DEAD_VLAN),
        ReplaceFlows("br-int", (DEAD_DROP, INT_BR_EX_DROP,
                                f"{C}table=0,priority=2,in_port={already_dead.name},actions=drop",
                                f"{C}table=0,priority=2,in_port={stray.name},actions=drop",
                                *INT_TAIL)),
    )
    assert result.port_status == {}


def test_dead_port_with_a_name_ovs_ofctl_cannot_parse_gets_no_flow() -> None:
    odd = vif("99999999-0000-4000-8000-000000000009", name="vm port,1")
    result = plan(HostView(host=HOST), SETTINGS, switch(odd), {})
    assert SetPortTag("vm port,1", DEAD_VLAN) in result.ops
    assert result.flows["br-int"] == INT_DEFAULT


def test_admin_state_down_port_is_dead_and_its_network_not_provisioned() -> None:
    down = replace(PORT_A1, admin_state_up=False)
    result = plan(view(down), SETTINGS, switch(vif(down.id, tag=1, other_config=local_vlan_config(down, 1))), {})
    assert result.port_status == {down.id: DOWN}
    assert result.down_reasons == {down.id: "admin_state_up is false"}
    assert result.local_vlans == {}
    assert SetPortTag(qvo(down.id), DEAD_VLAN) in result.ops
    assert f"{C}table=0,priority=2,in_port={qvo(down.id)},actions=drop" in result.flows["br-int"]
    assert result.flows["br-tun"] == TUN_DEFAULT
    # Back up: the port returns to its network's VLAN, the drop flow goes.
    again = plan(view(PORT_A1), SETTINGS, realise(switch(vif(down.id)), result.ops), result.flows)
    assert again.ops[0] == SetPortTag(qvo(PORT_A1.id), 1, local_vlan_config(PORT_A1, 1))
    assert again.flows["br-int"] == merged(INT_DEFAULT, guard(PORT_A1))
    assert again.port_status == {PORT_A1.id: ACTIVE}


def test_network_this_host_cannot_carry_leaves_its_ports_down_and_dead() -> None:
    settings = replace(SETTINGS, bridge_mappings=(), local_ip=None)
    result = plan(view(PORT_A1, PORT_F1), settings, switch(vif(PORT_A1.id), vif(PORT_F1.id)), {})
    assert result.local_vlans == {}
    assert result.port_status == {PORT_A1.id: DOWN, PORT_F1.id: DOWN}
    assert result.down_reasons == {
        PORT_A1.id: "vxlan network but tunnelling is off here (local_ip, tunnel_types)",
        PORT_F1.id: "no bridge_mappings entry for physical network physnet1",
    }
    assert result.ops == (
        EnsureBridge("br-int", "netdev", "secure"),
        SetPortTag(qvo(PORT_A1.id), DEAD_VLAN),
        SetPortTag(qvo(PORT_F1.id), DEAD_VLAN),
        ReplaceFlows("br-int", (DEAD_DROP, f"{C}table=0,priority=2,in_port={qvo(PORT_A1.id)},actions=drop",
                                f"{C}table=0,priority=2,in_port={qvo(PORT_F1.id)},actions=drop", *INT_TAIL)),
    )


# ---------------------------------------------------------------- deletions


def test_remote_port_deleted_removes_its_flows_and_tunnel() -> None:
    before = view(PORT_A1, remote=(REMOTE_A_C2, REMOTE_A_C3))
    observed, applied = steady(before, switch(vif(PORT_A1.id)))
    result = plan(view(PORT_A1, remote=(REMOTE_A_C2,)), SETTINGS, observed, applied)
    assert result.ops == (
        DeletePort("br-tun", "vxlan-0a0a0a04"),
        ReplaceFlows("br-tun", plan(view(PORT_A1, remote=(REMOTE_A_C2,)), SETTINGS, switch(), {}).flows["br-tun"]),
    )
    tun = result.flows["br-tun"]
    assert not [f for f in tun if "0a0a0a04" in f or "fa:16:3e:00:03:a1" in f or "192.168.10.31" in f]
    assert f"{C}table=22,priority=1,dl_vlan=1,actions=pop_vlan,set_field:0x3e9->tun_id,output:vxlan-0a0a0a03" in tun


def test_one_of_two_remote_ports_of_a_host_deleted_keeps_the_flooding_entry() -> None:
    other = RemotePort(NET_A, "compute2", "10.10.10.3", "fa:16:3e:00:02:a2", ("192.168.10.22",))
    observed, applied = steady(view(PORT_A1, remote=(REMOTE_A_C2, other)), switch(vif(PORT_A1.id)))
    result = plan(view(PORT_A1, remote=(REMOTE_A_C2,)), SETTINGS, observed, applied)
    assert [type(op) for op in result.ops] == [ReplaceFlows]
    removed = set(applied["br-tun"]) - set(result.flows["br-tun"])
    assert removed == {
        f"{C}table=20,priority=2,dl_vlan=1,dl_dst=fa:16:3e:00:02:a2,"
        "actions=pop_vlan,set_field:0x3e9->tun_id,output:vxlan-0a0a0a03",
        f"{C}table=21,priority=1,arp,dl_vlan=1,arp_tpa=192.168.10.22,"
        f"actions={arp_reply('fa:16:3e:00:02:a2', '192.168.10.22')}",
    }
    assert set(result.flows["br-tun"]) < set(applied["br-tun"])


def test_last_port_of_a_network_on_the_node_removes_that_networks_flows() -> None:
    both = view(PORT_A1, PORT_B1, remote=(REMOTE_A_C3, REMOTE_B_C2))
    observed, applied = steady(both, switch(vif(PORT_A1.id), vif(PORT_B1.id)))
    # B's only port here is deleted (Nova unplugged it, the server dropped it from the view).
    observed = replace(observed, ports=tuple(p for p in observed.ports if p.iface_id != PORT_B1.id))
    only_a = view(PORT_A1, remote=(REMOTE_A_C3,))
    result = plan(only_a, SETTINGS, observed, applied)
    assert result.local_vlans == {NET_A: 1}
    assert result.ops == (DeletePort("br-tun", "vxlan-0a0a0a03"),
                          ReplaceFlows("br-int", merged(INT_DEFAULT, guard(PORT_A1))),  # B1's guard goes
                          ReplaceFlows("br-tun", result.flows["br-tun"]))
    assert not [f for f in result.flows["br-tun"] if "0x3ea" in f or "dl_vlan=2" in f or "0a0a0a03" in f]


def test_last_port_of_a_flat_network_removes_the_br_ex_translation() -> None:
    both = view(PORT_A1, PORT_F1)
    observed, applied = steady(both, switch(vif(PORT_A1.id), vif(PORT_F1.id)))
    assert applied["br-ex"] == (f"{C}table=0,priority=4,in_port=phy-br-ex,dl_vlan=2,actions=pop_vlan,NORMAL",
                                *EX_DEFAULT)
    observed = replace(observed, ports=tuple(p for p in observed.ports if p.iface_id != PORT_F1.id))
    result = plan(view(PORT_A1), SETTINGS, observed, applied)
    assert result.ops == (ReplaceFlows("br-int", merged(INT_DEFAULT, guard(PORT_A1))),
                          ReplaceFlows("br-ex", EX_DEFAULT))


def test_stale_mapping_patches_and_tunnels_are_deleted_but_never_vifs() -> None:
    old = replace(SETTINGS, bridge_mappings=(("physnet1", "br-ex"), ("physnet2", "br-old")))
    observed, applied = steady(view(PORT_A1, remote=(REMOTE_A_C2,)), switch(vif(PORT_A1.id)), old)
    # Restart without physnet2 and without tunnelling: their patches and tunnel ports go.
    settings = replace(SETTINGS, local_ip=None)
    result = plan(view(PORT_F1), settings, observed, applied)
    assert [op for op in result.ops if isinstance(op, DeletePort)] == [
        DeletePort("br-int", "int-br-old"),
        DeletePort("br-int", "patch-tun"),
        DeletePort("br-old", "phy-br-old"),
        DeletePort("br-tun", "patch-int"),
        DeletePort("br-tun", "vxlan-0a0a0a03"),
    ]
    assert SetPortTag(qvo(PORT_A1.id), DEAD_VLAN) in result.ops  # the VIF stays, isolated


# ---------------------------------------------------------------- provider networks


def test_flat_network_through_br_ex() -> None:
    result = plan(view(PORT_F1), SETTINGS, switch(vif(PORT_F1.id)), {})
    assert result.local_vlans == {NET_F: 1}
    assert SetPortTag(qvo(PORT_F1.id), 1, (("net_uuid", NET_F), ("network_type", "flat"),
                                          ("physical_network", "physnet1"), ("segmentation_id", "None"),
                                          ("tag", "1"))) in result.ops
    assert result.flows["br-int"] == merged((
        DEAD_DROP,
        flat_in(1),
        INT_BR_EX_DROP, *INT_TAIL,
    ), guard(PORT_F1))
    assert result.flows["br-ex"] == (
        f"{C}table=0,priority=4,in_port=phy-br-ex,dl_vlan=1,actions=pop_vlan,NORMAL",
        *EX_DEFAULT,
    )
    assert result.flows["br-tun"] == TUN_DEFAULT
    assert result.port_status == {PORT_F1.id: ACTIVE}


def test_vlan_network_through_br_ex() -> None:
    result = plan(view(PORT_V1), SETTINGS, switch(vif(PORT_V1.id)), {})
    assert result.flows["br-int"] == merged((
        DEAD_DROP,
        f"{C}table=0,priority=3,in_port=int-br-ex,dl_vlan=200,actions=set_field:4097->vlan_vid,resubmit(,60)",
        INT_BR_EX_DROP, *INT_TAIL,
    ), guard(PORT_V1))
    assert result.flows["br-ex"] == (
        f"{C}table=0,priority=4,in_port=phy-br-ex,dl_vlan=1,actions=set_field:4296->vlan_vid,NORMAL",
        *EX_DEFAULT,
    )


# ---------------------------------------------------------------- determinism and limits


def test_same_input_same_plan_whatever_the_order() -> None:
    ports = (PORT_A1, PORT_A2, PORT_B1, PORT_F1)
    remote = (REMOTE_A_C2, REMOTE_A_C3, REMOTE_B_C2)
    observed_ports = (vif(PORT_A1.id, tag=4, other_config=local_vlan_config(PORT_A1, 4)), vif(PORT_A2.id),
                      vif(PORT_B1.id), vif(PORT_F1.id), vif("99999999-0000-4000-8000-000000000009"))
    bridges = (ObservedBridge("br-int", "netdev", "secure", 3), ObservedBridge("br-ex", "netdev", ""))
    v = view(*ports, remote=remote)
    reference = plan(v, SETTINGS, switch(*observed_ports, bridges=bridges), {})
    assert plan(v, SETTINGS, switch(*observed_ports, bridges=bridges), {}) == reference
    for perm in itertools.islice(itertools.permutations(range(4)), 0, 24, 5):
        shuffled = HostView(host=HOST, ports=tuple(ports[i] for i in perm),
                            networks=tuple(reversed(v.networks)), remote_ports=tuple(reversed(remote)))
        obs = switch(*(observed_ports[i] for i in (*perm, 4)), bridges=tuple(reversed(bridges)))
        assert plan(shuffled, SETTINGS, obs, {}) == reference
    assert reference.local_vlans == {NET_A: 4, NET_B: 1, NET_F: 2}


def test_local_vlan_exhaustion_leaves_the_extra_network_down() -> None:
    networks = [Network(f"net-{i:05d}", Segment("vxlan", 5000 + i, None), 1450) for i in range(4095)]
    ports = [Port(f"port-{i:05d}", n.id, "fa:16:3e:00:00:01", (), "compute:nova", True, True)
             for i, n in enumerate(networks)]
    last = ports[-1]
    v = HostView(host=HOST, ports=tuple(ports), networks=tuple(networks))
    result = plan(v, SETTINGS, switch(vif(last.id, name="qvolast")), {})
    assert len(result.local_vlans) == 4094
    assert result.local_vlans["net-00000"] == 1 and result.local_vlans["net-04093"] == 4094
    assert "net-04094" not in result.local_vlans
    assert result.port_status[last.id] == DOWN
    assert result.down_reasons[last.id] == "no free local VLAN on br-int (1-4094 all in use)"
    assert SetPortTag("qvolast", DEAD_VLAN) in result.ops
    assert f"{C}table=0,priority=2,in_port=qvolast,actions=drop" in result.flows["br-int"]


@pytest.mark.parametrize("settings", [SETTINGS, replace(SETTINGS, arp_responder=False),
                                      replace(SETTINGS, l2_population=False)])
def test_no_two_flows_share_table_priority_and_match(settings: OvsAgentSettings) -> None:
    """OVS keeps one flow per (table, priority, match): duplicates would make the flow count never match."""
    dup = RemotePort(NET_A, "compute3", "10.10.10.4", "fa:16:3e:00:02:a1", ("192.168.10.21",))  # same MAC/IP
    v = view(PORT_A1, PORT_B1, PORT_F1, PORT_V1, remote=(REMOTE_A_C2, REMOTE_A_C3, REMOTE_B_C2, dup))
    result = plan(v, settings, switch(), {})
    for flows in result.flows.values():
        keys = [f.split(",actions=")[0] for f in flows]
        assert len(keys) == len(set(keys))
        assert all(f.startswith(C) for f in flows)


# Spellings an OpenFlow 1.4 switch never reports back: a flow written so is re-added by every replace.
LEGACY_SPELLINGS = ("mod_vlan_vid", "strip_vlan", "set_tunnel", "mod_dl_src", "mod_dl_dst", "nw_dst=", ",in_port,")


@pytest.mark.parametrize("settings", [SETTINGS, replace(SETTINGS, l2_population=False)])
def test_flows_are_written_as_the_switch_reports_them(settings: OvsAgentSettings) -> None:
    v = view(PORT_A1, PORT_B1, PORT_F1, PORT_V1, remote=(REMOTE_A_C2, REMOTE_A_C3, REMOTE_B_C2))
    observed = switch(vif(PORT_A1.id), vif(PORT_F1.id), vif("99999999-0000-4000-8000-000000000009", name="qvodead"))
    result = plan(v, settings, observed, {})
    flows = [f for bridge_flows in result.flows.values() for f in bridge_flows]
    assert len(flows) > 20
    for flow in flows:
        assert not [word for word in LEGACY_SPELLINGS if word in flow], flow
        # load: only inside learn()'s specification, which is not an action.
        assert "load:" not in re.sub(r"learn\([^)]*\)", "", flow.split(",actions=")[1]), flow
    assert {f for f in flows if "tun_id=" in f} >= {
        TUN_4_A,
        f"{C}table=4,priority=1,tun_id=0x3ea,actions=push_vlan:0x8100,set_field:4098->vlan_vid,resubmit(,10)",
    }
