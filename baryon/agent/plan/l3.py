"""The L3 agent's planner: L3 view + observed host + settings -> ``L3Plan`` (pure).

``plan(view, observed, settings)`` decides everything the L3 agent does to its host; the agent
(``baryon.agent.l3_agent``) observes, plans, and hands the ops to the drivers
(``baryon.agent.drivers.netns``, ``.netfilter``, ``.radvd``, ``.ovsdb``). No I/O, no clock, no
globals: equal inputs give equal plans.

What is wanted, per router of the view (Neutron's legacy router, ``OVSInterfaceDriver`` with
``ovs_use_veth``):

- namespace ``qrouter-<router id>`` with ``SYSCTLS`` (forwarding on; IPv6 router advertisements
  ignored, set by the namespace driver before any device exists);
- per interface port a veth pair: ``tap<port id[:11]>`` in the node on the integration bridge,
  Interface ``external_ids`` iface-id, iface-status=active, attached-mac and ``ROUTER_KEY=<router
  id>`` (how the agent knows its own ports: the DHCP and OVS agents share the bridge), the node's
  OVS agent tags it; ``qr-<port id[:11]>`` in the namespace with the port's MAC and MTU, each
  fixed IP with its subnet's prefix length, up, tx checksumming off;
- the gateway port likewise, ``qg-<port id[:11]>`` (also on the integration bridge: the OVS agent
  tags it with the external network's local VLAN), with its fixed IPs and each wired floating IP
  as a host address (/32);
- routes in the main table: per IP version a default route via the gateway subnet's
  ``gateway_ip`` dev ``qg-`` (``onlink`` when no ``qg-`` address covers it); the extra routes;
- the nat table of ``baryon.agent.plan.l3_nat``;
- radvd when an interface has an IPv6 subnet with an RA mode (``baryon.agent.plan.radvd``): its
  config under ``<ra_confs>/<router id>/``.

Ops, compared to what is observed: nothing when the host matches (an agent restart finds it so:
no namespace, device, rule or radvd touched, NAT sessions kept). Devices converge in place
(``EnsureDevice`` when the link itself differs, ``EnsureAddresses`` when only addresses do); a pair
missing an end is recreated; links of the namespace that are not wanted are deleted. Routes are
removed and replaced to match (``EnsureRoutes``). The nat table is applied when it differs
(``ApplyNat``: the driver writes only the chains that differ, in one ``iptables-restore``). A
floating IP's DNAT rule added, gone or changed: the conntrack entries of its address are deleted
(``DeleteConntrack``), nothing else's (entries made before its DNAT existed would never be
translated). A gateway address or floating IP newly on ``qg-`` is
announced (``SendGarp``, run in the background). radvd: started when missing, sent SIGHUP when
its config changed, restarted when its command line or namespace changed or an advertised device
was recreated, stopped (and its directory removed) when no interface advertises.

Routers of ours not in the view: radvd stopped, ports deleted from the bridge (and their node
ends), namespace deleted, state directory removed. "Ours": every ``qrouter-`` namespace (they
belong to the L3 agent; ``qdhcp-`` and others are never looked at), every port with
``ROUTER_KEY``, every router directory under ``ra_confs``.

Every op is paired with the id of the router it serves, so that the agent can mark a router
ERROR when one of its ops fails and go on with the others. Apply order (all routers' ops phase by
phase): stop radvds; ``DeletePort``s; remove devices, namespaces, directories; namespaces and
sysctls; devices and addresses; routes; nat; conntrack deletes; ``EnsurePort``s; radvd files and
processes; gratuitous ARPs (after the ports are on the bridge, or nobody would hear them).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from baryon.agent.plan import l3_nat, radvd
from baryon.agent.plan.dhcp import (DeleteLink, DeleteNamespace, EnsureDevice, EnsureNamespace, ObservedLink,
                                    RemoveDirectory, WriteFiles)
from baryon.model.firewall import Ruleset
from baryon.model.l3 import L3View, Router, RouterPort
from baryon.model.ovs import DeletePort, EnsurePort, ObservedPort

NS_PREFIX = "qrouter-"
TAP_PREFIX, INTERNAL_PREFIX, GATEWAY_PREFIX = "tap", "qr-", "qg-"
PORT_ID_CHARS = 11  # qr- + 11 = 14 bytes, Neutron's device name length
ROUTER_KEY = "baryon-l3-router"  # Interface external_ids key naming the router of a tap
SYSCTLS = (("net.ipv4.ip_forward", "1"), ("net.ipv6.conf.all.forwarding", "1"),
           ("net.ipv4.conf.all.arp_ignore", "1"), ("net.ipv4.conf.all.arp_announce", "2"))


def namespace_name(router_id: str) -> str:
    return NS_PREFIX + router_id


def device_names(port_id: str, *, gateway: bool = False) -> tuple[str, str]:
    """(node end ``tap...``, namespace end ``qr-...``/``qg-...``) of a router port's veth pair."""
    prefix = GATEWAY_PREFIX if gateway else INTERNAL_PREFIX
    return TAP_PREFIX + port_id[:PORT_ID_CHARS], prefix + port_id[:PORT_ID_CHARS]


