"""``[securitygroup] firewall_driver``: Neutron's names, noop, and a clear refusal of the rest."""

from __future__ import annotations

import pytest

from baryon.agent.firewall import FirewallConfigError, HybridFirewall, NoopFirewall, from_settings
from baryon.config.agent import load_agent


def _settings(tmp_path, text: str):  # noqa: ANN001, ANN202
    path = tmp_path / "agent.ini"
    path.write_text(text)
    return load_agent([str(path)])


@pytest.mark.parametrize("name", ["iptables_hybrid",
                                  "neutron.agent.linux.iptables_firewall.OVSHybridIptablesFirewallDriver"])
def test_the_hybrid_driver_by_either_name(tmp_path, name: str) -> None:  # noqa: ANN001
    firewall = from_settings(_settings(tmp_path, f"[securitygroup]\nfirewall_driver = {name}\n"))
    assert isinstance(firewall, HybridFirewall) and firewall.hybrid_plug is True


@pytest.mark.parametrize("text", ["[securitygroup]\nfirewall_driver = noop\n",
                                  "[securitygroup]\nfirewall_driver = neutron.agent.firewall.NoopFirewallDriver\n",
                                  "[securitygroup]\nfirewall_driver = iptables_hybrid\nenable_security_group = false\n"])
def test_noop_filters_nothing(tmp_path, text: str) -> None:  # noqa: ANN001
    firewall = from_settings(_settings(tmp_path, text))
    assert isinstance(firewall, NoopFirewall) and firewall.name == "noop" and firewall.hybrid_plug is False


def test_the_default_is_the_hybrid_driver(tmp_path) -> None:  # noqa: ANN001
    assert isinstance(from_settings(_settings(tmp_path, "")), HybridFirewall)


@pytest.mark.parametrize("name", ["openvswitch", "iptables", "neutron.agent.linux.openvswitch_firewall.OVSFirewallDriver"])
def test_other_drivers_stop_the_agent_with_a_clear_message(tmp_path, name: str) -> None:  # noqa: ANN001
    with pytest.raises(FirewallConfigError, match=rf"firewall_driver = '{name}' is not supported: use iptables_hybrid"):
        from_settings(_settings(tmp_path, f"[securitygroup]\nfirewall_driver = {name}\n"))
