"""The agents' options: Neutron's names in ``neutron.conf``, ``ml2_conf.ini`` / ``openvswitch_agent.ini``,
``dhcp_agent.ini``, ``l3_agent.ini``.

``load_agent(paths)`` returns ``AgentSettings``. An agent reads the same files as Neutron's:
``[DEFAULT]`` (shared with the server: its other options are accepted silently), ``[agent]``,
``[ovs]``, ``[securitygroup]`` and Baryon's ``[baryon]`` (where the server is, and the secret
that authenticates the agents to it: agents watch its change feed over HTTP instead of Neutron's
message queue) and ``[agent_auth]`` (the agents' Keystone service user, below). Sections of other
services (``[ml2]``, ``[database]`` ...) are ignored, as an agent of Neutron ignores them.

``[agent_auth]`` holds keystoneauth1's standard options, as nova.conf's ``[neutron]`` or
neutron.conf's ``[nova]`` hold them for a service's own user: ``auth_type = password``,
``auth_url``, ``username``, ``password``, ``project_name``, ``user_domain_name``,
``project_domain_name`` (any other keystoneauth1 plugin and its options work too, e.g.
``v3applicationcredential``), ``auth_section`` to take them from another section (``auth_section =
keystone_authtoken`` on a node whose neutron.conf already has the server's service user), and the
session's ``cafile``, ``certfile``, ``keyfile``, ``insecure``, ``timeout``. Without ``auth_type``
(nor ``auth_section``) no token is sent. Baryon's loader reads only those two names;
``keystone_session`` hands the files to oslo.config and keystoneauth1's own loader, which read the
rest as every OpenStack service does (so their spelling mistakes go unwarned there too).

NOTE: its own section, not ``[baryon]``: ``[baryon]`` is the server's as well and strictly checked,
while a plugin's options are open-ended; and not ``[keystone_authtoken]``: that is the server's
token validation, which compute nodes do not have.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

from baryon.config.loader import ConfigError, parse_sections
from baryon.config.options import opt, parse_bool, parse_int, parse_list, parse_port, parse_secret, parse_str


def parse_mappings(raw: str) -> tuple[tuple[str, str], ...]:
    """``physnet1:br-ex,physnet2:br-eth2`` -> ((physnet1, br-ex), ...); each physnet and bridge once."""
    pairs = []
    for item in parse_list(raw):
        physnet, sep, bridge = item.partition(":")
        physnet, bridge = physnet.strip(), bridge.strip()
        if not sep or not physnet or not bridge:
            raise ValueError(f"{item!r} is not <physical_network>:<bridge>")
        if len(bridge.encode()) > 15:
            raise ValueError(f"bridge name {bridge!r} is longer than 15 bytes")
        pairs.append((physnet, bridge))
    if len({p for p, _ in pairs}) != len(pairs) or len({b for _, b in pairs}) != len(pairs):
        raise ValueError(f"{raw!r} maps a physical network or a bridge twice")
    return tuple(pairs)


def parse_optional_ip(raw: str) -> str | None:
    import ipaddress

    value = raw.strip()
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"{raw!r} is not an IP address") from None


def parse_positive(raw: str) -> int:
    value = parse_int(raw)
    if value <= 0:
        raise ValueError(f"{value} must be greater than 0")
    return value


def parse_url(raw: str) -> str:
    value = raw.strip().rstrip("/")
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"{raw!r} is not an http:// or https:// URL")
    return value


def parse_nonnegative(raw: str) -> int:
    value = parse_int(raw)
    if value < 0:
        raise ValueError(f"{value} must not be negative")
    return value


def parse_agent_mode(raw: str) -> str:
    value = raw.strip()
    if value != "legacy":
        raise ValueError(f"{value!r} is not supported: only 'legacy' routers (no dvr, dvr_snat, dvr_no_external)")
    return value


@dataclass(frozen=True)
class AgentDefaultSection:
    host: str = opt(parse_str, "", "this host's name, as ports' binding:host_id name it (default: the hostname)")
    state_path: str = opt(parse_str, "/var/lib/baryon", "where the agent keeps its state")
    # The DHCP agent's (dhcp_agent.ini), with Neutron's names and defaults.
    dhcp_confs: str = opt(parse_str, "", "dnsmasq's files, one directory per network (default $state_path/dhcp)")
    dnsmasq_dns_servers: tuple[str, ...] = opt(parse_list, (), "upstream DNS servers of dnsmasq")
    dnsmasq_local_resolv: bool = opt(parse_bool, False, "let dnsmasq use the host's resolv.conf")
    dnsmasq_lease_max: int = opt(parse_positive, 2 ** 24, "dnsmasq --dhcp-lease-max")
    dnsmasq_config_file: str = opt(parse_str, "", "an extra dnsmasq configuration file")
    dhcp_renewal_time: int = opt(parse_nonnegative, 0, "DHCP option 58 (0: dnsmasq's default)")
    dhcp_rebinding_time: int = opt(parse_nonnegative, 0, "DHCP option 59 (0: dnsmasq's default)")
    dhcp_broadcast_reply: bool = opt(parse_bool, False, "broadcast DHCP replies")
    # The L3 agent's (l3_agent.ini), with Neutron's names and defaults.
    agent_mode: str = opt(parse_agent_mode, "legacy", "the L3 agent's mode (legacy only)")
    ra_confs: str = opt(parse_str, "", "radvd's files, one directory per router (default $state_path/ra)")
    send_arp_for_ha: int = opt(parse_nonnegative, 3, "gratuitous ARPs sent for a new gateway or floating IP "
                                                     "address (0: none)")
    min_rtr_adv_interval: int = opt(parse_positive, 30, "radvd MinRtrAdvInterval (seconds)")
    max_rtr_adv_interval: int = opt(parse_positive, 100, "radvd MaxRtrAdvInterval (seconds)")


@dataclass(frozen=True)
class AgentSection:
    report_interval: int = opt(parse_positive, 30, "seconds between heartbeats to the server")
    tunnel_types: tuple[str, ...] = opt(parse_list, (), "tunnel types this agent supports (vxlan)")
    l2_population: bool = opt(parse_bool, False, "use l2population (flood only to hosts of a network)")
    arp_responder: bool = opt(parse_bool, False, "answer ARP for remote ports locally in br-tun")
    vxlan_udp_port: int = opt(parse_positive, 4789, "UDP port of VXLAN tunnels")
    availability_zone: str = opt(parse_str, "nova", "availability zone the DHCP and L3 agents report "
                                                    "(the zone of the networks or routers they host)")


@dataclass(frozen=True)
class OvsSection:
    integration_bridge: str = opt(parse_str, "br-int", "the integration bridge")
    tunnel_bridge: str = opt(parse_str, "br-tun", "the tunnel bridge")
    bridge_mappings: tuple[tuple[str, str], ...] = opt(parse_mappings, (), "<physnet>:<bridge> list")
    local_ip: str | None = opt(parse_optional_ip, None, "this node's tunnel endpoint address")
    datapath_type: str = opt(parse_str, "system", "OVS datapath of the bridges (system or netdev)")
    ovsdb_connection: str = opt(parse_str, "tcp:127.0.0.1:6640", "the node's OVSDB server")
    ovsdb_timeout: int = opt(parse_positive, 10, "seconds to wait for an OVSDB answer")


@dataclass(frozen=True)
class SecurityGroupSection:
    firewall_driver: str = opt(parse_str, "iptables_hybrid", "the firewall driver")
    enable_security_group: bool = opt(parse_bool, True, "enforce security groups")


@dataclass(frozen=True)
class BaryonSection:
    server_url: str = opt(parse_url, "http://127.0.0.1:9696", "where agents reach the Baryon server")
    # NOTE: the server's option of the same name (config/options.py); out of repr() so that a
    # logged AgentSettings does not show it.
    agent_shared_secret: str = field(default="", repr=False, metadata={"parse": parse_secret, "help": (
        "the secret sent with every request to the server's agent API (Authorization: Bearer <secret>); "
        "must match the server's [baryon] agent_shared_secret (empty: none sent)")})
    ovs_rundir: str = opt(parse_str, "", "OVS run directory (bridges' .mgmt sockets); default $OVS_RUNDIR "
                                         "or /var/run/openvswitch")
    # Prometheus /metrics of each agent (baryon.agent.metrics): one port per kind, so that the
    # agents of a node can share one neutron.conf and one address.
    metrics_host: str = opt(parse_str, "127.0.0.1", "address the agents' /metrics endpoints listen on")
    ovs_metrics_port: int = opt(parse_port, 0, "port of the Open vSwitch agent's /metrics (0: none)")
    dhcp_metrics_port: int = opt(parse_port, 0, "port of the DHCP agent's /metrics (0: none)")
    l3_metrics_port: int = opt(parse_port, 0, "port of the L3 agent's /metrics (0: none)")

    def metrics_port(self, kind: str) -> int:
        """The /metrics port of the agent ``kind`` (ovs, dhcp, l3); 0: none."""
        return {"ovs": self.ovs_metrics_port, "dhcp": self.dhcp_metrics_port, "l3": self.l3_metrics_port}[kind]


@dataclass(frozen=True)
class AgentAuthSection:
    """``[agent_auth]``: only what tells whether it is configured (keystoneauth1 reads the rest)."""

    auth_type: str = opt(parse_str, "", "keystoneauth1 plugin of the agents' Keystone service user, e.g. "
                                        "password (empty: no token sent)")
    auth_section: str = opt(parse_str, "", "another section to read the plugin's options from")

    @property
    def configured(self) -> bool:
        return bool(self.auth_type or self.auth_section)


AUTH_GROUP = "agent_auth"
AGENT_SECTIONS: dict[str, type] = {
    "DEFAULT": AgentDefaultSection, "agent": AgentSection, "ovs": OvsSection,
    "securitygroup": SecurityGroupSection, "baryon": BaryonSection, AUTH_GROUP: AgentAuthSection,
}
AGENT_IGNORED: dict[str, frozenset[str]] = {
    "agent": frozenset("""polling_interval minimize_polling ovsdb_monitor_respawn_interval dont_fragment
        enable_distributed_routing drop_flows_on_start tunnel_csum extensions explicitly_egress_direct
        agent_type baremetal_smartnic veth_mtu log_agent_heartbeats""".split()),
    "ovs": frozenset("""of_interface ovsdb_interface of_listen_address of_listen_port of_connect_timeout
        of_request_timeout of_inactivity_probe use_veth_interconnection int_peer_patch_port
        tun_peer_patch_port tunnel_bridge_mappings resource_provider_bandwidths
        resource_provider_inventory_defaults vhostuser_socket_dir ssl_key_file ssl_cert_file
        ssl_ca_cert_file bridge_mac_table_size igmp_snooping_enable qos_meter_bandwidth
        openflow_processed_per_port""".split()),
    "securitygroup": frozenset(["enable_ipset", "permitted_ethertypes"]),
}


@dataclass(frozen=True)
class AgentSettings:
    DEFAULT: AgentDefaultSection = field(default_factory=AgentDefaultSection)
    agent: AgentSection = field(default_factory=AgentSection)
    ovs: OvsSection = field(default_factory=OvsSection)
    securitygroup: SecurityGroupSection = field(default_factory=SecurityGroupSection)
    baryon: BaryonSection = field(default_factory=BaryonSection)
    agent_auth: AgentAuthSection = field(default_factory=AgentAuthSection)
    config_files: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def host(self) -> str:
        return self.DEFAULT.host or socket.gethostname()


def load_agent(paths: list[str] | tuple[str, ...] = (),
               overrides: dict[str, dict[str, str]] | None = None) -> AgentSettings:
    built, warnings, sources, origin = parse_sections(paths, AGENT_SECTIONS, AGENT_IGNORED, overrides,
                                                      quiet=frozenset(["DEFAULT", AUTH_GROUP]))
    settings = AgentSettings(**built, config_files=sources, warnings=warnings)  # type: ignore[arg-type]
    for kind in settings.agent.tunnel_types:
        if kind != "vxlan":
            where = origin["agent"].get("tunnel_types", "<default>")
            raise ConfigError(f"{where}: [agent] tunnel_types: invalid value: {kind!r} tunnels are not supported "
                              "(vxlan only: this kernel has no GRE or GENEVE)")
    if settings.agent.tunnel_types and settings.ovs.local_ip is None:
        where = origin["agent"].get("tunnel_types", "<default>")
        raise ConfigError(f"{where}: [agent] tunnel_types: tunnelling needs [ovs] local_ip")
    return settings


def keystone_session(settings: AgentSettings, timeout: float = 10.0) -> Any:  # noqa: ANN401
    """The keystoneauth1 ``Session`` of ``[agent_auth]`` (None when it is not configured), or ``ConfigError``.

    Read from the agent's files by oslo.config and keystoneauth1's loader, as Nova reads its
    ``[neutron]``; nothing is sent to Keystone yet (the first request gets the token). ``timeout``:
    for Keystone's answers when ``[agent_auth] timeout`` is not set.
    NOTE: oslo.config and keystoneauth1 are imported only here, when configured (~10 MiB).
    """
    if not settings.agent_auth.configured:
        return None
    from keystoneauth1 import exceptions, loading
    from oslo_config import cfg

    conf = cfg.ConfigOpts()
    where = ", ".join(settings.config_files) or "<no file>"
    try:
        conf([], project="neutron", default_config_files=list(settings.config_files), default_config_dirs=[],
             validate_default_values=True)
        # NOTE: after the files are read: the auth options' group depends on auth_section's value.
        loading.register_auth_conf_options(conf, AUTH_GROUP)
        loading.register_session_conf_options(conf, AUTH_GROUP)
        auth = loading.load_auth_from_conf_options(conf, AUTH_GROUP)
        if auth is None:
            raise ConfigError(f"{where}: [{AUTH_GROUP}] auth_type: no value (here or in the auth_section "
                              f"{conf[AUTH_GROUP].auth_section!r})")
        return loading.load_session_from_conf_options(conf, AUTH_GROUP, auth=auth,
                                                      timeout=conf[AUTH_GROUP].timeout or timeout)
    except (exceptions.ClientException, cfg.Error) as exc:
        raise ConfigError(f"{where}: [{AUTH_GROUP}]: {type(exc).__name__}: {exc}") from None
