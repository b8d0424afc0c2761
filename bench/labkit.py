"""What the lab benchmarks share (bench/lab.py, bench/agent.py): a lab run safely, /proc, RESULTS.md.

The contract, for a script that drives a lab with ``.venv/bin/baryon lab`` (standard library only,
so that a script driving the command line alone need not import baryon):

- A ``Bench`` is one script: its name (the ``bench/NAME: `` prefix of every message, on stderr),
  its namespace prefix and its API port on 127.0.0.1, both apart from a user's lab (``blab-``,
  9696), and the heading of its RESULTS.md section. ``Bench.main`` is the script's whole run:
  - it refuses to start (``SystemExit``) unless root, with ``.venv/bin/baryon``, no namespace of
    the prefix in /run/netns and the port free; it makes SIGTERM a ``KeyboardInterrupt`` so that
    every ``finally`` runs, and measures in a new base directory /tmp/baryon-bench-NAME-*;
  - whatever happened, it then lists what is left (namespaces of the prefix, processes naming the
    base directory, mounts under it) and removes the base directory only when nothing is; it
    never kills or removes anything else. Exit status: 0; 1 when the measurement failed or
    something is left; 130 when interrupted;
  - it prints the report on stdout and, with ``--write`` (``Bench.add_write_options``), puts the
    script's section in ``--results``.
- ``Bench.down_regardless`` is the ``lab down`` of a ``finally``: always with ``--prefix``
  (without a lab.json, ``lab down`` falls back to the default prefix, i.e. a user's lab), in its
  own session, Ctrl-C and SIGTERM ignored meanwhile.
- Nothing here changes the root network namespace: it reads /proc, /run/netns and
  /proc/self/mountinfo, binds a loopback socket to test the port, talks to the lab's API on the
  loopback, and runs ``baryon lab``, ``git``, ``date -u`` and ``ovs-vswitchd --version``.
- RESULTS.md: ``machine()``, ``revision()`` and ``section()`` make the frame every section shares
  (heading, note, date, machine, revision, command; the script's own lines; its report in a code
  block); ``write_section`` replaces the "## " section of that heading up to the next "## "
  heading, or appends it.
- ``Api`` speaks JSON to the lab's API over one keep-alive loopback connection;
  ``create_network`` makes a network (and its IPv4 subnet) through it.
- A node filled up before the measurements (every lab benchmark's ``--node-ports N``):
  ``create_ports`` makes N ports in bulk POSTs of ``FILL_CHUNK`` (100), each with an explicit
  free address (``free_addresses``, in a subnet sized by ``sized_cidr``), optionally bound to a
  node; ``internal_ports_args`` gives the ovs-vsctl arguments that plug their VIFs as OVS internal
  ports in ONE transaction (run by the benchmark on the node's own OVSDB socket);
  ``fill_plugged`` does both and waits until every port is ACTIVE; ``Fill`` says what was put
  where and how long it took (its report lines).
- ``poll_until``/``wait_for`` poll a condition; ``cpu_ticks``, ``machine_ticks``, ``rss_kib``,
  ``pss_kib``, ``exited`` and ``sample_cpu`` read processes from /proc; ``dnsmasq_pids`` and
  ``stop_dnsmasqs`` find and stop (by PID) the dnsmasq processes of a lab's DHCP agent that its
  ``lab down`` left running.
- ``percentile`` (nearest rank); ``parse_log_line``/``log_lines`` read the lab's logs (servers and
  agents share one format); ``NetnsThread`` is one worker thread inside a network namespace of the
  lab, to open probe sockets there (it only enters the namespace: it changes nothing in it).
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as dt
import http.client
import ipaddress
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import threading
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
BARYON = ROOT / ".venv" / "bin" / "baryon"
NETNS_DIR = Path("/run/netns")
UP_TIMEOUT, DOWN_TIMEOUT, CLI_TIMEOUT = 300.0, 180.0, 60.0
CLOCK_HZ = os.sysconf("SC_CLK_TCK")
# The lab's agent secret (baryon.lab.configs.lab_secret: <state dir>/agent_shared_secret), read by
# ``lab_up``: every request on the loopback API carries it (the agent API, /agent/v1, needs it).
AGENT_HEADERS: dict[str, str] = {}


class BenchError(RuntimeError):
    """A measurement failed: the script says so and exits 1 (its lab taken down)."""


# --------------------------------------------------------------------------- the command line


def lab_cli(state_dir: Path, *args: str, timeout: float = CLI_TIMEOUT,
            check: bool = True) -> subprocess.CompletedProcess[str]:
    """``baryon lab --state-dir STATE_DIR ARGS...``; raises ``BenchError`` when it fails (``check``)."""
    argv = [str(BARYON), "lab", "--state-dir", str(state_dir), *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise BenchError(f"baryon lab {' '.join(args)}: exit {proc.returncode}: "
                         f"{(proc.stderr or proc.stdout).strip()}")
    return proc


def lab_status(state_dir: Path) -> dict:
    """``lab status --json``."""
    return json.loads(lab_cli(state_dir, "status", "--json").stdout)


def status_pids(status: dict) -> dict[tuple[str, str], int]:
    """(node, process) -> PID of the lab's own processes that run, in the order of ``status``."""
    return {(n["name"], p["name"]): p["pid"] for n in status["nodes"] for p in n["processes"] if p["pid"]}


