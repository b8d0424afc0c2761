"""The lab's pure parts: the topology description, derived names and the nodes' configuration files."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from baryon import config
from baryon.lab import configs
from baryon.lab.topology import (IFNAMSIZ, MAX_COMPUTES, TopologyError, check_ifname, describe, device_names,
                                 validate_prefix, vm_netns)

PORT_ID = "5e376066-480f-4238-b30d-42b6c7f4eaf1"


def test_default_lab_has_the_seed_nodes_and_values() -> None:
    topo = describe()
    assert [n.name for n in topo.nodes] == ["controller", "network", "compute1", "compute2", "external"]
    network = topo.node("network")
    assert network.local_ip == "10.10.10.1"  # the seed's local_ip
    assert network.agents == ("ovs", "dhcp", "l3")
    assert network.bridge_mappings == (("physnet1", "br-ex"),)
    assert network.ovs_bridges == ("br-phy", "br-ex")
    assert topo.node("compute1").agents == ("ovs",)
    assert topo.node("compute1").bridge_mappings == ()
    assert topo.node("controller").runs_ovs is False
    assert topo.api_url == "http://127.0.0.1:9696"
    assert topo.server_url == "http://10.20.0.2:9696"
    external = topo.node("external")
    assert external.links[0].address == "203.0.113.1/24"
    assert external.loopback_addresses == ("198.51.100.1/32",)
    assert topo.namespaces == ("blab-fabric", "blab-controller", "blab-network", "blab-compute1", "blab-compute2",
                               "blab-external")


@pytest.mark.parametrize("computes", [0, 1, 2, 8, MAX_COMPUTES])
def test_names_fit_and_addresses_are_unique(computes: int) -> None:
    topo = describe("abcdefghij-", computes, 65535)
    assert len(topo.nodes) == computes + 3
    fabric_ifs = [link.fabric_if for node in topo.nodes for link in node.links]
    assert len(fabric_ifs) == len(set(fabric_ifs))
    assert all(len(name.encode()) <= IFNAMSIZ for name in fabric_ifs)
    for node in topo.nodes:
        node_ifs = [link.node_if for link in node.links]
        assert len(node_ifs) == len(set(node_ifs))
        assert all(link.bridge in topo.fabric_bridges for link in node.links)
    addresses = [link.address.split("/")[0] for node in topo.nodes for link in node.links if link.address]
    assert len(addresses) == len(set(addresses))
    local_ips = [n.local_ip for n in topo.nodes if n.runs_ovs]
    assert all(ipaddress.ip_address(ip) in ipaddress.ip_network("10.10.10.0/24") for ip in local_ips)
    assert [n.name for n in topo.nodes if n.runs_ovs] == ["network"] + [f"compute{i}" for i in range(1, computes + 1)]


@pytest.mark.parametrize("bad", [-1, MAX_COMPUTES + 1])
def test_compute_count_is_bounded(bad: int) -> None:
    with pytest.raises(TopologyError, match="--computes"):
        describe(computes=bad)


@pytest.mark.parametrize("bad", [0, 65536, -5])
def test_api_port_is_checked(bad: int) -> None:
    with pytest.raises(TopologyError, match="--api-port"):
        describe(api_port=bad)


@pytest.mark.parametrize("prefix", ["blab-", "b-", "t1234-", "abcdefghij-"])
def test_good_prefixes(prefix: str) -> None:
    assert validate_prefix(prefix) == prefix


@pytest.mark.parametrize("prefix", ["", "blab", "Blab-", "1lab-", "abcdefghijk-", "b_l-", "bl ab-", "-"])
def test_bad_prefixes(prefix: str) -> None:
    with pytest.raises(TopologyError, match="prefix"):
        validate_prefix(prefix)


def test_device_names_are_neutrons() -> None:
    assert device_names(PORT_ID) == {"tap": "tap5e376066-48", "qbr": "qbr5e376066-48", "qvb": "qvb5e376066-48",
                                     "qvo": "qvo5e376066-48"}
    assert all(len(name) == 14 for name in device_names(PORT_ID).values())


@pytest.mark.parametrize("name", ["", "a" * 16, "a/b", "a:b", "a b", ".", ".."])
def test_bad_interface_names(name: str) -> None:
    with pytest.raises(TopologyError):
        check_ifname(name)


def test_interface_name_limit_is_in_bytes() -> None:
    assert check_ifname("a" * 15) == "a" * 15
    with pytest.raises(TopologyError):
        check_ifname("é" * 8)  # 16 bytes


@pytest.mark.parametrize("name", ["vm1", "web-01", "a.b_c", "X" * 40])
def test_vm_namespaces(name: str) -> None:
    assert vm_netns("blab-", name) == f"blab-vm-{name}"


@pytest.mark.parametrize("name", ["", "-vm", "vm/1", "vm 1", "X" * 41, "vm;rm"])
def test_bad_vm_names(name: str) -> None:
    with pytest.raises(TopologyError, match="VM name"):
        vm_netns("blab-", name)


def _load(tmp_path: Path, files: dict[str, str], order: list[str]) -> config.Settings:
    paths = []
    for name in order:
        path = tmp_path / name
        path.write_text(files[name])
        paths.append(str(path))
    return config.load(paths)


def test_server_configuration_loads_without_warnings(tmp_path: Path) -> None:
    topo = describe(computes=2, api_port=9797)
    files = configs.node_files(topo, topo.node("controller"), "/srv/lab/controller")
    assert set(files) == {"neutron.conf", "ml2_conf.ini"}
    settings = _load(tmp_path, files, ["neutron.conf", "ml2_conf.ini"])
    assert not settings.warnings
    assert settings.DEFAULT.bind_host == "10.20.0.2"
    assert settings.DEFAULT.bind_port == 9696
    assert settings.DEFAULT.api_workers == 1
    assert settings.database_url == "sqlite:////srv/lab/controller/baryon.sqlite"
    assert settings.ml2_type_flat.flat_networks == ("physnet1",)
    assert settings.ml2.tenant_network_types == ("vxlan",)


def test_network_node_files_carry_the_seed_values() -> None:
    topo = describe()
    files = configs.node_files(topo, topo.node("network"), "/srv/lab/network")
    assert set(files) == {"neutron.conf", "ml2_conf.ini", "dhcp_agent.ini", "l3_agent.ini"}
    ml2 = files["ml2_conf.ini"]
    for line in ["type_drivers = flat,vlan,vxlan", "mechanism_drivers = openvswitch,l2population",
                 "tunnel_types = vxlan", "l2_population = true", "arp_responder = true",
                 "bridge_mappings = physnet1:br-ex", "datapath_type = netdev",
                 "ovsdb_connection = tcp:127.0.0.1:6640", "local_ip = 10.10.10.1",
                 "firewall_driver = neutron.agent.linux.iptables_firewall.OVSHybridIptablesFirewallDriver"]:
        assert line in ml2.splitlines()
    assert "host = network" in files["neutron.conf"].splitlines()
    assert "server_url = http://10.20.0.2:9696" in files["neutron.conf"].splitlines()


def test_compute_files() -> None:
    topo = describe(computes=3)
    files = configs.node_files(topo, topo.node("compute3"), "/srv/lab/compute3")
    assert set(files) == {"neutron.conf", "ml2_conf.ini"}
    lines = files["ml2_conf.ini"].splitlines()
    assert "local_ip = 10.10.10.13" in lines
    assert "bridge_mappings = " in lines
    assert configs.node_files(topo, topo.node("external"), "/x") == {}


def test_a_lab_owns_its_prefix_only_when_recorded_or_named(tmp_path: Path) -> None:
    from baryon.lab.lab import Lab
    from baryon.lab.state import LabParams, LabPaths

    assert Lab.open(tmp_path / "none").owns_prefix is False
    assert Lab.open(tmp_path / "none", prefix="blab-").owns_prefix is True
    LabPaths(tmp_path / "rec").write_params(LabParams("tq-", 3, 9000))
    lab = Lab.open(tmp_path / "rec")
    assert (lab.owns_prefix, lab.params) == (True, LabParams("tq-", 3, 9000))
    assert Lab.open(tmp_path / "rec", computes=1).params == LabParams("tq-", 1, 9000)
