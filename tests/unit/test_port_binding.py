"""baryon.service.ml2.bind_port: ML2's openvswitch mechanism driver, as a pure function."""

from __future__ import annotations

import datetime as dt

from baryon.service.ml2 import Binding, OvsAgent, Segment, bind_port, ovs_vif_details

VXLAN = ("seg-vx", Segment("vxlan", None, 42))
FLAT1 = ("seg-flat1", Segment("flat", "physnet1", None))
FLAT2 = ("seg-flat2", Segment("flat", "physnet2", None))
VLAN2 = ("seg-vlan2", Segment("vlan", "physnet2", 100))
CONFIG = {"bridge_mappings": {"physnet1": "br-ex"}, "tunnel_types": ["vxlan"], "tunneling_ip": "10.10.10.11",
          "l2_population": True, "arp_responder_enabled": True, "devices": 0, "datapath_type": "netdev",
          "ovs_hybrid_plug": True, "integration_bridge": "br-int"}


def agent(**config: object) -> OvsAgent:
    return OvsAgent(host="compute1", alive=True, configurations={**CONFIG, **config})


def test_no_host_is_unbound() -> None:
    assert bind_port("", None, [VXLAN]) == Binding("unbound", {}, None)


def test_tunnel_segment_binds_with_the_agents_details() -> None:
    binding = bind_port("compute1", agent(), [VXLAN])
    assert binding == Binding("ovs", {
        "port_filter": True, "ovs_hybrid_plug": True, "datapath_type": "netdev", "bridge_name": "br-int",
        "connectivity": "l2", "bound_drivers": {"0": "openvswitch"}}, "seg-vx")


def test_details_default_as_neutrons_when_the_agent_does_not_say() -> None:
    assert ovs_vif_details({}) == {"port_filter": True, "ovs_hybrid_plug": True, "datapath_type": "system",
                                   "bridge_name": "br-int", "connectivity": "l2",
                                   "bound_drivers": {"0": "openvswitch"}}
    details = ovs_vif_details({"ovs_hybrid_plug": False, "integration_bridge": "br-int2"})
    assert (details["ovs_hybrid_plug"], details["bridge_name"]) == (False, "br-int2")


def test_physnet_segments_bind_through_bridge_mappings() -> None:
    assert bind_port("compute1", agent(), [FLAT1]).segment_id == "seg-flat1"
    assert bind_port("compute1", agent(bridge_mappings={"physnet2": "br-p2"}), [VLAN2]).segment_id == "seg-vlan2"


def test_the_first_reachable_segment_is_taken() -> None:
    binding = bind_port("compute1", agent(), [FLAT2, VXLAN, FLAT1])
    assert (binding.vif_type, binding.segment_id) == ("ovs", "seg-vx")


def test_no_agent() -> None:
    assert bind_port("compute9", None, [VXLAN]) == Binding(
        "binding_failed", {"reason": "no live Open vSwitch agent on host compute9"}, None)


def test_dead_agent_says_when_it_was_last_heard() -> None:
    dead = OvsAgent(host="compute1", alive=False, configurations=CONFIG,
                    heartbeat=dt.datetime(2026, 1, 2, 3, 4, 5), down_time=75)
    assert bind_port("compute1", dead, [VXLAN]).vif_details == {"reason": (
        "no live Open vSwitch agent on host compute1: its last heartbeat was at 2026-01-02 03:04:05, "
        "more than agent_down_time (75 s) ago")}


def test_unreachable_segments_say_why() -> None:
    assert bind_port("compute1", agent(), [FLAT2]).vif_details == {"reason": (
        "the Open vSwitch agent on compute1 cannot reach a flat segment on physnet2 (bridge_mappings: physnet1)")}
    no_mappings = agent(bridge_mappings={}, tunnel_types=[])
    assert bind_port("compute1", no_mappings, [VLAN2, VXLAN]).vif_details == {"reason": (
        "the Open vSwitch agent on compute1 cannot reach a vlan segment on physnet2 (bridge_mappings: none); "
        "the Open vSwitch agent on compute1 cannot reach a vxlan segment (tunnel_types: none)")}
    several = agent(bridge_mappings={"physnet3": "br-3", "physnet1": "br-ex"})
    assert "(bridge_mappings: physnet1, physnet3)" in bind_port("compute1", several, [FLAT2]).vif_details["reason"]


def test_malformed_configurations_reach_nothing() -> None:
    odd = agent(bridge_mappings=["physnet1"], tunnel_types="vxlan")
    assert bind_port("compute1", odd, [FLAT1]).vif_type == "binding_failed"
    assert bind_port("compute1", odd, [VXLAN]).vif_type == "binding_failed"
    assert bind_port("compute1", agent(), []).vif_details == {"reason": "the network has no segment"}
