"""DHCP scheduling and DHCP views in-process, on a throwaway SQLite database: the pure rules, the
options that need a server of their own (``dhcp_agents_per_network``, ``network_auto_schedule``,
``allow_automatic_dhcp_failover``), IPv6 DHCP ports, agents registering out of order, and the
cost of a DHCP view. The API behaviour, on every backend, is in tests/api/test_dhcp_scheduling.py."""

from __future__ import annotations

import datetime as dt
import ipaddress
import uuid

import pytest
from sqlalchemy import event, select, update

from baryon.db import models as m
from baryon.service import dhcpview, ipam, ml2
from baryon.service.agents import AGENT_TYPE_DHCP, AGENT_TYPE_OVS
from baryon.service.context import Context
from baryon.service.dhcpscheduler import Candidate, choose, device_id, reaches
from baryon.service.query import ListQuery
from baryon.service.services import Services
from tests.unit.conftest import ServicesFactory

ADMIN = Context.admin("admin-project")
OVS_CONFIG = {"tunnel_types": ["vxlan"], "tunneling_ip": "10.0.0.1", "bridge_mappings": {"physnet1": "br-ex"}}



@pytest.fixture
def services(make: ServicesFactory) -> Services:
    return make()


def register(services: Services, host: str, *, ovs: bool = True, dhcp: bool = True, **config: object) -> None:
    if ovs:
        services.agents.report_state(ADMIN, {"agent_type": AGENT_TYPE_OVS, "host": host,
                                             "configurations": {**OVS_CONFIG, **config}})
    if dhcp:
        services.agents.report_state(ADMIN, {"agent_type": AGENT_TYPE_DHCP, "host": host, "start_flag": True})


def network(services: Services, cidr: str | None = "10.1.0.0/24", **attrs: object) -> dict:
    [net] = services.networks.create(ADMIN, [{"name": "n", **attrs}])
    if cidr:
        subnet(services, net, cidr)
    return net


def subnet(services: Services, net: dict, cidr: str, **attrs: object) -> dict:
    version = ipaddress.ip_network(cidr).version
    [sub] = services.subnets.create(ADMIN, [{"network_id": net["id"], "cidr": cidr, "ip_version": version, **attrs}])
    return sub


def hosts(services: Services, net: dict) -> list[str]:
    return [a["host"] for a in services.agentschedulers.dhcp_agents_hosting_network(ADMIN, net["id"])]


def dhcp_ports(services: Services, net: dict) -> list[dict]:
    with services.env.db.read() as session:
        rows = session.execute(select(m.Port).where(m.Port.network_id == net["id"],
                                                    m.Port.device_owner == "network:dhcp")).scalars().all()
        return sorted(services.ports.render(session, list(rows)), key=lambda p: p["binding:host_id"])


def kill(services: Services, host: str, minutes: int = 10) -> None:
    past = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=minutes)
    services.env.db.write(lambda session: session.execute(update(m.Agent).where(
        m.Agent.agent_type == AGENT_TYPE_DHCP, m.Agent.host == host).values(heartbeat_timestamp=past)))


def heartbeat(services: Services, host: str) -> None:
    services.agents.report_state(ADMIN, {"agent_type": AGENT_TYPE_DHCP, "host": host})


# ---------------------------------------------------------------- pure rules


def test_device_id_is_neutrons() -> None:
    network_id = "5e4a4c3b-0f7d-4d46-9a23-1a0e7a1b2c3d"
    assert device_id("network", network_id) == f"dhcp{uuid.uuid5(uuid.NAMESPACE_DNS, 'network')}-{network_id}"
    assert device_id("network", network_id) == f"dhcp7b60c1d9-602e-5110-8c89-a9475b89732c-{network_id}"


def test_choose_takes_the_least_loaded_then_the_host_name() -> None:
    a, b, c = Candidate("id-a", "a", 3), Candidate("id-b", "b", 1), Candidate("id-c", "c", 1)
    assert choose([a, b, c], 1) == [b]
    assert choose([a, c, b], 2) == [b, c]
    assert choose([a, b, c], 5) == [b, c, a]
    assert choose([a, b, c], 0) == [] and choose([a], -1) == []


