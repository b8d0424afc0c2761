"""What one network's dnsmasq is told, in Neutron's formats (pure: text in, text out).

For a ``DhcpNetwork`` of the view, Neutron's ``neutron.agent.linux.dhcp.Dnsmasq`` renders a
command line and three files, which dnsmasq reads at start and again on SIGHUP; these functions
render the same, byte for byte where Neutron's choices apply (tags ``subnet-<id>`` and
``port-<id>``, the fqdn with its trailing dot, IPv6 in brackets, the opts file without a final
newline):

- ``host`` (``--dhcp-hostsfile``): one static lease per line, ``<mac>,<fqdn>,<ip>``; with
  ``,set:port-<id>`` when the port has extra DHCP options, ``id:<client id>`` after the MAC when one
  of them is the client identifier; DHCPv6 lines carry ``tag:dhcpv6,`` (dnsmasq sets that tag on
  DHCPv6 requests only, so a dual-stack MAC's IPv4 line is not taken for DHCPv6) and the address in
  brackets. SLAAC and DHCPv6-stateless addresses get no lease (a stateless one gets
  ``<mac>,tag:dhcpv6,set:port-<id>`` when the port has options); addresses on DHCP-disabled
  subnets neither.
- ``addn_hosts`` (``--addn-hosts``): ``<ip>\\t<fqdn> <hostname>`` for every address of every port
  (the fqdn first: dnsmasq answers PTR queries with the first name).
- ``opts`` (``--dhcp-optsfile``): per DHCP subnet (SLAAC excluded) ``dns-server`` (when the
  subnet has ``dns_nameservers``; ``0.0.0.0``/``::`` alone: announce none), for IPv6
  ``domain-search``, for IPv4 the classless static routes (``classless-static-route`` and the same
  as option ``249`` for Windows), ``router``; then each port's extra options, tagged ``port-<id>``.
  Routes, as Neutron: the subnet's ``host_routes`` (a ``0.0.0.0/0`` route stands in for a missing
  gateway), the other IPv4 subnets of the network on-link (``<cidr>,0.0.0.0``, first), the
  metadata address via the gateway when a router interface holds the gateway (the subnet is not
  "isolated"); when any route is there, the default route via the gateway is added last (a
  client that gets option 121 ignores option 3). No gateway: an empty ``router`` option (none).
- ``leases`` (``--dhcp-leasefile``), written only before dnsmasq starts: ``0 <mac> <ip> * *``
  for every IPv4 static lease, so that a restarted (or rescheduled) dnsmasq does not NAK the
  renewal of a lease it did not hand out.

Hostnames: the view gives each port one ``hostname``: Neutron's ``host-10-0-0-5`` (derived from
an address) or the port's ``dns_name``. When it is the derived kind, each address gets its own
derived name (``host-fd00--5`` for ``fd00::5``), as Neutron's ``dns_assignment`` does; a
``dns_name`` names every address of the port.

Ports whose owner needs no DHCP configuration (``DHCP_CONFIG_NOT_REQUIRED_OWNERS``: router
gateways, floating IPs, HA and SNAT router ports) are left out of all files.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass

from baryon.model.dhcp import DhcpNetwork, DhcpPort, DhcpSubnet

DEVICE_OWNER_DHCP = "network:dhcp"
ROUTER_INTERFACE_OWNERS = frozenset({"network:router_interface", "network:ha_router_replicated_interface",
                                     "network:router_interface_distributed"})
# NOTE: neutron-lib's DHCP_CONFIG_NOT_REQUIRED_OWNERS: ports that never ask for a lease and
# whose names dnsmasq need not resolve (router interfaces stay: their names resolve).
DHCP_CONFIG_NOT_REQUIRED_OWNERS = frozenset({
    "network:router_gateway", "network:floatingip", "network:floatingip_agent_gateway",
    "network:router_ha_interface", "network:router_centralized_snat"})
DHCPV6_STATEFUL, DHCPV6_STATELESS, IPV6_SLAAC = "dhcpv6-stateful", "dhcpv6-stateless", "slaac"
CLIENT_ID_OPTIONS = frozenset({"client-id", "61"})
HOST_DHCPV6_TAG = "tag:dhcpv6,"
METADATA_CIDR = "169.254.169.254/32"
IPV4_ANY = "0.0.0.0/0"
WIN2K3_STATIC_DNS = 249
FILES = ("host", "addn_hosts", "opts")  # rewritten on every change, re-read by dnsmasq on SIGHUP
PIDFILE, LEASES = "pid", "leases"


@dataclass(frozen=True)
class DnsmasqSettings:
    """The DHCP agent's options that shape dnsmasq (Neutron's ``[DEFAULT]`` names and defaults)."""

    dnsmasq_dns_servers: tuple[str, ...] = ()  # forwarders (--server); none: dnsmasq answers only its own names
    dnsmasq_local_resolv: bool = False  # forward to the namespace's resolv.conf when there are no servers
    dnsmasq_lease_max: int = 2 ** 24
    dnsmasq_config_file: str = ""  # "" -> /dev/null
    dhcp_renewal_time: int = 0  # T1 in seconds (0: dnsmasq's default)
    dhcp_rebinding_time: int = 0  # T2
    dhcp_broadcast_reply: bool = False


@dataclass(frozen=True)
class HostEntry:
    """One address of one port, as Neutron's ``_iter_hosts`` yields it."""

    port: DhcpPort
    subnet_id: str
    address: str
    hostname: str
    fqdn: str
    no_dhcp: bool  # SLAAC or DHCPv6-stateless: no lease for this address
    no_opts: bool  # SLAAC: no options either
    tag: str  # HOST_DHCPV6_TAG for IPv6 addresses, else ""


