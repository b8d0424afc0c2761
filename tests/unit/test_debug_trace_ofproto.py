"""The pure reading of ``ofproto/trace`` and ``dpif/show`` (``baryon.debug.ofproto``) on real output.

The samples below were captured from a lab (OVS 3.1, userspace datapath). Topology: compute1
10.10.10.11, compute2 10.10.10.12, network 10.10.10.1; a tenant vxlan network (VNI 1) with vm1
(compute1, qvo2a699708-29, 10.30.0.17) and vm2 (compute2, qvo45ba89f8-f9, 10.30.0.24), a router on
the network node (qr's OVS end tapb7c622e0-f7, qg's tapc8701a4e-79), br-ex with eth2 on physnet1.
"""

from __future__ import annotations

from baryon.debug.ofproto import (DpOutput, by_datapath_port, flow_spec, parse_datapath_actions, parse_dpif_show,
                                  parse_trace, split_top)


CROSS_NODE = r"""Flow: icmp,in_port=2,vlan_tci=0x0000,dl_src=fa:16:3e:bb:ee:e0,dl_dst=fa:16:3e:78:0d:b1,nw_src=10.30.0.17,nw_dst=10.30.0.24,nw_tos=0,nw_ecn=0,nw_ttl=64,nw_frag=no,icmp_type=0,icmp_code=0

bridge("br-int")
----------------
 0. priority 0, cookie 0xb4770
    resubmit(,60)
60. priority 3, cookie 0xb4770
    NORMAL
     -> forwarding to learned port

bridge("br-tun")
----------------
 0. in_port=1, priority 1, cookie 0xb4770
    resubmit(,2)
 2. dl_dst=00:00:00:00:00:00/01:00:00:00:00:00, priority 0, cookie 0xb4770
    resubmit(,20)
20. dl_vlan=1,dl_dst=fa:16:3e:78:0d:b1, priority 2, cookie 0xb4770
    pop_vlan
    set_field:0x1->tun_id
    output:3
     -> output to native tunnel
     -> tunneling to 10.10.10.12 via br-phy
     -> tunneling from 5e:6d:c2:dd:5f:4a 10.10.10.11 to 72:fc:5e:28:16:4d 10.10.10.12

bridge("br-phy")
----------------
 0. priority 0
    NORMAL
     -> forwarding to learned port

Final flow: unchanged
Megaflow: pkt_mark=0,recirc_id=0,eth,ip,in_port=2,dl_src=fa:16:3e:bb:ee:e0,dl_dst=fa:16:3e:78:0d:b1,nw_ecn=0,nw_frag=no
Datapath actions: tnl_push(tnl_port(6),header(size=50,type=4,eth(dst=72:fc:5e:28:16:4d,src=5e:6d:c2:dd:5f:4a,dl_type=0x0800),ipv4(src=10.10.10.11,dst=10.10.10.12,proto=17,tos=0,ttl=64,frag=0x4000),udp(src=0,dst=4789,csum=0x0),vxlan(flags=0x8000000,vni=0x1)),out_port(2)),1
"""