def test_reaches_as_port_binding_does() -> None:
    vxlan, flat = ml2.Segment("vxlan", None, 5), ml2.Segment("flat", "physnet1", None)
    assert reaches(OVS_CONFIG, [vxlan]) and reaches(OVS_CONFIG, [flat])
    assert not reaches({"tunnel_types": [], "bridge_mappings": {}}, [vxlan, flat])
    assert reaches({"tunnel_types": [], "bridge_mappings": {"physnet1": "br-ex"}}, [vxlan, flat])
    assert not reaches(None, [vxlan])  # no Open vSwitch agent on the host


def test_hostnames() -> None:
    assert dhcpview.hostname("", "10.0.0.5") == "host-10-0-0-5"
    assert dhcpview.hostname("", "fd00::5") == "host-fd00--5"
    assert dhcpview.hostname("web1", "10.0.0.5") == "web1"


# ---------------------------------------------------------------- scheduling


def test_several_agents_per_network_least_loaded(make: ServicesFactory) -> None:
    services = make(dhcp_agents_per_network="2")
    register(services, "a")
    first = network(services)
    assert hosts(services, first) == ["a"]  # one agent: as many as there are
    register(services, "b")  # network_auto_schedule: b takes what lacks an agent
    assert hosts(services, first) == ["a", "b"]
    register(services, "c")
    second = network(services, "10.2.0.0/24")
    assert hosts(services, second) == ["a", "c"]  # c (no network), then a (one, as b; a before b)
    assert [(p["binding:host_id"], p["fixed_ips"][0]["ip_address"]) for p in dhcp_ports(services, second)] == [
        ("a", "10.2.0.2"), ("c", "10.2.0.3")]


def test_without_auto_schedule_a_new_agent_takes_nothing(make: ServicesFactory) -> None:
    services = make(network_auto_schedule="false")
    net = network(services)
    register(services, "a")
    assert hosts(services, net) == []
    subnet(services, net, "10.9.0.0/24")  # a new DHCP subnet schedules it
    assert hosts(services, net) == ["a"]


def test_failover_on_a_heartbeat_and_without_it(make: ServicesFactory) -> None:
    services = make()
    register(services, "a")
    net = network(services)
    register(services, "b")
    assert hosts(services, net) == ["a"]
    kill(services, "a", minutes=1)  # dead (75 s), but not for long (2 x 75 s): it stays
    heartbeat(services, "b")
    assert hosts(services, net) == ["a"]
    kill(services, "a")
    heartbeat(services, "b")
    assert hosts(services, net) == ["b"]
    assert [(p["binding:host_id"], p["device_id"]) for p in dhcp_ports(services, net)] == [
        ("b", device_id("b", net["id"]))]

    frozen = make(allow_automatic_dhcp_failover="false")
    register(frozen, "a")
    net = network(frozen)
    register(frozen, "b")
    kill(frozen, "a")
    heartbeat(frozen, "b")
    assert hosts(frozen, net) == ["a"]


def test_a_dhcp_agent_before_its_ovs_agent(services: Services) -> None:
    """As Neutron's scheduler: only a host whose Open vSwitch agent reaches the network; once it
    registers, the DHCP agent there takes the networks lacking one and its failed ports bind."""
    register(services, "n", ovs=False)
    net = network(services)
    assert hosts(services, net) == []
    register(services, "n", dhcp=False, tunnel_types=[])  # cannot reach vxlan yet
    assert hosts(services, net) == []
    other = network(services, "10.3.0.0/24")
    [agent] = [a for a in services.agents.list(ADMIN, ListQuery()) if a["agent_type"] == AGENT_TYPE_DHCP]
    services.agentschedulers.add_network_to_dhcp_agent(ADMIN, agent["id"], other["id"])  # the admin may
    [port] = dhcp_ports(services, other)
    assert port["binding:vif_type"] == "binding_failed"

    services.agents.report_state(ADMIN, {"agent_type": AGENT_TYPE_OVS, "host": "n", "start_flag": True,
                                         "configurations": OVS_CONFIG})
    assert hosts(services, net) == ["n"]
    assert [p["binding:vif_type"] for p in dhcp_ports(services, net)] == ["ovs"]
    [port] = dhcp_ports(services, other)
    assert (port["binding:vif_type"], port["revision_number"]) == ("ovs", 2)


# ---------------------------------------------------------------- the DHCP port's addresses


