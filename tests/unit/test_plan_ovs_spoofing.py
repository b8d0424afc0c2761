"""br-int's spoofing protection, as the OVS agent's planner computes it (pure).

Which VIFs are guarded (wired VM ports with port security; never ``network:*`` ports, ports
without port security, dead ports or VIFs without an OpenFlow port), what each may send as (its
MACs, its fixed IPs and allowed address pairs, its MACs' link-local addresses), and the flows that
carry it out. That they stop forged frames on the wire is checked in a lab by
``tests/system/test_isolation.py``; that OVS takes them as written, by
``tests/functional/test_plan_flows_on_ovs.py``.
"""

from __future__ import annotations

from dataclasses import replace

from baryon.agent.plan.flows import SpoofGuard, spoof_flows
from baryon.agent.plan.ovs import plan, spoof_guard
from baryon.model.host import AddressPair, HostView, Network, Port, Segment
from baryon.model.ovs import ObservedBridge, ObservedPort, ObservedSwitch, OvsAgentSettings, ReplaceFlows

SETTINGS = OvsAgentSettings(host="compute1", local_ip="10.10.10.2", datapath_type="netdev")
NET = "aaaaaaaa-0000-4000-8000-00000000000a"
NETWORK = Network(NET, Segment("vxlan", 1001, None), 1450)
C = "cookie=0xb4770,"


def vm(n: int, **changes: object) -> Port:
    port = Port(f"a{n}000000-0000-4000-8000-00000000000{n}", NET, f"fa:16:3e:00:00:a{n}", (f"10.0.0.1{n}",),
                "compute:nova", True, True, ("sg",))
    return replace(port, **changes)


def vif(port: Port, ofport: int | None = 5) -> ObservedPort:
    return ObservedPort(f"qvo{port.id[:11]}", "br-int", external_ids=(("iface-id", port.id),), ofport=ofport)


def guarded(ports: tuple[Port, ...], vifs: tuple[ObservedPort, ...]) -> set[str]:
    """The VIFs that have spoofing flows in the plan's br-int."""
    view = HostView(host="compute1", ports=ports, networks=(NETWORK,))
    flows = plan(view, SETTINGS, ObservedSwitch((ObservedBridge("br-int", "netdev", "secure"),), vifs), {}).flows
    return {f.split("in_port=")[1].split(",")[0] for f in flows["br-int"]
            if "priority=9," in f and "resubmit(,25)" in f}


def test_only_wired_vm_ports_with_port_security_are_guarded() -> None:
    filtered, dhcp, router = vm(1), vm(2, device_owner="network:dhcp"), vm(3, device_owner="network:router_interface")
    open_port, down, unplugged = vm(4, port_security_enabled=False), vm(5, admin_state_up=False), vm(6)
    ports = (filtered, dhcp, router, open_port, down, unplugged)
    vifs = (*(vif(p) for p in ports[:-1]), vif(unplugged, ofport=-1))
    assert guarded(ports, vifs) == {vif(filtered).name}


def test_a_vm_port_may_send_from_its_mac_and_claim_its_addresses_only() -> None:
    port = vm(1, fixed_ips=("10.0.0.11", "fd00::11"))
    assert spoof_guard("qvoa1", port) == SpoofGuard("qvoa1", ("fa:16:3e:00:00:a1",), ("10.0.0.11",),
                                                    ("fd00::11", "fe80::f816:3eff:fe00:a1"))
    assert [f.render() for f in spoof_flows(spoof_guard("qvoa1", port))] == [
        f"{C}table=0,priority=9,in_port=qvoa1,actions=resubmit(,25)",
        f"{C}table=25,priority=2,in_port=qvoa1,dl_src=fa:16:3e:00:00:a1,actions=resubmit(,60)",
        f"{C}table=0,priority=10,arp,in_port=qvoa1,actions=resubmit(,24)",
        f"{C}table=24,priority=2,arp,in_port=qvoa1,arp_spa=10.0.0.11,actions=resubmit(,25)",
        f"{C}table=0,priority=10,icmp6,in_port=qvoa1,icmp_type=136,actions=resubmit(,24)",
        f"{C}table=24,priority=2,icmp6,in_port=qvoa1,icmp_type=136,nd_target=fd00::11,actions=resubmit(,25)",
        f"{C}table=24,priority=2,icmp6,in_port=qvoa1,icmp_type=136,nd_target=fe80::f816:3eff:fe00:a1,"
        "actions=resubmit(,25)",
    ]


def test_allowed_address_pairs_add_their_macs_and_networks() -> None:
    port = vm(1, mac_address="FA:16:3E:00:00:A1", allowed_address_pairs=(
        AddressPair("10.0.0.64/26", "fa:16:3e:00:00:b1"), AddressPair("10.0.0.99", ""),
        AddressPair("not-an-address", "fa:16:3e:00:00:c1"), AddressPair("fd00::/64", "not-a-mac")))
    guard = spoof_guard("qvoa1", port)
    assert guard.macs == ("fa:16:3e:00:00:a1", "fa:16:3e:00:00:b1", "fa:16:3e:00:00:c1")
    assert guard.ipv4 == ("10.0.0.11", "10.0.0.64/26", "10.0.0.99")
    assert guard.ipv6 == ("fd00::/64", "fe80::f816:3eff:fe00:a1", "fe80::f816:3eff:fe00:b1",
                          "fe80::f816:3eff:fe00:c1")


def test_a_pair_of_any_address_leaves_that_family_unchecked_but_the_mac_checked() -> None:
    guard = spoof_guard("qvoa1", vm(1, allowed_address_pairs=(AddressPair("0.0.0.0/0", ""),)))
    assert guard.ipv4 is None and guard.ipv6 == ("fe80::f816:3eff:fe00:a1",)
    flows = [f.render() for f in spoof_flows(guard)]
    assert not [f for f in flows if "arp" in f]
    assert f"{C}table=25,priority=2,in_port=qvoa1,dl_src=fa:16:3e:00:00:a1,actions=resubmit(,60)" in flows


def test_a_port_without_addresses_may_claim_none() -> None:
    guard = spoof_guard("qvoa1", vm(1, fixed_ips=()))
    assert guard.ipv4 == ()
    flows = [f.render() for f in spoof_flows(guard)]
    assert f"{C}table=0,priority=10,arp,in_port=qvoa1,actions=resubmit(,24)" in flows  # to the default drop
    assert not [f for f in flows if "arp_spa" in f]


def test_turning_port_security_off_and_on_rewrites_only_br_int() -> None:
    port = vm(1)
    observed = ObservedSwitch((ObservedBridge("br-int", "netdev", "secure", None),
                               ObservedBridge("br-tun", "netdev", "secure", None)),
                              (vif(port),))
    secure = plan(HostView(host="compute1", ports=(port,), networks=(NETWORK,)), SETTINGS, observed, {})
    opened = plan(HostView(host="compute1", ports=(replace(port, port_security_enabled=False),),
                           networks=(NETWORK,)), SETTINGS, observed, secure.flows)
    assert [op for op in opened.ops if isinstance(op, ReplaceFlows)] == [ReplaceFlows("br-int", opened.flows["br-int"])]
    removed = set(secure.flows["br-int"]) - set(opened.flows["br-int"])
    assert len(removed) == 6 and all(vif(port).name in f for f in removed)
    assert set(opened.flows["br-int"]) < set(secure.flows["br-int"])
    again = plan(HostView(host="compute1", ports=(port,), networks=(NETWORK,)), SETTINGS, observed, opened.flows)
    assert again.flows == secure.flows