FROM_TUNNEL = r"""Flow: icmp,tun_src=10.10.10.11,tun_dst=10.10.10.12,tun_ipv6_src=::,tun_ipv6_dst=::,tun_gbp_id=0,tun_gbp_flags=0,tun_tos=0,tun_ttl=0,tun_erspan_ver=0,gtpu_flags=0,gtpu_msgtype=0,tun_flags=0,in_port=3,vlan_tci=0x0000,dl_src=fa:16:3e:bb:ee:e0,dl_dst=fa:16:3e:78:0d:b1,nw_src=10.30.0.17,nw_dst=10.30.0.24,nw_tos=0,nw_ecn=0,nw_ttl=64,nw_frag=no,icmp_type=0,icmp_code=0

bridge("br-tun")
----------------
 0. in_port=3, priority 1, cookie 0xb4770
    resubmit(,4)
 4. tun_id=0x1, priority 1, cookie 0xb4770
    push_vlan:0x8100
    set_field:4097->vlan_vid
    resubmit(,10)
10. priority 1, cookie 0xb4770
    learn(table=20,hard_timeout=300,priority=1,cookie=0xb4771,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:NXM_OF_IN_PORT[])
     >> suppressing side effects, so learn action ignored
    output:1

bridge("br-int")
----------------
 0. priority 0, cookie 0xb4770
    resubmit(,60)
60. priority 3, cookie 0xb4770
    NORMAL
     -> forwarding to learned port

Final flow: icmp,tun_src=10.10.10.11,tun_dst=10.10.10.12,tun_ipv6_src=::,tun_ipv6_dst=::,tun_gbp_id=0,tun_gbp_flags=0,tun_tos=0,tun_ttl=0,tun_erspan_ver=0,gtpu_flags=0,gtpu_msgtype=0,tun_flags=0,in_port=3,dl_vlan=1,dl_vlan_pcp=0,vlan_tci1=0x0000,dl_src=fa:16:3e:bb:ee:e0,dl_dst=fa:16:3e:78:0d:b1,nw_src=10.30.0.17,nw_dst=10.30.0.24,nw_tos=0,nw_ecn=0,nw_ttl=64,nw_frag=no,icmp_type=0,icmp_code=0
Megaflow: recirc_id=0,eth,ip,tun_id=0x1,tun_src=10.10.10.11,tun_dst=10.10.10.12,tun_tos=0,tun_flags=-df-csum-key,in_port=3,dl_src=fa:16:3e:bb:ee:e0,dl_dst=fa:16:3e:78:0d:b1,nw_frag=no
Datapath actions: 6
"""

FLOODED = r"""Flow: icmp,in_port=2,vlan_tci=0x0000,dl_src=fa:16:3e:78:0d:b1,dl_dst=fa:16:3e:00:00:99,nw_src=10.30.0.24,nw_dst=10.30.0.99,nw_tos=0,nw_ecn=0,nw_ttl=64,nw_frag=no,icmp_type=0,icmp_code=0

bridge("br-int")
----------------
 0. priority 0, cookie 0xb4770
    resubmit(,60)
60. priority 3, cookie 0xb4770
    NORMAL
     -> no learned MAC for destination, flooding

bridge("br-tun")
----------------
 0. in_port=1, priority 1, cookie 0xb4770
    resubmit(,2)
 2. dl_dst=00:00:00:00:00:00/01:00:00:00:00:00, priority 0, cookie 0xb4770
    resubmit(,20)
20. priority 0, cookie 0xb4770
    resubmit(,22)
22. dl_vlan=1, priority 1, cookie 0xb4770
    pop_vlan
    set_field:0x1->tun_id
    output:2
     -> output to native tunnel
     -> tunneling to 10.10.10.1 via br-phy
     -> tunneling from 72:fc:5e:28:16:4d 10.10.10.12 to 26:43:c9:b8:3b:4e 10.10.10.1

    bridge("br-phy")
    ----------------
         0. priority 0
            NORMAL
             -> forwarding to learned port
    output:3
     -> output to native tunnel
     -> tunneling to 10.10.10.11 via br-phy
     -> tunneling from 72:fc:5e:28:16:4d 10.10.10.12 to 5e:6d:c2:dd:5f:4a 10.10.10.11

bridge("br-phy")
----------------
 0. priority 0
    NORMAL
     -> forwarding to learned port

Final flow: unchanged
Megaflow: pkt_mark=0,recirc_id=0,eth,ip,in_port=2,dl_src=fa:16:3e:78:0d:b1,dl_dst=fa:16:3e:00:00:99,nw_ecn=0,nw_frag=no
Datapath actions: clone(tnl_push(tnl_port(5),header(size=50,type=4,eth(dst=26:43:c9:b8:3b:4e,src=72:fc:5e:28:16:4d,dl_type=0x0800),ipv4(src=10.10.10.12,dst=10.10.10.1,proto=17,tos=0,ttl=64,frag=0x4000),udp(src=0,dst=4789,csum=0x0),vxlan(flags=0x8000000,vni=0x1)),out_port(2)),1),clone(tnl_push(tnl_port(5),header(size=50,type=4,eth(dst=5e:6d:c2:dd:5f:4a,src=72:fc:5e:28:16:4d,dl_type=0x0800),ipv4(src=10.10.10.12,dst=10.10.10.11,proto=17,tos=0,ttl=64,frag=0x4000),udp(src=0,dst=4789,csum=0x0),vxlan(flags=0x8000000,vni=0x1)),out_port(2)),1),push_vlan(vid=1,pcp=0),4
"""

