"""The DHCP agent's planner: DHCP view + observed host + settings -> ``DhcpPlan`` (pure).

``plan(view, observed, settings)`` decides everything the DHCP agent does to its host; the agent
(``baryon.agent.dhcp_agent``) observes, plans, and hands the ops to the drivers
(``baryon.agent.drivers.netns``, ``.dnsmasq``, ``.ovsdb``). No I/O, no clock, no globals: equal
inputs give equal plans.

What is wanted, per network *served* here (in the view, with a ``dhcp_port``; see ``served``),
with Neutron's names and layout (``OVSInterfaceDriver`` with ``ovs_use_veth``):

- namespace ``qdhcp-<network id>``;
- a veth pair: ``tap<port id[:11]>`` in the node, up, on the integration bridge with Interface
  ``external_ids`` iface-id, attached-mac, iface-status=active (the node's OVS agent tags it with
  the network's local VLAN) and ``NETWORK_KEY=<network id>`` (how a later run recognises the ports
  of networks it no longer serves); ``ns-<port id[:11]>`` in the namespace with the port's MAC,
  the network's MTU, each fixed IP on a DHCP subnet with its subnet's prefix length, up, and a
  default route per IP version via the first DHCP subnet's gateway (as Neutron's DeviceManager);
- files ``host``, ``addn_hosts``, ``opts`` under ``<dhcp_confs>/<network id>/`` and one dnsmasq
  with its command line (``baryon.agent.plan.dnsmasq``).

What a network's ops are, compared to what is observed:

- nothing when the host already matches (an agent restart finds it so: no op, no restart);
- files that differ are rewritten (``WriteFiles``, atomically each) and a running dnsmasq with the
  same command line is sent SIGHUP (``ReloadDnsmasq``); dnsmasq re-reads the three files;
- a dnsmasq whose command line differs (MTU, a subnet added or removed, lease time, DNS domain),
  that runs outside the current namespace, or whose namespace or device is (re)created, is
  restarted (``RestartDnsmasq``); a dead one is started (``StartDnsmasq``, which also writes the
  initial lease file);
- devices and addresses are converged in place (``EnsureDevice``); a pair missing either end is
  recreated (``DeleteLink`` of the remaining end, then ``EnsureDevice(create=True)``); other links
  in the namespace are deleted (as Neutron's ``cleanup_stale_devices``).

Networks of ours no longer served (not in the view, or without ``dhcp_port``): dnsmasq stopped,
OVS port and node link deleted, namespace deleted, state directory removed, in that order (the
directory last: while it exists the network is known as ours). "Ours" means: a state directory
named by a network id under ``dhcp_confs``, or an integration bridge port carrying
``NETWORK_KEY``. A ``qdhcp-`` namespace with neither is left alone: it may belong to another agent
sharing the mount namespace (a test, another lab); Neutron's ``neutron-netns-cleanup`` is the
tool for strays.

Op order (the agent applies them in order, each run of consecutive OVSDB ops in one
transaction): stop dnsmasqs; ``DeletePort``s; delete links and namespaces, remove directories;
ensure namespaces, devices; write files; start, restart, reload dnsmasqs; ``EnsurePort``s. A port
leaves the bridge before its device is deleted (as Neutron's unplug) and joins it once its device
exists; dnsmasq may run before its port is on the bridge.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from baryon.agent.plan import dnsmasq
from baryon.agent.plan.dnsmasq import DnsmasqSettings
from baryon.model.dhcp import DhcpNetwork, DhcpView
from baryon.model.ovs import DeletePort, EnsurePort, ObservedPort

NS_PREFIX = "qdhcp-"
TAP_PREFIX, NS_DEVICE_PREFIX = "tap", "ns-"
PORT_ID_CHARS = 11  # tap + 11 = 14 bytes, Neutron's device name length
NETWORK_KEY = "baryon-dhcp-network"  # Interface external_ids key naming the network of a DHCP tap
_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def namespace_name(network_id: str) -> str:
    return NS_PREFIX + network_id


def device_names(port_id: str) -> tuple[str, str]:
    """(node end ``tap...``, namespace end ``ns-...``) of a DHCP port's veth pair."""
    return TAP_PREFIX + port_id[:PORT_ID_CHARS], NS_DEVICE_PREFIX + port_id[:PORT_ID_CHARS]


