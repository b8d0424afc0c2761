"""Option tables: Neutron's section and option names, their types, defaults and parsers.

Each section is a frozen dataclass; each field carries its parser in ``metadata["parse"]``
(a function ``str -> value`` that raises ``ValueError`` with a human reason). The loader
(``loader.py``) fills these from INI files. Options that Neutron defines but Baryon does not
act on are listed in ``IGNORED`` so that an operator's real files load without warnings.

Where Baryon's default differs from Neutron's on purpose, the field says ``NOTE:``.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from typing import Any, Callable

# ---------------------------------------------------------------- parsers (str -> value)


def parse_str(raw: str) -> str:
    return raw.strip()


def parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("true", "yes", "on", "1"):
        return True
    if value in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"{raw!r} is not a boolean (true/false)")


def parse_int(raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise ValueError(f"{raw!r} is not an integer") from None


def parse_optional_int(raw: str) -> int | None:
    return None if raw.strip() == "" else parse_int(raw)


def parse_port(raw: str) -> int:
    port = parse_int(raw)
    if not 0 <= port <= 65535:
        raise ValueError(f"{port} is not a TCP port (0-65535)")
    return port


def parse_list(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def parse_ip(raw: str) -> str:
    try:
        return str(ipaddress.ip_address(raw.strip()))
    except ValueError:
        raise ValueError(f"{raw!r} is not an IP address") from None


def parse_host(raw: str) -> str:
    value = raw.strip()
    if not value:
        raise ValueError("empty host")
    return value


def parse_base_mac(raw: str) -> str:
    value = raw.strip().lower()
    parts = value.split(":")
    if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdef" for c in p) for p in parts):
        raise ValueError(f"{raw!r} is not a MAC address like fa:16:3e:00:00:00")
    if int(parts[0], 16) & 1:
        raise ValueError(f"{raw!r} is a multicast MAC address")
    return value


def parse_secret(raw: str) -> str:
    """A shared secret sent in an HTTP header: printable ASCII without spaces (empty: none)."""
    value = raw.strip()
    if any(not "!" <= c <= "~" for c in value):
        raise ValueError("a secret must be printable ASCII characters without spaces (it travels in an "
                         "HTTP header)")
    return value


def parse_choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip()
        if value not in choices:
            raise ValueError(f"{value!r} is not one of {', '.join(choices)}")
        return value

    return parse


@dataclass(frozen=True)
class VlanRange:
    """One entry of ``network_vlan_ranges``: a physnet, with a tenant VLAN range or none."""

    physical_network: str
    minimum: int | None = None
    maximum: int | None = None


def parse_vlan_ranges(raw: str) -> tuple[VlanRange, ...]:
    result = []
    for entry in parse_list(raw):
        parts = entry.split(":")
        if len(parts) == 1 and parts[0]:
            result.append(VlanRange(parts[0]))
            continue
        if len(parts) != 3 or not parts[0]:
            raise ValueError(f"{entry!r} is not <physical_network>[:<vlan_min>:<vlan_max>]")
        low, high = parse_int(parts[1]), parse_int(parts[2])
        if not 1 <= low <= high <= 4094:
            raise ValueError(f"{entry!r}: VLAN range must satisfy 1 <= min <= max <= 4094")
        result.append(VlanRange(parts[0], low, high))
    return tuple(result)


def parse_tunnel_ranges(raw: str) -> tuple[tuple[int, int], ...]:
    result = []
    for entry in parse_list(raw):
        parts = entry.split(":")
        if len(parts) != 2:
            raise ValueError(f"{entry!r} is not <vni_min>:<vni_max>")
        low, high = parse_int(parts[0]), parse_int(parts[1])
        if low > high:
            low, high = high, low  # NOTE: Neutron accepts reversed ranges and swaps them.
        if not 1 <= low <= high <= 2**24 - 1:
            raise ValueError(f"{entry!r}: VXLAN VNIs must be within 1-16777215")
        result.append((low, high))
    return tuple(result)


SUPPORTED_TYPES = ("flat", "vlan", "vxlan")
KNOWN_TYPES = ("local", "flat", "vlan", "gre", "vxlan", "geneve")


def parse_types(raw: str) -> tuple[str, ...]:
    types = parse_list(raw)
    for t in types:
        if t not in KNOWN_TYPES:
            raise ValueError(f"{t!r} is not a network type ({', '.join(KNOWN_TYPES)})")
    return types


def opt(parse: Callable[[str], Any], default: Any, help: str) -> Any:
    return field(default=default, metadata={"parse": parse, "help": help})


# ---------------------------------------------------------------- sections


@dataclass(frozen=True)
class DefaultSection:
    bind_host: str = opt(parse_host, "127.0.0.1", "address the API listens on")
    bind_port: int = opt(parse_port, 9696, "port the API listens on")
    auth_strategy: str = opt(parse_choice("noauth", "keystone"), "noauth", "noauth or keystone")
    # NOTE: Neutron's default is one worker per CPU; so is ours (None means "per CPU").
    api_workers: int | None = opt(parse_optional_int, None, "API worker processes (empty: one per CPU)")
    # NOTE: Neutron uses /var/lib/neutron; Baryon keeps its own state apart.
    state_path: str = opt(parse_str, "/var/lib/baryon", "where the embedded database and state live")
    base_mac: str = opt(parse_base_mac, "fa:16:3e:00:00:00", "first 3 octets fixed, the rest random")
    global_physnet_mtu: int = opt(parse_int, 1500, "MTU of the underlying physical network")
    # NOTE: Neutron's default is False; every real deployment turns it on, and so do we.
    allow_overlapping_ips: bool = opt(parse_bool, True, "allow the same CIDR in different networks")
    max_dns_nameservers: int = opt(parse_int, 5, "maximum DNS nameservers per subnet")
    max_subnet_host_routes: int = opt(parse_int, 20, "maximum host routes per subnet")
    max_allowed_address_pair: int = opt(parse_int, 10, "maximum allowed address pairs per port")
    max_fixed_ips_per_port: int = opt(parse_int, 5, "maximum fixed IPs per port")
    dns_domain: str = opt(parse_str, "openstacklocal", "domain for port DNS names")
    pagination_max_limit: int = opt(parse_int, -1, "page size cap (-1: none)")
    dhcp_agents_per_network: int = opt(parse_int, 1, "DHCP agents serving each network")
    dhcp_lease_duration: int = opt(parse_int, 86400, "DHCP lease time in seconds (-1: infinite)")
    network_auto_schedule: bool = opt(parse_bool, True, "a DHCP agent that starts takes the networks lacking agents")
    allow_automatic_dhcp_failover: bool = opt(parse_bool, True, "networks leave DHCP agents dead for long")
    router_auto_schedule: bool = opt(parse_bool, True, "an L3 agent that starts takes the routers lacking one")
    allow_automatic_l3agent_failover: bool = opt(
        parse_bool, False, "routers leave L3 agents dead for long (2 x agent_down_time) for a live one")
    agent_down_time: int = opt(parse_int, 75, "seconds without a heartbeat before an agent is dead")
    enable_new_agents: bool = opt(parse_bool, True, "agents start enabled (admin_state_up) when they register")
    max_routes: int = opt(parse_int, 30, "maximum extra routes per router")
    enable_snat_by_default: bool = opt(parse_bool, True, "SNAT on a new router gateway unless enable_snat says otherwise")


def default_connection(state_path: str) -> str:
    return "sqlite:///" + os.path.join(state_path, "baryon.sqlite")


@dataclass(frozen=True)
class DatabaseSection:
    # NOTE: empty means the embedded SQLite database under state_path.
    connection: str = opt(parse_str, "", "SQLAlchemy URL of the database")
    # NOTE: together 40, the API's thread pool: an agent fleet's reports come in bursts, and a
    # connection made and dropped per request cost more than the request (bench/RESULTS.md).
    max_pool_size: int = opt(parse_int, 30, "connections kept per API worker")
    max_overflow: int = opt(parse_int, 10, "extra connections per API worker under load")
    pool_timeout: int = opt(parse_int, 30, "seconds to wait for a pooled connection")


@dataclass(frozen=True)
class Ml2Section:
    # NOTE: Neutron also lists local, gre and geneve; Baryon implements flat, vlan and vxlan.
    type_drivers: tuple[str, ...] = opt(parse_types, ("flat", "vlan", "vxlan"), "network types")
    # NOTE: Neutron's default is "local"; ours is the ML2/OVS deployment's choice.
    tenant_network_types: tuple[str, ...] = opt(parse_types, ("vxlan",), "types for project networks, in order")
    mechanism_drivers: tuple[str, ...] = opt(parse_list, ("openvswitch", "l2population"), "mechanism drivers")
    # NOTE: Neutron's default is none; port_security is what the ML2/OVS deployment loads.
    extension_drivers: tuple[str, ...] = opt(parse_list, ("port_security",), "extension drivers")
    path_mtu: int = opt(parse_int, 0, "MTU of the overlay's underlay path (0: global_physnet_mtu)")
    physical_network_mtus: tuple[str, ...] = opt(parse_list, (), "<physnet>:<mtu> overrides")
    overlay_ip_version: int = opt(parse_int, 4, "IP version of the tunnel endpoints (4 or 6)")


@dataclass(frozen=True)
class Ml2TypeFlatSection:
    flat_networks: tuple[str, ...] = opt(parse_list, ("*",), "physnets for flat networks ('*': any)")


@dataclass(frozen=True)
class Ml2TypeVlanSection:
    network_vlan_ranges: tuple[VlanRange, ...] = opt(parse_vlan_ranges, (), "<physnet>[:<min>:<max>],...")


@dataclass(frozen=True)
class Ml2TypeVxlanSection:
    # NOTE: Neutron's default is none (so no project network can be created); ours is the seed's.
    vni_ranges: tuple[tuple[int, int], ...] = opt(parse_tunnel_ranges, ((1, 1000),), "<min>:<max>,... for project networks")
    vxlan_group: str = opt(parse_str, "", "multicast group (unused: Baryon uses l2population)")


@dataclass(frozen=True)
class QuotasSection:
    """Neutron's per-project defaults; -1 means unlimited."""

    default_quota: int = opt(parse_int, -1, "default for resources without their own option")
    quota_network: int = opt(parse_int, 100, "networks per project")
    quota_subnet: int = opt(parse_int, 100, "subnets per project")
    quota_port: int = opt(parse_int, 500, "ports per project")
    quota_router: int = opt(parse_int, 10, "routers per project")
    quota_floatingip: int = opt(parse_int, 50, "floating IPs per project")
    quota_security_group: int = opt(parse_int, 10, "security groups per project")
    quota_security_group_rule: int = opt(parse_int, 100, "security group rules per project")
    quota_rbac_policy: int = opt(parse_int, 10, "RBAC policies per project")