def lab_pids(state_dir: Path) -> dict[tuple[str, str], int]:
    """(node, process) -> PID, from ``lab status --json`` (the lab's own processes only)."""
    return status_pids(lab_status(state_dir))


# --------------------------------------------------------------------------- one benchmark, safely


def _interrupted(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@dataclass(frozen=True)
class Bench:
    """One benchmark script: how it names itself, its namespace prefix, its API port, its section."""

    name: str  # "bench/lab"
    prefix: str  # "bbench-"
    api_port: int
    heading: str  # "## Lab (bench/lab.py)"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def say(self, message: str) -> None:
        print(f"{self.name}: {message}", file=sys.stderr, flush=True)

    def namespaces(self) -> list[Path]:
        return sorted(NETNS_DIR.glob(self.prefix + "*"))

    def preflight(self) -> None:
        """``SystemExit`` unless root, with ``baryon``, no namespace of the prefix and the port free."""
        if os.geteuid() != 0:
            raise SystemExit(f"{self.name}: run it as root (the lab builds namespaces and OVS bridges)")
        if not BARYON.exists():
            raise SystemExit(f"{self.name}: {BARYON} is missing (bin/setup)")
        present = [p.name for p in self.namespaces()]
        if present:
            raise SystemExit(f"{self.name}: namespaces {', '.join(present)} exist (a benchmark running, or one "
                             "that crashed): take that lab down with its --state-dir first")
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the lab: TIME_WAITs do not count
            try:
                sock.bind(("127.0.0.1", self.api_port))
            except OSError as exc:
                raise SystemExit(f"{self.name}: 127.0.0.1:{self.api_port} is taken ({exc.strerror})") from None

    def add_write_options(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--write", action="store_true", help=f"put the result in --results as {self.heading!r}")
        parser.add_argument("--results", type=Path, default=ROOT / "bench" / "RESULTS.md")

    def start(self, what: str) -> tuple[dict, Path]:
        """Preflight, SIGTERM as Ctrl-C, the machine's facts, a new base directory in /tmp: (facts, base)."""
        self.preflight()
        signal.signal(signal.SIGTERM, _interrupted)  # a kill (not -9) also runs the `finally`s
        facts = machine()
        base = Path(tempfile.mkdtemp(prefix=f"baryon-{self.name.replace('/', '-')}-"))
        base.chmod(0o755)  # mkdtemp's 0700 would keep dnsmasq (nobody) from its files: lab up refuses it
        self.say(f"{what} under {base}")
        return facts, base

    def down_regardless(self, state_dir: Path) -> None:
        """``lab down --prefix PREFIX`` that a second Ctrl-C or SIGTERM cannot cut short (ignored
        meanwhile; the command runs in its own session).

        NOTE: ``--prefix`` is always given: without a ``lab.json`` (an ``up`` cut short before
        writing it), ``lab down`` would fall back to the default prefix, i.e. a user's lab."""
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            proc = subprocess.run([str(BARYON), "lab", "--state-dir", str(state_dir), "down", "--prefix", self.prefix],
                                  capture_output=True, text=True, timeout=DOWN_TIMEOUT, check=False,
                                  start_new_session=True)
            if proc.returncode != 0:
                self.say(f"lab down {state_dir} failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()}")
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def leftovers(self, base: Path) -> list[str]:
        """What the run left behind: namespaces, processes naming ``base``, mounts under it."""
        found = [f"namespace {p.name}" for p in self.namespaces()]
        found += [f"process {e.name}: {cmdline(int(e.name))}" for e in Path("/proc").iterdir()
                  if e.name.isdigit() and str(base) in cmdline(int(e.name))]
        with open("/proc/self/mountinfo") as info:
            found += [f"mount {line.split()[4]}" for line in info if line.split()[4].startswith(str(base))]
        return found

    def guarded(self, base: Path, measure: Callable[[], T], interrupted: str) -> tuple[T | None, int]:
        """``measure()``, then the leftovers under ``base`` checked whatever happened. Returns (its
        result, 0 or 1 when something is left), (None, 130) when interrupted, (None, 1) on BenchError."""
        try:
            result = measure()
        except KeyboardInterrupt:
            self.say(interrupted)
            return None, 130
        except BenchError as exc:
            self.say(f"failed: {exc}")
            return None, 1
        finally:
            left = self.leftovers(base)
            if left:
                self.say("left behind (NOT removed):\n  " + "\n  ".join(left))
            else:
                shutil.rmtree(base, ignore_errors=True)
        return result, 1 if left else 0

    def main(self, args: argparse.Namespace, run_all: Callable[[argparse.Namespace, Path], T],
             report: Callable[[T, argparse.Namespace], str],
             section: Callable[[T, argparse.Namespace, dict, str], str], *, what: str, interrupted: str) -> int:
        """The whole run (the module's docstring): ``run_all(args, base)`` guarded, ``report(results,
        args)`` printed, ``section(results, args, facts, report)`` written with ``--write``; the exit status."""
        facts, base = self.start(what)
        results, status = self.guarded(base, lambda: run_all(args, base), interrupted)
        if results is not None:
            text = report(results, args)
            print(text)
            if args.write:
                write_section(args.results, self.heading, section(results, args, facts, text))
                self.say(f"wrote the section {self.heading!r} of {args.results}")
        return status


# --------------------------------------------------------------------------- the loopback API


class Api:
    """JSON over one keep-alive connection to the loopback API (reopened when idle: the server
    closes idle connections after a few seconds; only GETs are retried)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn: http.client.HTTPConnection | None = None
        self.used = 0.0

    def _connection(self) -> http.client.HTTPConnection:
        if self.conn is None or time.monotonic() - self.used > 2.0:
            self.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def call(self, method: str, path: str, body: dict | None = None) -> dict | None:
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request(method, path, body=json.dumps(body) if body is not None else None,
                             headers={"Content-Type": "application/json", "Accept": "application/json",
                                      **AGENT_HEADERS})
                response = conn.getresponse()
                data = response.read()
            except (http.client.HTTPException, OSError) as exc:
                self.close()
                if method != "GET" or attempt == 2:
                    raise BenchError(f"{method} {path}: {type(exc).__name__}: {exc}") from None
                continue
            self.used = time.monotonic()
            if response.status >= 400:
                raise BenchError(f"{method} {path}: {response.status} {data[:300].decode(errors='replace')}")
            return json.loads(data) if data else None
        raise AssertionError("not reached")

    def get(self, path: str) -> dict:
        return self.call("GET", path) or {}


def create_network(api: Api, name: str, cidr: str | None, dhcp: bool = True) -> str:
    """A network ``name`` (with an IPv4 subnet ``cidr`` unless None) through the API; its id.
    Without ``dhcp``, VMs get their addresses statically (no DHCP agent on their path)."""
    network = api.call("POST", "/v2.0/networks", {"network": {"name": name}})["network"]
    if cidr:
        api.call("POST", "/v2.0/subnets", {"subnet": {"network_id": network["id"], "cidr": cidr, "ip_version": 4,
                                                      "name": name, "enable_dhcp": dhcp}})
    return network["id"]


# --------------------------------------------------------------------------- a node filled up (--node-ports)

# The Neutron-style deployment the comparison and conformance runs give their servers: ML2
# (flat, vlan, vxlan; openvswitch, l2population; port_security), VNIs for far more networks than
# a run makes, and the quota options a run sets to -1 (unlimited).
ML2 = """[ml2]
type_drivers = flat,vlan,vxlan
tenant_network_types = vxlan
mechanism_drivers = openvswitch,l2population
extension_drivers = port_security

[ml2_type_flat]
flat_networks = physnet1

[ml2_type_vlan]
network_vlan_ranges = physnet1:100:4000

[ml2_type_vxlan]
vni_ranges = 1:100000
"""
QUOTAS = ("default_quota", "quota_network", "quota_subnet", "quota_port", "quota_router", "quota_floatingip",
          "quota_security_group", "quota_security_group_rule")


FILL_CHUNK = 100  # ports per bulk POST of a fill
FILL_TIMEOUT = 600.0


def sized_cidr(first: str, ports: int) -> str:
    """The smallest ``first``/N (N <= 24) holding ``ports`` addresses with room to spare (the
    network address ``first`` must be aligned for it: BenchError otherwise)."""
    prefix = min(24, 32 - math.ceil(math.log2(ports + 32)))
    try:
        return str(ipaddress.ip_network(f"{first}/{prefix}"))
    except ValueError:
        raise BenchError(f"{ports} ports do not fit in a network starting at {first}") from None


def free_addresses(cidr: str, taken: set[str], count: int) -> list[str]:
    """The first ``count`` host addresses of ``cidr`` not in ``taken`` (the gateway, .1, excluded)."""
    network = ipaddress.ip_network(cidr)
    hosts = (str(a) for a in network.hosts() if a != network.network_address + 1 and str(a) not in taken)
    found = [a for _, a in zip(range(count), hosts)]
    if len(found) < count:
        raise BenchError(f"{cidr} has only {len(found)} free addresses, {count} wanted")
    return found


def create_ports(api: Api, network_id: str, count: int, name: str, node: str | None = None,
                 attrs: dict | None = None, chunk: int = FILL_CHUNK, rebind: bool = False) -> tuple[list[dict], float]:
    """``count`` ports of the network (on its first subnet) in bulk POSTs of ``chunk``, each with
    ``attrs`` and, with ``node``, bound to it as Nova binds a VM's port (compute:nova, a device id
    of its own); (the ports, seconds spent in the POSTs).

    NOTE: each with an explicit free address: a bulk POST that leaves the choice to the server
    fails (409 ConcurrentWriteConflict) as soon as two of its ports draw the same random address.
    With ``rebind``, ports whose binding failed (the node's agent counted dead when they were bound)
    are bound again once it is alive (``REBOUND`` says so); without, that is a BenchError."""
    subnet = api.get(f"/v2.0/subnets?network_id={network_id}")["subnets"][0]
    taken = {ip["ip_address"] for p in api.get(f"/v2.0/ports?network_id={network_id}&fields=fixed_ips")["ports"]
             for ip in p["fixed_ips"]}
    addresses = free_addresses(subnet["cidr"], taken, count)
    ports: list[dict] = []
    seconds = 0.0
    for start in range(0, count, chunk):
        body = []
        for i in range(start, min(count, start + chunk)):
            port = {"network_id": network_id, "name": f"{name}{i}", **(attrs or {}),
                    "fixed_ips": [{"subnet_id": subnet["id"], "ip_address": addresses[i]}]}
            if node:
                port.update({"device_owner": "compute:nova", "device_id": str(uuid.uuid4()),
                             "binding:host_id": node})
            body.append(port)
        started = time.monotonic()
        ports += api.call("POST", "/v2.0/ports", {"ports": body})["ports"]
        seconds += time.monotonic() - started
    if node:
        failed = [i for i, p in enumerate(ports) if p["binding:vif_type"] != "ovs"]
        if failed and rebind:
            ports = _rebind(api, node, ports, failed)
            failed = [i for i, p in enumerate(ports) if p["binding:vif_type"] != "ovs"]
        if failed:
            raise BenchError(f"{len(failed)} ports not bound to {node} (binding:vif_type), e.g. {ports[failed[0]]['id']}")
    return ports, seconds


REBOUND: list[str] = []  # what ``create_ports(rebind=True)`` had to re-bind, for the reports


def _rebind(api: Api, node: str, ports: list[dict], failed: list[int]) -> list[dict]:
    """Bind again (PUT binding:host_id, as Nova retries) the ports ``failed`` (their indexes), once the
    node's Open vSwitch agent counts as alive again; ``ports`` with those answers."""
    path = f"/v2.0/agents?host={node}&agent_type=Open%20vSwitch%20agent"
    agent = api.get(path)["agents"][0]
    note = (f"{len(failed)} of {len(ports)} ports failed binding to {node} (its agent alive {agent['alive']}, last "
            f"heartbeat {agent['heartbeat_timestamp']} at {time.strftime('%H:%M:%S', time.gmtime())} UTC)")
    wait_for(lambda: api.get(path)["agents"][0]["alive"], 60, f"{node}'s agent alive", 0.5)
    ports = list(ports)
    for i in failed:
        ports[i] = api.call("PUT", f"/v2.0/ports/{ports[i]['id']}", {"port": {"binding:host_id": node}})["port"]
    REBOUND.append(note + "; bound again one by one")
    return ports


def internal_ports_args(ports: list[dict], bridge: str = "br-int") -> list[str]:
    """ovs-vsctl arguments (one transaction) adding one OVS internal port per API port to
    ``bridge``, as the hybrid plug's VIF looks to the agent ("qvo" + id[:11], iface-id,
    attached-mac, iface-status, vm-uuid)."""
    args = []
    for port in ports:
        name = "qvo" + port["id"][:11]
        args += ["--", "add-port", bridge, name, "--", "set", "Interface", name, "type=internal",
                 f"external_ids:iface-id={port['id']}", f"external_ids:attached-mac={port['mac_address']}",
                 "external_ids:iface-status=active", f"external_ids:vm-uuid={port['device_id']}"]
    return args


def inactive(api: Api, ids: set[str]) -> int:
    """How many of the ports ``ids`` are not ACTIVE (one listing of every port's id and status)."""
    ports = api.get("/v2.0/ports?fields=id&fields=status")["ports"]
    return sum(1 for p in ports if p["id"] in ids and p["status"] != "ACTIVE")


@dataclass
class Fill:
    """``--node-ports``: what was put on the measured agent's node, and how long it took."""

    ports: int
    where: str  # "bound to compute1 on network fill (10.60.0.0/21), plugged", ...
    post_s: float  # the bulk POSTs, in all
    posts: int  # how many
    plug_s: float | None = None  # the one ovs-vsctl transaction of their VIFs (None: not plugged)
    ready_s: float | None = None  # first POST -> the agent has them all (ACTIVE, served ...)
    ready_what: str = "ready"
    extra: list[str] = field(default_factory=list)  # more lines for the report

    def lines(self, indent: str = "   ") -> list[str]:
        if not self.ports:
            return []
        text = (f"{indent}node fill (--node-ports {self.ports}): {self.ports} ports {self.where}: {self.posts} bulk "
                f"POSTs of <= {FILL_CHUNK} in {self.post_s:.2f} s")
        if self.plug_s is not None:
            text += f", one ovs-vsctl transaction of {self.ports} internal ports {self.plug_s:.2f} s"
        if self.ready_s is not None:
            text += f"; {self.ready_what} {self.ready_s:.2f} s after the first POST"
        return [text, *(indent + "  " + line for line in self.extra)]


def fill_plugged(api: Api, network_id: str, node: str, count: int, vsctl: Callable[[list[str]], None],
                 where: str, attrs: dict | None = None, name: str = "bbench-fill") -> tuple[list[dict], Fill]:
    """``count`` ports bound to ``node`` (``create_ports``), then their VIFs in ONE ovs-vsctl
    transaction (``vsctl``: runs ``ovs-vsctl`` with these arguments on the node's own OVSDB socket),
    then until every one of them is ACTIVE (the node's agent wired it)."""
    started = time.monotonic()
    ports, post_s = create_ports(api, network_id, count, name, node=node, attrs=attrs)
    plugging = time.monotonic()
    vsctl(internal_ports_args(ports))
    plug_s = time.monotonic() - plugging
    ids = {p["id"] for p in ports}
    wait_for(lambda: inactive(api, ids) == 0, FILL_TIMEOUT, f"{count} fill ports ACTIVE", 0.2)
    return ports, Fill(count, where, post_s, math.ceil(count / FILL_CHUNK), plug_s, time.monotonic() - started,
                       "all ACTIVE")


def keep_logs(state_dir: Path, name: str) -> Path:
    """A copy of the lab's logs (``nodes/*/log/*.log``) outside the state directory, for a failed
    run (the lab and its state directory go); the directory it made."""
    keep = Path(tempfile.mkdtemp(prefix=f"baryon-bench-{name}-failed-"))
    nodes = state_dir / "nodes"
    for log in nodes.glob("*/log/*.log"):
        target = keep / log.relative_to(nodes)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log, target)
    return keep


# --------------------------------------------------------------------------- polling


def poll_until(predicate: Callable[[], T], deadline: float, interval: float) -> T | None:
    """``predicate()`` every ``interval`` s until it is truthy (its value) or, past the monotonic
    ``deadline``, None; it is always asked at least once."""
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            return None
        time.sleep(interval)


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float) -> T:
    """``poll_until`` within ``timeout`` s, or ``BenchError`` naming ``what``."""
    value = poll_until(predicate, time.monotonic() + timeout, interval)
    if not value:
        raise BenchError(f"timed out after {timeout:g} s waiting for {what}")
    return value


