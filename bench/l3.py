#!/usr/bin/env python3
"""Benchmark of the L3 agent in a real lab: floating IP association to first reply from outside;
an agent restart with many routers.

    .venv/bin/python bench/l3.py [--samples 30] [--routers 100] [--node-ports 0] [--node-fips N]
                                 [--write] [--results bench/RESULTS.md]

Run it as root, on demand (not part of the test suite), on an otherwise idle machine. One
1-compute lab with its agents in a temporary state directory under /tmp, namespace prefix
``bbench-``, API on 127.0.0.1:9795 (``bench/labkit.py``'s rules: refused when a ``bbench-``
namespace exists or the port is taken; the lab is taken down in ``finally``, also on Ctrl-C or
SIGTERM; nothing may be left). It never touches the root network namespace: pings run inside the
lab's ``external`` node (``nsenter --net``) and its VM; the L3 agent is signalled by the PID
``baryon lab status --json`` gives.

Set-up: network ``ext`` (flat, physnet1, external, 203.0.113.0/24, gateway the lab's external
host 203.0.113.1), network ``bench`` (vxlan, 10.30.0.0/24; larger with ``--node-ports``, e.g.
10.30.0.0/21 for 1000), router ``bench`` with its gateway on ext and an interface on bench, ICMP
allowed in by the default group, VM ``v`` on compute1.

0. node fill (``--node-ports N``, default 0: none; ``--node-fips M``, default N), after the set-up,
   before anything is measured. The L3 agent's view holds routers, their own ports (gateway,
   interfaces), extra routes and floating IPs, not the other ports of their networks: so N ports
   on bench (bound nowhere, bulk POSTs of 100, explicit addresses), which alone the agent never
   sees, and M of them (M <= N) given a floating IP through router bench (bulk POSTs of 100 with
   ``port_id``), until every one is ACTIVE (the agent put its address on bench's ``qg-`` and its
   DNAT/SNAT rules in the namespace, and reported it): router bench then carries M floating IPs,
   and every measurement below runs with them in the agent's view and in the namespace it
   reads and rewrites (part 1's association is on that same router). The fill's floating
   addresses come from a second subnet of ext, 198.18.0.0/N (RFC 2544's benchmarking range, so
   that ext's 203.0.113.0/24 keeps room for the routers' gateways: those made later are given
   an address on 203.0.113.0/24 explicitly); nothing answers there, and nothing is sent there.
   Issue 11: every agent keeps its targets at 1,000 ports per node. A run with ``--node-ports
   1000`` (1000 floating IPs, the defaults) takes about 5 minutes on 2 loaded CPUs.

1. Floating IP association -> first reply from outside, ``--samples`` times. Sample i: the
   external host starts ``ping -D -i 0.005`` to the floating address (a new ICMP id each time);
   t0 just before the PUT that associates the floating IP with v's port; the first echo reply's
   timestamp (``-D``: wall clock, microseconds) - t0. Resolution: the 5 ms ping interval. Then the
   floating IP is disassociated and the script waits until its /32 left the router's ``qg-``.
2. ``--routers`` routers (router ``bench`` and ``--routers`` - 1 more, each with its gateway on ext
   and an interface on a network of its own): built from cold (t0 before the first POST -> every
   router ACTIVE). Then the L3 agent is killed (-9) while v pings the external host every 50 ms
   through SNAT; a change that CONCERNS the agent moves the sequence to S (an extra route,
   10.99.0.0/24, on router r0, not the router v pings through, or on bench when ``--routers 1``:
   the restarted agent must add it to that router's namespace); ``baryon lab up`` starts the
   agent again. From the new agent process's start to its ``realised_seq >= S`` (it reports after
   its first run: reconciled); the ``qrouter-`` namespaces' inodes before and after (a namespace
   rebuilt has a new inode); v's ping loss over the whole restart. NOTE: the change must concern
   the agent: the server shows an agent's ``realised_seq`` as current to the log for as long as
   its view keeps the etag the agent last reported with it, so after a change elsewhere (a
   network without subnet, say) the killed agent would count as caught up before it started.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import labkit  # noqa: E402
from labkit import BenchError, percentile  # noqa: E402

from baryon.lab import host  # noqa: E402
from baryon.lab.lab import Lab  # noqa: E402

PREFIX, API_PORT = "bbench-", 9795
BENCH = labkit.Bench("bench/l3", PREFIX, API_PORT, "## L3 agent (bench/l3.py)")
L3_NODE, VM_NODE = "network", "compute1"
EXTERNAL_HOST = "203.0.113.1"
RESTART_TIMEOUT = 120.0
REPLY = re.compile(r"^\[(\d+\.\d+)\] \d+ bytes from")


def say(message: str) -> None:
    BENCH.say(message)


class Api(labkit.Api):
    def __init__(self) -> None:
        super().__init__(API_PORT)

    def post(self, path: str, key: str, body: dict | list) -> dict | list:
        payload = {key + "s": body} if isinstance(body, list) else {key: body}
        answer = self.call("POST", "/v2.0" + path, payload) or {}
        return answer[key + "s"] if isinstance(body, list) else answer[key]

    def put(self, path: str, body: dict) -> dict:
        return self.call("PUT", path, body) or {}

    def seq(self) -> int:
        return int(self.get("/agent/v1/seq")["seq"])

    def l3_agent(self) -> dict:
        found = self.get(f"/v2.0/agents?host={L3_NODE}&agent_type=L3%20agent")["agents"]
        if len(found) != 1:
            raise BenchError(f"{len(found)} L3 agents on {L3_NODE}")
        return found[0]

    def routers_active(self) -> tuple[int, int]:
        routers = self.get("/v2.0/routers?fields=status")["routers"]
        return sum(1 for r in routers if r["status"] == "ACTIVE"), len(routers)


@contextlib.contextmanager
def running_lab(state_dir: Path) -> Iterator[Lab]:
    try:
        seconds = labkit.lab_up(state_dir, "--prefix", PREFIX, "--api-port", str(API_PORT), "--computes", "1")
        say(f"lab up in {seconds:.1f} s ({state_dir})")
        yield Lab.open(state_dir)
    finally:
        say("lab down")
        BENCH.down_regardless(state_dir)


def in_node(node: str, *argv: str) -> list[str]:
    """``argv`` in a lab node's network namespace (the root mount namespace: nothing it needs there)."""
    return ["nsenter", f"--net=/run/netns/{PREFIX}{node}", "--", *argv]


