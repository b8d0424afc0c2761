"""The DHCP agent: one dnsmasq per network in its ``qdhcp-`` namespace, from the host's DHCP view.

``DhcpAgent.reconcile(view)`` is the one sync path: observe the host (``observe``: the
namespaces registered in /run/netns, their links over netlink, the pidfiles and the running
dnsmasqs' command lines, the files under ``dhcp_confs``, the integration bridge's ports in one
OVSDB read), plan (pure, ``baryon.agent.plan.dhcp``), apply the ops in order (consecutive OVSDB
ones in one transaction: the ports to delete early, the ports to add last). It runs at start-up
(an agent restart rebuilds the plan, finds the host as it wants it, and touches nothing: no
dnsmasq restarted), on every new view, when the supervision thread finds an expected dnsmasq
dead, and periodically. With 200 networks an unchanged run costs ~0.1 s (observe ~70 ms: one
netlink socket per namespace, no command; plan ~25 ms).

An op that fails does not stop the others (one broken network must not keep the others
unserved): the run applies every op it can, then raises ``DhcpApplyError`` naming the failures,
and the runtime retries the whole run with backoff. The DHCP agent reports no port status (the OVS
agent does), so ``reconcile`` returns an empty ``Outcome``.

Stopping the agent leaves every dnsmasq running: leases keep being served while it is away.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable

from baryon.agent import metrics
from baryon.agent.drivers.dnsmasq import Dnsmasq, DnsmasqError, untraversable
from baryon.agent.drivers.jsonrpc import OvsdbError
from baryon.agent.drivers.netns import Namespaces, NetnsError
from baryon.agent.drivers.ovsdb import Ovsdb
from baryon.agent.plan.dhcp import (NETWORK_KEY, NS_PREFIX, DeleteLink, DeleteNamespace, DhcpAgentSettings,
                                    DhcpPlan, EnsureDevice, EnsureNamespace, ObservedDhcpHost, ObservedNetwork, Op,
                                    ReloadDnsmasq, RemoveDirectory, RestartDnsmasq, StartDnsmasq, StopDnsmasq,
                                    WriteFiles, namespace_name, plan, served)
from baryon.agent.plan.dnsmasq import FILES, PIDFILE, DnsmasqSettings
from baryon.agent.runtime import Outcome
from baryon.config.agent import AgentSettings
from baryon.model.dhcp import DhcpView
from baryon.model.ovs import DeletePort, EnsurePort

LOG = logging.getLogger("baryon.agent.dhcp")
DHCP_DRIVER = "neutron.agent.linux.dhcp.Dnsmasq"
SUPERVISE_INTERVAL = 2.0  # seconds between checks that every expected dnsmasq is alive
DEFAULT_LEASE_DURATION = 86400


class DhcpApplyError(RuntimeError):
    """Some ops of a run failed (the others were applied); ``failures``: (op, error) pairs."""

    def __init__(self, failures: list[tuple[object, Exception]]) -> None:
        lines = "; ".join(f"{type(op).__name__}: {exc}" for op, exc in failures[:5])
        more = f" (and {len(failures) - 5} more)" if len(failures) > 5 else ""
        super().__init__(f"{len(failures)} op(s) failed: {lines}{more}")
        self.failures = failures


def dhcp_settings(settings: AgentSettings) -> DhcpAgentSettings:
    """The DHCP agent's options. NOTE: the dnsmasq ones are read with getattr and Neutron's defaults
    until ``[DEFAULT]`` has them (dhcp_confs, dnsmasq_dns_servers, dnsmasq_local_resolv,
    dnsmasq_lease_max, dnsmasq_config_file, dhcp_renewal_time, dhcp_rebinding_time,
    dhcp_broadcast_reply)."""
    default = settings.DEFAULT
    confs = getattr(default, "dhcp_confs", "") or os.path.join(default.state_path, "dhcp")
    return DhcpAgentSettings(
        dhcp_confs=confs, integration_bridge=settings.ovs.integration_bridge,
        dnsmasq=DnsmasqSettings(
            dnsmasq_dns_servers=tuple(getattr(default, "dnsmasq_dns_servers", ()) or ()),
            dnsmasq_local_resolv=bool(getattr(default, "dnsmasq_local_resolv", False)),
            dnsmasq_lease_max=int(getattr(default, "dnsmasq_lease_max", 2 ** 24)),
            dnsmasq_config_file=str(getattr(default, "dnsmasq_config_file", "") or ""),
            dhcp_renewal_time=int(getattr(default, "dhcp_renewal_time", 0)),
            dhcp_rebinding_time=int(getattr(default, "dhcp_rebinding_time", 0)),
            dhcp_broadcast_reply=bool(getattr(default, "dhcp_broadcast_reply", False))))


class DhcpAgent:
    agent_type = "DHCP agent"
    binary = "neutron-dhcp-agent"
    topic = "dhcp_agent"
    view_kind = "dhcp"

    def __init__(self, settings: AgentSettings, *, node_netns: str | None = None) -> None:
        """``node_netns``: tests only, the namespace acting as the node (see ``drivers.netns``)."""
        self.settings = settings
        self.dhcp = dhcp_settings(settings)
        self.ovsdb = Ovsdb(settings.ovs.ovsdb_connection, timeout=settings.ovs.ovsdb_timeout)
        self.namespaces = Namespaces(node_netns)
        self.dnsmasq = Dnsmasq()
        self.expected: dict[str, str] = {}  # network id -> pidfile of each dnsmasq the last run left running
        self.counts = {"networks": 0, "subnets": 0, "ports": 0}
        self.lease_duration = DEFAULT_LEASE_DURATION
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None

    # ------------------------------------------------------------ Reconciler

    def parse_view(self, data: dict) -> DhcpView:
        return DhcpView.from_json(data)

    def start(self, wake: Callable[[], None]) -> None:
        blocked = untraversable(self.dhcp.dhcp_confs)
        if blocked:
            LOG.warning("%s is not traversable by others: dnsmasq (as nobody) cannot re-read its files on "
                        "SIGHUP (chmod o+x)", blocked)
        self._stopping.clear()
        self._supervisor = threading.Thread(target=self._supervise, args=(wake,), name="dhcp-supervise", daemon=True)
        self._supervisor.start()

    def stop(self) -> None:
        """Stop the agent's threads and connection; every dnsmasq keeps running."""
        self._stopping.set()
        self.ovsdb.close()

    def configurations(self) -> dict:
        """What Neutron's DHCP agent reports (counts as of the last run)."""
        return {"dhcp_driver": DHCP_DRIVER, "dhcp_lease_duration": self.lease_duration,
                "log_agent_heartbeats": False, **self.counts}

    def reconcile(self, view: DhcpView) -> Outcome:
        started = time.monotonic()
        observed = self.observe(view)
        result = plan(view, observed, self.dhcp)
        networks = served(view)
        self.counts = {"networks": len(networks), "subnets": sum(len(n.subnets) for n in networks),
                       "ports": sum(len(n.ports) for n in networks)}
        self.lease_duration = view.lease_duration
        try:
            if result.ops:
                self.apply(result)
                kinds = Counter(type(op).__name__ for op in result.ops)
                LOG.info("seq %d: %s in %.0f ms", view.seq, ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())),
                         (time.monotonic() - started) * 1000)
        finally:
            self.expected = {n.network_id: n.pidfile for n in result.networks}
            metrics.DHCP_NETWORKS.set(self.counts["networks"])
            metrics.DHCP_DNSMASQ.set(len(self.expected))
        return Outcome(port_status={})

    # ------------------------------------------------------------ observe, apply

    def observe(self, view: DhcpView) -> ObservedDhcpHost:
        """The host as it is, for the served networks and every network that has left traces here."""
        wanted = {n.id for n in served(view)}
        with_state = self.dnsmasq.state_dirs(self.dhcp.dhcp_confs)
        ports = self.ovsdb.observe([self.dhcp.integration_bridge]).ports
        marked = {dict(p.external_ids)[NETWORK_KEY] for p in ports if NETWORK_KEY in dict(p.external_ids)}
        present = self.namespaces.existing(NS_PREFIX)
        inspected = [namespace_name(n) for n in sorted(wanted) if namespace_name(n) in present]
        links = self.namespaces.links([None, *inspected])
        networks = []
        for network_id in sorted(wanted | with_state | marked):
            namespace = namespace_name(network_id)
            directory = self.dhcp.directory(network_id)
            exists = namespace in present and (network_id not in wanted or namespace in links)
            networks.append(ObservedNetwork(
                network_id=network_id, namespace=exists,
                links=tuple(link for link in links.get(namespace, ()) if link.name != "lo"),
                dnsmasq=self.dnsmasq.observe(f"{directory}/{PIDFILE}", self.namespaces.inode(namespace)),
                files=self.dnsmasq.read_files(directory, FILES) if network_id in wanted else (),
                state_dir=network_id in with_state))
        node_links = tuple(link for link in links.get(None, ()) if link.name.startswith("tap"))
        return ObservedDhcpHost(networks=tuple(networks), node_links=node_links, ports=ports)

    def apply(self, result: DhcpPlan) -> None:
        """Every op in order, each run of consecutive OVSDB ops in one transaction; failures are
        collected and raised together at the end (``DhcpApplyError``)."""
        failures: list[tuple[object, Exception]] = []
        ovsdb_ops: list[EnsurePort | DeletePort] = []
        for op in (*result.ops, None):
            if isinstance(op, (EnsurePort, DeletePort)):
                ovsdb_ops.append(op)
                continue
            if ovsdb_ops:
                try:
                    self.ovsdb.apply(ovsdb_ops)
                except OvsdbError as exc:
                    LOG.error("OVSDB transaction (%d op(s)) failed: %s", len(ovsdb_ops), exc)
                    failures.append((ovsdb_ops[0], exc))
                ovsdb_ops = []
            if op is None:
                break
            try:
                self._apply(op)
            except (NetnsError, DnsmasqError, OSError) as exc:
                LOG.error("%s failed: %s", op, exc)
                failures.append((op, exc))
        if failures:
            raise DhcpApplyError(failures)

    def _apply(self, op: Op) -> None:
        if isinstance(op, StopDnsmasq):
            self.dnsmasq.stop(op.pid, op.pidfile)
        elif isinstance(op, DeleteLink):
            self.namespaces.delete_link(op.namespace, op.name)
        elif isinstance(op, DeleteNamespace):
            self.namespaces.delete_namespace(op.name)
        elif isinstance(op, RemoveDirectory):
            self.dnsmasq.remove_directory(op.directory)
        elif isinstance(op, EnsureNamespace):
            self.namespaces.ensure_namespace(op.name)
        elif isinstance(op, EnsureDevice):
            self.namespaces.ensure_device(op)
        elif isinstance(op, WriteFiles):
            self.dnsmasq.write_files(op)
        elif isinstance(op, RestartDnsmasq):
            pid = self.dnsmasq.restart(op)
            LOG.info("network %s: dnsmasq restarted (pid %d -> %d)", op.network_id, op.pid, pid)
        elif isinstance(op, StartDnsmasq):
            pid = self.dnsmasq.start(op)
            LOG.info("network %s: dnsmasq started (pid %d)", op.network_id, pid)
        elif isinstance(op, ReloadDnsmasq):
            if not self.dnsmasq.reload(op.pid, op.pidfile):
                LOG.warning("network %s: dnsmasq %d gone before its reload; the next run starts it",
                            op.network_id, op.pid)
        else:
            raise TypeError(f"not a DHCP agent op: {op!r}")

    # ------------------------------------------------------------ supervision

    def _supervise(self, wake: Callable[[], None]) -> None:
        """Every SUPERVISE_INTERVAL, wake the loop if a dnsmasq the last run left running is gone
        (its next run starts it again): Neutron's ProcessMonitor, without its second code path."""
        while not self._stopping.wait(SUPERVISE_INTERVAL):
            dead = [network_id for network_id, pidfile in list(self.expected.items())
                    if self.dnsmasq.running(pidfile) is None]
            if dead:
                LOG.warning("dnsmasq of %d network(s) not running (%s): reconciling", len(dead), ", ".join(dead[:3]))
                wake()
