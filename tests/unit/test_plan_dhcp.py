"""The DHCP agent's pure planner: for a DHCP view, an observed host and settings, the exact ops,
the exact dnsmasq command line and the exact files, in Neutron's formats.

``realise`` plays the drivers: it applies a plan's ops to an ``ObservedDhcpHost`` the way the host
would end up (the namespace exists, the device has its addresses, the files their contents,
dnsmasq runs with the argv it was started with...), so that a sequence of views can be followed
as the agent lives it. That the rendered argv and files work with a real dnsmasq and real DHCP
clients is checked in ``tests/functional/test_dhcp_drivers.py``.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

from baryon.agent.plan.dhcp import (NETWORK_KEY, DeleteLink, DeleteNamespace, DhcpAgentSettings, DhcpPlan,
                                    EnsureDevice, EnsureNamespace, ObservedDhcpHost, ObservedDnsmasq, ObservedLink,
                                    ObservedNetwork, ReloadDnsmasq, RemoveDirectory, RestartDnsmasq, StartDnsmasq,
                                    StopDnsmasq, WriteFiles, device_names, plan, served)
from baryon.agent.plan.dnsmasq import DnsmasqSettings, format_option
from baryon.model.dhcp import DhcpNetwork, DhcpOption, DhcpPort, DhcpSubnet, DhcpView, HostRoute
from baryon.model.ovs import DeletePort, EnsurePort, ObservedPort

CONFS = "/var/lib/baryon/dhcp"
SETTINGS = DhcpAgentSettings(dhcp_confs=CONFS)
NET = "11111111-1111-4111-8111-111111111111"
OTHER = "99999999-9999-4999-8999-999999999999"
S4 = "22222222-2222-4222-8222-222222222222"
S4B = "44444444-4444-4444-8444-444444444444"
S6 = "33333333-3333-4333-8333-333333333333"
S6_SLAAC = "55555555-5555-4555-8555-555555555555"
DIR = f"{CONFS}/{NET}"
NS = f"qdhcp-{NET}"

DHCP_PORT = DhcpPort("d0d0d0d0-0000-4000-8000-000000000002", "fa:16:3e:00:00:02", ((S4, "10.0.0.2"),),
                     "host-10-0-0-2", "network:dhcp")
VM5 = DhcpPort("a5a5a5a5-0000-4000-8000-000000000005", "fa:16:3e:00:00:05", ((S4, "10.0.0.5"),), "host-10-0-0-5",
               "compute:nova")
VM6 = DhcpPort("a6a6a6a6-0000-4000-8000-000000000006", "fa:16:3e:00:00:06", ((S4, "10.0.0.6"),), "host-10-0-0-6",
               "compute:nova")
TAP, DEV = "tapd0d0d0d0-00", "ns-d0d0d0d0-00"
SUBNET4 = DhcpSubnet(S4, "10.0.0.0/24", 4, True, "10.0.0.1", ("192.0.2.53",))
EXTERNAL_IDS = (("attached-mac", "fa:16:3e:00:00:02"), (NETWORK_KEY, NET), ("iface-id", DHCP_PORT.id),
                ("iface-status", "active"))

ARGV_HEAD = (
    "dnsmasq", "--no-hosts", "--no-resolv", f"--pid-file={DIR}/pid", f"--dhcp-hostsfile={DIR}/host",
    f"--addn-hosts={DIR}/addn_hosts", f"--dhcp-optsfile={DIR}/opts", f"--dhcp-leasefile={DIR}/leases",
    "--dhcp-match=set:ipxe,175", "--dhcp-userclass=set:ipxe6,iPXE", "--local-service", "--bind-dynamic",
    f"--interface={DEV}")
RANGE4 = f"--dhcp-range=set:subnet-{S4},10.0.0.0,static,255.255.255.0,86400s"
ARGV = (*ARGV_HEAD, RANGE4, "--dhcp-option-force=option:mtu,1450", "--dhcp-lease-max=256", "--conf-file=/dev/null",
        "--domain=openstacklocal")
HOST_FILE = ("fa:16:3e:00:00:05,host-10-0-0-5.openstacklocal.,10.0.0.5\n"
             "fa:16:3e:00:00:02,host-10-0-0-2.openstacklocal.,10.0.0.2\n")
ADDN_HOSTS = ("10.0.0.5\thost-10-0-0-5.openstacklocal. host-10-0-0-5\n"
              "10.0.0.2\thost-10-0-0-2.openstacklocal. host-10-0-0-2\n")
OPTS = (f"tag:subnet-{S4},option:dns-server,192.0.2.53\n"
        f"tag:subnet-{S4},option:router,10.0.0.1")
LEASES = "0 fa:16:3e:00:00:05 10.0.0.5 * *\n0 fa:16:3e:00:00:02 10.0.0.2 * *\n"


def network(*ports: DhcpPort, subnets: tuple[DhcpSubnet, ...] = (SUBNET4,), mtu: int = 1450,
            dhcp_port: DhcpPort | None = DHCP_PORT, network_id: str = NET, **kwargs: object) -> DhcpNetwork:
    everything = {p.id: p for p in (*ports, *([dhcp_port] if dhcp_port else []))}
    return DhcpNetwork(network_id, mtu, tuple(sorted(subnets, key=lambda s: s.id)),
                       tuple(everything[k] for k in sorted(everything)), dhcp_port, **kwargs)  # type: ignore[arg-type]


def view(*networks: DhcpNetwork, lease_duration: int = 86400) -> DhcpView:
    return DhcpView("network", lease_duration=lease_duration, networks=tuple(sorted(networks, key=lambda n: n.id)))


def files(plan_: DhcpPlan, network_id: str = NET) -> dict[str, str]:
    return dict(next(n for n in plan_.networks if n.network_id == network_id).files)


# ---------------------------------------------------------------- the drivers, played


def realise(observed: ObservedDhcpHost, ops: tuple, settings: DhcpAgentSettings = SETTINGS) -> ObservedDhcpHost:
    """The host after the drivers carried out ``ops`` (what the next observation returns)."""
    nets = {n.network_id: n for n in observed.networks}
    node = {link.name: link for link in observed.node_links}
    ports = {p.name: p for p in observed.ports}
    pids = itertools.count(1000 + 100 * len(nets))

    def net_of(namespace_or_dir: str) -> str:
        return namespace_or_dir.rsplit("/", 1)[-1].removeprefix("qdhcp-")

    def update(network_id: str, **changes: object) -> None:
        old = nets.get(network_id, ObservedNetwork(network_id))
        nets[network_id] = replace(old, **changes)  # type: ignore[arg-type]

    for op in ops:
        if isinstance(op, StopDnsmasq):
            update(op.network_id, dnsmasq=None)
        elif isinstance(op, DeletePort):
            ports.pop(op.name, None)
        elif isinstance(op, DeleteLink):
            peer = op.name.replace("ns-", "tap", 1) if op.name.startswith("ns-") else "ns-" + op.name[3:]
            node.pop(op.name if op.namespace is None else peer, None)
            for nid, net in list(nets.items()):
                gone = (peer if op.namespace is None else op.name,)
                update(nid, links=tuple(link for link in net.links if link.name not in gone))
        elif isinstance(op, DeleteNamespace):
            update(net_of(op.name), namespace=False, links=())
        elif isinstance(op, RemoveDirectory):
            update(net_of(op.directory), state_dir=False, files=())
        elif isinstance(op, EnsureNamespace):
            update(net_of(op.name), namespace=True)
        elif isinstance(op, EnsureDevice):
            nid = net_of(op.namespace)
            old = nets[nid].link(op.device) or ObservedLink(op.device)
            addresses = [a for a in old.addresses if a not in op.remove_addresses] + list(op.add_addresses)
            gateways = [g for g in old.gateways if g not in op.remove_gateways] + [g for g, _ in op.gateways]
            link = ObservedLink(op.device, op.mac, op.mtu, True, tuple(sorted(addresses)), tuple(sorted(set(gateways))))
            update(nid, links=tuple(sorted([*(x for x in nets[nid].links if x.name != op.device), link])))
            node[op.tap] = ObservedLink(op.tap, "fa:16:3e:ff:ff:ff", op.mtu, True)
        elif isinstance(op, WriteFiles):
            nid = net_of(op.directory)
            merged = {**dict(nets.get(nid, ObservedNetwork(nid)).files), **dict(op.files)}
            update(nid, files=tuple(sorted(merged.items())), state_dir=True)
        elif isinstance(op, (StartDnsmasq, RestartDnsmasq)):
            update(op.network_id, dnsmasq=ObservedDnsmasq(next(pids), op.argv), state_dir=True)
        elif isinstance(op, EnsurePort):
            old = ports.get(op.name, ObservedPort(op.name, op.bridge, ofport=7))
            ports[op.name] = replace(old, bridge=op.bridge,
                                     external_ids=tuple(sorted({**dict(old.external_ids),
                                                                **dict(op.external_ids)}.items())))
        else:
            assert isinstance(op, ReloadDnsmasq), op
    return ObservedDhcpHost(networks=tuple(sorted(nets.values(), key=lambda n: n.network_id)),
                            node_links=tuple(sorted(node.values())), ports=tuple(sorted(ports.values())))


def converged(v: DhcpView, observed: ObservedDhcpHost = ObservedDhcpHost(),
              settings: DhcpAgentSettings = SETTINGS) -> ObservedDhcpHost:
    """The host once the agent has reconciled ``v`` (and the next plan is empty)."""
    host = realise(observed, plan(v, observed, settings).ops, settings)
    assert plan(v, host, settings).ops == ()
    return host


# ---------------------------------------------------------------- a new network


def test_a_new_network_gets_namespace_device_files_dnsmasq_and_its_port_in_that_order() -> None:
    result = plan(view(network(VM5)), ObservedDhcpHost(), SETTINGS)
    assert result.ops == (
        EnsureNamespace(NS),
        EnsureDevice(NS, TAP, DEV, "fa:16:3e:00:00:02", 1450, create=True, add_addresses=("10.0.0.2/24",),
                     gateways=(("10.0.0.1", False),)),
        WriteFiles(DIR, (("host", HOST_FILE), ("addn_hosts", ADDN_HOSTS), ("opts", OPTS))),
        StartDnsmasq(NET, NS, ARGV, f"{DIR}/pid", LEASES),
        EnsurePort("br-int", TAP, external_ids=EXTERNAL_IDS),
    )
    assert result.removed == ()
    assert [n.network_id for n in result.networks] == [NET]


def test_device_names_are_neutrons() -> None:
    assert device_names("d0d0d0d0-0000-4000-8000-000000000002") == ("tapd0d0d0d0-00", "ns-d0d0d0d0-00")
    assert all(len(name) == 14 for name in device_names(DHCP_PORT.id))


def test_networks_without_a_dhcp_port_or_a_dhcp_subnet_are_not_served() -> None:
    no_port = network(VM5, dhcp_port=None, network_id=OTHER)
    no_dhcp = network(VM5, subnets=(replace(SUBNET4, enable_dhcp=False),))
    assert served(view(no_port, no_dhcp)) == ()
    assert plan(view(no_port, no_dhcp), ObservedDhcpHost(), SETTINGS).ops == ()


# ---------------------------------------------------------------- changes


def test_a_port_added_rewrites_hosts_and_reloads_without_a_restart() -> None:
    host = converged(view(network(VM5)))
    result = plan(view(network(VM5, VM6)), host, SETTINGS)
    assert result.ops == (
        WriteFiles(DIR, (("host", "fa:16:3e:00:00:05,host-10-0-0-5.openstacklocal.,10.0.0.5\n"
                                  "fa:16:3e:00:00:06,host-10-0-0-6.openstacklocal.,10.0.0.6\n"
                                  "fa:16:3e:00:00:02,host-10-0-0-2.openstacklocal.,10.0.0.2\n"),
                         ("addn_hosts", "10.0.0.5\thost-10-0-0-5.openstacklocal. host-10-0-0-5\n"
                                        "10.0.0.6\thost-10-0-0-6.openstacklocal. host-10-0-0-6\n"
                                        "10.0.0.2\thost-10-0-0-2.openstacklocal. host-10-0-0-2\n"))),
        ReloadDnsmasq(NET, 1000, f"{DIR}/pid"),
    )


def test_changed_dns_nameservers_rewrite_opts_and_reload() -> None:
    host = converged(view(network(VM5)))
    subnet = replace(SUBNET4, dns_nameservers=("192.0.2.54", "192.0.2.55"))
    result = plan(view(network(VM5, subnets=(subnet,))), host, SETTINGS)
    assert result.ops == (
        WriteFiles(DIR, (("opts", f"tag:subnet-{S4},option:dns-server,192.0.2.54,192.0.2.55\n"
                                  f"tag:subnet-{S4},option:router,10.0.0.1"),)),
        ReloadDnsmasq(NET, 1000, f"{DIR}/pid"),
    )


def test_an_mtu_change_converges_the_device_and_restarts_dnsmasq() -> None:
    host = converged(view(network(VM5)))
    result = plan(view(network(VM5, mtu=1400)), host, SETTINGS)
    argv = tuple(a.replace("option:mtu,1450", "option:mtu,1400") for a in ARGV)
    assert result.ops == (
        EnsureDevice(NS, TAP, DEV, "fa:16:3e:00:00:02", 1400, gateways=(("10.0.0.1", False),)),
        RestartDnsmasq(NET, 1000, NS, argv, f"{DIR}/pid", LEASES),
    )


def test_a_subnet_added_gives_the_port_its_address_and_restarts_dnsmasq_with_the_new_range() -> None:
    host = converged(view(network(VM5)))
    subnet = DhcpSubnet(S4B, "10.0.1.0/24", 4, True, "10.0.1.1")
    port = replace(DHCP_PORT, fixed_ips=((S4, "10.0.0.2"), (S4B, "10.0.1.2")))
    result = plan(view(network(VM5, subnets=(SUBNET4, subnet), dhcp_port=port)), host, SETTINGS)
    device, write, restart = result.ops
    assert device == EnsureDevice(NS, TAP, DEV, "fa:16:3e:00:00:02", 1450, add_addresses=("10.0.1.2/24",),
                                  gateways=(("10.0.0.1", False),))
    assert isinstance(write, WriteFiles) and [name for name, _ in write.files] == ["host", "addn_hosts", "opts"]
    assert isinstance(restart, RestartDnsmasq) and restart.pid == 1000
    assert restart.argv == (*ARGV_HEAD, RANGE4, f"--dhcp-range=set:subnet-{S4B},10.0.1.0,static,255.255.255.0,86400s",
                            "--dhcp-option-force=option:mtu,1450", "--dhcp-lease-max=512", "--conf-file=/dev/null",
                            "--domain=openstacklocal")
    # Each subnet learns the other as on-link, and so needs the default route as a classless route too.
    assert dict(write.files)["opts"] == (
        f"tag:subnet-{S4},option:dns-server,192.0.2.53\n"
        f"tag:subnet-{S4},option:classless-static-route,10.0.1.0/24,0.0.0.0,0.0.0.0/0,10.0.0.1\n"
        f"tag:subnet-{S4},249,10.0.1.0/24,0.0.0.0,0.0.0.0/0,10.0.0.1\n"
        f"tag:subnet-{S4},option:router,10.0.0.1\n"
        f"tag:subnet-{S4B},option:classless-static-route,10.0.0.0/24,0.0.0.0,0.0.0.0/0,10.0.1.1\n"
        f"tag:subnet-{S4B},249,10.0.0.0/24,0.0.0.0,0.0.0.0/0,10.0.1.1\n"
        f"tag:subnet-{S4B},option:router,10.0.1.1")


def test_unchanged_after_an_agent_restart_nothing_is_done() -> None:
    v = view(network(VM5, VM6), network(VM5, network_id=OTHER, dhcp_port=replace(
        DHCP_PORT, id="e0e0e0e0-0000-4000-8000-000000000002", mac_address="fa:16:3e:00:01:02")))
    host = converged(v)  # a restarted agent observes what the previous one left: no op, no restart
    assert plan(v, host, SETTINGS) == DhcpPlan(ops=(), networks=plan(v, ObservedDhcpHost(), SETTINGS).networks)


def test_a_dead_dnsmasq_is_started_and_one_outside_the_namespace_restarted() -> None:
    v = view(network(VM5))
    host = converged(v)
    [net] = host.networks
    dead = replace(host, networks=(replace(net, dnsmasq=None),))
    assert plan(v, dead, SETTINGS).ops == (StartDnsmasq(NET, NS, ARGV, f"{DIR}/pid", LEASES),)
    elsewhere = replace(host, networks=(replace(net, dnsmasq=ObservedDnsmasq(1000, ARGV, in_namespace=False)),))
    [restart] = plan(v, elsewhere, SETTINGS).ops
    assert isinstance(restart, RestartDnsmasq) and restart.pid == 1000


def test_a_drifted_device_is_converged_in_place() -> None:
    v = view(network(VM5))
    host = converged(v)
    [net] = host.networks
    [link] = net.links
    drifted = replace(link, up=False, addresses=("10.0.0.2/24", "10.0.0.99/24"), gateways=("10.0.0.254",))
    result = plan(v, replace(host, networks=(replace(net, links=(drifted,)),)), SETTINGS)
    assert result.ops == (EnsureDevice(NS, TAP, DEV, "fa:16:3e:00:00:02", 1450, remove_addresses=("10.0.0.99/24",),
                                       gateways=(("10.0.0.1", False),), remove_gateways=("10.0.0.254",)),)


def test_a_lost_namespace_rebuilds_the_pair_readds_the_port_and_restarts_dnsmasq() -> None:
    v = view(network(VM5))
    host = converged(v)
    [net] = host.networks
    lost = replace(host, networks=(replace(net, namespace=False, links=()),))  # the tap lingers in the node
    ops = plan(v, lost, SETTINGS).ops
    assert [type(op) for op in ops] == [DeletePort, EnsureNamespace, DeleteLink, EnsureDevice, RestartDnsmasq,
                                        EnsurePort]
    assert ops[0] == DeletePort("br-int", TAP) and ops[2] == DeleteLink(None, TAP) and ops[3].create
    assert plan(v, realise(lost, ops), SETTINGS).ops == ()


# ---------------------------------------------------------------- removal


def test_a_network_gone_from_the_view_is_removed_state_directory_last() -> None:
    host = converged(view(network(VM5)))
    result = plan(view(), host, SETTINGS)
    assert result.ops == (
        StopDnsmasq(NET, 1000, f"{DIR}/pid"),
        DeletePort("br-int", TAP),
        DeleteLink(None, TAP),
        DeleteNamespace(NS),
        RemoveDirectory(DIR),
    )
    assert result.removed == (NET,) and result.networks == ()
    assert plan(view(), realise(host, result.ops), SETTINGS).ops == ()


def test_a_network_whose_dhcp_port_is_gone_is_removed() -> None:
    host = converged(view(network(VM5)))
    assert plan(view(network(VM5, dhcp_port=None)), host, SETTINGS).removed == (NET,)


def test_leftovers_of_ours_are_cleaned_and_strangers_left_alone() -> None:
    """At start: a state directory alone, a marked port alone (its network's directory already
    gone), a stale link in a served namespace, the port of a replaced DHCP port; a qdhcp-
    namespace without traces of ours is not even observed as ours."""
    v = view(network(VM5))
    host = converged(v)
    [net] = host.networks
    gone_a, gone_b = "aaaaaaaa-0000-4000-8000-00000000000a", "bbbbbbbb-0000-4000-8000-00000000000b"
    old_tap = "tapc0c0c0c0-00"
    leftovers = ObservedDhcpHost(
        networks=(replace(net, links=(*net.links, ObservedLink("ns-stale", up=True))),
                  ObservedNetwork(gone_a, namespace=True, dnsmasq=ObservedDnsmasq(77, ("dnsmasq",)), state_dir=True)),
        node_links=(*host.node_links, ObservedLink(old_tap), ObservedLink("tapbbbbbbbb-00")),
        ports=(*host.ports,
               ObservedPort(old_tap, "br-int", external_ids=((NETWORK_KEY, NET), ("iface-id", "c0c0c0c0"))),
               ObservedPort("tapbbbbbbbb-00", "br-int", external_ids=((NETWORK_KEY, gone_b),)),
               ObservedPort("tapforeign-00", "br-int", external_ids=(("iface-id", "a-vm-port"),))))
    result = plan(v, leftovers, SETTINGS)
    assert result.ops == (
        StopDnsmasq(gone_a, 77, f"{CONFS}/{gone_a}/pid"),
        DeletePort("br-int", old_tap),
        DeletePort("br-int", "tapbbbbbbbb-00"),
        DeleteLink(None, old_tap),
        DeleteNamespace(f"qdhcp-{gone_a}"),
        DeleteLink(None, "tapbbbbbbbb-00"),
        RemoveDirectory(f"{CONFS}/{gone_a}"),
        DeleteLink(NS, "ns-stale"),
    )
    assert result.removed == (gone_a, gone_b)


# ---------------------------------------------------------------- Neutron's formats


def test_hosts_opts_and_routes_for_a_routed_subnet_with_options_and_dns_names() -> None:
    subnet = replace(SUBNET4, dns_nameservers=("192.0.2.53", "192.0.2.54"),
                     host_routes=(HostRoute("192.0.2.0/24", "10.0.0.254"), HostRoute("0.0.0.0/0", "10.0.0.253")))
    router = DhcpPort("b1b1b1b1-0000-4000-8000-000000000001", "fa:16:3e:00:00:01", ((S4, "10.0.0.1"),),
                      "host-10-0-0-1", "network:router_interface")
    gateway_port = DhcpPort("b2b2b2b2-0000-4000-8000-000000000001", "fa:16:3e:00:00:f1", ((S4, "10.0.0.250"),),
                            "host-10-0-0-250", "network:router_gateway")  # needs no DHCP configuration
    pxe = DhcpPort("c1c1c1c1-0000-4000-8000-000000000007", "fa:16:3e:00:00:07", ((S4, "10.0.0.7"),), "web1",
                   "compute:nova", (DhcpOption("tftp-server", "10.0.0.9"), DhcpOption("bootfile-name", "pxelinux.0"),
                                    DhcpOption("tag:ipxe,67", "http://boot/x.ipxe"),
                                    DhcpOption("dns-server", "fd00::53", 6)))  # no IPv6 address: not applied
    with_id = DhcpPort("c2c2c2c2-0000-4000-8000-000000000008", "fa:16:3e:00:00:08", ((S4, "10.0.0.8"),),
                       "host-10-0-0-8", "compute:nova", (DhcpOption("client-id", "01:aa"),))
    both = replace(with_id, id="c3c3c3c3-0000-4000-8000-000000000009", mac_address="fa:16:3e:00:00:09",
                   fixed_ips=((S4, "10.0.0.9"),), hostname="host-10-0-0-9",
                   extra_dhcp_opts=(DhcpOption("61", "01:bb"), DhcpOption("mtu", "1400")))
    net = network(router, gateway_port, pxe, with_id, both, subnets=(subnet,), dns_domain="example.org.")
    result = plan(view(net), ObservedDhcpHost(), SETTINGS)
    assert files(result) == {
        "host": ("fa:16:3e:00:00:01,host-10-0-0-1.example.org.,10.0.0.1\n"
                 f"fa:16:3e:00:00:07,web1.example.org.,10.0.0.7,set:port-{pxe.id}\n"
                 "fa:16:3e:00:00:08,id:01:aa,host-10-0-0-8.example.org.,10.0.0.8\n"
                 f"fa:16:3e:00:00:09,id:01:bb,host-10-0-0-9.example.org.,10.0.0.9,set:port-{both.id}\n"
                 "fa:16:3e:00:00:02,host-10-0-0-2.example.org.,10.0.0.2\n"),
        "addn_hosts": ("10.0.0.1\thost-10-0-0-1.example.org. host-10-0-0-1\n"
                       "10.0.0.7\tweb1.example.org. web1\n"
                       "10.0.0.8\thost-10-0-0-8.example.org. host-10-0-0-8\n"
                       "10.0.0.9\thost-10-0-0-9.example.org. host-10-0-0-9\n"
                       "10.0.0.2\thost-10-0-0-2.example.org. host-10-0-0-2\n"),
        "opts": (f"tag:subnet-{S4},option:dns-server,192.0.2.53,192.0.2.54\n"
                 f"tag:subnet-{S4},option:classless-static-route,192.0.2.0/24,10.0.0.254,"
                 "169.254.169.254/32,10.0.0.1,0.0.0.0/0,10.0.0.1\n"
                 f"tag:subnet-{S4},249,192.0.2.0/24,10.0.0.254,169.254.169.254/32,10.0.0.1,0.0.0.0/0,10.0.0.1\n"
                 f"tag:subnet-{S4},option:router,10.0.0.1\n"
                 f"tag:port-{pxe.id},option:tftp-server,10.0.0.9\n"
                 f"tag:port-{pxe.id},option:bootfile-name,pxelinux.0\n"
                 f"tag:port-{pxe.id},tag:ipxe,67,http://boot/x.ipxe\n"
                 f"tag:port-{both.id},option:mtu,1400"),
    }
    assert result.networks[0].argv[-1] == "--domain=example.org"


def test_a_subnet_without_gateway_gets_an_empty_router_option_and_a_0_0_0_0_route_stands_in() -> None:
    no_gateway = replace(SUBNET4, gateway_ip=None, dns_nameservers=())
    assert files(plan(view(network(subnets=(no_gateway,))), ObservedDhcpHost(), SETTINGS))["opts"] == (
        f"tag:subnet-{S4},option:router")
    via_route = replace(no_gateway, host_routes=(HostRoute("0.0.0.0/0", "10.0.0.254"),))
    assert files(plan(view(network(subnets=(via_route,))), ObservedDhcpHost(), SETTINGS))["opts"] == (
        f"tag:subnet-{S4},option:router,10.0.0.254")
    none_announced = replace(SUBNET4, dns_nameservers=("0.0.0.0",))
    assert files(plan(view(network(subnets=(none_announced,))), ObservedDhcpHost(), SETTINGS))["opts"] == (
        f"tag:subnet-{S4},option:dns-server\ntag:subnet-{S4},option:router,10.0.0.1")


def test_two_dhcp_servers_on_a_subnet_without_dns_servers_announce_each_other() -> None:
    other_agent = DhcpPort("d1d1d1d1-0000-4000-8000-000000000003", "fa:16:3e:00:00:03", ((S4, "10.0.0.3"),),
                           "host-10-0-0-3", "network:dhcp")
    subnet = replace(SUBNET4, dns_nameservers=())
    assert files(plan(view(network(other_agent, subnets=(subnet,))), ObservedDhcpHost(), SETTINGS))["opts"] == (
        f"tag:subnet-{S4},option:router,10.0.0.1\n"
        f"tag:subnet-{S4},option:dns-server,10.0.0.2,10.0.0.3")


def test_ipv6_stateful_and_slaac_subnets_as_neutron_serves_them() -> None:
    stateful = DhcpSubnet(S6, "fd00:1::/64", 6, True, "fd00:1::1", ("fd00::53",), (), "dhcpv6-stateful",
                          "dhcpv6-stateful")
    slaac = DhcpSubnet(S6_SLAAC, "fd00:2::/64", 6, True, "fd00:2::1", (), (), "slaac", "slaac")
    dhcp_port = replace(DHCP_PORT, fixed_ips=((S4, "10.0.0.2"), (S6, "fd00:1::2"), (S6_SLAAC, "fd00:2::2")))
    vm = replace(VM5, fixed_ips=((S4, "10.0.0.5"), (S6, "fd00:1::5"), (S6_SLAAC, "fd00:2::f816:3eff:fe00:5")))
    result = plan(view(network(vm, subnets=(SUBNET4, stateful, slaac), dhcp_port=dhcp_port)), ObservedDhcpHost(),
                  SETTINGS)
    want = result.networks[0]
    assert want.argv == (*ARGV_HEAD, RANGE4, f"--dhcp-range=set:subnet-{S6},fd00:1::,static,64,86400s",
                         "--dhcp-option-force=option:mtu,1450", "--dhcp-lease-max=16777216", "--conf-file=/dev/null",
                         "--domain=openstacklocal")  # SLAAC: no range (router advertisements only)
    assert want.addresses == ("10.0.0.2/24", "fd00:1::2/64", "fd00:2::2/64")
    assert want.gateways == (("10.0.0.1", False), ("fd00:1::1", False))
    assert dict(want.files) == {
        "host": ("fa:16:3e:00:00:05,host-10-0-0-5.openstacklocal.,10.0.0.5\n"
                 "fa:16:3e:00:00:05,tag:dhcpv6,host-fd00-1--5.openstacklocal.,[fd00:1::5]\n"
                 "fa:16:3e:00:00:02,host-10-0-0-2.openstacklocal.,10.0.0.2\n"
                 "fa:16:3e:00:00:02,tag:dhcpv6,host-fd00-1--2.openstacklocal.,[fd00:1::2]\n"),
        "addn_hosts": ("10.0.0.5\thost-10-0-0-5.openstacklocal. host-10-0-0-5\n"
                       "fd00:1::5\thost-fd00-1--5.openstacklocal. host-fd00-1--5\n"
                       "fd00:2::f816:3eff:fe00:5\thost-fd00-2--f816-3eff-fe00-5.openstacklocal. "
                       "host-fd00-2--f816-3eff-fe00-5\n"
                       "10.0.0.2\thost-10-0-0-2.openstacklocal. host-10-0-0-2\n"
                       "fd00:1::2\thost-fd00-1--2.openstacklocal. host-fd00-1--2\n"
                       "fd00:2::2\thost-fd00-2--2.openstacklocal. host-fd00-2--2\n"),
        "opts": (f"tag:subnet-{S4},option:dns-server,192.0.2.53\n"
                 f"tag:subnet-{S4},option:router,10.0.0.1\n"
                 f"tag:subnet-{S6},option6:dns-server,[fd00::53]\n"
                 f"tag:subnet-{S6},option6:domain-search,openstacklocal"),
    }
    assert want.leases == LEASES  # IPv4 only: IPv6 leases need the client's IAID


def test_dhcpv6_stateless_gets_options_but_no_lease_and_its_line_comes_first() -> None:
    stateless = DhcpSubnet(S6, "fd00:1::/64", 6, True, "fd00:1::1", (), (), "dhcpv6-stateless", "dhcpv6-stateless")
    vm = replace(VM5, fixed_ips=((S4, "10.0.0.5"), (S6, "fd00:1::f816:3eff:fe00:5")),
                 extra_dhcp_opts=(DhcpOption("tftp-server", "10.0.0.9"),))
    want = plan(view(network(vm, subnets=(SUBNET4, stateless))), ObservedDhcpHost(), SETTINGS).networks[0]
    assert dict(want.files)["host"].splitlines()[:2] == [
        f"fa:16:3e:00:00:05,tag:dhcpv6,set:port-{vm.id}",
        f"fa:16:3e:00:00:05,host-10-0-0-5.openstacklocal.,10.0.0.5,set:port-{vm.id}"]
    assert f"--dhcp-range=set:subnet-{S6},fd00:1::,static,64,86400s" in want.argv


def test_a_dns_name_names_every_address_of_its_port() -> None:
    vm = replace(VM5, fixed_ips=((S4, "10.0.0.5"), (S4B, "10.0.1.5")), hostname="web1")
    second = DhcpSubnet(S4B, "10.0.1.0/24", 4, True, "10.0.1.1")
    addn = files(plan(view(network(vm, subnets=(SUBNET4, second))), ObservedDhcpHost(), SETTINGS))["addn_hosts"]
    assert addn.splitlines()[:2] == ["10.0.0.5\tweb1.openstacklocal. web1", "10.0.1.5\tweb1.openstacklocal. web1"]


def test_dnsmasq_options_lease_time_and_an_onlink_gateway() -> None:
    settings = replace(SETTINGS, dnsmasq=DnsmasqSettings(
        dnsmasq_dns_servers=("192.0.2.1", "192.0.2.2"), dnsmasq_lease_max=100, dnsmasq_config_file="/etc/dnsmasq.d/x",
        dhcp_renewal_time=600, dhcp_rebinding_time=900, dhcp_broadcast_reply=True))
    outside = replace(SUBNET4, gateway_ip="192.0.2.1")  # a gateway outside the subnet: on-link route
    want = plan(view(network(subnets=(outside,)), lease_duration=-1), ObservedDhcpHost(), settings).networks[0]
    assert want.argv == (*ARGV_HEAD, RANGE4.replace("86400s", "infinite"), "--dhcp-option-force=option:mtu,1450",
                         "--dhcp-lease-max=100", "--dhcp-option-force=option:T1,600s",
                         "--dhcp-option-force=option:T2,900s", "--conf-file=/etc/dnsmasq.d/x",
                         "--server=192.0.2.1", "--server=192.0.2.2", "--domain=openstacklocal", "--dhcp-broadcast")
    assert want.gateways == (("192.0.2.1", True),)


def test_format_option_as_neutron() -> None:
    assert format_option(4, "port-x", "tftp-server", "10.0.0.9") == "tag:port-x,option:tftp-server,10.0.0.9"
    assert format_option(4, "port-x", "66", "10.0.0.9") == "tag:port-x,66,10.0.0.9"
    assert format_option(6, "port-x", "dns-server", "[fd00::1]") == "tag:port-x,option6:dns-server,[fd00::1]"
    assert format_option(4, "port-x", "tag:ipxe,bootfile-name", "a\nb") == "tag:port-x,tag:ipxe,option:bootfile-name,a"