TO_ROUTER = r"""Flow: icmp,tun_src=10.10.10.12,tun_dst=10.10.10.1,tun_ipv6_src=::,tun_ipv6_dst=::,tun_gbp_id=0,tun_gbp_flags=0,tun_tos=0,tun_ttl=0,tun_erspan_ver=0,gtpu_flags=0,gtpu_msgtype=0,tun_flags=0,in_port=3,vlan_tci=0x0000,dl_src=fa:16:3e:78:0d:b1,dl_dst=fa:16:3e:58:cd:17,nw_src=10.30.0.24,nw_dst=203.0.113.1,nw_tos=0,nw_ecn=0,nw_ttl=64,nw_frag=no,icmp_type=0,icmp_code=0

bridge("br-tun")
----------------
 0. in_port=3, priority 1, cookie 0xb4770
    resubmit(,4)
 4. tun_id=0x1, priority 1, cookie 0xb4770
    push_vlan:0x8100
    set_field:4098->vlan_vid
    resubmit(,10)
10. priority 1, cookie 0xb4770
    learn(table=20,hard_timeout=300,priority=1,cookie=0xb4771,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:NXM_OF_IN_PORT[])
     >> suppressing side effects, so learn action ignored
    output:1

bridge("br-int")
----------------
 0. priority 0, cookie 0xb4770
    resubmit(,60)
60. priority 3, cookie 0xb4770
    NORMAL
     -> forwarding to learned port

Final flow: icmp,tun_src=10.10.10.12,tun_dst=10.10.10.1,tun_ipv6_src=::,tun_ipv6_dst=::,tun_gbp_id=0,tun_gbp_flags=0,tun_tos=0,tun_ttl=0,tun_erspan_ver=0,gtpu_flags=0,gtpu_msgtype=0,tun_flags=0,in_port=3,dl_vlan=2,dl_vlan_pcp=0,vlan_tci1=0x0000,dl_src=fa:16:3e:78:0d:b1,dl_dst=fa:16:3e:58:cd:17,nw_src=10.30.0.24,nw_dst=203.0.113.1,nw_tos=0,nw_ecn=0,nw_ttl=64,nw_frag=no,icmp_type=0,icmp_code=0
Megaflow: recirc_id=0,eth,ip,tun_id=0x1,tun_src=10.10.10.12,tun_dst=10.10.10.1,tun_tos=0,tun_flags=-df-csum-key,in_port=3,dl_src=fa:16:3e:78:0d:b1,dl_dst=fa:16:3e:58:cd:17,nw_frag=no
Datapath actions: 9
"""

TO_PHYSNET = r"""Flow: icmp,in_port=4,vlan_tci=0x0000,dl_src=fa:16:3e:38:a7:e2,dl_dst=ff:ff:ff:ff:ff:ff,nw_src=203.0.113.190,nw_dst=203.0.113.1,nw_tos=0,nw_ecn=0,nw_ttl=63,nw_frag=no,icmp_type=0,icmp_code=0

bridge("br-int")
----------------
 0. priority 0, cookie 0xb4770
    resubmit(,60)
60. priority 3, cookie 0xb4770
    NORMAL
     -> no learned MAC for destination, flooding

    bridge("br-tun")
    ----------------
         0. in_port=1, priority 1, cookie 0xb4770
            resubmit(,2)
         2. dl_dst=01:00:00:00:00:00/01:00:00:00:00:00, priority 0, cookie 0xb4770
            resubmit(,22)
        22. priority 0, cookie 0xb4770
            drop

bridge("br-ex")
---------------
 0. in_port=2,dl_vlan=1, priority 4, cookie 0xb4770
    pop_vlan
    NORMAL
     -> no learned MAC for destination, flooding

Final flow: unchanged
Megaflow: recirc_id=0,eth,ip,in_port=4,dl_src=fa:16:3e:38:a7:e2,dl_dst=ff:ff:ff:ff:ff:ff,nw_frag=no
Datapath actions: 3,4,push_vlan(vid=1,pcp=0),6
"""