# --------------------------------------------------------------------------- statistics, logs


def percentile(values: Iterable[float], q: float) -> float:
    """Nearest rank: the smallest value with at least ``q`` (0..1) of the values at or below it."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ [\w.]+: (.*)$")


def parse_log_line(line: str) -> tuple[float, str] | None:
    """(wall time on the ``time.time()`` scale, message) of one line of a lab log
    (``2026-11-26 03:23:10,632 INFO baryon.agent.firewall: message``: local time, millisecond
    resolution, truncated); None for any other line (a traceback's, say)."""
    match = LOG_LINE.match(line.rstrip("\n"))
    if not match:
        return None
    return dt.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp(), match.group(2)


def log_lines(path: Path, since_wall: float = 0.0) -> list[tuple[float, str]]:
    """The parsed lines of a lab log at or after ``since_wall`` (none when the file is missing)."""
    found = []
    try:
        with open(path, errors="replace") as log:
            for line in log:
                parsed = parse_log_line(line)
                if parsed is not None and parsed[0] >= since_wall:
                    found.append(parsed)
    except FileNotFoundError:
        pass
    return found


# --------------------------------------------------------------------------- a thread inside a namespace

CLONE_NEWNET = 0x40000000


class NetnsThread:
    """One worker thread that entered the network namespace ``netns`` (a /run/netns path) with
    setns(2), which changes only the calling thread's namespace; ``call(fn, *args)`` runs ``fn``
    there. A socket opened there stays in that namespace whichever thread uses it afterwards, so
    probes are opened with ``call`` and driven from anywhere. ``close()`` ends the thread (the
    namespace is left as it was: entering it changes nothing in it). A namespace that cannot be
    entered raises ``BenchError`` at construction."""

    def __init__(self, netns: Path) -> None:
        self.netns = netns
        self._failed: list[OSError] = []
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"netns-{netns.name}",
                                        initializer=self._enter)
        try:
            self._pool.submit(lambda: None).result(timeout=10)
        except Exception:  # noqa: BLE001 - a broken pool: the initializer failed, its error says why
            self._pool.shutdown(wait=False)
            reason = self._failed[0] if self._failed else "the thread did not start"
            raise BenchError(f"cannot enter the network namespace {netns}: {reason}") from None

    def _enter(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        try:
            with open(self.netns) as ns:
                if libc.setns(ns.fileno(), CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, os.strerror(err))
        except OSError as exc:
            self._failed.append(exc)
            raise

    def call(self, fn: Callable[..., T], *args: object, timeout: float = 10.0) -> T:
        return self._pool.submit(fn, *args).result(timeout=timeout)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def __enter__(self) -> NetnsThread:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- /proc


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def exited(pid: int) -> bool:
    """Gone or a zombie (a process started by this one stays one until reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def cpu_ticks(pid: int) -> int | None:
    """utime + stime of a process, in clock ticks (None when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of the whole machine since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(values) - values[3] - values[4], sum(values)


def rss_kib(pid: int) -> int | None:
    """VmRSS of a process in KiB (None when it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) if match else None


def pss_kib(pid: int) -> int | None:
    """Proportional set size of a process in KiB (/proc/PID/smaps_rollup: each shared page divided
    among its sharers, so that a sum over processes counts it once); None when it is gone."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    match = re.search(r"^Pss:\s+(\d+) kB", rollup, re.MULTILINE)
    return int(match.group(1)) if match else None


def dnsmasq_pids(marker: str) -> list[int]:
    """Live (not zombie) dnsmasq processes whose command line names ``marker`` (a lab's state
    directory): the DHCP agent's, one per network it serves, in their ``qdhcp-`` namespaces."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if os.path.basename(argv[0]) == b"dnsmasq" and marker.encode() in b" ".join(argv) \
                and not exited(int(entry.name)):
            found.append(int(entry.name))
    return found


def stop_dnsmasqs(marker: str, timeout: float = 5.0) -> list[int]:
    """Stop the dnsmasq processes naming ``marker`` (``dnsmasq_pids``): SIGTERM, SIGKILL to those
    still there after ``timeout`` s; each PID is checked again right before it is signalled. Returns
    the PIDs found. Nothing else is signalled.

    NOTE: the ``lab down`` of revision 4966a35 does not stop them (it stops processes by
    ``*.pid`` pidfile and those inside the lab's namespaces; theirs are named ``pid``, and they run
    in the DHCP agent's ``qdhcp-`` network namespaces and in the mount namespaces ``ip netns
    exec`` made for them): they outlive the lab, each holding its namespace. A benchmark whose lab
    served DHCP calls this after its ``lab down``; after a ``lab down`` that stops them it finds none."""
    pids = dnsmasq_pids(marker)

    def ours(pid: int) -> bool:
        return not exited(pid) and marker in cmdline(pid) and cmdline(pid).startswith("dnsmasq")

    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 2.0)):
        for pid in pids:
            if ours(pid):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + wait
        while any(ours(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.02)
    return pids


def boottime_to_monotonic(ticks: int) -> float:
    """A /proc/PID/stat start time (clock ticks since boot) on the ``time.monotonic`` scale."""
    offset = time.clock_gettime(time.CLOCK_BOOTTIME) - time.monotonic()
    return ticks / CLOCK_HZ - offset


def process_start(pid: int) -> float | None:
    """When process ``pid`` started, on the ``time.monotonic`` scale (10 ms resolution); None if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return boottime_to_monotonic(int(fields[19]))  # field 22 of stat: starttime


def loadavg() -> str:
    """The machine's 1-minute load average, as /proc/loadavg has it."""
    return Path("/proc/loadavg").read_text().split()[0]


@dataclass
class CpuWindow:
    """CPU ticks of processes at the start and the end of a window, and the whole machine's load."""

    seconds: float
    before: dict[int, int | None]
    after: dict[int, int | None]
    joined: set[int]  # what ``sample_cpu``'s ``joined`` found at the end
    machine_busy_pct: float  # of all the machine's CPUs, everything included

    def pct(self, pid: int) -> float | None:
        """% of one core over the window: None when the process was gone at the end; one that
        appeared meanwhile counts from zero."""
        if self.after.get(pid) is None:
            return None
        return 100 * (self.after[pid] - (self.before.get(pid) or 0)) / CLOCK_HZ / self.seconds


def sample_cpu(pids: Iterable[int], seconds: float, joined: Callable[[], set[int]] = set) -> CpuWindow:
    """The CPU of ``pids`` over ``seconds``; ``joined()``, asked at the end, adds processes read then only."""
    watched = set(pids)
    machine0, before, started = machine_ticks(), {pid: cpu_ticks(pid) for pid in watched}, time.monotonic()
    time.sleep(seconds)
    late = joined()
    after = {pid: cpu_ticks(pid) for pid in watched | late}
    elapsed, machine1 = time.monotonic() - started, machine_ticks()
    busy = 100 * (machine1[0] - machine0[0]) / max(machine1[1] - machine0[1], 1)
    return CpuWindow(elapsed, before, after, late, busy)


# --------------------------------------------------------------------------- RESULTS.md


def utc_date() -> str:
    """``date -u``."""
    return subprocess.run(["date", "-u"], capture_output=True, text=True, check=False).stdout.strip()


def machine() -> dict:
    """The facts a section states: date, CPU model and count, memory, kernel, OVS, load average."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown")
    mem_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:"))
    ovs = subprocess.run(["ovs-vswitchd", "--version"], capture_output=True, text=True, check=False)
    return {"date": utc_date(), "cpu": cpu, "nproc": os.cpu_count(), "memory_gib": round(mem_kib / 2**20, 1),
            "kernel": platform.release(), "ovs": (ovs.stdout.splitlines() or ["unknown"])[0].strip(),
            "loadavg": loadavg()}


def revision() -> str:
    """The git revision, marked when baryon/ has uncommitted changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()

    rev = git("rev-parse", "--short", "HEAD") or "unknown"
    return rev + (" + uncommitted changes in baryon/" if git("status", "--porcelain", "--", "baryon") else "")


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def command_line(script: str, args: object, defaults: object, names: Iterable[str],
                 always: Iterable[str] = ()) -> str:
    """How to repeat a run: ``.venv/bin/python SCRIPT``, the options ``always`` as given, those of
    ``names`` whose value is not the default (``:g``), then ``--write``."""
    def flag(name: str) -> str:
        return "--" + name.replace("_", "-")

    given = [f"{flag(name)} {getattr(args, name)}" for name in always]
    given += [f"{flag(name)} {getattr(args, name):g}" for name in names
              if getattr(args, name) != getattr(defaults, name)]
    return " ".join([f".venv/bin/python {script}", *given, "--write"])


def table(header: tuple[str, ...], rows: Iterable[tuple[str, ...]]) -> list[str]:
    """A Markdown table's lines."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *["| " + " | ".join(row) + " |" for row in rows]]


def section(heading: str, script: str, targets: str, facts: dict, command: str, body: list[str],
            text: str) -> str:
    """A RESULTS.md section: ``heading``, the note (``targets`` ends it), date, machine, revision
    and ``command``, then ``body`` (the script's own lines), then ``text`` in a code block."""
    return "\n".join([
        heading, "",
        f"Replaced by each `{script} --write` (this section holds the latest run only). {targets}", "",
        f"- date: {facts['date']}",
        f"- machine: {facts['nproc']} CPUs ({facts['cpu']}), {facts['memory_gib']} GiB RAM, Linux "
        f"{facts['kernel']}, {facts['ovs']}; 1-minute load average when the run started: {facts['loadavg']}",
        f"- Baryon {revision()}; command: `{command}`",
        *body,
        "", "```", text, "```", ""])


def write_section(path: Path, heading: str, text: str) -> None:
    """Replace the section ``heading`` of ``path`` (up to the next ``## `` heading) or append it."""
    lines = path.read_text().splitlines(keepends=True) if path.exists() else ["# Benchmark results\n"]
    start = next((n for n, line in enumerate(lines) if line.rstrip("\n") == heading), None)
    if start is None:
        path.write_text("".join(lines).rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n")
        return
    end = next((n for n in range(start + 1, len(lines)) if lines[n].startswith("## ")), len(lines))
    rest = "".join(lines[end:])
    path.write_text("".join(lines[:start]) + text.rstrip("\n") + "\n" + ("\n" + rest if rest else ""))



def lab_up(state_dir: Path, *args: str) -> float:
    """``baryon lab up ARGS`` for the lab at ``state_dir``; its wall seconds. (No retry: the
    execve race that once made it fail at random is fixed in the lab itself.)"""
    started = time.monotonic()
    lab_cli(state_dir, "up", *args, timeout=UP_TIMEOUT)
    secret_file = state_dir / "agent_shared_secret"
    if secret_file.exists():
        AGENT_HEADERS["Authorization"] = f"Bearer {secret_file.read_text().strip()}"
    return time.monotonic() - started

# --------------------------------------------------------------------------- watching views and logs


class ViewWatch:
    """A long-poll of one host's view of ``kind`` (ovs, dhcp) on the loopback API ``port``, in a thread, as the host's agent does
    (its own keep-alive connection): when each new view was published (monotonic time, seq)."""

    ETAG = re.compile(rb'"etag"\s*:\s*"([^"]*)"')
    SEQ = re.compile(rb'"seq"\s*:\s*(\d+)')
    VIEW = re.compile(rb'"view"\s*:')

    def __init__(self, node: str, kind: str, port: int) -> None:
        self.path = f"/agent/v1/hosts/{node}/{kind}"
        self.port = port
        self.published: list[tuple[float, int]] = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watch-{node}-{kind}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        etag, conn = "", None
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                conn.request("GET", f"{self.path}?etag={etag}&wait=2", headers=AGENT_HEADERS)
                response = conn.getresponse()
                arrived = time.monotonic()
                data = response.read()
                if response.status != 200:
                    raise ValueError(f"{response.status}")
                head = data[:600]  # {"seq", "etag", "view": {...}}: no need to parse the view
                etag_match, seq_match = self.ETAG.search(head), self.SEQ.search(head)
                if not etag_match or not seq_match:
                    raise ValueError("no etag")
                if self.VIEW.search(head):
                    self.published.append((arrived, int(seq_match.group(1))))
                etag = etag_match.group(1).decode()
            except (OSError, http.client.HTTPException, ValueError):
                self.errors += 1
                if conn is not None:
                    conn.close()
                conn = None
                self._stop.wait(0.2)
        if conn is not None:
            conn.close()

    def first(self, start: float, end: float) -> float | None:
        """Monotonic time of the first view published in [start, end]."""
        return next((t for t, _ in list(self.published) if start <= t <= end), None)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


class LogTail:
    """An agent's log, read as it grows: (wall time, message) of the lines seen so far."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = ""
        self.lines: list[tuple[float, str]] = []

    def read(self) -> None:
        try:
            with open(self.path, errors="replace") as log:
                log.seek(self.offset)
                text = log.read()
                self.offset = log.tell()
        except FileNotFoundError:
            return
        text = self.partial + text
        complete, _, self.partial = text.rpartition("\n")
        for line in complete.splitlines():
            parsed = parse_log_line(line)
            if parsed is not None:
                self.lines.append(parsed)

    def since(self, start_wall: float, end_wall: float = math.inf) -> list[tuple[float, str]]:
        """Lines in [start_wall - 1 ms, end_wall] (log times are truncated to the millisecond)."""
        self.read()
        return [(w, t) for w, t in self.lines if start_wall - 0.001 <= w <= end_wall]

    def first(self, start_wall: float, end_wall: float, test: Callable[[str], bool]) -> tuple[float, str] | None:
        """The first line in [start_wall - 1 ms, end_wall] (log times are truncated to ms) passing ``test``."""
        return next(((w, t) for w, t in self.lines if start_wall - 0.001 <= w <= end_wall and test(t)), None)

    def wait(self, start_wall: float, test: Callable[[str], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            self.read()
            if self.first(start_wall, math.inf, test) is not None:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)


def stats(values: list[float | None]) -> tuple[float, float, float, int] | None:
    """(p50, p99, max, failures); a failure (None) counts as infinitely slow."""
    known = [v for v in values if v is not None]
    if not known:
        return None
    padded = known + [math.inf] * (len(values) - len(known))
    return percentile(padded, 0.5), percentile(padded, 0.99), max(padded), len(values) - len(known)


def median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return percentile(known, 0.5) if known else None