def is_network_id(name: str) -> bool:
    """A state directory's name that may be ours (Neutron's ``uuidutils.is_uuid_like``, lower case)."""
    return bool(_UUID_RE.match(name))


@dataclass(frozen=True)
class DhcpAgentSettings:
    dhcp_confs: str = "/var/lib/baryon/dhcp"  # Neutron's [DEFAULT] dhcp_confs ($state_path/dhcp)
    integration_bridge: str = "br-int"
    dnsmasq: DnsmasqSettings = field(default_factory=DnsmasqSettings)

    def directory(self, network_id: str) -> str:
        return f"{self.dhcp_confs.rstrip('/')}/{network_id}"


# ---------------------------------------------------------------- observed state


@dataclass(frozen=True, order=True)
class ObservedLink:
    name: str
    mac: str = ""
    mtu: int = 0
    up: bool = False
    addresses: tuple[str, ...] = ()  # "ip/prefixlen", global scope only (link-local is the kernel's), sorted
    gateways: tuple[str, ...] = ()  # next hops of the main table's default routes through it, sorted


@dataclass(frozen=True)
class ObservedDnsmasq:
    """A live dnsmasq whose command line names the network's pidfile."""

    pid: int
    argv: tuple[str, ...]
    in_namespace: bool = True  # its network namespace is the current qdhcp- one


@dataclass(frozen=True)
class ObservedNetwork:
    network_id: str
    namespace: bool = False  # qdhcp-<id> exists
    links: tuple[ObservedLink, ...] = ()  # in the namespace, lo excluded (observed for served networks)
    dnsmasq: ObservedDnsmasq | None = None
    files: tuple[tuple[str, str], ...] = ()  # (name, content) of the FILES that exist
    state_dir: bool = False

    def link(self, name: str) -> ObservedLink | None:
        return next((link for link in self.links if link.name == name), None)


@dataclass(frozen=True)
class ObservedDhcpHost:
    networks: tuple[ObservedNetwork, ...] = ()  # served ones, and every one with a state directory
    node_links: tuple[ObservedLink, ...] = ()  # the node's links named tap*
    ports: tuple[ObservedPort, ...] = ()  # the integration bridge's ports


# ---------------------------------------------------------------- ops


@dataclass(frozen=True)
class EnsureNamespace:
    """Create the namespace (loopback up, IPv6 router advertisements ignored) unless it exists."""

    name: str


@dataclass(frozen=True)
class DeleteNamespace:
    name: str


@dataclass(frozen=True)
class DeleteLink:
    """Delete a link (both ends of a veth go) in ``namespace``, or in the node when None; if_exists."""

    namespace: str | None
    name: str


@dataclass(frozen=True)
class EnsureDevice:
    """The DHCP port's veth pair: with ``create``, ``tap`` (node) and ``device`` (in ``namespace``)
    are created first (IPv6 off on ``tap``); then ``tap`` gets ``mtu`` and goes up, ``device`` gets
    tx checksumming off, ``mac``, ``mtu``, loses ``remove_addresses`` and ``remove_gateways``, gets
    ``add_addresses`` and the default routes ``gateways`` ((next hop, on-link)), and goes up last."""

    namespace: str
    tap: str
    device: str
    mac: str
    mtu: int
    create: bool = False
    add_addresses: tuple[str, ...] = ()
    remove_addresses: tuple[str, ...] = ()
    gateways: tuple[tuple[str, bool], ...] = ()
    remove_gateways: tuple[str, ...] = ()


@dataclass(frozen=True)
class WriteFiles:
    """Write each (name, content) under ``directory`` (created 0755), atomically (temp + rename)."""

    directory: str
    files: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class RemoveDirectory:
    directory: str