NORMAL_DROP = r"""Flow: tcp,in_port=2,vlan_tci=0x0000,dl_src=fa:16:3e:bb:ee:e0,dl_dst=fa:16:3e:bb:ee:e0,nw_src=10.30.0.17,nw_dst=10.30.0.17,nw_tos=0,nw_ecn=0,nw_ttl=0,nw_frag=no,tp_src=1,tp_dst=2,tcp_flags=0

bridge("br-int")
----------------
 0. priority 0, cookie 0xb4770
    resubmit(,60)
60. priority 3, cookie 0xb4770
    NORMAL
     -> learned port is input port, dropping

Final flow: unchanged
Megaflow: recirc_id=0,eth,ip,in_port=2,dl_src=fa:16:3e:bb:ee:e0,dl_dst=fa:16:3e:bb:ee:e0,nw_frag=no
Datapath actions: drop
"""

TABLE_DROP = r"""Flow: icmp,tun_src=10.10.10.11,tun_dst=10.10.10.12,tun_ipv6_src=::,tun_ipv6_dst=::,tun_gbp_id=0,tun_gbp_flags=0,tun_tos=0,tun_ttl=0,tun_erspan_ver=0,gtpu_flags=0,gtpu_msgtype=0,tun_flags=0,in_port=3,vlan_tci=0x0000,dl_src=fa:16:3e:bb:ee:e0,dl_dst=fa:16:3e:78:0d:b1,nw_src=10.30.0.17,nw_dst=10.30.0.24,nw_tos=0,nw_ecn=0,nw_ttl=0,nw_frag=no,icmp_type=0,icmp_code=0

bridge("br-tun")
----------------
 0. in_port=3, priority 1, cookie 0xb4770
    resubmit(,4)
 4. priority 0, cookie 0xb4770
    drop

Final flow: unchanged
Megaflow: recirc_id=0,eth,ip,tun_id=0x99,tun_src=10.10.10.11,tun_dst=10.10.10.12,tun_tos=0,tun_flags=-df-csum-key,in_port=3,nw_frag=no
Datapath actions: drop
"""

DPIF_NETWORK = r"""netdev@ovs-netdev: hit:104 missed:122
  br-ex:
    br-ex 65534/3: (tap)
    eth2 1/4: (system)
    phy-br-ex 2/none: (patch: peer=int-br-ex)
  br-int:
    br-int 65534/6: (tap)
    int-br-ex 1/none: (patch: peer=phy-br-ex)
    patch-tun 2/none: (patch: peer=patch-int)
    tap9e323513-77 3/7: (system)
    tapb7c622e0-f7 5/9: (system)
    tapc8701a4e-79 4/8: (system)
  br-phy:
    br-phy 65534/2: (tap)
    eth1 1/1: (system)
  br-tun:
    br-tun 65534/5: (tap)
    patch-int 1/none: (patch: peer=patch-tun)
    vxlan-0a0a0a0b 2/10: (vxlan: egress_pkt_mark=0, key=flow, local_ip=10.10.10.1, remote_ip=10.10.10.11)
    vxlan-0a0a0a0c 3/10: (vxlan: egress_pkt_mark=0, key=flow, local_ip=10.10.10.1, remote_ip=10.10.10.12)
"""


# ---------------------------------------------------------------- ofproto/trace