@dataclass(frozen=True)
class BaryonSection:
    """Baryon's own server options (the agents read their own ``[baryon]`` options: config/agent.py)."""

    # NOTE: the lab sets it for its own server, and hands that server descriptors of the machine's
    # namespaces, where the debug tool reaches the lab's nodes (baryon.lab.server). Empty (the
    # default): GET /topology/debug/port/{id} answers 404 LabNotConfigured.
    lab_state_dir: str = opt(parse_str, "", "a lab's state directory, for the topology page's baryon debug port")
    # NOTE: the same option, in the same section, as the agents' (config/agent.py): an all-in-one
    # node shares one neutron.conf, as Neutron's metadata_proxy_shared_secret is shared by the
    # metadata agent and Nova. Kept out of repr() so that a logged Settings does not show it.
    agent_shared_secret: str = field(default="", repr=False, metadata={"parse": parse_secret, "help": (
        "the secret every request of the agent API (/agent/v1) must carry (Authorization: Bearer <secret>); "
        "empty: the agent API is open with auth_strategy = noauth, and refused with keystone")})


@dataclass(frozen=True)
class OsloMiddlewareSection:
    """oslo.middleware's options that Baryon acts on (``[oslo_middleware]`` of neutron.conf)."""

    # A larger body is refused with 413 before it is parsed (baryon.api.sizelimit); Neutron's default.
    max_request_body_size: int = opt(parse_int, 114688, "the largest request body accepted, in bytes")