@dataclass(frozen=True)
class StartDnsmasq:
    """Write the initial ``leases`` file, run ``argv`` in ``namespace``; it daemonizes, writes ``pidfile``."""

    network_id: str
    namespace: str
    argv: tuple[str, ...]
    pidfile: str
    leases: str


@dataclass(frozen=True)
class RestartDnsmasq:
    """Stop ``pid`` (only if its command line names ``pidfile``), then as ``StartDnsmasq``."""

    network_id: str
    pid: int
    namespace: str
    argv: tuple[str, ...]
    pidfile: str
    leases: str


@dataclass(frozen=True)
class ReloadDnsmasq:
    """SIGHUP ``pid`` (only if its command line names ``pidfile``): it re-reads host, addn_hosts, opts."""

    network_id: str
    pid: int
    pidfile: str


@dataclass(frozen=True)
class StopDnsmasq:
    network_id: str
    pid: int
    pidfile: str


Op = (EnsureNamespace | DeleteNamespace | DeleteLink | EnsureDevice | WriteFiles | RemoveDirectory | StartDnsmasq
      | RestartDnsmasq | ReloadDnsmasq | StopDnsmasq | EnsurePort | DeletePort)


# ---------------------------------------------------------------- desired state


@dataclass(frozen=True)
class DesiredNetwork:
    network_id: str
    port_id: str
    namespace: str
    tap: str
    device: str
    mac: str
    mtu: int
    addresses: tuple[str, ...]  # "ip/prefixlen", in the port's order
    gateways: tuple[tuple[str, bool], ...]  # (next hop, on-link), at most one per IP version
    directory: str
    argv: tuple[str, ...]
    files: tuple[tuple[str, str], ...]  # (name, content) of FILES
    leases: str
    external_ids: tuple[tuple[str, str], ...]

    @property
    def pidfile(self) -> str:
        return f"{self.directory}/{dnsmasq.PIDFILE}"


@dataclass(frozen=True)
class DhcpPlan:
    ops: tuple[Op, ...]
    networks: tuple[DesiredNetwork, ...]  # served here, by id
    removed: tuple[str, ...] = ()  # networks of ours whose leftovers ``ops`` remove


def served(view: DhcpView) -> tuple[DhcpNetwork, ...]:
    """The view's networks this host serves: a DHCP port made, a DHCP-enabled subnet."""
    return tuple(n for n in sorted(view.networks, key=lambda n: n.id)
                 if n.dhcp_port is not None and any(s.enable_dhcp for s in n.subnets))


def _addresses(network: DhcpNetwork) -> tuple[str, ...]:
    assert network.dhcp_port is not None
    subnets = {s.id: s for s in network.subnets if s.enable_dhcp}
    found = []
    for subnet_id, address in network.dhcp_port.fixed_ips:
        if subnet_id in subnets:
            prefix = ipaddress.ip_network(subnets[subnet_id].cidr, strict=False).prefixlen
            found.append(f"{ipaddress.ip_address(address)}/{prefix}")
    return tuple(found)


def _gateways(network: DhcpNetwork, addresses: tuple[str, ...]) -> tuple[tuple[str, bool], ...]:
    """Neutron's ``_set_default_route``: per IP version, the first DHCP subnet's gateway (IPv6:
    not for a prefix of 0 or longer than 126, nor for a SLAAC/stateless one other than a /64)."""
    interfaces = [ipaddress.ip_interface(a) for a in addresses]
    found = []
    for version in (4, 6):
        for subnet in network.subnets:
            if subnet.ip_version != version or not subnet.enable_dhcp or not subnet.gateway_ip:
                continue
            prefix = ipaddress.ip_network(subnet.cidr, strict=False).prefixlen
            if version == 6:
                auto = (dnsmasq.IPV6_SLAAC, dnsmasq.DHCPV6_STATELESS)
                if prefix == 0 or prefix > 126:
                    continue
                if prefix != 64 and (subnet.ipv6_address_mode in auto or subnet.ipv6_ra_mode in auto):
                    continue
            gateway = ipaddress.ip_address(subnet.gateway_ip)
            onlink = not any(gateway in i.network for i in interfaces if i.version == version)
            found.append((str(gateway), onlink))
            break
    return tuple(found)