@dataclass(frozen=True)
class L3AgentSettings:
    ra_confs: str = "/var/lib/baryon/ra"  # Neutron's [DEFAULT] ra_confs ($state_path/ra)
    integration_bridge: str = "br-int"
    send_arp_for_ha: int = 3  # gratuitous ARPs per new address (0: none)
    min_rtr_adv_interval: int = 30
    max_rtr_adv_interval: int = 100
    radvd_user: str | None = None  # radvd -u (None: omitted)

    def directory(self, router_id: str) -> str:
        return f"{self.ra_confs.rstrip('/')}/{router_id}"


# ---------------------------------------------------------------- observed state


@dataclass(frozen=True)
class ObservedRadvd:
    """A live radvd whose command line names the router's pidfile."""

    pid: int
    argv: tuple[str, ...]
    in_namespace: bool = True


@dataclass(frozen=True)
class ObservedRouter:
    router_id: str
    namespace: bool = False  # qrouter-<id> exists
    links: tuple[ObservedLink, ...] = ()  # in the namespace, lo excluded (observed for wanted routers)
    routes: tuple[tuple[str, str, str], ...] = ()  # main table routes with a next hop: (CIDR, next hop, device)
    sysctls: tuple[tuple[str, str], ...] = ()  # the SYSCTLS' current values
    nat: Ruleset = field(default_factory=Ruleset)  # its nat table as the driver reads it (l3_nat.SCOPE)
    radvd: ObservedRadvd | None = None
    radvd_conf: str | None = None  # the content of <directory>/radvd.conf, None if missing
    state_dir: bool = False  # <ra_confs>/<router id> exists

    def link(self, name: str) -> ObservedLink | None:
        return next((link for link in self.links if link.name == name), None)


@dataclass(frozen=True)
class ObservedL3Host:
    routers: tuple[ObservedRouter, ...] = ()  # wanted ones, and every one of ours
    node_links: tuple[ObservedLink, ...] = ()  # the node's links named tap*
    ports: tuple[ObservedPort, ...] = ()  # the integration bridge's ports


# ---------------------------------------------------------------- ops


@dataclass(frozen=True)
class SetSysctls:
    """``sysctl -w`` each (name, value) inside ``namespace``."""

    namespace: str
    values: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class EnsureAddresses:
    """Remove then add addresses ("ip/prefixlen") on ``device`` in ``namespace`` (one ``ip -b``)."""

    namespace: str
    device: str
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()


@dataclass(frozen=True, order=True)
class WantedRoute:
    destination: str  # CIDR, as the kernel prints it
    nexthop: str
    device: str = ""  # "" : the kernel picks it (extra routes)
    onlink: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.destination, self.nexthop)


@dataclass(frozen=True)
class EnsureRoutes:
    """In ``namespace``: delete the (destination, next hop) routes ``remove`` (already gone is
    fine), then ``ip route replace`` each of ``add``."""

    namespace: str
    add: tuple[WantedRoute, ...] = ()
    remove: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ApplyNat:
    """Make the namespace's nat table ``desired``, writing what differs from ``observed``."""

    namespace: str
    desired: Ruleset
    observed: Ruleset


@dataclass(frozen=True)
class DeleteConntrack:
    """Delete the namespace's conntrack entries to (and SNATed from) each of ``addresses``."""

    namespace: str
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class SendGarp:
    """``arping -U -I device -c count address`` in ``namespace`` for each address, in the background."""

    namespace: str
    device: str
    addresses: tuple[str, ...]
    count: int


@dataclass(frozen=True)
class StartRadvd:
    router_id: str
    namespace: str
    argv: tuple[str, ...]
    pidfile: str