def test_dhcp_port_addresses_follow_the_dhcp_subnets(services: Services) -> None:
    register(services, "a")
    net = network(services)
    [v4] = [s for s in _subnets(services, net)]
    stateful = subnet(services, net, "fd00:1::/64", ipv6_address_mode="dhcpv6-stateful",
                      ipv6_ra_mode="dhcpv6-stateful")
    slaac = subnet(services, net, "fd00:2::/64", ipv6_address_mode="slaac", ipv6_ra_mode="slaac")
    subnet(services, net, "10.4.0.0/24", enable_dhcp=False)
    [port] = dhcp_ports(services, net)
    eui = str(ipam.eui64(ipaddress.IPv6Network("fd00:2::/64"), port["mac_address"]))
    assert _addresses(port) == {(v4["id"], "10.1.0.2"), (stateful["id"], "fd00:1::2"), (slaac["id"], eui)}

    services.subnets.update(ADMIN, v4["id"], {"enable_dhcp": False})
    [port] = dhcp_ports(services, net)
    assert _addresses(port) == {(stateful["id"], "fd00:1::2"), (slaac["id"], eui)}  # kept
    assert port["revision_number"] == 4  # made, two subnets added, one removed
    services.subnets.delete(ADMIN, stateful["id"])
    assert _addresses(dhcp_ports(services, net)[0]) == {(slaac["id"], eui)}
    services.subnets.update(ADMIN, v4["id"], {"enable_dhcp": True})
    assert _addresses(dhcp_ports(services, net)[0]) == {(slaac["id"], eui), (v4["id"], "10.1.0.2")}
    services.subnets.delete(ADMIN, slaac["id"])
    services.subnets.update(ADMIN, v4["id"], {"enable_dhcp": False})
    assert (hosts(services, net), dhcp_ports(services, net)) == ([], [])


def _addresses(port: dict) -> set[tuple[str, str]]:
    return {(f["subnet_id"], f["ip_address"]) for f in port["fixed_ips"]}


def test_a_full_subnet_gives_the_dhcp_port_no_address(services: Services) -> None:
    register(services, "a")
    net = network(services, None)
    small = subnet(services, net, "10.5.0.0/29", enable_dhcp=False,
                   allocation_pools=[{"start": "10.5.0.2", "end": "10.5.0.2"}])
    services.ports.create(ADMIN, [{"network_id": net["id"]}])  # takes the one address
    services.subnets.update(ADMIN, small["id"], {"enable_dhcp": True})
    assert hosts(services, net) == ["a"] and dhcp_ports(services, net) == []
    [network_view] = services.hostviews.view(ADMIN, "a", "dhcp").networks
    assert network_view.dhcp_port is None


def _subnets(services: Services, net: dict) -> list[dict]:
    with services.env.db.read() as session:
        rows = session.execute(select(m.Subnet).where(m.Subnet.network_id == net["id"])).scalars().all()
        return services.subnets.render(session, list(rows))


# ---------------------------------------------------------------- the DHCP view's cost


def statements(services: Services, host: str) -> int:
    count = 0

    def counted(*_args: object) -> None:
        nonlocal count
        count += 1

    engine = services.env.db.read_engine
    event.listen(engine, "before_cursor_execute", counted)
    try:
        services.hostviews.view(ADMIN, host, "dhcp")
    finally:
        event.remove(engine, "before_cursor_execute", counted)
    return count


def test_dhcp_view_statements_do_not_grow(services: Services) -> None:
    register(services, "a")
    assert statements(services, "a") == 3  # SQLite's BEGIN, the sequence, the networks: none
    nets = [network(services, f"10.{i}.0.0/24") for i in range(1, 3)]
    services.subnets.update(ADMIN, _subnets(services, nets[0])[0]["id"], {"dns_nameservers": ["192.0.2.53"]})
    assert statements(services, "a") == 9  # and the 7 SELECTs of dhcpview.compute
    for net in nets:
        services.ports.create(ADMIN, [{"network_id": net["id"], "extra_dhcp_opts": [
            {"opt_name": "mtu", "opt_value": "1400"}]} for _ in range(10)])
    nets.append(network(services, "10.9.0.0/24"))
    assert statements(services, "a") == 9
    view = services.hostviews.view(ADMIN, "a", "dhcp")
    assert [len(n.ports) for n in view.networks] == [11 if n.id != nets[2]["id"] else 1 for n in view.networks]