def router_netns_inodes(state_dir: Path) -> dict[str, str]:
    """qrouter- namespace name -> inode, on the network node."""
    out = labkit.lab_cli(state_dir, "exec", L3_NODE, "--", "sh", "-c",
                         "for f in /run/netns/qrouter-*; do stat -L -c '%n %i' $f; done").stdout
    return dict(line.split() for line in out.splitlines() if line.startswith("/run/netns/qrouter-"))


def set_up(api: Api, state_dir: Path, node_ports: int = 0) -> dict:
    ext = api.post("/networks", "network", {"name": "ext", "router:external": True, "provider:network_type": "flat",
                                            "provider:physical_network": "physnet1"})
    ext_subnet = api.post("/subnets", "subnet", {"network_id": ext["id"], "cidr": "203.0.113.0/24", "ip_version": 4,
                                                 "gateway_ip": EXTERNAL_HOST, "enable_dhcp": False,
                                                 "allocation_pools": [{"start": "203.0.113.10",
                                                                       "end": "203.0.113.250"}]})
    network = labkit.create_network(api, "bench", labkit.sized_cidr("10.30.0.0", node_ports + 20) if node_ports
                                    else "10.30.0.0/24", dhcp=False)
    subnet = api.get(f"/v2.0/subnets?network_id={network}")["subnets"][0]
    router = api.post("/routers", "router", {"name": "bench", "external_gateway_info": {"network_id": ext["id"]}})
    api.put(f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": subnet["id"]})
    group = api.get("/v2.0/security-groups?name=default")["security_groups"][0]
    api.post("/security-group-rules", "security_group_rule", {
        "security_group_id": group["id"], "direction": "ingress", "protocol": "icmp", "remote_ip_prefix": "0.0.0.0/0"})
    labkit.lab_cli(state_dir, "vm", "create", "v", "--node", VM_NODE, "--network", "bench", timeout=120)
    port = labkit.wait_for(lambda: [p for p in api.get(f"/v2.0/ports?network_id={network}&device_owner=compute:nova")
                                    ["ports"] if p["status"] == "ACTIVE"], 30, "v's port ACTIVE", 0.1)[0]
    labkit.wait_for(lambda: api.get(f"/v2.0/routers/{router['id']}")["router"]["status"] == "ACTIVE", 30,
                    "router bench ACTIVE", 0.1)
    fip = api.post("/floatingips", "floatingip", {"floating_network_id": ext["id"]})
    return {"ext": ext["id"], "ext_subnet": ext_subnet["id"], "router": router["id"], "port": port["id"], "fip": fip,
            "network": network, "fill_subnet": None}


# --------------------------------------------------------------------------- 0. node fill


def fips_active(api: Api, ids: set[str]) -> bool:
    fips = api.get("/v2.0/floatingips?fields=id&fields=status")["floatingips"]
    return sum(1 for f in fips if f["id"] in ids and f["status"] == "ACTIVE") == len(ids)


def fill_node(api: Api, setup: dict, count: int, fips: int) -> labkit.Fill:
    """``--node-ports``/``--node-fips``: ``count`` ports on bench, ``fips`` of them with a floating IP
    through router bench (from ext's second subnet), until those are ACTIVE (module doc)."""
    if not count:
        return labkit.Fill(0, "", 0.0, 0)
    started = time.monotonic()
    ports, post_s = labkit.create_ports(api, setup["network"], count, "bbench-fill")
    cidr = api.get(f"/v2.0/subnets?network_id={setup['network']}")["subnets"][0]["cidr"]
    fill = labkit.Fill(count, f"on network bench ({cidr}), bound nowhere", post_s,
                       math.ceil(count / labkit.FILL_CHUNK))
    if fips:
        fip_cidr = labkit.sized_cidr("198.18.0.0", fips)
        subnet = api.post("/subnets", "subnet", {"network_id": setup["ext"], "cidr": fip_cidr, "ip_version": 4,
                                                 "gateway_ip": None, "enable_dhcp": False, "name": "ext-fill"})
        setup["fill_subnet"] = subnet["id"]
        made, fip_s = [], 0.0
        for start in range(0, fips, labkit.FILL_CHUNK):
            body = [{"floating_network_id": setup["ext"], "subnet_id": subnet["id"], "port_id": p["id"]}
                    for p in ports[start:min(fips, start + labkit.FILL_CHUNK)]]
            posted = time.monotonic()
            made += api.post("/floatingips", "floatingip", body)
            fip_s += time.monotonic() - posted
        ids = {f["id"] for f in made}
        posted = time.monotonic()
        labkit.wait_for(lambda: fips_active(api, ids), labkit.FILL_TIMEOUT, f"{fips} floating IPs ACTIVE", 0.2)
        fill.where += f"; {fips} of them with a floating IP on router bench (ext's second subnet {fip_cidr})"
        fill.extra.append(f"floating IPs: {math.ceil(fips / labkit.FILL_CHUNK)} bulk POSTs in {fip_s:.2f} s; all "
                          f"ACTIVE {time.monotonic() - posted:.2f} s after the last")
        fill.ready_what = "floating IPs all ACTIVE"
        fill.ready_s = time.monotonic() - started
    return fill


# --------------------------------------------------------------------------- 1. association -> reply


def fip_sample(api: Api, state_dir: Path, setup: dict) -> float | None:
    fip = setup["fip"]
    address = fip["floating_ip_address"]
    ping = subprocess.Popen(in_node("external", "ping", "-D", "-n", "-i", "0.005", "-W", "1", "-w", "10", address),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        time.sleep(0.05)
        t0 = time.time()
        api.put(f"/v2.0/floatingips/{fip['id']}", {"floatingip": {"port_id": setup["port"]}})
        first = None
        assert ping.stdout is not None
        for line in ping.stdout:
            match = REPLY.match(line)
            if match:
                first = float(match.group(1)) - t0
                break
    finally:
        ping.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            ping.communicate(timeout=5)
        if ping.poll() is None:
            ping.kill()
            ping.wait()
    api.put(f"/v2.0/floatingips/{fip['id']}", {"floatingip": {"port_id": None}})
    namespace = f"qrouter-{setup['router']}"
    labkit.wait_for(lambda: f"{address}/32" not in labkit.lab_cli(
        state_dir, "exec", L3_NODE, "--", "ip", "-n", namespace, "-o", "addr").stdout, 20,
        "the floating address gone from qg-", 0.05)
    return first


# --------------------------------------------------------------------------- 2. many routers, restart


def more_routers(api: Api, setup: dict, count: int) -> tuple[float, list[dict]]:
    """``count`` more routers, each with a gateway and an interface on a network of its own;
    (seconds from the first POST until every router is ACTIVE, the routers)."""
    t0 = time.monotonic()
    gateway: dict = {"network_id": setup["ext"]}
    if setup.get("fill_subnet"):  # ext has two subnets: the gateways' addresses on 203.0.113.0/24
        gateway["external_fixed_ips"] = [{"subnet_id": setup["ext_subnet"]}]
    networks = api.post("/networks", "network", [{"name": f"r{i}"} for i in range(count)]) if count else []
    subnets = api.post("/subnets", "subnet", [{"network_id": n["id"], "cidr": f"10.40.{i}.0/24", "ip_version": 4,
                                               "enable_dhcp": False} for i, n in enumerate(networks)]) if count else []
    routers = api.post("/routers", "router", [{"name": f"r{i}", "external_gateway_info": gateway}
                                              for i in range(count)]) if count else []
    for router, subnet in zip(routers, subnets):
        api.put(f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": subnet["id"]})
    labkit.wait_for(lambda: (lambda a: a[0] == a[1])(api.routers_active()), 600, "every router ACTIVE", 0.2)
    return time.monotonic() - t0, routers


def concerning_change(api: Api, setup: dict, routers: list[dict]) -> str:
    """A change the L3 agent must realise: an extra route on r0 (on bench when there is no r0),
    its nexthop on that router's interface subnet; what it was."""
    if routers:
        router_id, name, nexthop = routers[0]["id"], "r0", "10.40.0.254"
    else:
        subnet = api.get(f"/v2.0/subnets?network_id={setup['network']}")["subnets"][0]
        router_id, name = setup["router"], "bench"
        nexthop = str(ipaddress.ip_network(subnet["cidr"]).broadcast_address - 1)
    api.put(f"/v2.0/routers/{router_id}", {"router": {"routes": [{"destination": "10.99.0.0/24",
                                                                   "nexthop": nexthop}]}})
    return f"an extra route 10.99.0.0/24 via {nexthop} on router {name}"


@dataclass
class Restart:
    routers: int
    reconciled_s: float | None  # new agent process start -> realised_seq >= target
    rebuilt: int
    missing: int
    sent: int
    received: int
    log: list[str]
    change: str = ""  # what was changed while the agent was dead
    gaps: int = 0  # requests unanswered before the last one answered (lost, not merely in flight at the end)


def measure_restart(api: Api, lab: Lab, state_dir: Path, setup: dict, routers: list[dict]) -> Restart:
    before = router_netns_inodes(state_dir)
    log_path = lab.paths.log(L3_NODE) / "l3-agent.log"
    log_size = log_path.stat().st_size if log_path.exists() else 0
    pinger = subprocess.Popen([str(labkit.BARYON), "lab", "--state-dir", str(state_dir), "vm", "exec", "v", "--",
                               "ping", "-n", "-i", "0.05", "-W", "1", EXTERNAL_HOST],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    reconciled_s = None
    try:
        time.sleep(2)
        old_pid = labkit.lab_pids(state_dir)[(L3_NODE, "l3-agent")]
        os.kill(old_pid, signal.SIGKILL)
        labkit.wait_for(lambda: not host.ours(old_pid, lab.paths.marker), 10, "the L3 agent to die", 0.005)
        # The sequence moves on AND the agent's view changes (see the module doc: a change elsewhere
        # would leave the etag it reported current, and its realised_seq caught up at once).
        change = concerning_change(api, setup, routers)
        target = api.seq()
        pidfile = lab.paths.run(L3_NODE) / "l3-agent.pid"
        upping = threading.Thread(target=labkit.lab_up, args=(state_dir,), daemon=True)
        upping.start()
        new_pid, reconciled = None, None
        deadline = time.monotonic() + RESTART_TIMEOUT
        while time.monotonic() < deadline and reconciled is None:
            if new_pid is None:
                pid = host.read_pid(pidfile)
                new_pid = pid if pid not in (None, old_pid) and host.ours(pid, lab.paths.marker) else None
            with contextlib.suppress(BenchError):
                if api.l3_agent()["realised_seq"] >= target:
                    reconciled = time.monotonic()
            time.sleep(0.02)
        upping.join(RESTART_TIMEOUT)
        if reconciled is None:
            raise BenchError(f"the restarted L3 agent did not report seq {target} within {RESTART_TIMEOUT:g} s")
        started = labkit.process_start(new_pid) if new_pid else None
        reconciled_s = None if started is None else reconciled - started
        time.sleep(2)
    finally:
        pinger.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            out, _ = pinger.communicate(timeout=10)
        if pinger.poll() is None:
            pinger.kill()
            out, _ = pinger.communicate()
    after = router_netns_inodes(state_dir)
    counts = re.search(r"(\d+) packets transmitted, (\d+) received", out or "")
    sent, received = (int(counts.group(1)), int(counts.group(2))) if counts else (0, 0)
    # NOTE: a request still in flight when ping is stopped counts as lost in its summary: the
    # requests lost are those unanswered before the last one answered.
    answered = {int(m.group(1)) for m in re.finditer(r"icmp_seq=(\d+)", out or "")}
    gaps = (max(answered) - len(answered)) if answered else sent
    with open(log_path) as handle:
        handle.seek(log_size)
        log = [line.rstrip("\n") for line in handle][-20:]
    return Restart(len(before), reconciled_s, sum(1 for n, i in before.items() if after.get(n) not in (None, i)),
                   sum(1 for n in before if n not in after), sent, received, log, change, gaps)


# --------------------------------------------------------------------------- the whole run


@dataclass
class Results:
    fip: list[float | None]
    routers: int
    cold_s: float
    restart: Restart
    fill: labkit.Fill = field(default_factory=lambda: labkit.Fill(0, "", 0.0, 0))
    seconds: float = 0.0  # the whole run, lab up and down included


def run_all(args: argparse.Namespace, base: Path) -> Results:
    state_dir = base / "lab"
    started = time.monotonic()
    with running_lab(state_dir) as lab:
        api = Api()
        try:
            setup = set_up(api, state_dir, args.node_ports)
            if args.node_ports:
                say(f"0. node fill: {args.node_ports} ports on bench, {args.node_fips} floating IPs on router bench")
            fill = fill_node(api, setup, args.node_ports, args.node_fips)
            for line in fill.lines(""):
                say(line)
            say(f"1. floating IP association -> first reply from outside, {args.samples} samples")
            fip = [fip_sample(api, state_dir, setup) for _ in range(args.samples)]
            say(f"2. {args.routers} routers from cold, then an L3 agent restart")
            cold_s, routers = more_routers(api, setup, args.routers - 1)
            restart = measure_restart(api, lab, state_dir, setup, routers)
        finally:
            api.close()
    return Results(fip, args.routers, cold_s, restart, fill, time.monotonic() - started)


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def report(r: Results, _args: argparse.Namespace) -> str:
    got = [v for v in r.fip if v is not None]
    lines = [f"L3 benchmark: the run took {r.seconds / 60:.1f} min; machine's 1-minute load average now {labkit.loadavg()} "
             f"({os.cpu_count()} CPUs)"]
    if r.fill.ports:
        lines += ["0." + line[2:] if i == 0 else line for i, line in enumerate(r.fill.lines())]
    lines += [f"1. floating IP association -> first echo reply at the external host: {len(r.fip)} samples, "
             f"{len(r.fip) - len(got)} without a reply within 10 s" + (
                 f" (router bench carries the {r.fill.ports} fill ports' floating IPs)" if r.fill.ports else ""),
             f"   p50 {_ms(percentile(got, 0.5) if got else None)}, p99 {_ms(percentile(got, 0.99) if got else None)}, "
             f"max {_ms(max(got) if got else None)} (ping every 5 ms; t0 just before the PUT)",
             f"2. {r.routers} routers (gateway + one interface each) built from cold in {r.cold_s:.1f} s (first POST "
             "-> every router ACTIVE)",
             f"   L3 agent killed (-9), {r.restart.change} (a change that concerns it), started again: reconciled "
             f"{_ms(r.restart.reconciled_s)} after its process started; qrouter namespaces rebuilt: {r.restart.rebuilt} "
             f"of {r.restart.routers}, missing: {r.restart.missing}",
             f"   VM -> external host through SNAT, every 50 ms across the restart: {r.restart.sent} sent, "
             f"{r.restart.sent - r.restart.received} unanswered, of which {r.restart.gaps} lost (unanswered before the "
             "last one answered; the others were in flight when ping was stopped)",
             "   the new agent's log (a run that changes anything logs a line \"seq N: <ops> in X ms\"):", *("     " + line for line in r.restart.log)]
    return "\n".join(lines)


def section(r: Results, args: argparse.Namespace, facts: dict, text: str) -> str:
    command = labkit.command_line("bench/l3.py", args, DEFAULTS, ("samples", "routers", "node_ports", "node_fips"))
    return labkit.section(BENCH.heading, "bench/l3.py", "Targets: none set by the issue; no namespace rebuilt and no "
                          "packet lost on restart.", facts, command, [], text)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--routers", type=int, default=100)
    parser.add_argument("--node-ports", type=int, default=0,
                        help="ports put on bench before any measurement (0: none)")
    parser.add_argument("--node-fips", type=int, default=None,
                        help="how many of those get a floating IP on router bench (default: all)")
    BENCH.add_write_options(parser)
    args = parser.parse_args(argv)
    if args.node_fips is None:
        args.node_fips = args.node_ports
    if args.samples < 1 or args.routers < 1 or args.routers > 256:
        parser.error("--samples: at least 1; --routers: 1 to 256 (10.40.i.0/24 each)")
    if not 0 <= args.node_ports <= 16000 or not 0 <= args.node_fips <= args.node_ports:
        parser.error("--node-ports: 0 to 16000; --node-fips: 0 to --node-ports")
    return args


DEFAULTS = parse([])


def main() -> int:
    args = parse()
    return BENCH.main(args, run_all, report, section, what="the L3 benchmark",
                      interrupted="interrupted: the lab was taken down")


if __name__ == "__main__":
    sys.exit(main())
