"""``baryon demo``: lab up, clean-up of an earlier run, the deployment, the checks, then the summary,
the picture (terminal and SVG), ``ip netns ls`` of the network node and the commands to explore.

It leaves the lab running (``baryon lab down`` ends it) and exits 1 when a check failed.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import time
from pathlib import Path

from baryon.demo import build, checks, picture, plan, scene, summary
from baryon.lab.api import Api
from baryon.lab.lab import Lab
from baryon.lab.state import default_state_dir
from baryon.lab.topology import EXTERNAL_GATEWAY

COMPUTES = 2


def say(message: str = "") -> None:
    print(message, flush=True)


def section(title: str) -> None:
    say(f"\n== {title}")


def open_lab(args: argparse.Namespace) -> Lab:
    """The lab at the state directory, with agents and (at least) 2 computes: one already up is
    reused as it is (``up`` converges)."""
    state_dir = Path(args.state_dir) if args.state_dir else default_state_dir()
    recorded = Lab.open(state_dir).paths.read_params()
    computes = recorded.computes if recorded and recorded.computes >= COMPUTES else COMPUTES
    return Lab.open(state_dir, prefix=args.prefix, computes=computes, api_port=args.api_port, agents=True)


def _lab_args(lab: Lab) -> tuple[str, ...]:
    """``baryon lab`` options that point at this lab, when it is not the default one."""
    return () if lab.paths.root == default_state_dir().resolve() else ("--state-dir", str(lab.paths.root))


def _baryon() -> str:
    """How to call ``baryon`` here: on the PATH, else this virtual environment's."""
    if shutil.which("baryon"):
        return "baryon"
    local = Path(sys.executable).parent / "baryon"
    return str(local) if local.exists() else "baryon"


def main(args: argparse.Namespace) -> int:
    started = time.monotonic()
    d = plan.Deployment()
    lab = open_lab(args)
    api = Api(lab.topology.api_url)
    lab_args = _lab_args(lab)
    say(f"baryon demo: a {lab.params.computes}-compute lab in {lab.paths.root}, API {lab.topology.api_url}")

    section("The lab (baryon lab up)")
    lab.up(lambda message: say("  " + message))

    section("Clean-up of an earlier demo")
    if not build.cleanup(lab, api, d, say):
        say("  nothing to clean up")

    section("The deployment, through the API (the openstack commands that do the same)")
    build_started = time.monotonic()
    built = build.build(lab, api, d, say, lab_args)
    build_seconds = time.monotonic() - build_started

    section("Checks")
    results = checks.run_all(lab, api, d, built, say)

    section("Summary")
    say(summary.render_summary(results, build_seconds, time.monotonic() - started))

    section("Topology")
    seen = scene.observe(lab, api)
    say(picture.render_text(seen).rstrip())
    svg = Path(args.svg) if args.svg else lab.paths.root / "topology.svg"
    svg.parent.mkdir(parents=True, exist_ok=True)
    svg.write_text(picture.render_svg(seen))
    say(f"\n  (as SVG: {svg})")

    section("ip netns ls on the network node (baryon lab exec network -- ip netns ls)")
    say("\n".join("  " + line for line in scene.netns_listing(lab, "network").splitlines()))

    section("Explore")
    say(explore_text(_baryon(), lab_args, lab.topology.api_url, d, built))
    say(f"\ndemo: {time.monotonic() - started:.1f}s; the lab is still running.")
    return summary.exit_status(results)


def explore_text(baryon: str, lab_args: tuple[str, ...], api_url: str, d: plan.Deployment, built: build.Built) -> str:
    lab = shlex.join([baryon, "lab", *lab_args])
    other = next((vm for name, vm in built.vms.items() if name != d.floating_vm), None)
    target = other.addresses[0].split("/")[0] if other else EXTERNAL_GATEWAY
    floating = built.floating_ip.get("floating_ip_address", "FLOATING_IP")
    lines = [
        f"openstack --os-auth-type none --os-endpoint {api_url} network list",
        f"openstack --os-auth-type none --os-endpoint {api_url} port list --router {d.router}",
        f"{lab} status",
        f"{lab} exec network -- ip netns ls",
        f"{lab} exec network -- ip netns exec qrouter-{built.router.get('id', 'ROUTER')} iptables-save -t nat",
        f"{lab} exec compute1 -- ovs-vsctl show",
        f"{lab} vm exec {d.floating_vm} -- ping -c 3 {target}",
        f"{lab} exec external -- ping -c 3 {floating}",
        f"{lab} down",
    ]
    return "\n".join("  " + line for line in lines)
