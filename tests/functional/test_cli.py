"""``baryon server`` and ``baryon db upgrade`` as an operator runs them, with Neutron's own files."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.support.samples import ML2_CONF
from tests.support.server import BARYON, BaryonServer



def run_server_expecting_exit(config_files: list[Path]) -> subprocess.CompletedProcess:
    args = [BARYON, "server"]
    for f in config_files:
        args += ["--config-file", str(f)]
    return subprocess.run(args, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_operator_ml2_conf_loads_unchanged(tmp_path: Path) -> None:
    server = BaryonServer(tmp_path)
    ml2 = tmp_path / "ml2_conf.ini"
    ml2.write_text(ML2_CONF)
    server.start_args = ["--config-file", str(ml2)]
    try:
        server.start()
        with httpx.Client(base_url=server.endpoint) as client:
            flat = client.post("/v2.0/networks", json={"network": {
                "name": "ext", "provider:network_type": "flat", "provider:physical_network": "physnet1"}})
            assert flat.status_code == 201, flat.text
            other = client.post("/v2.0/networks", json={"network": {
                "provider:network_type": "flat", "provider:physical_network": "physnet2"}})
            assert other.status_code == 400
            assert "physnet2" in other.json()["NeutronError"]["message"]
            tenant = client.post("/v2.0/networks", json={"network": {"name": "t"}}).json()["network"]
            assert (tenant["provider:network_type"], tenant["provider:segmentation_id"], tenant["mtu"]) == ("vxlan", 1, 1450)
            vlan = client.post("/v2.0/networks", json={"network": {"provider:network_type": "vlan"}})
            # network_vlan_ranges is empty: no VLAN to allocate, Neutron's NoNetworkAvailable
            assert (vlan.status_code, vlan.json()["NeutronError"]["type"]) == (503, "NoNetworkAvailable")
    finally:
        server.stop()
    log = server.log.read_text()
    assert "unknown option" not in log and "Traceback" not in log


def test_later_file_overrides_earlier_and_unknown_option_warns(tmp_path: Path) -> None:
    server = BaryonServer(tmp_path, extra="frobnicate = 3")
    override = tmp_path / "override.conf"
    override.write_text("[ml2_type_vxlan]\nvni_ranges = 500:600\n")
    first = tmp_path / "first.ini"
    first.write_text("[ml2_type_vxlan]\nvni_ranges = 1:10\n")
    server.start_args = ["--config-file", str(first), "--config-file", str(override)]
    try:
        server.start()
        net = httpx.post(server.endpoint + "/v2.0/networks", json={"network": {}}).json()["network"]
        assert net["provider:segmentation_id"] == 500
    finally:
        server.stop()
    assert f"{server.config}: [DEFAULT] unknown option 'frobnicate' ignored" in server.log.read_text()


@pytest.mark.parametrize("section, option, value", [
    ("DEFAULT", "bind_port", "ninety"),
    ("DEFAULT", "base_mac", "zz:16:3e:00:00:00"),
    ("ml2_type_vxlan", "vni_ranges", "1-1000"),
    ("ml2_type_vlan", "network_vlan_ranges", "physnet1:10:5"),
    ("ml2", "tenant_network_types", "gre"),
])
def test_invalid_value_stops_startup_naming_file_section_option(tmp_path: Path, section: str, option: str,
                                                                   value: str) -> None:
    bad = tmp_path / "bad.ini"
    bad.write_text(f"[{section}]\n{option} = {value}\n")
    result = run_server_expecting_exit([bad])
    assert result.returncode != 0
    assert f"{bad}: [{section}] {option}: invalid value" in result.stderr


def test_db_upgrade_creates_schema_once(tmp_path: Path) -> None:
    conf = tmp_path / "neutron.conf"
    conf.write_text(f"[DEFAULT]\nstate_path = {tmp_path / 'state'}\n")
    for _ in range(2):  # idempotent
        result = subprocess.run([BARYON, "db", "upgrade", "--config-file", str(conf)], capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0, result.stderr
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'state' / 'baryon.sqlite'}")
    with engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        assert {"networks", "subnets", "ports", "ip_allocations", "changes", "alembic_version"} <= tables
        assert conn.execute(sa.text("SELECT seq FROM change_counter")).scalar_one() == 0
    engine.dispose()


def test_an_unknown_firewall_driver_stops_the_agent_at_start(tmp_path: Path) -> None:
    conf = tmp_path / "openvswitch_agent.ini"
    conf.write_text("[securitygroup]\nfirewall_driver = openvswitch\n")
    proc = subprocess.run([BARYON, "agent", "ovs", "--config-file", str(conf)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "firewall_driver = 'openvswitch' is not supported: use iptables_hybrid" in proc.stderr