def test_a_unicast_to_another_node_crosses_br_int_then_br_tun_and_leaves_by_a_tunnel() -> None:
    trace = parse_trace(CROSS_NODE)
    assert [(s.bridge, s.depth) for s in trace.sections] == [("br-int", 0), ("br-tun", 0), ("br-phy", 0)]
    br_int, br_tun, _ = trace.sections
    assert [(s.table, s.priority, s.cookie) for s in br_int.steps] == [(0, 0, 0xB4770), (60, 3, 0xB4770)]
    assert br_int.steps[1].actions == ("NORMAL",) and br_int.notes == ("forwarding to learned port",)
    last = br_tun.steps[-1]
    assert (last.table, last.match, last.priority) == (20, "dl_vlan=1,dl_dst=fa:16:3e:78:0d:b1", 2)
    assert last.actions == ("pop_vlan", "set_field:0x1->tun_id", "output:3")
    assert "tunneling to 10.10.10.12 via br-phy" in last.notes
    assert trace.outputs[0] == DpOutput("tunnel", port=2, remote_ip="10.10.10.12", local_ip="10.10.10.11", vni=1)
    assert trace.outputs[1] == DpOutput("port", port=1)  # the underlay port (eth1)
    assert not trace.dropped and not trace.flooded()
    assert trace.final_flow == "unchanged"


def test_a_packet_from_a_tunnel_gets_its_local_vlan_and_reaches_the_vm_port() -> None:
    trace = parse_trace(FROM_TUNNEL)
    assert [s.bridge for s in trace.sections] == ["br-tun", "br-int"]
    steps = trace.sections[0].steps
    assert [s.table for s in steps] == [0, 4, 10]
    assert steps[1].match == "tun_id=0x1" and "set_field:4097->vlan_vid" in steps[1].actions
    assert steps[2].notes == ("suppressing side effects, so learn action ignored",)
    assert steps[2].actions[-1] == "output:1"
    assert trace.outputs == (DpOutput("port", port=6),)
    assert "dl_vlan=1" in trace.final_flow


def test_a_flooded_packet_is_followed_to_every_tunnel_and_nested_copies_keep_their_depth() -> None:
    trace = parse_trace(FLOODED)
    assert trace.flooded()
    assert [(s.bridge, s.depth) for s in trace.sections] == [("br-int", 0), ("br-tun", 0), ("br-phy", 1),
                                                             ("br-phy", 0)]
    table22 = trace.sections[1].steps[-1]
    # the lines after the nested br-phy copy belong to table 22 again
    assert table22.actions == ("pop_vlan", "set_field:0x1->tun_id", "output:2", "output:3")
    assert [s.bridge for s in trace.main_sections()] == ["br-int", "br-tun", "br-phy"]
    tunnels = [(o.remote_ip, o.vni) for o in trace.outputs if o.kind == "tunnel"]
    assert tunnels == [("10.10.10.1", 1), ("10.10.10.11", 1)]
    assert DpOutput("port", port=4) in trace.outputs  # br-int's own port, tagged


def test_a_packet_to_the_router_leaves_by_the_qr_tap() -> None:
    trace = parse_trace(TO_ROUTER)
    assert trace.outputs == (DpOutput("port", port=9),)
    assert "set_field:4098->vlan_vid" in trace.sections[0].steps[1].actions


def test_the_gateway_side_goes_through_br_ex_and_the_nested_br_tun_copy_is_dropped() -> None:
    trace = parse_trace(TO_PHYSNET)
    assert [(s.bridge, s.depth) for s in trace.sections] == [("br-int", 0), ("br-tun", 1), ("br-ex", 0)]
    assert trace.sections[1].steps[-1].actions == ("drop",)
    br_ex = trace.sections[2].steps[0]
    assert (br_ex.match, br_ex.priority, br_ex.actions) == ("in_port=2,dl_vlan=1", 4, ("pop_vlan", "NORMAL"))
    assert [o.port for o in trace.outputs] == [3, 4, 6]


def test_drops() -> None:
    table = parse_trace(TABLE_DROP)
    assert table.dropped and table.datapath_actions == "drop"
    assert table.last_step().describe() == "table 4 priority 0: drop"
    normal = parse_trace(NORMAL_DROP)
    assert normal.dropped and normal.sections[0].notes == ("learned port is input port, dropping",)