@dataclass(frozen=True)
class ReloadRadvd:
    """SIGHUP (only if its command line names ``pidfile``): radvd re-reads its config."""

    router_id: str
    pid: int
    pidfile: str


@dataclass(frozen=True)
class StopRadvd:
    router_id: str
    pid: int
    pidfile: str


Op = (EnsureNamespace | DeleteNamespace | SetSysctls | DeleteLink | EnsureDevice | EnsureAddresses | EnsureRoutes
      | ApplyNat | DeleteConntrack | SendGarp | WriteFiles | RemoveDirectory | StartRadvd | ReloadRadvd | StopRadvd
      | EnsurePort | DeletePort)
RADVD_OPS = (WriteFiles, RemoveDirectory, StartRadvd, ReloadRadvd, StopRadvd)


# ---------------------------------------------------------------- desired state


@dataclass(frozen=True)
class DesiredDevice:
    port_id: str
    tap: str
    device: str
    mac: str
    mtu: int
    addresses: tuple[str, ...]  # "ip/prefixlen", fixed IPs in the port's order, then floating IPs
    external_ids: tuple[tuple[str, str], ...]
    gateway: bool = False


@dataclass(frozen=True)
class DesiredRouter:
    router_id: str
    namespace: str
    directory: str
    devices: tuple[DesiredDevice, ...]  # the interfaces by port id, then the gateway
    routes: tuple[WantedRoute, ...]
    nat: Ruleset
    floating_ips: tuple[str, ...]  # the ids of the floating IPs wired (address on qg-, rules)
    radvd_conf: str | None
    radvd_argv: tuple[str, ...]

    @property
    def gateway(self) -> DesiredDevice | None:
        return next((d for d in self.devices if d.gateway), None)

    @property
    def pidfile(self) -> str:
        return f"{self.directory}/{radvd.PIDFILE}"


@dataclass(frozen=True)
class L3Plan:
    ops: tuple[tuple[str, Op], ...]  # (router id, op), in apply order
    routers: tuple[DesiredRouter, ...]  # wanted here, by id
    removed: tuple[str, ...] = ()  # routers of ours whose leftovers ``ops`` remove


def statuses(view: L3View, result: L3Plan, failed: dict[str, tuple[Op, str]]
             ) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """What to report after applying ``result`` with ``failed`` (router id -> (op, reason)): each
    router ACTIVE, or ERROR with the reason; each floating IP ACTIVE when its address and rules are
    in place (its router built, but for radvd), else ERROR. Only those that differ from the status
    the view says the server holds (``baryon.model.l3``): (routers, floating IPs)."""
    routers: dict[str, dict[str, str]] = {}
    floatingips: dict[str, str] = {}
    wired = {r.router_id: set(r.floating_ips) for r in result.routers}
    for router in view.routers:
        failure = failed.get(router.id)
        status = {"status": "ERROR", "reason": failure[1]} if failure else {"status": "ACTIVE", "reason": ""}
        if (router.status, router.status_reason) != (status["status"], status["reason"]):
            routers[router.id] = status
        in_place = failure is None or isinstance(failure[0], RADVD_OPS)
        for fip in router.floating_ips:
            fip_status = "ACTIVE" if in_place and fip.id in wired.get(router.id, ()) else "ERROR"
            if fip.status != fip_status:
                floatingips[fip.id] = fip_status
    return routers, floatingips


def _addresses(port: RouterPort) -> tuple[str, ...]:
    found = []
    for subnet_id, address in port.fixed_ips:
        subnet = port.subnet(subnet_id)
        if subnet is not None:
            prefix = ipaddress.ip_network(subnet.cidr, strict=False).prefixlen
            found.append(f"{ipaddress.ip_address(address)}/{prefix}")
    return tuple(found)


def _default_routes(port: RouterPort, device: str, addresses: tuple[str, ...]) -> tuple[WantedRoute, ...]:
    """Per IP version, the default route via the first gateway subnet's ``gateway_ip``."""
    interfaces = [ipaddress.ip_interface(a) for a in addresses]
    found = []
    for version, default in ((4, "0.0.0.0/0"), (6, "::/0")):
        for subnet_id, _address in port.fixed_ips:
            subnet = port.subnet(subnet_id)
            if subnet is None or subnet.ip_version != version or not subnet.gateway_ip:
                continue
            gateway = ipaddress.ip_address(subnet.gateway_ip)
            onlink = not any(gateway in i.network for i in interfaces if i.version == version)
            found.append(WantedRoute(default, str(gateway), device, onlink))
            break
    return tuple(found)


