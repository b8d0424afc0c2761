"""The L3 agent's pure planner: for an L3 view, an observed host and settings, the exact ops, the
exact NAT rules and the exact radvd config, in Neutron's names and formats.

``converged(view)`` plays the drivers: the host as the agent leaves it once a view is realised
(namespace, links with their addresses, routes, sysctls, nat table, radvd, bridge ports), so that
each test starts from a built host and changes one thing. That the rules and devices work with a
real kernel, iptables and OVS is checked in ``tests/functional/test_l3_agent.py``.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from baryon.agent.plan import l3_nat, radvd
from baryon.agent.plan.dhcp import (DeleteLink, DeleteNamespace, EnsureDevice, EnsureNamespace, ObservedLink,
                                    RemoveDirectory, WriteFiles)
from baryon.agent.plan.l3 import (ROUTER_KEY, SYSCTLS, ApplyNat, DeleteConntrack, EnsureAddresses, EnsureRoutes,
                                  L3AgentSettings, ObservedL3Host, ObservedRadvd, ObservedRouter, ReloadRadvd,
                                  SendGarp, SetSysctls, StartRadvd, StopRadvd, WantedRoute, desired, plan,
                                  statuses)
from baryon.config import ConfigError
from baryon.config.agent import load_agent
from baryon.model.firewall import Ruleset
from baryon.model.l3 import FloatingIp, L3View, Route, Router, RouterPort, RouterSubnet
from baryon.model.ovs import DeletePort, EnsurePort, ObservedPort

SETTINGS = L3AgentSettings(ra_confs="/var/lib/baryon/ra", radvd_user="radvd")
R1 = "11111111-1111-4111-8111-111111111111"
R2 = "22222222-2222-4222-8222-222222222222"
NS1, NS2 = f"qrouter-{R1}", f"qrouter-{R2}"
EXT = RouterSubnet("e0000000-0000-4000-8000-000000000000", "172.24.4.0/24", 4, "172.24.4.1")
EXT6 = RouterSubnet("e6000000-0000-4000-8000-000000000000", "2001:db8::/64", 6, "2001:db8::1")
NET1 = RouterSubnet("a1000000-0000-4000-8000-000000000000", "10.0.1.0/24", 4, "10.0.1.1")
NET2 = RouterSubnet("a2000000-0000-4000-8000-000000000000", "10.0.2.0/24", 4, "10.0.2.1")
SLAAC = RouterSubnet("a6000000-0000-4000-8000-000000000000", "fd00:1::/64", 6, "fd00:1::1", "slaac", "slaac")
STATEFUL = RouterSubnet("a7000000-0000-4000-8000-000000000000", "fd00:2::/64", 6, "fd00:2::1", "dhcpv6-stateful",
                        "dhcpv6-stateful")
GW = RouterPort("9a000000-0000-4000-8000-00000000000a", "ext-net", "fa:16:3e:00:00:0a", 1500,
                ((EXT.id, "172.24.4.3"),), (EXT,))
QR1 = RouterPort("1a000000-0000-4000-8000-000000000001", "net1", "fa:16:3e:00:00:01", 1450,
                 ((NET1.id, "10.0.1.1"),), (NET1,))
QR2 = RouterPort("2a000000-0000-4000-8000-000000000002", "net2", "fa:16:3e:00:00:02", 1450,
                 ((NET2.id, "10.0.2.1"),), (NET2,))
TAP_GW, QG = "tap9a000000-00", "qg-9a000000-00"
TAP1, QR1_DEV = "tap1a000000-00", "qr-1a000000-00"
TAP2, QR2_DEV = "tap2a000000-00", "qr-2a000000-00"
FIP_A = FloatingIp("fa000000-0000-4000-8000-00000000000a", "172.24.4.10", "10.0.1.5", "p5")
FIP_B = FloatingIp("fb000000-0000-4000-8000-00000000000b", "172.24.4.11", "10.0.2.6", "p6")
ROUTER = Router(R1, enable_snat=True, gateway=GW, interfaces=(QR1, QR2))
NAT = ("ipv4", "nat")
HOOKS = (("PREROUTING", "-j neutron-l3-agent-PREROUTING"), ("OUTPUT", "-j neutron-l3-agent-OUTPUT"),
         ("POSTROUTING", "-j neutron-l3-agent-POSTROUTING"), ("POSTROUTING", "-j neutron-postrouting-bottom"))
BOTTOM = ('-m comment --comment "Perform source NAT on outgoing traffic." -j neutron-l3-agent-snat',)
ACCEPT_EAST_WEST = f"! -i {QG} ! -o {QG} -m conntrack ! --ctstate DNAT -j ACCEPT"
SNAT = f"-o {QG} -j SNAT --to-source 172.24.4.3 --random-fully"
HAIRPIN = f"! -i {QG} -m conntrack --ctstate DNAT -j SNAT --to-source 172.24.4.3 --random-fully"


def view(*routers: Router, seq: int = 1) -> L3View:
    return L3View("network", seq=seq, routers=tuple(sorted(routers)))


def ext_ids(port: RouterPort, router_id: str = R1) -> tuple[tuple[str, str], ...]:
    return (("attached-mac", port.mac_address), (ROUTER_KEY, router_id), ("iface-id", port.id),
            ("iface-status", "active"))


def converged(v: L3View, settings: L3AgentSettings = SETTINGS) -> ObservedL3Host:
    """The host as the drivers leave it once ``v`` is realised."""
    routers, node_links, ports = [], [], []
    for router in v.routers:
        want = desired(router, settings)
        links = tuple(sorted(ObservedLink(d.device, d.mac, d.mtu, True, tuple(sorted(d.addresses)),
                                          tuple(r.nexthop for r in want.routes if r.device == d.device))
                             for d in want.devices))
        node_links += [ObservedLink(d.tap, "", d.mtu, True) for d in want.devices]
        ports += [ObservedPort(d.tap, "br-int", external_ids=d.external_ids) for d in want.devices]
        routes = tuple(sorted((r.destination, r.nexthop, r.device or QR1_DEV) for r in want.routes))
        running = ObservedRadvd(4242, want.radvd_argv) if want.radvd_conf else None
        routers.append(ObservedRouter(router.id, True, links, routes, SYSCTLS, want.nat, running, want.radvd_conf,
                                      state_dir=want.radvd_conf is not None))
    return ObservedL3Host(tuple(routers), tuple(node_links), tuple(ports))


def ops(v: L3View, observed: ObservedL3Host, settings: L3AgentSettings = SETTINGS) -> list:
    return [op for _, op in plan(v, observed, settings).ops]


def with_router(observed: ObservedL3Host, router_id: str, **changes: object) -> ObservedL3Host:
    return replace(observed, routers=tuple(replace(r, **changes) if r.router_id == router_id else r
                                           for r in observed.routers))


# ---------------------------------------------------------------- building


def test_a_new_router_is_built_in_order_with_neutrons_names() -> None:
    v = view(replace(ROUTER, floating_ips=(FIP_A,), routes=(Route("192.0.2.0/24", "10.0.1.254"),)))
    result = plan(v, ObservedL3Host(), SETTINGS)
    want = result.routers[0]
    assert all(router_id == R1 for router_id, _ in result.ops)
    assert [op for _, op in result.ops] == [
        EnsureNamespace(NS1),
        SetSysctls(NS1, SYSCTLS),
        EnsureDevice(NS1, TAP1, QR1_DEV, QR1.mac_address, 1450, create=True, add_addresses=("10.0.1.1/24",)),
        EnsureDevice(NS1, TAP2, QR2_DEV, QR2.mac_address, 1450, create=True, add_addresses=("10.0.2.1/24",)),
        EnsureDevice(NS1, TAP_GW, QG, GW.mac_address, 1500, create=True,
                     add_addresses=("172.24.4.3/24", "172.24.4.10/32")),
        EnsureRoutes(NS1, add=(WantedRoute("0.0.0.0/0", "172.24.4.1", QG), WantedRoute("192.0.2.0/24", "10.0.1.254"))),
        ApplyNat(NS1, want.nat, Ruleset()),
        EnsurePort("br-int", TAP1, external_ids=ext_ids(QR1)),
        EnsurePort("br-int", TAP2, external_ids=ext_ids(QR2)),
        EnsurePort("br-int", TAP_GW, external_ids=ext_ids(GW)),
        SendGarp(NS1, QG, ("172.24.4.3", "172.24.4.10"), 3)]
    assert SYSCTLS == (("net.ipv4.ip_forward", "1"), ("net.ipv6.conf.all.forwarding", "1"),
                       ("net.ipv4.conf.all.arp_ignore", "1"), ("net.ipv4.conf.all.arp_announce", "2"))
    assert want.floating_ips == (FIP_A.id,)


def test_nat_rules_with_snat_and_floating_ips_are_neutrons() -> None:
    nat = l3_nat.ruleset(replace(ROUTER, floating_ips=(FIP_B, FIP_A)), QG)
    assert nat.hooks == {NAT: HOOKS}
    assert nat.chains == {NAT: {
        "neutron-l3-agent-PREROUTING": ("-d 172.24.4.10/32 -j DNAT --to-destination 10.0.1.5",
                                        "-d 172.24.4.11/32 -j DNAT --to-destination 10.0.2.6"),
        "neutron-l3-agent-OUTPUT": ("-d 172.24.4.10/32 -j DNAT --to-destination 10.0.1.5",
                                    "-d 172.24.4.11/32 -j DNAT --to-destination 10.0.2.6"),
        "neutron-l3-agent-POSTROUTING": (ACCEPT_EAST_WEST,),
        "neutron-l3-agent-float-snat": ("-s 10.0.1.5/32 -j SNAT --to-source 172.24.4.10 --random-fully",
                                        "-s 10.0.2.6/32 -j SNAT --to-source 172.24.4.11 --random-fully"),
        "neutron-l3-agent-snat": ("-j neutron-l3-agent-float-snat", SNAT, HAIRPIN),
        "neutron-postrouting-bottom": BOTTOM}}
    assert all(len(chain) <= 28 for chain in nat.chains[NAT])


def test_nat_without_snat_keeps_floating_ips_and_the_east_west_accept() -> None:
    nat = l3_nat.ruleset(replace(ROUTER, enable_snat=False, floating_ips=(FIP_A,)), QG)
    chains = nat.chains[NAT]
    assert chains["neutron-l3-agent-snat"] == ("-j neutron-l3-agent-float-snat",)  # no SNAT rule, as Neutron
    assert chains["neutron-l3-agent-POSTROUTING"] == (ACCEPT_EAST_WEST,)
    assert chains["neutron-l3-agent-PREROUTING"] == ("-d 172.24.4.10/32 -j DNAT --to-destination 10.0.1.5",)


def test_nat_of_a_router_without_gateway_has_the_chains_and_no_rule() -> None:
    router = Router(R1, interfaces=(QR1,), floating_ips=(FIP_A,))
    want = desired(router, SETTINGS)
    assert want.nat.chains[NAT] == {
        "neutron-l3-agent-PREROUTING": (), "neutron-l3-agent-OUTPUT": (), "neutron-l3-agent-POSTROUTING": (),
        "neutron-l3-agent-float-snat": (), "neutron-l3-agent-snat": ("-j neutron-l3-agent-float-snat",),
        "neutron-postrouting-bottom": BOTTOM}
    assert want.floating_ips == () and want.routes == () and want.gateway is None


def test_snat_uses_the_gateways_first_ipv4_address_and_ipv6_gets_its_default_route() -> None:
    gw = replace(GW, fixed_ips=((EXT6.id, "2001:db8::5"), (EXT.id, "172.24.4.3")), subnets=(EXT, EXT6))
    want = desired(replace(ROUTER, gateway=gw), SETTINGS)
    assert SNAT in want.nat.chains[NAT]["neutron-l3-agent-snat"]
    assert want.gateway is not None and want.gateway.addresses == ("2001:db8::5/64", "172.24.4.3/24")
    assert want.routes == (WantedRoute("0.0.0.0/0", "172.24.4.1", QG), WantedRoute("::/0", "2001:db8::1", QG))


def test_a_gateway_outside_the_external_subnet_is_reached_onlink() -> None:
    far = replace(EXT, gateway_ip="198.51.100.1")
    want = desired(replace(ROUTER, gateway=replace(GW, subnets=(far,))), SETTINGS)
    assert want.routes == (WantedRoute("0.0.0.0/0", "198.51.100.1", QG, onlink=True),)


def test_no_garp_when_send_arp_for_ha_is_zero() -> None:
    settings = replace(SETTINGS, send_arp_for_ha=0)
    assert not any(isinstance(op, SendGarp) for op in ops(view(ROUTER), ObservedL3Host(), settings))


# ---------------------------------------------------------------- converging


def test_an_unchanged_host_gets_no_op() -> None:
    v = view(replace(ROUTER, floating_ips=(FIP_A,), routes=(Route("192.0.2.0/24", "10.0.1.254"),)),
             Router(R2, interfaces=(replace(QR1, id="3a000000-0000-4000-8000-000000000003",
                                            fixed_ips=((SLAAC.id, "fd00:1::1"),), subnets=(SLAAC,)),)))
    assert ops(v, converged(v)) == []


def test_a_floating_ip_added_is_wired_and_announced() -> None:
    before, after = view(ROUTER), view(replace(ROUTER, floating_ips=(FIP_A,)))
    observed = converged(before)
    assert ops(after, observed) == [
        EnsureAddresses(NS1, QG, add=("172.24.4.10/32",)),
        ApplyNat(NS1, desired(after.routers[0], SETTINGS).nat, observed.routers[0].nat),
        DeleteConntrack(NS1, ("172.24.4.10",)),  # entries made before the DNAT existed
        SendGarp(NS1, QG, ("172.24.4.10",), 3)]


def test_a_floating_ip_removed_loses_its_address_rules_and_conntrack_entries_only() -> None:
    before, after = view(replace(ROUTER, floating_ips=(FIP_A, FIP_B))), view(replace(ROUTER, floating_ips=(FIP_B,)))
    observed = converged(before)
    assert ops(after, observed) == [
        EnsureAddresses(NS1, QG, remove=("172.24.4.10/32",)),
        ApplyNat(NS1, desired(after.routers[0], SETTINGS).nat, observed.routers[0].nat),
        DeleteConntrack(NS1, ("172.24.4.10",))]


def test_a_floating_ip_moved_to_another_vm_flushes_its_own_sessions() -> None:
    before = view(replace(ROUTER, floating_ips=(FIP_A,)))
    after = view(replace(ROUTER, floating_ips=(replace(FIP_A, fixed_ip_address="10.0.1.7"),)))
    kinds = ops(after, converged(before))
    assert [type(op) for op in kinds] == [ApplyNat, DeleteConntrack]
    assert kinds[1] == DeleteConntrack(NS1, ("172.24.4.10",))


def test_snat_switched_off_rewrites_the_nat_table_only() -> None:
    before, after = view(ROUTER), view(replace(ROUTER, enable_snat=False))
    [op] = ops(after, converged(before))
    assert isinstance(op, ApplyNat)
    assert SNAT not in op.desired.chains[NAT]["neutron-l3-agent-snat"]


def test_routes_added_changed_and_removed() -> None:
    before = view(replace(ROUTER, routes=(Route("192.0.2.0/24", "10.0.1.254"), Route("198.51.100.0/24", "10.0.2.9"))))
    after = view(replace(ROUTER, routes=(Route("192.0.2.0/24", "10.0.1.253"), Route("198.51.100.0/24", "10.0.2.9"))))
    assert ops(after, converged(before)) == [
        EnsureRoutes(NS1, add=(WantedRoute("192.0.2.0/24", "10.0.1.253"),), remove=(("192.0.2.0/24", "10.0.1.254"),))]


def test_a_new_gateway_subnet_moves_the_default_route_and_the_snat_address() -> None:
    before = view(ROUTER)
    gw = replace(GW, fixed_ips=((EXT.id, "172.24.4.30"),), subnets=(replace(EXT, gateway_ip="172.24.4.254"),))
    after = view(replace(ROUTER, gateway=gw))
    result = ops(after, converged(before))
    assert result[:2] == [EnsureAddresses(NS1, QG, add=("172.24.4.30/24",), remove=("172.24.4.3/24",)),
                          EnsureRoutes(NS1, add=(WantedRoute("0.0.0.0/0", "172.24.4.254", QG),),
                                       remove=(("0.0.0.0/0", "172.24.4.1"),))]
    assert isinstance(result[2], ApplyNat) and result[3] == SendGarp(NS1, QG, ("172.24.4.30",), 3)


def test_an_interface_removed_goes_with_its_port_and_an_added_one_is_built() -> None:
    qr3 = replace(QR2, id="3a000000-0000-4000-8000-000000000003", fixed_ips=((NET2.id, "10.0.2.1"),))
    before, after = view(ROUTER), view(replace(ROUTER, interfaces=(QR1, qr3)))
    result = ops(after, converged(before))
    assert result == [
        DeletePort("br-int", TAP2),
        DeleteLink(None, TAP2),
        DeleteLink(NS1, QR2_DEV),
        EnsureDevice(NS1, "tap3a000000-00", "qr-3a000000-00", QR2.mac_address, 1450, create=True,
                     add_addresses=("10.0.2.1/24",)),
        EnsurePort("br-int", "tap3a000000-00", external_ids=ext_ids(qr3))]


def test_an_mtu_change_converges_the_device_in_place() -> None:
    before, after = view(ROUTER), view(replace(ROUTER, interfaces=(replace(QR1, mtu=1400), QR2)))
    assert ops(after, converged(before)) == [EnsureDevice(NS1, TAP1, QR1_DEV, QR1.mac_address, 1400)]


def test_a_missing_veth_end_recreates_the_pair_and_readds_its_port_and_routes() -> None:
    v = view(replace(ROUTER, routes=(Route("192.0.2.0/24", "10.0.1.254"),)))
    observed = converged(v)
    observed = replace(observed, node_links=tuple(link for link in observed.node_links if link.name != TAP1))
    assert ops(v, observed) == [
        DeletePort("br-int", TAP1),
        DeleteLink(NS1, QR1_DEV),
        EnsureDevice(NS1, TAP1, QR1_DEV, QR1.mac_address, 1450, create=True, add_addresses=("10.0.1.1/24",)),
        EnsureRoutes(NS1, add=(WantedRoute("192.0.2.0/24", "10.0.1.254"),)),
        EnsurePort("br-int", TAP1, external_ids=ext_ids(QR1))]


def test_sysctls_reset_behind_the_agents_back_are_set_again() -> None:
    v = view(ROUTER)
    observed = with_router(converged(v), R1, sysctls=(("net.ipv4.ip_forward", "0"), *SYSCTLS[1:]))
    assert ops(v, observed) == [SetSysctls(NS1, (("net.ipv4.ip_forward", "1"),))]


def test_a_stray_link_in_the_namespace_is_deleted() -> None:
    v = view(ROUTER)
    observed = converged(v)
    observed = with_router(observed, R1, links=(*observed.routers[0].links, ObservedLink("dummy0")))
    assert ops(v, observed) == [DeleteLink(NS1, "dummy0")]


# ---------------------------------------------------------------- IPv6 and radvd


def test_radvd_config_and_command_line_are_neutrons() -> None:
    qr = replace(QR1, fixed_ips=((SLAAC.id, "fd00:1::1"), (STATEFUL.id, "fd00:2::1"), (NET1.id, "10.0.1.1")),
                 subnets=(NET1, SLAAC, STATEFUL))
    want = desired(Router(R1, interfaces=(qr,)), SETTINGS)
    assert want.radvd_conf == (
        f"interface {QR1_DEV}\n{{\n   AdvSendAdvert on;\n   MinRtrAdvInterval 30;\n   MaxRtrAdvInterval 100;\n"
        "   AdvLinkMTU 1450;\n   AdvManagedFlag on;\n"
        "   prefix fd00:1::/64\n   {\n        AdvOnLink on;\n        AdvAutonomous on;\n   };\n"
        "   prefix fd00:2::/64\n   {\n        AdvOnLink on;\n        AdvAutonomous off;\n   };\n};\n")
    directory = f"/var/lib/baryon/ra/{R1}"
    assert want.radvd_argv == ("radvd", "-C", f"{directory}/radvd.conf", "-p", f"{directory}/radvd.pid",
                               "-m", "syslog", "-u", "radvd")
    assert radvd.command_line(directory, None)[-2:] == ("-m", "syslog")
    assert desired(Router(R1, interfaces=(QR1,)), SETTINGS).radvd_conf is None


def test_radvd_started_reloaded_on_a_config_change_restarted_on_a_new_command_line_stopped_when_unneeded() -> None:
    slaac_qr = replace(QR1, fixed_ips=((SLAAC.id, "fd00:1::1"),), subnets=(SLAAC,))
    v = view(Router(R1, interfaces=(slaac_qr,)))
    want = desired(v.routers[0], SETTINGS)
    directory = f"/var/lib/baryon/ra/{R1}"
    pidfile = f"{directory}/radvd.pid"
    observed = converged(v)
    assert ops(v, with_router(observed, R1, radvd=None)) == [StartRadvd(R1, NS1, want.radvd_argv, pidfile)]
    assert ops(v, with_router(observed, R1, radvd_conf="old")) == [
        WriteFiles(directory, (("radvd.conf", want.radvd_conf),)), ReloadRadvd(R1, 4242, pidfile)]
    assert ops(v, with_router(observed, R1, radvd=ObservedRadvd(4242, ("radvd", "old")))) == [
        StopRadvd(R1, 4242, pidfile), StartRadvd(R1, NS1, want.radvd_argv, pidfile)]
    assert ops(v, with_router(observed, R1, radvd=ObservedRadvd(4242, want.radvd_argv, in_namespace=False))) == [
        StopRadvd(R1, 4242, pidfile), StartRadvd(R1, NS1, want.radvd_argv, pidfile)]
    plain = view(Router(R1, interfaces=(replace(slaac_qr, fixed_ips=((NET1.id, "10.0.1.1"),), subnets=(NET1,)),)))
    result = ops(plain, observed)
    assert result[0] == StopRadvd(R1, 4242, pidfile) and RemoveDirectory(directory) in result


# ---------------------------------------------------------------- removal and ownership


def test_a_router_gone_from_the_view_is_removed_whole() -> None:
    slaac_qr = replace(QR1, fixed_ips=((SLAAC.id, "fd00:1::1"),), subnets=(SLAAC,))
    observed = converged(view(replace(ROUTER, interfaces=(slaac_qr, QR2))))
    result = plan(view(), observed, SETTINGS)
    assert result.removed == (R1,)
    assert [op for _, op in result.ops] == [
        StopRadvd(R1, 4242, f"/var/lib/baryon/ra/{R1}/radvd.pid"),
        DeletePort("br-int", TAP1), DeletePort("br-int", TAP2), DeletePort("br-int", TAP_GW),
        DeleteLink(None, TAP1), DeleteLink(None, TAP2), DeleteLink(None, TAP_GW),
        DeleteNamespace(NS1), RemoveDirectory(f"/var/lib/baryon/ra/{R1}")]


def test_one_router_removed_leaves_the_other_untouched() -> None:
    other = replace(ROUTER, id=R2, gateway=None, interfaces=(replace(QR1, id="3a000000-0000-4000-8000-000000000003"),))
    observed = converged(view(ROUTER, other))
    result = plan(view(other), observed, SETTINGS)
    assert result.removed == (R1,) and {router_id for router_id, _ in result.ops} == {R1}


def test_a_stray_qrouter_namespace_or_marked_port_is_ours_foreign_ports_are_not() -> None:
    observed = ObservedL3Host(
        routers=(ObservedRouter(R2, namespace=True),),
        node_links=(ObservedLink("tapstray0000-0"), ObservedLink("tapdhcp00000-0")),
        ports=(ObservedPort("tapstray0000-0", "br-int", external_ids=((ROUTER_KEY, R1),)),
               ObservedPort("tapdhcp00000-0", "br-int", external_ids=(("baryon-dhcp-network", "n1"),)),
               ObservedPort("tapvm0000000-0", "br-int", external_ids=(("iface-id", "p1"),))))
    assert ops(view(), observed) == [DeletePort("br-int", "tapstray0000-0"), DeleteLink(None, "tapstray0000-0"),
                                     DeleteNamespace(NS2)]


def test_a_view_router_already_built_elsewhere_is_not_confused_with_a_foreign_tap() -> None:
    v = view(ROUTER)
    observed = converged(v)
    observed = replace(observed, ports=(*observed.ports, ObservedPort("tapforeign00-0", "br-int")))
    assert ops(v, observed) == []


# ---------------------------------------------------------------- configuration


def test_agent_mode_other_than_legacy_is_a_configuration_error(tmp_path) -> None:  # noqa: ANN001
    conf = tmp_path / "l3_agent.ini"
    conf.write_text("[DEFAULT]\nagent_mode = dvr_snat\ninterface_driver = openvswitch\n")
    with pytest.raises(ConfigError, match="agent_mode"):
        load_agent([str(conf)])
    conf.write_text("[DEFAULT]\nagent_mode = legacy\ninterface_driver = openvswitch\nsend_arp_for_ha = 5\n"
                    "external_network_bridge =\nra_confs = /tmp/ra\n[agent]\nextensions = \n")
    settings = load_agent([str(conf)])
    assert (settings.DEFAULT.send_arp_for_ha, settings.DEFAULT.ra_confs) == (5, "/tmp/ra")
    assert settings.warnings == ()


# ---------------------------------------------------------------- what is reported


def test_statuses_report_only_what_differs_from_the_servers() -> None:
    fip_b = FloatingIp("fb000000-0000-4000-8000-00000000000b", "172.24.4.11", "10.0.2.6", "p6", status="ACTIVE")
    fip_v6 = FloatingIp("fc000000-0000-4000-8000-00000000000c", "2001:db8::9", "fd00::9", "p9", status="DOWN")
    built = replace(ROUTER, floating_ips=(FIP_A, fip_b, fip_v6), status="ALLOCATING", status_reason="waiting")
    done = Router(R2, status="ACTIVE")
    v = view(built, done)
    result = plan(v, ObservedL3Host(), SETTINGS)
    # A floating IP moved (DOWN on the server, wired here) is reported again; an IPv6 one is not NATed.
    assert statuses(v, result, {}) == (
        {R1: {"status": "ACTIVE", "reason": ""}},
        {FIP_A.id: "ACTIVE", fip_v6.id: "ERROR"})
    failure = EnsureRoutes("qrouter-" + R2, add=())
    assert statuses(v, result, {R2: (failure, "EnsureRoutes failed: boom")})[0] == {
        R1: {"status": "ACTIVE", "reason": ""}, R2: {"status": "ERROR", "reason": "EnsureRoutes failed: boom"}}
    # A router that failed before its NAT was written: its floating IPs are not in place.
    assert statuses(v, result, {R1: (failure, "x")})[1] == {FIP_A.id: "ERROR", fip_b.id: "ERROR", fip_v6.id: "ERROR"}
    # radvd failing leaves addresses and rules in place.
    radvd_failure = StartRadvd(R1, "qrouter-" + R1, (), "/p")
    assert statuses(v, result, {R1: (radvd_failure, "radvd")})[1] == {FIP_A.id: "ACTIVE", fip_v6.id: "ERROR"}
