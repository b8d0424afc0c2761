"""An agent's Prometheus metrics, served on its own address (``serve``), and the port-to-wire clock.

``[baryon] metrics_host`` (default 127.0.0.1) and one port per agent kind, so that the agents of
one node can share its address: ``ovs_metrics_port``, ``dhcp_metrics_port``, ``l3_metrics_port``
(0, the default: no endpoint). prometheus_client's HTTP server answers ``GET /metrics`` from a
daemon thread; it reads the values the agent's threads set, never the host.

Every agent (label ``kind``: ovs, dhcp, l3; set by ``runtime``):
``baryon_agent_reconcile_seconds`` (histogram) and ``baryon_agent_reconcile_runs_total{outcome}``
(ok, failed); ``baryon_agent_heartbeats_sent_total``; ``baryon_agent_view_updates_total`` (new
views received); ``baryon_agent_reported_seq`` (the realised sequence last reported).

Objects on the host, as of the last run (set by each agent's ``reconcile``): OVS
``baryon_ovs_ports`` (wired: ACTIVE), ``baryon_ovs_flows{bridge}`` (flows it installed),
``baryon_ovs_firewall_rules`` (iptables rules it owns, hooks included) and the histogram
``baryon_ovs_port_wire_seconds`` (``WireClock``); DHCP ``baryon_dhcp_networks``,
``baryon_dhcp_dnsmasq_processes``; L3 ``baryon_l3_routers``, ``baryon_l3_namespaces``,
``baryon_l3_floating_ips``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge, Histogram, start_http_server

LOG = logging.getLogger("baryon.agent")

RECONCILE_SECONDS = Histogram("baryon_agent_reconcile_seconds", "Duration of reconcile runs", ["kind"],
                              buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))
RECONCILE_RUNS = Counter("baryon_agent_reconcile_runs", "Reconcile runs, by outcome (ok, failed)", ["kind", "outcome"])
HEARTBEATS_SENT = Counter("baryon_agent_heartbeats_sent", "Heartbeats (state reports) the server accepted", ["kind"])
VIEW_UPDATES = Counter("baryon_agent_view_updates", "New host views received from the server", ["kind"])
REPORTED_SEQ = Gauge("baryon_agent_reported_seq", "The realised change-log sequence last reported to the server",
                     ["kind"])

PORT_WIRE_SECONDS = Histogram("baryon_ovs_port_wire_seconds",
                              "Seconds from a port's first appearance in the agent's view to the run that wired it",
                              buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0))
OVS_PORTS = Gauge("baryon_ovs_ports", "Ports wired (ACTIVE) on this host")
OVS_FLOWS = Gauge("baryon_ovs_flows", "OpenFlow flows the agent installed, by bridge", ["bridge"])
OVS_FIREWALL_RULES = Gauge("baryon_ovs_firewall_rules", "iptables rules of the agent's security group chains")
DHCP_NETWORKS = Gauge("baryon_dhcp_networks", "Networks served by DHCP on this host")
DHCP_DNSMASQ = Gauge("baryon_dhcp_dnsmasq_processes", "dnsmasq processes the last run left running")
L3_ROUTERS = Gauge("baryon_l3_routers", "Routers hosted on this host")
L3_NAMESPACES = Gauge("baryon_l3_namespaces", "qrouter- namespaces on this host")
L3_FLOATING_IPS = Gauge("baryon_l3_floating_ips", "Floating IPs of the routers on this host")


def serve(host: str, port: int) -> int | None:
    """Serve ``/metrics`` on ``host:port`` from a daemon thread (port 0: not at all); returns the port."""
    if not port:
        return None
    server, _thread = start_http_server(port, addr=host)
    bound = server.server_port
    LOG.info("metrics on http://%s:%d/metrics", host, bound)
    return bound


@dataclass
class WireClock:
    """Port-to-wire latency: when each port first appeared in the agent's views, until a run
    reports it ACTIVE. ``saw`` runs in the watcher thread, ``wired`` in the reconcile loop.

    NOTE: the ports of the first view are not timed: they appeared before the agent started, and
    timing them would measure the agent's start-up. A port that leaves the view and comes back
    is timed again; one that goes DOWN and back while in the view is not."""

    pending: dict[str, float] = field(default_factory=dict)  # port id -> first seen (monotonic)
    known: set[str] = field(default_factory=set)  # in the view, and wired or untimed
    started: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def saw(self, port_ids: Iterable[str], at: float) -> None:
        ids = set(port_ids)
        with self.lock:
            if not self.started:
                self.started = True
                self.known = ids
                return
            self.known &= ids
            self.pending = {port_id: seen for port_id, seen in self.pending.items() if port_id in ids}
            for port_id in ids - self.known:
                self.pending.setdefault(port_id, at)

    def wired(self, statuses: Mapping[str, str], at: float) -> list[float]:
        """The latencies of the ports this run wired for the first time (each once)."""
        latencies = []
        with self.lock:
            for port_id, status in statuses.items():
                if status == "ACTIVE" and port_id in self.pending:
                    latencies.append(max(0.0, at - self.pending.pop(port_id)))
                    self.known.add(port_id)
        return latencies
