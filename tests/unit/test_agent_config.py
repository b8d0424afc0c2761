"""The agents' options: Neutron's files as operators write them, errors naming file/section/option."""

from __future__ import annotations

from pathlib import Path

import pytest

from baryon.config import ConfigError
from baryon.config.agent import load_agent, parse_mappings
from baryon.lab import configs
from baryon.lab.topology import describe
from tests.support.samples import ML2_CONF


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_the_seeds_ml2_conf_configures_the_ovs_agent(tmp_path: Path) -> None:
    settings = load_agent([_write(tmp_path, "ml2_conf.ini", ML2_CONF)])
    assert settings.ovs.bridge_mappings == (("physnet1", "br-ex"),)
    assert settings.ovs.local_ip == "10.10.10.1"
    assert settings.ovs.datapath_type == "system"
    assert settings.ovs.ovsdb_connection == "tcp:127.0.0.1:6640"
    assert settings.agent.tunnel_types == ("vxlan",)
    assert settings.agent.l2_population is True and settings.agent.arp_responder is True
    assert settings.securitygroup.firewall_driver.endswith("OVSHybridIptablesFirewallDriver")
    assert settings.warnings == ()


def test_neutrons_defaults(tmp_path: Path) -> None:
    settings = load_agent([])
    assert settings.agent.report_interval == 30
    assert settings.agent.tunnel_types == ()
    assert settings.agent.l2_population is False and settings.agent.arp_responder is False
    assert settings.ovs.integration_bridge == "br-int" and settings.ovs.tunnel_bridge == "br-tun"
    assert settings.ovs.local_ip is None
    assert settings.baryon.server_url == "http://127.0.0.1:9696"
    assert settings.host  # the hostname


def test_the_server_options_of_a_shared_neutron_conf_are_no_warnings(tmp_path: Path) -> None:
    conf = _write(tmp_path, "neutron.conf", "[DEFAULT]\nhost = compute7\nbind_port = 9696\ncore_plugin = ml2\n"
                                            "[database]\nconnection = sqlite://\n[agent]\nreport_interval = 5\n"
                                            "polling_interval = 2\n[ovs]\nof_interface = native\nbogus = 1\n")
    settings = load_agent([conf])
    assert settings.host == "compute7"
    assert settings.agent.report_interval == 5
    assert len(settings.warnings) == 1 and "[ovs] unknown option 'bogus'" in settings.warnings[0]


def test_the_labs_node_files_load(tmp_path: Path) -> None:
    topo = describe()
    files = configs.node_files(topo, topo.node("compute2"), "/srv/lab/compute2")
    settings = load_agent([_write(tmp_path, name, files[name]) for name in ("neutron.conf", "ml2_conf.ini")])
    assert settings.warnings == ()
    assert settings.host == "compute2"
    assert settings.ovs.local_ip == "10.10.10.12"
    assert settings.ovs.datapath_type == "netdev"
    assert settings.ovs.bridge_mappings == ()
    assert settings.baryon.server_url == "http://10.20.0.2:9696"


@pytest.mark.parametrize("section, option, value, reason", [
    ("ovs", "bridge_mappings", "physnet1", "is not <physical_network>:<bridge>"),
    ("ovs", "bridge_mappings", "physnet1:br-ex,physnet1:br-eth1", "twice"),
    ("ovs", "bridge_mappings", "physnet1:br-very-long-name0", "longer than 15 bytes"),
    ("ovs", "local_ip", "10.10.10", "is not an IP address"),
    ("agent", "report_interval", "0", "greater than 0"),
    ("agent", "l2_population", "maybe", "is not a boolean"),
    ("baryon", "server_url", "10.20.0.2:9696", "is not an http"),
])
def test_invalid_values_name_file_section_and_option(tmp_path: Path, section: str, option: str, value: str,
                                                      reason: str) -> None:
    path = _write(tmp_path, "bad.ini", f"[{section}]\n{option} = {value}\n")
    with pytest.raises(ConfigError) as error:
        load_agent([path])
    assert f"{path}: [{section}] {option}: invalid value" in str(error.value)
    assert reason in str(error.value)


def test_tunnels_need_vxlan_and_a_local_ip(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'gre' tunnels are not supported"):
        load_agent([_write(tmp_path, "a.ini", "[agent]\ntunnel_types = gre\n[ovs]\nlocal_ip = 10.0.0.1\n")])
    with pytest.raises(ConfigError, match=r"tunnelling needs \[ovs\] local_ip"):
        load_agent([_write(tmp_path, "b.ini", "[agent]\ntunnel_types = vxlan\n")])


def test_mappings_parse() -> None:
    assert parse_mappings(" physnet1 : br-ex , physnet2:br-eth2") == (("physnet1", "br-ex"), ("physnet2", "br-eth2"))
    assert parse_mappings("") == ()
