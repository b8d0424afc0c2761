"""``baryon agent ovs|dhcp|l3 --config-file ...``: run an agent on this host (Neutron's option names)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from baryon.config import ConfigError
from baryon.config.agent import keystone_session, load_agent

LOG = logging.getLogger("baryon.agent")
KINDS = ("ovs", "dhcp", "l3")


def cmd_agent(args: argparse.Namespace) -> int:
    from baryon.agent import metrics
    from baryon.agent.client import ServerClient
    from baryon.agent.runtime import AgentRuntime

    try:
        settings = load_agent(args.config_file)
        keystone = keystone_session(settings)  # [agent_auth]: the agents' Keystone service user, if any
    except ConfigError as exc:
        print(f"baryon agent {args.kind}: configuration error: {exc}", file=sys.stderr)
        return 2
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request
    for warning in settings.warnings:
        LOG.warning("%s", warning)
    if args.kind == "ovs":
        from baryon.agent.firewall import FirewallConfigError
        from baryon.agent.ovs_agent import OvsAgent

        try:
            reconciler = OvsAgent(settings)
        except FirewallConfigError as exc:
            print(f"baryon agent {args.kind}: configuration error: {exc}", file=sys.stderr)
            return 2
    elif args.kind == "dhcp":
        from baryon.agent.dhcp_agent import DhcpAgent

        reconciler = DhcpAgent(settings)
    elif args.kind == "l3":
        from baryon.agent.l3_agent import L3Agent, L3ConfigError

        try:
            reconciler = L3Agent(settings)
        except L3ConfigError as exc:
            print(f"baryon agent {args.kind}: configuration error: {exc}", file=sys.stderr)
            return 2
    client = ServerClient(settings.baryon.server_url, secret=settings.baryon.agent_shared_secret,
                          keystone=keystone)
    # As Neutron: only DHCP and L3 agents have a zone ([AGENT] availability_zone).
    zone = settings.agent.availability_zone if args.kind in ("dhcp", "l3") else None
    runtime = AgentRuntime(reconciler, client, settings.host, settings.agent.report_interval,
                           availability_zone=zone)

    def stop(signum: int, _frame: object) -> None:
        LOG.info("signal %d: stopping", signum)
        runtime.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    LOG.info("%s agent on host %s, server %s", args.kind, settings.host, settings.baryon.server_url)
    try:
        metrics.serve(settings.baryon.metrics_host, settings.baryon.metrics_port(args.kind))
    except OSError as exc:
        print(f"baryon agent {args.kind}: cannot serve metrics on {settings.baryon.metrics_host}:"
              f"{settings.baryon.metrics_port(args.kind)}: {exc.strerror}", file=sys.stderr)
        return 2
    runtime.run()
    LOG.info("stopped")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    agent = sub.add_parser("agent", help="run an agent on this host")
    agent.add_argument("kind", choices=KINDS,
                       help="ovs: the Open vSwitch (L2) agent; dhcp: the DHCP agent; l3: the L3 agent")
    agent.add_argument("--config-file", action="append", default=[], metavar="FILE",
                       help="a Neutron-format INI file (neutron.conf, ml2_conf.ini ...); repeat it")
    agent.set_defaults(func=cmd_agent)