def desired(router: Router, settings: L3AgentSettings) -> DesiredRouter:
    devices = []
    for port in sorted(router.interfaces, key=lambda p: p.id):
        devices.append(_device(port, router.id, _addresses(port), gateway=False))
    routes: list[WantedRoute] = []
    gateway_device = None
    wired: tuple[str, ...] = ()
    if router.gateway is not None:
        gateway_device = device_names(router.gateway.id, gateway=True)[1]
        fixed = _addresses(router.gateway)
        wired = l3_nat.wired_floating_ips(router, gateway_device)
        wired_ids = set(wired)  # NOTE: once, not per floating IP (1,000 of them: 6.9 s -> ms)
        floating = tuple(f"{f.floating_ip_address}/32" for f in sorted(router.floating_ips, key=lambda f: f.id)
                         if f.id in wired_ids)
        addresses = (*fixed, *(a for a in dict.fromkeys(floating) if a not in fixed))
        devices.append(_device(router.gateway, router.id, addresses, gateway=True))
        routes += _default_routes(router.gateway, gateway_device, fixed)
    defaults = {r.key for r in routes}
    for route in router.routes:
        wanted = WantedRoute(str(ipaddress.ip_network(route.destination, strict=False)),
                             str(ipaddress.ip_address(route.nexthop)))
        if wanted.key not in defaults and wanted not in routes:
            routes.append(wanted)
    directory = settings.directory(router.id)
    interfaces = [(d.device, p) for d, p in zip(devices, sorted(router.interfaces, key=lambda p: p.id))]
    return DesiredRouter(
        router_id=router.id, namespace=namespace_name(router.id), directory=directory, devices=tuple(devices),
        routes=tuple(routes), nat=l3_nat.ruleset(router, gateway_device),
        floating_ips=wired,  # none without a gateway (wired_floating_ips says the same)
        radvd_conf=radvd.config(interfaces, settings.min_rtr_adv_interval, settings.max_rtr_adv_interval),
        radvd_argv=radvd.command_line(directory, settings.radvd_user))


def _device(port: RouterPort, router_id: str, addresses: tuple[str, ...], *, gateway: bool) -> DesiredDevice:
    tap, device = device_names(port.id, gateway=gateway)
    mac = port.mac_address.lower()
    return DesiredDevice(port_id=port.id, tap=tap, device=device, mac=mac, mtu=port.mtu, addresses=addresses,
                         external_ids=tuple(sorted({"attached-mac": mac, "iface-id": port.id, "iface-status": "active",
                                                    ROUTER_KEY: router_id}.items())),
                         gateway=gateway)


# ---------------------------------------------------------------- the plan


@dataclass
class _Ops:
    """The plan's (router id, op) pairs by phase, concatenated in apply order at the end."""

    stop: list[tuple[str, Op]] = field(default_factory=list)
    delete_ports: list[tuple[str, Op]] = field(default_factory=list)
    remove: list[tuple[str, Op]] = field(default_factory=list)
    namespaces: list[tuple[str, Op]] = field(default_factory=list)
    devices: list[tuple[str, Op]] = field(default_factory=list)
    routes: list[tuple[str, Op]] = field(default_factory=list)
    nat: list[tuple[str, Op]] = field(default_factory=list)
    conntrack: list[tuple[str, Op]] = field(default_factory=list)
    ensure_ports: list[tuple[str, Op]] = field(default_factory=list)
    radvd: list[tuple[str, Op]] = field(default_factory=list)
    garp: list[tuple[str, Op]] = field(default_factory=list)

    def ordered(self) -> tuple[tuple[str, Op], ...]:
        return (*self.stop, *self.delete_ports, *self.remove, *self.namespaces, *self.devices, *self.routes,
                *self.nat, *self.conntrack, *self.ensure_ports, *self.radvd, *self.garp)