def desired(network: DhcpNetwork, view: DhcpView, settings: DhcpAgentSettings) -> DesiredNetwork:
    port = network.dhcp_port
    assert port is not None
    tap, device = device_names(port.id)
    directory = settings.directory(network.id)
    addresses = _addresses(network)
    files = (("host", dnsmasq.hosts_file(network)), ("addn_hosts", dnsmasq.addn_hosts_file(network)),
             ("opts", dnsmasq.opts_file(network)))
    mac = port.mac_address.lower()
    return DesiredNetwork(
        network_id=network.id, port_id=port.id, namespace=namespace_name(network.id), tap=tap, device=device,
        mac=mac, mtu=network.mtu, addresses=addresses, gateways=_gateways(network, addresses),
        directory=directory,
        argv=dnsmasq.command_line(network, settings.dnsmasq, directory, device, view.lease_duration),
        files=files, leases=dnsmasq.leases_file(network),
        external_ids=tuple(sorted({"attached-mac": mac, "iface-id": port.id, "iface-status": "active",
                                   NETWORK_KEY: network.id}.items())))


# ---------------------------------------------------------------- the plan


@dataclass
class _Ops:
    """The plan's ops by phase, concatenated in apply order at the end."""

    stop: list[Op] = field(default_factory=list)
    remove: list[Op] = field(default_factory=list)
    directories: list[Op] = field(default_factory=list)
    namespaces: list[Op] = field(default_factory=list)
    devices: list[Op] = field(default_factory=list)
    files: list[Op] = field(default_factory=list)
    processes: list[Op] = field(default_factory=list)
    delete_ports: list[Op] = field(default_factory=list)
    ensure_ports: list[Op] = field(default_factory=list)

    def ordered(self) -> tuple[Op, ...]:
        return (*self.stop, *self.delete_ports, *self.remove, *self.directories, *self.namespaces, *self.devices,
                *self.files, *self.processes, *self.ensure_ports)


def plan(view: DhcpView, observed: ObservedDhcpHost, settings: DhcpAgentSettings) -> DhcpPlan:
    """What to do so that this host serves DHCP for ``view`` (see the module docstring)."""
    wanted = tuple(desired(n, view, settings) for n in served(view))
    wanted_ids = {w.network_id for w in wanted}
    networks = {n.network_id: n for n in observed.networks}
    bridge = settings.integration_bridge
    ports_by_network: dict[str, list[ObservedPort]] = {}
    for port in sorted(observed.ports, key=lambda p: p.name):
        owner = dict(port.external_ids).get(NETWORK_KEY)
        if port.bridge == bridge and owner:
            ports_by_network.setdefault(owner, []).append(port)
    on_bridge = {p.name: p for p in observed.ports if p.bridge == bridge}
    node_links = {link.name: link for link in observed.node_links}
    ops = _Ops()
    for want in wanted:
        seen = networks.get(want.network_id, ObservedNetwork(want.network_id))
        stale = [p for p in ports_by_network.get(want.network_id, ()) if p.name != want.tap]
        _remove_ports(ops, stale, bridge, node_links)  # e.g. the tap of a DHCP port since replaced
        _serve(ops, want, seen, node_links, on_bridge, bridge)
    ours = {n.network_id for n in observed.networks if n.state_dir} | set(ports_by_network)
    removed = tuple(sorted(ours - wanted_ids))
    for network_id in removed:
        seen = networks.get(network_id, ObservedNetwork(network_id))
        _remove(ops, seen, settings.directory(network_id), ports_by_network.get(network_id, []), bridge, node_links)
    return DhcpPlan(ops=ops.ordered(), networks=wanted, removed=removed)


