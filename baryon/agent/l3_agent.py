"""The L3 agent: one ``qrouter-`` namespace per router of the host's L3 view (Neutron's legacy
routers), with its ``qr-``/``qg-`` devices, routes, NAT, floating IPs and radvd.

``L3Agent.reconcile(view)`` is the one sync path: observe the host (``observe``: the namespaces
registered in /run/netns; in each wanted router's namespace, over one netlink socket, its links,
addresses and routes, and its forwarding sysctls, read through /proc/sys from the same thread;
the nat table (see below); radvd pidfiles and configs under ``ra_confs``; the integration
bridge's ports in one OVSDB read), plan (pure, ``baryon.agent.plan.l3``), apply the ops in
order (consecutive OVSDB ones in one transaction). It runs at start-up (a restarted agent finds
the host as it wants it and touches nothing: no namespace, device or NAT rule rewritten, so
established NAT sessions survive), on every new view and periodically.

NOTE: the nat tables. ``iptables-save`` costs a process (~5 ms) per router namespace, so it runs
on the first run, for a namespace whose inode changed (recreated behind the agent's back), after
a failed write, and every ``NAT_OBSERVE_INTERVAL`` (in parallel, ``NAT_READERS`` at a time);
otherwise what this agent last wrote (or read) is the observation, as the hybrid firewall does.
An unchanged run starts no process at all (~2 ms per router: netlink and the OVSDB read).

Failures are per router: an op that fails marks its router ERROR with the reason (its later ops
are skipped, the other routers go on) and the run schedules itself again with backoff (``wake``).
``Outcome.routers`` says every router of the view ACTIVE or ERROR; ``Outcome.floatingips`` says a
floating IP ACTIVE when its address and rules are in place (its router built, but for radvd).

Gratuitous ARPs for new addresses on ``qg-`` run in background threads: a reconcile never waits
for them. Stopping the agent leaves every router and radvd as it is: traffic keeps flowing.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from baryon.agent import metrics
from baryon.agent.drivers import netlink
from baryon.agent.drivers.dnsmasq import Dnsmasq, DnsmasqError
from baryon.agent.drivers.jsonrpc import OvsdbError
from baryon.agent.drivers.netfilter import Netfilter, NetfilterError
from baryon.agent.drivers.netns import Namespaces, NetnsError
from baryon.agent.drivers.ovsdb import Ovsdb
from baryon.agent.drivers.radvd import Radvd, RadvdError, user_exists
from baryon.agent.plan import l3_nat
from baryon.agent.plan.dhcp import (DeleteLink, DeleteNamespace, EnsureDevice, EnsureNamespace, RemoveDirectory,
                                    WriteFiles)
from baryon.agent.plan.l3 import (NS_PREFIX, ROUTER_KEY, SYSCTLS, ApplyNat, DeleteConntrack,
                                  EnsureAddresses, EnsureRoutes, L3AgentSettings, L3Plan, ObservedL3Host,
                                  ObservedRouter, Op, ReloadRadvd, SendGarp, SetSysctls, StartRadvd, StopRadvd,
                                  namespace_name, plan, statuses)
from baryon.agent.runtime import BACKOFF, Outcome
from baryon.config.agent import AgentSettings
from baryon.model.firewall import ConntrackDelete, Ruleset
from baryon.model.l3 import L3View
from baryon.model.ovs import DeletePort, EnsurePort

LOG = logging.getLogger("baryon.agent.l3")
NAT_OBSERVE_INTERVAL = 60.0  # seconds: every nat table is read again at least this often
NAT_READERS = 8  # iptables-save processes at a time
RADVD_USER = "radvd"
_FAILURES = (NetnsError, NetfilterError, RadvdError, DnsmasqError, OvsdbError, OSError, ValueError)


class L3ConfigError(ValueError):
    pass


def l3_settings(settings: AgentSettings) -> L3AgentSettings:
    default = settings.DEFAULT
    if default.agent_mode != "legacy":
        raise L3ConfigError(f"[DEFAULT] agent_mode = {default.agent_mode!r} is not supported: legacy only")
    return L3AgentSettings(
        ra_confs=default.ra_confs or os.path.join(default.state_path, "ra"),
        integration_bridge=settings.ovs.integration_bridge, send_arp_for_ha=default.send_arp_for_ha,
        min_rtr_adv_interval=default.min_rtr_adv_interval, max_rtr_adv_interval=default.max_rtr_adv_interval,
        radvd_user=RADVD_USER if user_exists(RADVD_USER) else None)


@dataclass(frozen=True)
class _NatSeen:
    """A router namespace's nat table as last read or written, and which namespace it was."""

    inode: int | None
    ruleset: Ruleset
    read_at: float