def plan(view: L3View, observed: ObservedL3Host, settings: L3AgentSettings) -> L3Plan:
    """What to do so that this host routes for ``view`` (see the module docstring)."""
    wanted = tuple(desired(r, settings) for r in sorted(view.routers, key=lambda r: r.id))
    wanted_ids = {w.router_id for w in wanted}
    routers = {r.router_id: r for r in observed.routers}
    bridge = settings.integration_bridge
    ports_by_router: dict[str, list[ObservedPort]] = {}
    for port in sorted(observed.ports, key=lambda p: p.name):
        owner = dict(port.external_ids).get(ROUTER_KEY)
        if port.bridge == bridge and owner:
            ports_by_router.setdefault(owner, []).append(port)
    on_bridge = {p.name: p for p in observed.ports if p.bridge == bridge}
    node_links = {link.name: link for link in observed.node_links}
    ops = _Ops()
    for want in wanted:
        seen = routers.get(want.router_id, ObservedRouter(want.router_id))
        taps = {d.tap for d in want.devices}
        stale = [p for p in ports_by_router.get(want.router_id, ()) if p.name not in taps]
        _remove_ports(ops, want.router_id, stale, bridge, node_links)  # e.g. an interface removed
        _Router(ops, want, seen, settings, node_links, on_bridge).build()
    ours = {r.router_id for r in observed.routers if r.namespace or r.state_dir} | set(ports_by_router)
    removed = tuple(sorted(ours - wanted_ids))
    for router_id in removed:
        seen = routers.get(router_id, ObservedRouter(router_id))
        _remove(ops, seen, settings.directory(router_id), ports_by_router.get(router_id, []), bridge, node_links)
    return L3Plan(ops=ops.ordered(), routers=wanted, removed=removed)


@dataclass
class _Router:
    """The ops of one wanted router (see the module docstring)."""

    ops: _Ops
    want: DesiredRouter
    seen: ObservedRouter
    settings: L3AgentSettings
    node_links: dict[str, ObservedLink]
    ports: dict[str, ObservedPort]
    created: set[str] = field(default_factory=set)  # devices (re)created by this plan

    def add(self, phase: list[tuple[str, Op]], op: Op) -> None:
        phase.append((self.want.router_id, op))

    def build(self) -> None:
        want, seen = self.want, self.seen
        fresh = not seen.namespace
        if fresh:
            self.add(self.ops.namespaces, EnsureNamespace(want.namespace))
        current = {} if fresh else dict(seen.sysctls)
        sysctls = tuple((name, value) for name, value in SYSCTLS if current.get(name) != value)
        if sysctls:
            self.add(self.ops.namespaces, SetSysctls(want.namespace, sysctls))
        names = {d.device for d in want.devices}
        for other in () if fresh else seen.links:
            if other.name not in names:
                self.add(self.ops.devices, DeleteLink(want.namespace, other.name))
        garp: list[str] = []
        for device in want.devices:
            added = self._device(device, None if fresh else seen.link(device.device))
            if device.gateway:
                garp += [a.split("/")[0] for a in added if ipaddress.ip_interface(a).version == 4]
        self._routes(fresh, names)
        observed_nat = Ruleset() if fresh else seen.nat
        if want.nat != observed_nat:
            self.add(self.ops.nat, ApplyNat(want.namespace, want.nat, observed_nat))
        # NOTE: a floating IP added too: packets sent to its address before its DNAT rule existed
        # left un-NATed entries that would keep their flow from ever being translated.
        changed = sorted({address for address, _ in _dnat(observed_nat) ^ _dnat(want.nat)})
        if changed and not fresh:  # a new namespace has no entries
            self.add(self.ops.conntrack, DeleteConntrack(want.namespace, tuple(changed)))
        self._radvd(fresh)
        gateway = want.gateway
        if garp and gateway is not None and self.settings.send_arp_for_ha > 0:
            self.add(self.ops.garp, SendGarp(want.namespace, gateway.device, tuple(garp),
                                             self.settings.send_arp_for_ha))

    def _device(self, want: DesiredDevice, link: ObservedLink | None) -> tuple[str, ...]:
        """Ops for one device; returns the addresses it gains."""
        namespace = self.want.namespace
        tap = self.node_links.get(want.tap)
        created = link is None or tap is None
        if created:
            self.created.add(want.device)
            if tap is not None:
                self.add(self.ops.devices, DeleteLink(None, want.tap))
            if link is not None:
                self.add(self.ops.devices, DeleteLink(namespace, want.device))
            self.add(self.ops.devices, EnsureDevice(namespace, want.tap, want.device, want.mac, want.mtu, create=True,
                                                    add_addresses=want.addresses))
            added = want.addresses
        else:
            assert link is not None and tap is not None
            added = tuple(a for a in want.addresses if a not in link.addresses)
            remove = tuple(a for a in link.addresses if a not in want.addresses)
            if not (link.up and link.mac == want.mac and link.mtu == want.mtu and tap.up and tap.mtu == want.mtu):
                self.add(self.ops.devices, EnsureDevice(namespace, want.tap, want.device, want.mac, want.mtu,
                                                        add_addresses=added, remove_addresses=remove))
            elif added or remove:
                self.add(self.ops.devices, EnsureAddresses(namespace, want.device, added, remove))
        port = self.ports.get(want.tap)
        if port is not None and created:
            # NOTE: as the DHCP agent's: a device re-created under an existing port's name leaves
            # the bridge in a transaction of its own first, or ovs-vswitchd keeps the dead device.
            self.add(self.ops.delete_ports, DeletePort(self.settings.integration_bridge, want.tap))
        if port is None or created or not set(want.external_ids) <= set(port.external_ids):
            self.add(self.ops.ensure_ports, EnsurePort(self.settings.integration_bridge, want.tap,
                                                       external_ids=want.external_ids))
        return added

    def _routes(self, fresh: bool, devices: set[str]) -> None:
        """Routes through a device deleted or (re)created now are gone with it: not removed, re-added."""
        have = {} if fresh else {(dst, via): dev for dst, via, dev in self.seen.routes
                                 if dev in devices and dev not in self.created}
        wanted = {r.key: r for r in self.want.routes}
        add = tuple(r for r in self.want.routes if r.key not in have or (r.device and have[r.key] != r.device))
        remove = tuple(sorted(key for key in have if key not in wanted))
        if add or remove:
            self.add(self.ops.routes, EnsureRoutes(self.want.namespace, add, remove))

    def _radvd(self, fresh: bool) -> None:
        want, seen = self.want, self.seen
        running = seen.radvd
        if want.radvd_conf is None:
            if running is not None:
                self.add(self.ops.stop, StopRadvd(want.router_id, running.pid, want.pidfile))
            if seen.state_dir:
                self.add(self.ops.remove, RemoveDirectory(want.directory))
            return
        changed = seen.radvd_conf != want.radvd_conf
        if changed:
            self.add(self.ops.radvd, WriteFiles(want.directory, ((radvd.CONF, want.radvd_conf),)))
        start = StartRadvd(want.router_id, want.namespace, want.radvd_argv, want.pidfile)
        advertising = {line.split()[1] for line in want.radvd_conf.splitlines() if line.startswith("interface ")}
        if running is None:
            self.add(self.ops.radvd, start)
        elif (fresh or not running.in_namespace or running.argv != want.radvd_argv
              or advertising & self.created):
            self.add(self.ops.stop, StopRadvd(want.router_id, running.pid, want.pidfile))
            self.add(self.ops.radvd, start)
        elif changed:
            self.add(self.ops.radvd, ReloadRadvd(want.router_id, running.pid, want.pidfile))


