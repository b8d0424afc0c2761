"""``baryon demo``: the seed's deployment built on a lab through the API and checked end to end
(``baryon.demo``)."""

from __future__ import annotations

import argparse
import os
import sys

from baryon.lab import host
from baryon.lab.api import ApiError


def add_parser(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser("demo", help="build a simulated multi-node cloud and check it end to end")
    demo.add_argument("--state-dir", help="the lab's state directory (default: $BARYON_LAB_DIR or "
                                          "/var/lib/baryon/lab)")
    demo.add_argument("--prefix", help="the lab's namespace prefix (default blab-)")
    demo.add_argument("--api-port", type=int, help="the lab's API port on 127.0.0.1 (default 9696)")
    demo.add_argument("--svg", help="where to write the topology picture (default: <state dir>/topology.svg)")


def run(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        print("baryon demo: error: it builds a lab (namespaces, Open vSwitch): run it as root", file=sys.stderr)
        return 1
    from baryon.demo import run as demo_run

    try:
        return demo_run.main(args)
    except (host.LabError, ApiError) as exc:
        print(f"baryon demo: error: {exc}", file=sys.stderr)
        return 1