class L3Agent:
    agent_type = "L3 agent"
    binary = "neutron-l3-agent"
    topic = "l3_agent"
    view_kind = "l3"

    def __init__(self, settings: AgentSettings, *, node_netns: str | None = None,
                 claims: Callable[[str], bool] | None = None) -> None:
        """``node_netns``: tests only, the namespace acting as the node (see ``drivers.netns``).
        ``claims``: tests only, which ``qrouter-<id>`` namespaces outside the view (without a port or
        a directory of ours) this agent takes for its own and removes; None, as on a real node: all
        of them, as Neutron's L3 agent (a test on a shared machine must not remove another's)."""
        self.settings = settings
        self.claims = claims
        self.l3 = l3_settings(settings)
        self.ovsdb = Ovsdb(settings.ovs.ovsdb_connection, timeout=settings.ovs.ovsdb_timeout)
        self.namespaces = Namespaces(node_netns)
        self.radvd = Radvd()
        self.files = Dnsmasq()  # its atomic file writes and directory removal
        self.counts = {"routers": 0, "ex_gw_ports": 0, "interfaces": 0, "floating_ips": 0}
        self._nat: dict[str, _NatSeen] = {}
        self._wake: Callable[[], None] | None = None
        self._failures = 0
        self._retry: threading.Timer | None = None
        self._arping_missing = False

    # ------------------------------------------------------------ Reconciler

    def parse_view(self, data: dict) -> L3View:
        return L3View.from_json(data)

    def start(self, wake: Callable[[], None]) -> None:
        self._wake = wake

    def stop(self) -> None:
        """Stop the retry timer and the OVSDB connection; routers and radvds are left as they are."""
        if self._retry is not None:
            self._retry.cancel()
        self.ovsdb.close()

    def configurations(self) -> dict:
        """What Neutron's L3 agent reports (counts as of the last run)."""
        return {"agent_mode": "legacy", **self.counts, "interface_driver": "openvswitch",
                "handle_internal_only_routers": True, "log_agent_heartbeats": False}

    def reconcile(self, view: L3View) -> Outcome:
        started = time.monotonic()
        observed = self.observe(view)
        result = plan(view, observed, self.l3)
        self.counts = {"routers": len(view.routers), "ex_gw_ports": sum(r.gateway is not None for r in view.routers),
                       "interfaces": sum(len(r.interfaces) for r in view.routers),
                       "floating_ips": sum(len(r.floating_ips) for r in view.routers)}
        failed = self.apply(result) if result.ops else {}
        if result.ops:
            kinds = Counter(type(op).__name__ for _, op in result.ops)
            LOG.info("seq %d: %s in %.0f ms%s", view.seq, ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())),
                     (time.monotonic() - started) * 1000, f"; {len(failed)} router(s) failed" if failed else "")
        self._schedule_retry(bool(failed))
        self._measure(view)
        return self.outcome(view, result, failed)

    def _measure(self, view: L3View) -> None:
        """The gauges of ``agent.metrics``: the view's routers, their namespaces as they now are."""
        metrics.L3_ROUTERS.set(self.counts["routers"])
        metrics.L3_FLOATING_IPS.set(self.counts["floating_ips"])
        present = self.namespaces.existing(NS_PREFIX)
        metrics.L3_NAMESPACES.set(sum(1 for r in view.routers if namespace_name(r.id) in present))

    def outcome(self, view: L3View, result: L3Plan, failed: dict[str, tuple[Op, str]]) -> Outcome:
        routers, floatingips = statuses(view, result, failed)
        return Outcome(port_status={}, routers=routers, floatingips=floatingips)

    def _schedule_retry(self, failed: bool) -> None:
        """After a run with failures, run again after a backoff (the runtime only retries exceptions)."""
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if not failed:
            self._failures = 0
            return
        self._failures += 1
        if self._wake is not None:
            self._retry = threading.Timer(BACKOFF[min(self._failures, len(BACKOFF)) - 1], self._wake)
            self._retry.daemon = True
            self._retry.start()

    # ------------------------------------------------------------ observe

    def observe(self, view: L3View) -> ObservedL3Host:
        """The host as it is, for the view's routers and every router of ours it has traces of."""
        wanted = {r.id for r in view.routers}
        present = self.namespaces.existing(NS_PREFIX)
        ports = self.ovsdb.observe([self.l3.integration_bridge]).ports
        marked = {dict(p.external_ids)[ROUTER_KEY] for p in ports if ROUTER_KEY in dict(p.external_ids)}
        with_state = self.radvd.state_dirs(self.l3.ra_confs)
        inspected = [r for r in sorted(wanted) if namespace_name(r) in present]
        inside = self._inside([namespace_name(r) for r in inspected])
        nat = self._nat_tables([r for r in inspected if namespace_name(r) in inside])
        node_links = tuple(link for link in self.namespaces.links([None]).get(None, ()) if link.name.startswith("tap"))
        routers = []
        named = {name[len(NS_PREFIX):] for name in present}
        if self.claims is not None:
            named = {router_id for router_id in named if router_id in wanted or self.claims(router_id)}
        ids = wanted | named | marked | with_state
        for router_id in sorted(ids):
            namespace = namespace_name(router_id)
            directory = self.l3.directory(router_id)
            links, routes, sysctls = inside.get(namespace, ((), (), ()))
            exists = namespace in present and (router_id not in wanted or namespace in inside)
            routers.append(ObservedRouter(
                router_id=router_id, namespace=exists, links=tuple(link for link in links if link.name != "lo"),
                routes=routes, sysctls=sysctls, nat=nat.get(router_id, Ruleset()),
                radvd=self.radvd.observe(f"{directory}/radvd.pid", self.namespaces.inode(namespace)),
                radvd_conf=self.radvd.read_conf(directory) if router_id in wanted else None,
                state_dir=router_id in with_state))
        return ObservedL3Host(routers=tuple(routers), node_links=node_links, ports=ports)

    def _inside(self, namespaces: list[str]) -> dict[str, tuple]:
        """Each namespace's (links, routes, sysctls): one netlink socket each, no command."""
        names = [name for name, _ in SYSCTLS]
        opened = netlink.in_namespaces([self.namespaces.path(n) for n in namespaces],
                                       lambda: (netlink.route_socket(), netlink.read_sysctls(names)))
        found = {}
        try:
            for namespace, result in zip(namespaces, opened):
                if result is not None:
                    links, routes = netlink.read_links_and_routes(result[0])
                    found[namespace] = (links, routes, tuple(zip(names, result[1])))
        finally:
            for result in opened:
                if result is not None:
                    result[0].close()
        return found

    def _nat_tables(self, router_ids: list[str]) -> dict[str, Ruleset]:
        """Each router's nat table: remembered, or read (see the module's NOTE)."""
        now = time.monotonic()
        found: dict[str, Ruleset] = {}
        to_read: list[tuple[str, int | None]] = []
        for router_id in router_ids:
            inode = self.namespaces.inode(namespace_name(router_id))
            seen = self._nat.get(router_id)
            if seen is not None and seen.inode == inode and now - seen.read_at < NAT_OBSERVE_INTERVAL:
                found[router_id] = seen.ruleset
            else:
                to_read.append((router_id, inode))
        if to_read:
            def read(router_id: str) -> Ruleset:
                return Netfilter(namespace_name(router_id), scope=l3_nat.SCOPE).observe()

            with ThreadPoolExecutor(max_workers=NAT_READERS) as pool:
                tables = list(pool.map(read, [router_id for router_id, _ in to_read]))
            for (router_id, inode), ruleset in zip(to_read, tables):
                found[router_id] = ruleset
                self._nat[router_id] = _NatSeen(inode, ruleset, now)
        for router_id in set(self._nat) - set(router_ids):
            del self._nat[router_id]
        return found

    # ------------------------------------------------------------ apply

    def apply(self, result: L3Plan) -> dict[str, tuple[Op, str]]:
        """Every op in order, each run of consecutive OVSDB ops in one transaction; a router whose
        op fails is skipped from then on. Returns the failed routers: id -> (op, reason)."""
        failed: dict[str, tuple[Op, str]] = {}
        batch: list[tuple[str, EnsurePort | DeletePort]] = []
        for router_id, op in (*result.ops, ("", None)):
            if isinstance(op, (EnsurePort, DeletePort)):
                if router_id not in failed:
                    batch.append((router_id, op))
                continue
            if batch:
                try:
                    self.ovsdb.apply([o for _, o in batch])
                except OvsdbError as exc:
                    LOG.error("OVSDB transaction (%d op(s)) failed: %s", len(batch), exc)
                    for owner, ovsdb_op in batch:
                        failed.setdefault(owner, (ovsdb_op, f"OVSDB: {exc}"))
                batch = []
            if op is None:
                break
            if router_id in failed:
                continue
            try:
                self._apply(router_id, op)
            except _FAILURES as exc:
                LOG.error("router %s: %s failed: %s", router_id, type(op).__name__, exc)
                failed[router_id] = (op, f"{type(op).__name__} failed: {exc}")
                self._nat.pop(router_id, None)  # unknown state now: read it again
        return failed

    def _apply(self, router_id: str, op: Op) -> None:  # noqa: C901 - one dispatch
        if isinstance(op, StopRadvd):
            self.radvd.stop(op.pid, op.pidfile)
        elif isinstance(op, DeleteLink):
            self.namespaces.delete_link(op.namespace, op.name)
        elif isinstance(op, DeleteNamespace):
            self.namespaces.delete_namespace(op.name)
            self._nat.pop(router_id, None)
        elif isinstance(op, RemoveDirectory):
            self.files.remove_directory(op.directory)
        elif isinstance(op, EnsureNamespace):
            self.namespaces.ensure_namespace(op.name)
        elif isinstance(op, SetSysctls):
            self.namespaces.set_sysctls(op.namespace, op.values)
        elif isinstance(op, EnsureDevice):
            self.namespaces.ensure_device(op)
        elif isinstance(op, EnsureAddresses):
            self.namespaces.ensure_addresses(op)
        elif isinstance(op, EnsureRoutes):
            self.namespaces.ensure_routes(op)
        elif isinstance(op, ApplyNat):
            Netfilter(op.namespace, scope=l3_nat.SCOPE).apply(op.desired, op.observed)
            seen = self._nat.get(router_id)
            self._nat[router_id] = _NatSeen(self.namespaces.inode(op.namespace), op.desired,
                                            seen.read_at if seen is not None else time.monotonic())
        elif isinstance(op, DeleteConntrack):
            entries = []
            for address in op.addresses:
                family = "ipv4" if ipaddress.ip_address(address).version == 4 else "ipv6"
                entries += [ConntrackDelete(family, None, destination=address),
                            ConntrackDelete(family, None, reply_destination=address)]
            deleted = Netfilter(op.namespace, scope=l3_nat.SCOPE).delete_conntrack(entries)
            LOG.info("router %s: %d conntrack entr%s of %s deleted", router_id, deleted, "y" if deleted == 1 else "ies",
                     ", ".join(op.addresses))
        elif isinstance(op, WriteFiles):
            self.files.write_files(op)
        elif isinstance(op, StartRadvd):
            pid = self.radvd.start(op)
            LOG.info("router %s: radvd started (pid %d)", router_id, pid)
        elif isinstance(op, ReloadRadvd):
            if not self.radvd.reload(op.pid, op.pidfile):
                LOG.warning("router %s: radvd %d gone before its reload; the next run starts it", router_id, op.pid)
        elif isinstance(op, SendGarp):
            threading.Thread(target=self._garp, args=(op,), name="garp", daemon=True).start()
        else:
            raise TypeError(f"not an L3 agent op: {op!r}")

    def _garp(self, op: SendGarp) -> None:
        """Gratuitous ARPs for each address (Neutron's ``send_ip_addr_adv_notif``), in this thread."""
        if shutil.which("arping") is None:
            if not self._arping_missing:
                self._arping_missing = True
                LOG.warning("arping is not installed: no gratuitous ARP for new gateway and floating IP addresses "
                            "(install iputils-arping)")
            return
        for address in op.addresses:
            argv = ["nsenter", f"--net={self.namespaces.path(op.namespace)}", "--", "arping", "-U", "-I", op.device,
                    "-c", str(op.count), "-w", str(int(op.count * 1.5) + 1), address]
            try:
                proc = subprocess.run(argv, capture_output=True, text=True, timeout=op.count * 2 + 5, check=False)
            except subprocess.TimeoutExpired:
                LOG.warning("arping %s on %s: no end in time", address, op.device)
                continue
            if proc.returncode not in (0, 1):  # 1: no reply, as expected of an unsolicited ARP
                LOG.warning("arping %s on %s in %s failed: %s", address, op.device, op.namespace, proc.stderr.strip())
