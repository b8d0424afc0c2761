"""``baryon debug trace`` and ``baryon debug port``: a packet's path and a port's state, explained in
Neutron's terms, on a lab (``baryon.debug``)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from baryon.debug.reach import DebugError, LabReach
from baryon.lab import host
from baryon.lab.api import ApiError
from baryon.lab.lab import Lab
from baryon.lab.state import default_state_dir


def reach(args: argparse.Namespace) -> LabReach:
    return LabReach(Lab.open(Path(args.state_dir) if args.state_dir else default_state_dir()))


def cmd_trace(args: argparse.Namespace) -> int:
    from baryon.debug import trace

    return trace.main(reach(args), args)


def cmd_port(args: argparse.Namespace) -> int:
    from baryon.debug import port

    return port.main(reach(args), args)


def add_parser(sub: argparse._SubParsersAction) -> None:
    debug = sub.add_parser("debug", help="explain a packet's path or a port's state (on a lab)")
    debug.add_argument("--state-dir", help="the lab's state directory (default: $BARYON_LAB_DIR or "
                                           "/var/lib/baryon/lab)")
    debug_sub = debug.add_subparsers(dest="debug_command", required=True)
    trace = debug_sub.add_parser("trace", help="follow a packet from a port to an address through the real tables")
    trace.add_argument("--from", dest="source", required=True, metavar="PORT|VM", help="a port id or name, or a VM")
    trace.add_argument("--to", dest="destination", required=True, metavar="ADDRESS", help="an IP address")
    trace.add_argument("--proto", choices=("icmp", "tcp", "udp"), default="icmp")
    trace.add_argument("--dport", type=int, help="destination port (tcp, udp)")
    trace.add_argument("--sport", type=int, default=40000, help="source port (tcp, udp; default 40000)")
    trace.add_argument("--json", action="store_true", help="the hops as JSON")
    trace.set_defaults(func=cmd_trace)
    port = debug_sub.add_parser("port", help="a port's intent beside what its host has, and its timeline")
    port.add_argument("port", metavar="PORT", help="a port id or name, or a VM")
    port.add_argument("--json", action="store_true")
    port.set_defaults(func=cmd_port)


def run(args: argparse.Namespace) -> int:
    """The subcommand; errors become one clear line and exit status 1 (2: bad usage)."""
    if os.geteuid() != 0:
        print("baryon debug: error: it enters the lab's namespaces: run it as root", file=sys.stderr)
        return 1
    try:
        return args.func(args)
    except (DebugError, host.LabError, ApiError) as exc:
        print(f"baryon debug: error: {exc}", file=sys.stderr)
        return 1