def _serve(ops: _Ops, want: DesiredNetwork, seen: ObservedNetwork, node_links: dict[str, ObservedLink],
           ports: dict[str, ObservedPort], bridge: str) -> None:
    """The ops for one served network (see the module docstring)."""
    fresh = not seen.namespace
    if fresh:
        ops.namespaces.append(EnsureNamespace(want.namespace))
    link = None if fresh else seen.link(want.device)
    tap = node_links.get(want.tap)
    created = link is None or tap is None
    if created:
        if tap is not None:
            ops.devices.append(DeleteLink(None, want.tap))
        if link is not None:
            ops.devices.append(DeleteLink(want.namespace, want.device))
    for other in seen.links if not fresh else ():
        if other.name != want.device:
            ops.devices.append(DeleteLink(want.namespace, other.name))
    device = _device_op(want, None if created else link, None if created else tap)
    if device is not None:
        ops.devices.append(device)
    observed_files = dict(seen.files)
    changed = tuple((name, content) for name, content in want.files if observed_files.get(name) != content)
    if changed:
        ops.files.append(WriteFiles(want.directory, changed))
    running = seen.dnsmasq
    if running is None:
        ops.processes.append(StartDnsmasq(want.network_id, want.namespace, want.argv, want.pidfile, want.leases))
    elif created or fresh or not running.in_namespace or running.argv != want.argv:
        ops.processes.append(RestartDnsmasq(want.network_id, running.pid, want.namespace, want.argv, want.pidfile,
                                            want.leases))
    elif changed:
        ops.processes.append(ReloadDnsmasq(want.network_id, running.pid, want.pidfile))
    port = ports.get(want.tap)
    if port is not None and created:
        # NOTE: a device re-created under an existing port's name: the port is deleted first (in
        # a transaction of its own, before the device goes) and added again afterwards. Deleted
        # and added in one transaction, ovs-vswitchd would see no change and keep reading the
        # dead device.
        ops.delete_ports.append(DeletePort(bridge, want.tap))
    if port is None or created or not set(want.external_ids) <= set(port.external_ids):
        ops.ensure_ports.append(EnsurePort(bridge, want.tap, external_ids=want.external_ids))


def _device_op(want: DesiredNetwork, link: ObservedLink | None, tap: ObservedLink | None) -> EnsureDevice | None:
    """``EnsureDevice`` to create the pair (``link``/``tap`` None) or to converge it; None if it matches."""
    gateways = {gw for gw, _ in want.gateways}
    if link is None or tap is None:
        return EnsureDevice(want.namespace, want.tap, want.device, want.mac, want.mtu, create=True,
                            add_addresses=want.addresses, gateways=want.gateways)
    add = tuple(a for a in want.addresses if a not in link.addresses)
    remove = tuple(a for a in link.addresses if a not in want.addresses)
    remove_gateways = tuple(gw for gw in link.gateways if gw not in gateways)
    if (not add and not remove and not remove_gateways and gateways == set(link.gateways) and link.up
            and link.mac == want.mac and link.mtu == want.mtu and tap.up and tap.mtu == want.mtu):
        return None
    return EnsureDevice(want.namespace, want.tap, want.device, want.mac, want.mtu, add_addresses=add,
                        remove_addresses=remove, gateways=want.gateways, remove_gateways=remove_gateways)


def _remove_ports(ops: _Ops, ports: list[ObservedPort], bridge: str, node_links: dict[str, ObservedLink]) -> None:
    for port in ports:
        if port.name in node_links:
            ops.remove.append(DeleteLink(None, port.name))
        ops.delete_ports.append(DeletePort(bridge, port.name))


def _remove(ops: _Ops, seen: ObservedNetwork, directory: str, ports: list[ObservedPort], bridge: str,
            node_links: dict[str, ObservedLink]) -> None:
    """Everything of a network no longer served, the state directory last."""
    if seen.dnsmasq is not None:
        ops.stop.append(StopDnsmasq(seen.network_id, seen.dnsmasq.pid, f"{directory}/{dnsmasq.PIDFILE}"))
    _remove_ports(ops, ports, bridge, node_links)
    if seen.namespace:
        ops.remove.append(DeleteNamespace(namespace_name(seen.network_id)))
    if seen.state_dir:
        ops.directories.append(RemoveDirectory(directory))