SECTIONS: dict[str, type] = {
    "DEFAULT": DefaultSection,
    "database": DatabaseSection,
    "ml2": Ml2Section,
    "ml2_type_flat": Ml2TypeFlatSection,
    "ml2_type_vlan": Ml2TypeVlanSection,
    "ml2_type_vxlan": Ml2TypeVxlanSection,
    "quotas": QuotasSection,
    "baryon": BaryonSection,
    "oslo_middleware": OsloMiddlewareSection,
}

# Options that Neutron defines in these sections and Baryon accepts without acting on them,
# so an operator's neutron.conf / ml2_conf.ini loads without a warning per line.
IGNORED: dict[str, frozenset[str]] = {
    "DEFAULT": frozenset(
        """core_plugin service_plugins transport_url debug verbose log_dir log_file use_syslog
        use_stderr log_config_append host rpc_response_timeout rpc_workers rpc_state_report_workers
        notify_nova_on_port_status_changes notify_nova_on_port_data_changes interface_driver
        ipam_driver api_paste_config policy_file router_distributed l3_ha network_scheduler_driver
        dhcp_load_type max_l3_agents_per_router dns_domain_for_ports vlan_transparent filter_validation
        control_exchange executor_thread_pool_size periodic_interval api_extensions_path
        allow_bulk allow_pagination allow_sorting max_header_line wsgi_keep_alive
        state_path_lock lock_path default_availability_zones mac_generation_retries""".split()
    ),
    "database": frozenset(
        """connection_recycle_time max_retries retry_interval db_max_retries mysql_sql_mode
        sqlite_synchronous idle_timeout min_pool_size connection_debug slave_connection
        backend db_inc_retry_interval db_max_retry_interval db_retry_interval""".split()
    ),
    "ml2": frozenset(["external_network_type", "tenant_network_types_default"]),
    "ml2_type_flat": frozenset(),
    "ml2_type_vlan": frozenset(),
    "ml2_type_vxlan": frozenset(),
    "quotas": frozenset(["quota_driver", "track_quota_usage", "quota_items"]),
    "oslo_middleware": frozenset(["enable_proxy_headers_parsing", "http_basic_auth_user_file"]),
    "baryon": frozenset(["server_url", "ovs_rundir", "metrics_host", "ovs_metrics_port", "dhcp_metrics_port",
                         "l3_metrics_port"]),  # the agents' (an all-in-one node shares the file)
}
