"""The agents' options: Neutron's files as operators write them, errors naming file/section/option."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from baryon.config import ConfigError, load
from baryon.config.agent import keystone_session, load_agent, parse_mappings
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
    assert settings.agent.availability_zone == "nova"


def test_the_availability_zone_is_neutrons_agent_option(tmp_path: Path) -> None:
    conf = _write(tmp_path, "dhcp_agent.ini", "[AGENT]\navailability_zone = zone-b\n")
    settings = load_agent([conf])
    assert settings.agent.availability_zone == "zone-b" and settings.warnings == ()


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
    ("baryon", "agent_shared_secret", "two words", "printable ASCII characters without spaces"),
    ("baryon", "agent_shared_secret", "s\u00e9same", "printable ASCII characters without spaces"),
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


def test_the_agent_secret_is_one_option_of_a_shared_neutron_conf(tmp_path: Path) -> None:
    """Server and agents read ``[baryon] agent_shared_secret`` from the same file, without a warning;
    a printed settings object does not show it."""
    conf = _write(tmp_path, "neutron.conf", "[DEFAULT]\nhost = compute7\n[baryon]\nserver_url = http://10.0.0.1:9696\n"
                                            "agent_shared_secret =  Kq8-x_Z~!  \n")
    agent, server = load_agent([conf]), load([conf])
    assert agent.baryon.agent_shared_secret == server.baryon.agent_shared_secret == "Kq8-x_Z~!"
    assert agent.warnings == () and server.warnings == ()
    assert "Kq8" not in repr(agent) and "Kq8" not in repr(server)
    assert load_agent([]).baryon.agent_shared_secret == load([]).baryon.agent_shared_secret == ""


def test_a_lab_has_one_secret_in_the_server_and_every_agent_file(tmp_path: Path) -> None:
    topo, lab = describe(), tmp_path / "lab"
    lab.mkdir()
    files = {name: configs.node_files(topo, topo.node(name), f"/srv/lab/{name}", str(lab))
             for name in ("controller", "network", "compute1")}
    secret = configs.lab_secret(lab)
    assert len(secret) >= 32 and (lab / configs.SECRET_FILE).stat().st_mode & 0o777 == 0o600
    server = load([_write(tmp_path, "server.conf", files["controller"]["neutron.conf"])])
    assert server.baryon.agent_shared_secret == secret and server.warnings == ()
    for name in ("network", "compute1"):
        agent = load_agent([_write(tmp_path, f"{name}.conf", files[name]["neutron.conf"])])
        assert agent.baryon.agent_shared_secret == secret and agent.warnings == ()
    # A second `lab up` writes the same files; another lab has another secret; no lab, no secret.
    assert configs.node_files(topo, topo.node("compute1"), "/srv/lab/compute1", str(lab)) == files["compute1"]
    other = tmp_path / "other"
    other.mkdir()
    configs.node_files(topo, topo.node("controller"), "/srv/lab/controller", str(other))
    assert configs.lab_secret(other) not in ("", secret)
    assert "agent_shared_secret" not in configs.node_files(topo, topo.node("compute1"), "/x")["neutron.conf"]
    assert configs.lab_secret(tmp_path / "none") == ""


KEYSTONE_USER = ("auth_type = password\nauth_url = http://192.0.2.5:5000\nusername = baryon-agent\n"
                 "password = s3cret\nproject_name = service\nuser_domain_name = Default\n"
                 "project_domain_name = Default\n")


def test_agent_auth_configures_the_agents_keystone_service_user(tmp_path: Path) -> None:
    """``[agent_auth]``: keystoneauth1's options, as nova.conf's ``[neutron]``; read by keystoneauth1's own
    loader (no request to Keystone yet); no warning from the agent's nor the server's loader."""
    conf = _write(tmp_path, "neutron.conf", f"[DEFAULT]\nhost = compute7\n[agent_auth]\n{KEYSTONE_USER}"
                                            "insecure = true\ntimeout = 4\n")
    agent, server = load_agent([conf]), load([conf])
    assert agent.warnings == () and server.warnings == ()
    session = keystone_session(agent)
    assert {k: v for k, v in session.auth.get_cache_id_elements().items() if v} == {
        "auth_url": "http://192.0.2.5:5000", "username": "baryon-agent", "password": "s3cret",
        "project_name": "service", "user_domain_name": "Default", "project_domain_name": "Default"}
    assert session.verify is False and session.timeout == 4
    # The session's timeout defaults to the client's; no [agent_auth]: no session.
    plain = _write(tmp_path, "plain.conf", f"[agent_auth]\n{KEYSTONE_USER}")
    assert keystone_session(load_agent([plain])).timeout == 10
    assert keystone_session(load_agent([])) is None


def test_agent_auth_may_reuse_the_servers_service_user(tmp_path: Path) -> None:
    """On a node whose neutron.conf has the server's ``[keystone_authtoken]``, ``auth_section`` points there."""
    conf = _write(tmp_path, "neutron.conf", "[agent_auth]\nauth_section = keystone_authtoken\n"
                                            "[keystone_authtoken]\nwww_authenticate_uri = http://192.0.2.5:5000\n"
                                            f"memcached_servers = 127.0.0.1:11211\n{KEYSTONE_USER}")
    session = keystone_session(load_agent([conf]))
    assert session.auth.get_cache_id_elements()["username"] == "baryon-agent"


@pytest.mark.parametrize("section, says", [
    ("auth_type = password\nusername = u\n", "MissingRequiredOptions: Auth plugin requires parameters which were "
                                             "not given: auth_url"),
    ("auth_type = kerberos-of-mars\n", "NoMatchingPlugin: The plugin kerberos-of-mars could not be found"),
    ("auth_section = nowhere\n", "[agent_auth] auth_type: no value (here or in the auth_section 'nowhere')"),
    (f"{KEYSTONE_USER}insecure = maybe\n", "Unexpected boolean value 'maybe'"),
], ids=["no-auth-url", "unknown-plugin", "empty-auth-section", "bad-boolean"])
def test_a_bad_agent_auth_is_a_configuration_error(tmp_path: Path, section: str, says: str) -> None:
    conf = _write(tmp_path, "neutron.conf", f"[agent_auth]\n{section}")
    with pytest.raises(ConfigError) as error:
        keystone_session(load_agent([conf]))
    assert str(error.value).startswith(f"{conf}: [agent_auth]") and says in str(error.value)


def test_an_agent_without_agent_auth_does_not_load_keystoneauth(tmp_path: Path) -> None:
    """keystoneauth1 and oslo.config cost memory: only an agent with ``[agent_auth]`` imports them."""
    conf = _write(tmp_path, "neutron.conf", "[baryon]\nagent_shared_secret = x\n")
    code = ("import sys\nimport baryon.cli.agent, baryon.agent.client, baryon.agent.runtime\n"
            "from baryon.config.agent import keystone_session, load_agent\n"
            f"assert keystone_session(load_agent([{conf!r}])) is None\n"
            "print(sorted(m for m in sys.modules if m.startswith(('keystoneauth1', 'oslo_config'))))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "[]", (done.stdout, done.stderr)