def test_empty_or_broken_output_gives_an_empty_trace() -> None:
    trace = parse_trace("")
    assert trace.sections == () and trace.dropped and trace.last_step() is None
    broken = parse_trace("Translation failed (Recursion too deep), packet is dropped.\nDatapath actions: drop\n")
    assert broken.dropped and broken.errors


# ---------------------------------------------------------------- datapath actions


def test_split_top_respects_parentheses() -> None:
    assert split_top("a,b(c,d(e,f)),g") == ["a", "b(c,d(e,f))", "g"]
    assert split_top("") == []


def test_datapath_actions() -> None:
    assert parse_datapath_actions("drop") == []
    assert parse_datapath_actions("6") == [DpOutput("port", port=6)]
    assert parse_datapath_actions("pop_vlan,4,push_vlan(vid=1,pcp=0),6") == [DpOutput("port", port=4),
                                                                           DpOutput("port", port=6)]
    assert parse_datapath_actions("set(ipv4(src=1.2.3.4)),ct(zone=1),recirc(0x1)") == []
    tnl = ("tnl_push(tnl_port(6),header(size=50,type=4,eth(dst=72:fc:5e:28:16:4d,src=5e:6d:c2:dd:5f:4a,"
           "dl_type=0x0800),ipv4(src=10.10.10.11,dst=10.10.10.12,proto=17,tos=0,ttl=64,frag=0x4000),"
           "udp(src=0,dst=4789,csum=0x0),vxlan(flags=0x8000000,vni=0x3e8)),out_port(2))")
    assert parse_datapath_actions(f"clone({tnl},1),7") == [
        DpOutput("tunnel", port=2, remote_ip="10.10.10.12", local_ip="10.10.10.11", vni=1000),
        DpOutput("port", port=1), DpOutput("port", port=7)]


# ---------------------------------------------------------------- dpif/show


def test_dpif_show() -> None:
    ports = parse_dpif_show(DPIF_NETWORK)
    by_name = {p.name: p for p in ports}
    assert by_name["eth2"].bridge == "br-ex" and by_name["eth2"].dp == 4 and by_name["eth2"].ofport == 1
    assert by_name["phy-br-ex"].dp is None and by_name["phy-br-ex"].options == {"peer": "int-br-ex"}
    assert by_name["vxlan-0a0a0a0c"].options["remote_ip"] == "10.10.10.12"
    assert by_name["vxlan-0a0a0a0c"].type == "vxlan"
    index = by_datapath_port(ports)
    # the two vxlan ports share datapath port 10: left out; patch ports have none
    assert 10 not in index
    assert {index[n].name for n in (7, 8, 9)} == {"tap9e323513-77", "tapc8701a4e-79", "tapb7c622e0-f7"}
    assert index[6].name == "br-int" and index[3].name == "br-ex"


# ---------------------------------------------------------------- the packet


def test_flow_spec() -> None:
    assert flow_spec(in_port="qvo1", proto="icmp", dl_src="a", dl_dst="b", nw_src="10.0.0.1", nw_dst="10.0.0.2") == (
        "in_port=qvo1,icmp,dl_src=a,dl_dst=b,nw_src=10.0.0.1,nw_dst=10.0.0.2,nw_ttl=64,icmp_type=8,icmp_code=0")
    tcp = flow_spec(in_port="vxlan-0a0a0a0b", proto="tcp", dl_src="a", dl_dst="b", nw_src="1.1.1.1",
                    nw_dst="2.2.2.2", dport=22, sport=1234, tun_id=1000, tun_src="10.10.10.11",
                    tun_dst="10.10.10.12", ttl=63)
    assert tcp == ("in_port=vxlan-0a0a0a0b,tun_id=0x3e8,tun_src=10.10.10.11,tun_dst=10.10.10.12,tcp,dl_src=a,"
                   "dl_dst=b,nw_src=1.1.1.1,nw_dst=2.2.2.2,nw_ttl=63,tp_src=1234,tp_dst=22,tcp_flags=syn")
    assert flow_spec(in_port="p", proto="udp", dl_src="a", dl_dst="b", nw_src="1.1.1.1", nw_dst="2.2.2.2",
                     dport=53).endswith("tp_src=40000,tp_dst=53")