# ---------------------------------------------------------------- names


def derived_hostname(address: str) -> str:
    """Neutron's hostname for an address without a ``dns_name``: ``host-10-0-0-5``, ``host-fd00--5``."""
    return "host-" + address.replace(".", "-").replace(":", "-")


def domain_of(network: DhcpNetwork) -> str:
    """The network's DNS domain without its trailing dot ("" when none)."""
    return network.dns_domain.strip().rstrip(".")


def _names(port: DhcpPort, address: str, domain: str) -> tuple[str, str]:
    derived = {derived_hostname(a) for _, a in port.fixed_ips}
    hostname = port.hostname if port.hostname and port.hostname not in derived else derived_hostname(address)
    return hostname, (f"{hostname}.{domain}." if domain else hostname)


def _bracketed(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def _version(address: str) -> int:
    return ipaddress.ip_address(address).version


# ---------------------------------------------------------------- hosts


def needs_configuration(port: DhcpPort) -> bool:
    return not port.device_owner or port.device_owner not in DHCP_CONFIG_NOT_REQUIRED_OWNERS


def host_entries(network: DhcpNetwork) -> Iterator[HostEntry]:
    """Every address of every port that needs DHCP configuration, in the view's port order;
    within a port, DHCPv6-stateless addresses first (dnsmasq reads a MAC's lines from the end: an
    address-less line read first would make it answer "no address available")."""
    v6 = {s.id: s for s in network.subnets if s.ip_version == 6}
    domain = domain_of(network)
    for port in network.ports:
        if not needs_configuration(port):
            continue
        fixed = sorted(port.fixed_ips, key=lambda ip: ip[0] in v6 and v6[ip[0]].ipv6_address_mode == DHCPV6_STATELESS,
                       reverse=True)
        for subnet_id, address in fixed:
            no_dhcp = no_opts = False
            tag = ""
            if subnet_id in v6:
                mode = v6[subnet_id].ipv6_address_mode
                no_dhcp = mode in (IPV6_SLAAC, DHCPV6_STATELESS)
                no_opts = mode == IPV6_SLAAC
                tag = HOST_DHCPV6_TAG
            hostname, fqdn = _names(port, address, domain)
            yield HostEntry(port, subnet_id, address, hostname, fqdn, no_dhcp, no_opts, tag)


def client_id(port: DhcpPort) -> str | None:
    return next((o.opt_value for o in port.extra_dhcp_opts if o.opt_name in CLIENT_ID_OPTIONS), None)


def hosts_file(network: DhcpNetwork) -> str:
    dhcp_subnets = {s.id for s in network.subnets if s.enable_dhcp}
    lines = []
    for entry in host_entries(network):
        port = entry.port
        port_tag = f"set:port-{port.id}"
        if entry.no_dhcp:
            if not entry.no_opts and port.extra_dhcp_opts:
                lines.append(f"{port.mac_address},{entry.tag}{port_tag}")
            continue
        if entry.subnet_id not in dhcp_subnets:
            continue
        head = f"{port.mac_address},{entry.tag}"
        address = _bracketed(entry.address)
        if not port.extra_dhcp_opts:
            lines.append(f"{head}{entry.fqdn},{address}")
            continue
        cid = client_id(port)
        if cid and len(port.extra_dhcp_opts) > 1:
            lines.append(f"{head}id:{cid},{entry.fqdn},{address},{port_tag}")
        elif cid:
            lines.append(f"{head}id:{cid},{entry.fqdn},{address}")
        else:
            lines.append(f"{head}{entry.fqdn},{address},{port_tag}")
    return "".join(line + "\n" for line in lines)


def addn_hosts_file(network: DhcpNetwork) -> str:
    return "".join(f"{e.address}\t{e.fqdn} {e.hostname}\n" for e in host_entries(network))


def leases_file(network: DhcpNetwork) -> str:
    """The initial lease file: an infinite (0) lease for each IPv4 static lease."""
    v4_dhcp = {s.id for s in network.subnets if s.enable_dhcp and s.ip_version == 4}
    return "".join(f"0 {e.port.mac_address} {e.address} * *\n" for e in host_entries(network)
                   if not e.no_dhcp and e.subnet_id in v4_dhcp)


# ---------------------------------------------------------------- options


def format_option(ip_version: int, tag: str, option: str | int, *values: str) -> str:
    """Neutron's ``_format_option``: ``tag:<tag>[,tag:<extra>],option[6]:<name>|<number>,values``
    (each value cut at its first newline: a value cannot inject another line)."""
    option = str(option).split("\n", 1)[0]
    extra = None
    if option.startswith("tag:") and "," in option:
        extra, option = option.rsplit(",", 1)
    if ip_version == 6:
        option = f"option6:{option}"
    elif not option.isdigit():
        option = f"option:{option}"
    parts = [f"tag:{tag}", *([extra] if extra else []), option]
    return ",".join(parts + [v.split("\n", 1)[0] for v in values])


def _isolated(network: DhcpNetwork) -> set[str]:
    """Subnets whose gateway address no router interface holds (Neutron's "isolated" subnets)."""
    gateways = {s.id: s.gateway_ip for s in network.subnets}
    attached = {sid for p in network.ports if p.device_owner in ROUTER_INTERFACE_OWNERS
                for sid, address in p.fixed_ips if gateways.get(sid) == address}
    return {s.id for s in network.subnets if s.id not in attached}


def _dns_servers_option(subnet: DhcpSubnet) -> str:
    tag = f"subnet-{subnet.id}"
    servers = subnet.dns_nameservers
    any_address = "0.0.0.0" if subnet.ip_version == 4 else "::"
    if all(server == any_address for server in servers):
        return format_option(subnet.ip_version, tag, "dns-server")  # announce no DNS server
    return format_option(subnet.ip_version, tag, "dns-server", ",".join(_bracketed(s) for s in servers))


def _v4_route_options(network: DhcpNetwork, subnet: DhcpSubnet, isolated: set[str]) -> list[str]:
    tag = f"subnet-{subnet.id}"
    gateway = subnet.gateway_ip
    routes = []
    for route in subnet.host_routes:
        if route.destination == IPV4_ANY:
            gateway = gateway or route.nexthop
        else:
            routes.append(f"{route.destination},{route.nexthop}")
    if subnet.id not in isolated and gateway:
        routes.append(f"{METADATA_CIDR},{gateway}")
    for other in network.subnets:
        if other.ip_version == 4 and other.cidr != subnet.cidr:
            routes.insert(0, f"{other.cidr},0.0.0.0")
    options = []
    if routes:
        if gateway:
            routes.append(f"{IPV4_ANY},{gateway}")
        options.append(format_option(4, tag, "classless-static-route", ",".join(routes)))
        options.append(format_option(4, tag, WIN2K3_STATIC_DNS, ",".join(routes)))
    options.append(format_option(4, tag, "router", gateway) if gateway else format_option(4, tag, "router"))
    return options


def _subnet_options(network: DhcpNetwork) -> tuple[list[str], set[str]]:
    """The per-subnet options, and the subnets without ``dns_nameservers``."""
    options: list[str] = []
    without_servers: set[str] = set()
    isolated = _isolated(network)
    domain = domain_of(network)
    for subnet in network.subnets:
        if not subnet.enable_dhcp or (subnet.ip_version == 6 and subnet.ipv6_address_mode == IPV6_SLAAC):
            continue
        if subnet.dns_nameservers:
            options.append(_dns_servers_option(subnet))
        else:
            without_servers.add(subnet.id)  # dnsmasq announces itself
        if domain and subnet.ip_version == 6:
            options.append(format_option(6, f"subnet-{subnet.id}", "domain-search", domain))
        if subnet.ip_version == 4:
            options += _v4_route_options(network, subnet, isolated)
    return options, without_servers


def _port_options(network: DhcpNetwork, without_servers: set[str]) -> list[str]:
    options: list[str] = []
    dhcp_ips: dict[str, list[str]] = {}
    for port in network.ports:
        versions = {_version(address) for _, address in port.fixed_ips}
        for opt in port.extra_dhcp_opts:
            if opt.opt_name in CLIENT_ID_OPTIONS or opt.ip_version not in versions:
                continue
            options.append(format_option(opt.ip_version, f"port-{port.id}", opt.opt_name, opt.opt_value))
        if port.device_owner == DEVICE_OWNER_DHCP:
            for subnet_id, address in port.fixed_ips:
                if subnet_id in without_servers:
                    dhcp_ips.setdefault(subnet_id, []).append(address)
    # Several DHCP servers on a subnet without DNS servers: announce all of them (each announces
    # only itself by default).
    for subnet_id, ips in dhcp_ips.items():
        for version in (4, 6):
            same = [ip for ip in ips if _version(ip) == version]
            if len(same) > 1:
                options.append(format_option(version, f"subnet-{subnet_id}", "dns-server",
                                             ",".join(_bracketed(ip) for ip in same)))
    return options


def opts_file(network: DhcpNetwork) -> str:
    options, without_servers = _subnet_options(network)
    return "\n".join(options + _port_options(network, without_servers))


# ---------------------------------------------------------------- the command line


def _range_mode(subnet: DhcpSubnet) -> str | None:
    if subnet.ip_version == 4:
        return "static"
    mode, ra_mode = subnet.ipv6_address_mode, subnet.ipv6_ra_mode
    if mode in (DHCPV6_STATEFUL, DHCPV6_STATELESS) or (not mode and not ra_mode):
        return "static"
    return None  # SLAAC: router advertisements only, no DHCPv6


def command_line(network: DhcpNetwork, settings: DnsmasqSettings, directory: str, interface: str,
                 lease_duration: int) -> tuple[str, ...]:
    """dnsmasq's argv (argv[0] "dnsmasq"), Neutron's ``_build_cmdline_callback`` for this network."""
    lease = "infinite" if lease_duration == -1 else f"{lease_duration}s"
    argv = ["dnsmasq", "--no-hosts"]
    if settings.dnsmasq_dns_servers or not settings.dnsmasq_local_resolv:
        argv.append("--no-resolv")
    argv += [f"--pid-file={directory}/{PIDFILE}", f"--dhcp-hostsfile={directory}/host",
             f"--addn-hosts={directory}/addn_hosts", f"--dhcp-optsfile={directory}/opts",
             f"--dhcp-leasefile={directory}/{LEASES}", "--dhcp-match=set:ipxe,175",
             "--dhcp-userclass=set:ipxe6,iPXE", "--local-service", "--bind-dynamic", f"--interface={interface}"]
    possible_leases = 0
    for subnet in network.subnets:
        mode = _range_mode(subnet) if subnet.enable_dhcp else None
        if mode is None:
            continue
        cidr = ipaddress.ip_network(subnet.cidr, strict=False)
        if subnet.ip_version == 4:
            argv.append(f"--dhcp-range=set:subnet-{subnet.id},{cidr.network_address},{mode},{cidr.netmask},{lease}")
        else:
            if cidr.prefixlen < 64:
                continue  # as Neutron: dnsmasq cannot serve a DHCPv6 range wider than a /64
            argv.append(f"--dhcp-range=set:subnet-{subnet.id},{cidr.network_address},{mode},{cidr.prefixlen},{lease}")
        possible_leases += cidr.num_addresses
    if network.mtu > 0:
        argv.append(f"--dhcp-option-force=option:mtu,{network.mtu}")
    argv.append(f"--dhcp-lease-max={min(possible_leases, settings.dnsmasq_lease_max)}")
    if settings.dhcp_renewal_time > 0:
        argv.append(f"--dhcp-option-force=option:T1,{settings.dhcp_renewal_time}s")
    if settings.dhcp_rebinding_time > 0:
        argv.append(f"--dhcp-option-force=option:T2,{settings.dhcp_rebinding_time}s")
    argv.append(f"--conf-file={settings.dnsmasq_config_file.strip() or '/dev/null'}")
    argv += [f"--server={server}" for server in settings.dnsmasq_dns_servers]
    domain = domain_of(network)
    if domain:
        argv.append(f"--domain={domain}")
    if settings.dhcp_broadcast_reply:
        argv.append("--dhcp-broadcast")
    return tuple(argv)