def _dnat(nat: Ruleset) -> set[tuple[str, str]]:
    """(floating address, DNAT rule) of each floating IP rule of the router's PREROUTING chain."""
    rules = nat.chains.get(l3_nat.KEY, {}).get(l3_nat.PREROUTING, ())
    found = set()
    for rule in rules:
        words = rule.split()
        if len(words) >= 2 and words[0] == "-d" and "DNAT" in words:
            found.add((words[1].split("/")[0], rule))
    return found


def _remove_ports(ops: _Ops, router_id: str, ports: list[ObservedPort], bridge: str,
                  node_links: dict[str, ObservedLink]) -> None:
    for port in ports:
        if port.name in node_links:
            ops.remove.append((router_id, DeleteLink(None, port.name)))
        ops.delete_ports.append((router_id, DeletePort(bridge, port.name)))


def _remove(ops: _Ops, seen: ObservedRouter, directory: str, ports: list[ObservedPort], bridge: str,
            node_links: dict[str, ObservedLink]) -> None:
    """Everything of a router no longer here, the state directory last."""
    if seen.radvd is not None:
        ops.stop.append((seen.router_id, StopRadvd(seen.router_id, seen.radvd.pid, f"{directory}/{radvd.PIDFILE}")))
    _remove_ports(ops, seen.router_id, ports, bridge, node_links)
    if seen.namespace:
        ops.remove.append((seen.router_id, DeleteNamespace(namespace_name(seen.router_id))))
    if seen.state_dir:
        ops.remove.append((seen.router_id, RemoveDirectory(directory)))
