#!/usr/bin/env python3
"""Benchmark of the Open vSwitch agent in a real lab: port to wire, resync on restart, SIGTERM, footprint.

    .venv/bin/python bench/agent.py [--vms 100] [--resync-ports 1000] [--remote-ports 0] [--node-ports 0]
                                    [--arp-retrans-ms 10] [--ping-interval-ms 5] [--idle 10] [--settle 5]
                                    [--write] [--results bench/RESULTS.md]

Run it as root, on demand (it is not part of the test suite), on an otherwise idle machine. One
2-compute lab with its agents (``baryon lab up``) in a temporary state directory in /tmp, namespace
prefix ``bbench-``, API on 127.0.0.1:9792, so that a user's lab (``blab-``, 9696) is never touched.
It refuses to start when a ``bbench-`` namespace exists or the port is taken; the lab is taken
down in ``finally`` (also on Ctrl-C or SIGTERM), and at the end it checks that no ``bbench-``
namespace, no process naming the state directory and no mount under it is left (the rules
bench/labkit.py keeps for every lab benchmark). It never touches
the root network namespace: every command runs in the lab's namespaces, OVS through the nodes'
own sockets (``Place``/``NodeOvs``), processes are signalled by the PIDs ``lab status --json``
gives. VMs are made and deleted with the lab's Python API in this process (``Lab.open``,
``vms.create``), not the CLI, so no Python start-up is timed.

What it measures (network ``bench``, vxlan, with one IPv4 subnet, made through the API):

0. node fill (``--node-ports N``, default 0: none): before anything is measured, N ports bound to
   compute1 on a second vxlan network ``fill`` (10.60.0.0/N, no DHCP, no port on compute2: only
   compute1's agent has them in its view), made in bulk POSTs of 100 (explicit addresses), then
   their VIFs as OVS internal ports on compute1's br-int in ONE ovs-vsctl transaction through
   compute1's own OVSDB socket (as part 2 below), until all are ACTIVE: every measurement below
   then runs with compute1's agent handling N more wired ports (part 2's restart reconciles
   N + ``--resync-ports`` ports). Issue 11: every agent keeps its targets at 1,000 ports per node.
   Run time on 2 loaded CPUs: ``--node-ports 1000 --vms 30`` took 4.8 minutes (fill 21 s); with
   the default 100 VMs part 1 alone takes 10 to 25 minutes there (5 to 20 s per VM), and the
   lab's own plug (``ovs-vsctl --timeout=10``) may time out: such a VM is counted as failed (never
   ACTIVE, never answered) and the run goes on.
1. port to wire: VM ``peer`` on compute2, then ``--vms`` VMs on compute1 one after the other. t0
   is taken just before ``vms.create`` (which POSTs the port bound to compute1 and then plugs the
   VM as os-vif's hybrid plug does: both are inside "create"); then, every 5 ms, the port's status
   (GET /v2.0/ports/{id} on the loopback API) until ACTIVE, and, in a thread, an ICMP echo request
   from ``peer`` (a raw socket opened inside peer's namespace with setns) every
   ``--ping-interval-ms`` (5 ms) until a reply comes.
   p50/p99/max of the create call, of t0 -> ACTIVE and of t0 -> first reply. The VMs are kept
   until the end of part 1 (the node fills up: VM n finds n-1 others), then deleted.
   NOTE: peer's ARP retransmit time is set to ``--arp-retrans-ms`` (10 ms; the kernel's default is
   1 s) inside its own namespace: a request asked before the wire existed is retried within 10 ms,
   so the figure is when the wire works, not the kernel's ARP timer (pass 1000 to see a user's ping).
   Where the time goes: the agents' log lines ("seq N: ... OVSDB op(s), flows ...") of compute2
   (l2population entries for the new port) and compute1 (the VIF tagged) are matched to each VM,
   and the CPU time of compute1's ovs-vswitchd and agent, compute2's agent and the server is
   counted per VM (the first and the last 10 VMs are compared: the node fills up). NOTE: the
   5 ms status poll itself costs the server roughly a millisecond of CPU per GET.
   NOTE: the echo requests load compute1 too: until the new VM answers, br-int does not know its
   MAC and floods each request (as Neutron's NORMAL does) to every VM on the network, and each
   copy crosses the hybrid firewall's iptables chains (one physdev rule per port of the node,
   evaluated in ovs-vswitchd's own thread, which also runs the switch's configuration). With
   ``--node-ports 1000`` and 10-30 VMs, that was 60% of compute1's ovs-vswitchd CPU during part 1
   (perf); ``--ping-interval-ms 50`` shows the wire without most of that load.
2. wiring and resync: ``--resync-ports`` ports bound to compute1 in one bulk POST (in bulk POSTs of
   100 with ``--node-ports``; a port whose binding failed because compute1's agent counted as
   dead then, its heartbeat answered late by a busy server on a loaded machine (the lab's
   agent_down_time is 15 s), is bound again once the agent is alive, and the report says so) (compute2's
   agent installs their l2population flows: flows installed per second = its "+N" flows over the
   time from the POST's answer to its log line, view to bundle). With ``--remote-ports M``, M
   more ports are then bound to compute2 without a VIF (compute1 then holds 2 l2population flows
   per port, measured the same way, so that its restart has many flows to keep; by default it has
   about 20). Then the compute1 ports' OVS internal ports ("qvo" + id[:11], iface-id,
   attached-mac, iface-status) on compute1's br-int in ONE ovs-vsctl transaction, timed until
   every port is ACTIVE (initial wiring). Then compute1's agent flows are recorded with their
   durations, its agent is killed (-9), one change is committed that CONCERNS compute1 (a port
   bound to compute2 without a VIF on ``bench``, where compute1 has its ports: compute1's view
   gains that port and its agent must add its l2population flows) so that the current sequence S
   exceeds what it realised, and the agent is started again (the lab's ``agents.start``, what
   ``lab up`` does): time from its start to ``realised_seq >= S`` (fully reconciled: it reports
   only after a whole successful reconcile). NOTE: the change must concern compute1: the server
   shows an agent's ``realised_seq`` as current to the log for as long as its view keeps the
   etag the agent last reported with it, so after a change elsewhere (a network without ports,
   say) the killed agent would count as caught up at once and the figure would mean nothing.
   Every agent flow present before must be present after with a duration that kept growing:
   flows reset must be 0 (the change's own flows are counted as new).
3. SIGTERM: time for compute1's agent (with those ports) to exit after ``kill -TERM`` (polling
   /proc/PID every 5 ms); then ``baryon lab up`` (timed) starts it again.
4. footprint: VmRSS of every agent (and of the lab's other daemons), and their CPU over ``--idle``
   seconds after ``--settle`` seconds of quiet (utime+stime, /proc/PID/stat). NOTE: the agents
   resync every 30 s; a 10 s window may or may not hold one.

``--write`` puts the result in ``--results`` as the section "## Agents (bench/agent.py)",
replacing it if present (else appending it): date, machine, revision, figures and the targets of
the agents' issue (port to first ping p50 <= 200 ms, p99 <= 1 s; resync <= 10 s with no flow reset;
SIGTERM exit <= 1 s).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime as dt
import math
import os
import re
import select
import signal
import socket
import statistics
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import labkit
from labkit import NETNS_DIR, ROOT, BenchError, lab_pids, verdict

sys.path.insert(0, str(ROOT))

from baryon.lab import agents, host, vms  # noqa: E402
from baryon.lab.api import ApiError  # noqa: E402
from baryon.lab.lab import Lab  # noqa: E402

PREFIX = "bbench-"
API_PORT = 9792
SECTION = "## Agents (bench/agent.py)"
BENCH = labkit.Bench("bench/agent", PREFIX, API_PORT, SECTION)
say = BENCH.say
AGENT_COOKIE = "0xb4770"
AGENT_TYPE = "Open vSwitch agent"
POLL_S = 0.005  # status polls and echo requests, part 1
VM_TIMEOUT, WIRE_TIMEOUT, RESYNC_TIMEOUT, TERM_TIMEOUT = 30.0, 300.0, 120.0, 10.0
TARGET_P50_S, TARGET_P99_S, TARGET_RESYNC_S, TARGET_TERM_S = 0.2, 1.0, 10.0, 1.0
SCALE = ("for scale: real Neutron 29 agents (namespace-simulated nodes, loaded machine) took 3.9 s median "
         "(7.6 s max) from port create to the first ping from another node and 4.9 s to ACTIVE; OVN publishes "
         "1.15 s on average; the Neutron 29 OVS agent took ~30 s to resync 15 ports here and did not exit on "
         "SIGTERM")


# --------------------------------------------------------------------------- the lab


@contextlib.contextmanager
def running_lab(state_dir: Path) -> Iterator[Lab]:
    """``lab up`` (2 computes, agents), the lab's Python handle; ``lab down`` whatever happens."""
    try:
        seconds = labkit.lab_up(state_dir, "--prefix", PREFIX, "--api-port", str(API_PORT), "--computes", "2")
        say(f"lab up in {seconds:.1f} s ({state_dir})")
        yield Lab.open(state_dir)
    finally:
        say("lab down")
        BENCH.down_regardless(state_dir)


# --------------------------------------------------------------------------- the API (keep-alive)


class Api(labkit.Api):
    """The loopback API, and what the agents report through it."""

    def __init__(self) -> None:
        super().__init__(API_PORT)

    def seq(self) -> int:
        return int(self.get("/agent/v1/seq")["seq"])

    def agent(self, node: str) -> dict:
        found = self.get(f"/v2.0/agents?host={node}&agent_type={AGENT_TYPE.replace(' ', '%20')}")["agents"]
        if len(found) != 1:
            raise BenchError(f"{len(found)} Open vSwitch agents on {node}")
        return found[0]


def wait_realised(api: Api, nodes: tuple[str, ...], seq: int, timeout: float = RESYNC_TIMEOUT) -> float:
    """Until every agent of ``nodes`` reports ``realised_seq >= seq``; the monotonic time then."""
    labkit.wait_for(lambda: all(api.agent(n)["realised_seq"] >= seq for n in nodes), timeout,
                    f"{', '.join(nodes)} to realise seq {seq}", 0.01)
    return time.monotonic()


# --------------------------------------------------------------------------- ICMP from inside a namespace

CLONE_NEWNET = 0x40000000
ICMP_ECHO, ICMP_ECHOREPLY = 8, 0


def icmp_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(ident: int, seq: int) -> bytes:
    payload = b"bbench-agent" + struct.pack("!d", time.time())
    header = struct.pack("!BBHHH", ICMP_ECHO, 0, 0, ident, seq)
    return struct.pack("!BBHHH", ICMP_ECHO, 0, icmp_checksum(header + payload), ident, seq) + payload


def echo_reply_of(packet: bytes) -> tuple[str, int] | None:
    """(source address, identifier) of an IPv4 packet carrying an ICMP echo reply, else None."""
    ihl = (packet[0] & 0x0F) * 4 if packet else 0
    if len(packet) < ihl + 8:
        return None
    kind, _code, _sum, ident, _seq = struct.unpack("!BBHHH", packet[ihl:ihl + 8])
    return (socket.inet_ntoa(packet[12:16]), ident) if kind == ICMP_ECHOREPLY else None


def raw_icmp_socket_in(netns: Path) -> socket.socket:
    """A raw ICMP socket inside ``netns``: a thread enters it (setns changes only the calling
    thread's network namespace) and opens the socket, which stays there after the thread ends."""
    libc = ctypes.CDLL(None, use_errno=True)
    out: list[object] = []

    def opener() -> None:
        try:
            with open(netns) as ns:
                if libc.setns(ns.fileno(), CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, os.strerror(err))
            out.append(socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
        except OSError as exc:
            out.append(exc)

    thread = threading.Thread(target=opener, name="setns-icmp")
    thread.start()
    thread.join()
    if isinstance(out[0], OSError):
        raise BenchError(f"cannot open an ICMP socket in {netns}: {out[0]}")
    return out[0]  # type: ignore[return-value]


def first_reply(sock: socket.socket, address: str, ident: int, deadline: float, stop: threading.Event,
                interval: float = POLL_S) -> tuple[float | None, int]:
    """Echo requests to ``address`` every ``interval`` s until one is answered: (monotonic time of
    the first reply or None at ``deadline`` or ``stop``, requests sent)."""
    sent, next_send = 0, 0.0
    while (now := time.monotonic()) < deadline and not stop.is_set():
        if now >= next_send:
            sent += 1
            with contextlib.suppress(OSError):  # no route / neighbour failed: try again
                sock.sendto(echo_request(ident, sent & 0xFFFF), (address, 0))
            next_send = now + interval
        ready, _, _ = select.select([sock], [], [], max(0.0, next_send - time.monotonic()))
        while ready:
            try:
                packet = sock.recv(2048, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            if echo_reply_of(packet) == (address, ident):
                return time.monotonic(), sent
    return None, sent


def drain(sock: socket.socket) -> None:
    with contextlib.suppress(BlockingIOError):
        while True:
            sock.recv(2048, socket.MSG_DONTWAIT)


# --------------------------------------------------------------------------- agents' logs


LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ [\w.]+: (.*)$")
FLOW_CHANGE = re.compile(r"([\w-]+) \+(\d+)/-(\d+)")


@dataclass(frozen=True)
class LogEvent:
    wall: float  # time.time() scale (the log's local time, millisecond precision)
    text: str

    @property
    def ovsdb_ops(self) -> int:
        match = re.search(r": (\d+) OVSDB op", self.text)
        return int(match.group(1)) if match else 0

    @property
    def flows(self) -> tuple[int, int]:
        """(added, deleted) over every bridge this line reports."""
        changes = FLOW_CHANGE.findall(self.text.partition("flows ")[2])
        return sum(int(a) for _, a, _ in changes), sum(int(d) for _, _, d in changes)


def log_events(path: Path, since_wall: float = 0.0) -> list[LogEvent]:
    events = []
    with contextlib.suppress(FileNotFoundError), open(path, errors="replace") as log:
        for line in log:
            match = LOG_LINE.match(line.rstrip("\n"))
            if match:
                wall = dt.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
                if wall >= since_wall:
                    events.append(LogEvent(wall, match.group(2)))
    return events


def agent_log(lab: Lab, node: str) -> Path:
    return lab.paths.log(node) / "ovs-agent.log"


def first_event(events: list[LogEvent], start: float, end: float, test: Callable[[LogEvent], bool]) -> float | None:
    """Wall time of the first event in [start - 1 ms, end] that passes ``test`` (log times are truncated to ms)."""
    return next((e.wall for e in events if start - 0.001 <= e.wall <= end and test(e)), None)


# --------------------------------------------------------------------------- 1. port to wire


@dataclass
class VmTiming:
    name: str
    address: str
    create_s: float
    active_s: float | None  # None: not ACTIVE within VM_TIMEOUT
    ping_s: float | None  # None: no reply within VM_TIMEOUT
    requests: int  # echo requests sent until the reply
    remote_flows_s: float | None = None  # compute2's agent logged the new port's l2population flows
    wired_s: float | None = None  # compute1's agent logged its OVSDB op(s) (the VIF tagged)
    t0_wall: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # "node process" -> CPU seconds until the VM was done
    error: str = ""  # the create call failed (e.g. the plug's ovs-vsctl timed out): neither ACTIVE nor answered


def subnet_cidr(ports: int) -> str:
    """The smallest 172.16.0.0/N (N <= 24) holding ``ports`` addresses with room to spare."""
    prefix = min(24, 32 - math.ceil(math.log2(ports + 32)))
    if prefix < 12:
        raise BenchError(f"{ports} ports do not fit in 172.16.0.0/12")
    return f"172.16.0.0/{prefix}"


def wait_active(api: Api, port_id: str, deadline: float, interval: float = POLL_S) -> float | None:
    """Poll the port's status every ``interval`` s; monotonic time when it is ACTIVE (None at ``deadline``)."""
    return labkit.poll_until(lambda: api.get(f"/v2.0/ports/{port_id}?fields=status")["port"]["status"] == "ACTIVE"
                             and time.monotonic(), deadline, interval)


def make_vm(lab: Lab, name: str, node: str, network_id: str) -> vms.Vm:
    try:
        return vms.create(lab, name, node, network=network_id)
    except (host.LabError, ApiError) as exc:
        raise BenchError(f"vm create {name} on {node}: {exc}") from None


CPU_WATCHED = (("compute1", "ovs-vswitchd"), ("compute1", "ovs-agent"), ("compute2", "ovs-agent"),
               ("controller", "baryon-server"))


@dataclass
class Probe:
    """What timing a VM needs: the lab, the API, peer's ICMP socket and ping thread, whose CPU to count."""

    lab: Lab
    api: Api
    sock: socket.socket
    pool: ThreadPoolExecutor
    network_id: str
    cpu_pids: dict[str, int]  # "node process" -> PID
    ping_interval: float = POLL_S  # seconds between echo requests
    stop: threading.Event = field(default_factory=threading.Event)  # ends a ping in progress


def time_vm(probe: Probe, name: str, ident: int) -> VmTiming:
    drain(probe.sock)
    ticks = {label: labkit.cpu_ticks(pid) for label, pid in probe.cpu_pids.items()}
    t0_wall, t0 = time.time(), time.monotonic()
    try:
        vm = make_vm(probe.lab, name, "compute1", probe.network_id)
    except BenchError as exc:  # counted as a failure (never ACTIVE, never answered); the run goes on
        return VmTiming(name, "-", time.monotonic() - t0, None, None, 0, t0_wall=t0_wall, error=str(exc))
    created = time.monotonic()
    address = vm.addresses[0].split("/")[0]
    deadline = t0 + VM_TIMEOUT
    pinging = probe.pool.submit(first_reply, probe.sock, address, ident, deadline, probe.stop, probe.ping_interval)
    active = wait_active(probe.api, vm.port_id, deadline)
    replied, requests = pinging.result()
    cpu = {label: ((labkit.cpu_ticks(pid) or 0) - (ticks[label] or 0)) / labkit.CLOCK_HZ
           for label, pid in probe.cpu_pids.items()}
    return VmTiming(name, address, created - t0, None if active is None else active - t0,
                    None if replied is None else replied - t0, requests, t0_wall=t0_wall, cpu=cpu)


def attribute_log_lines(lab: Lab, timings: list[VmTiming]) -> None:
    """Per VM: when compute2's agent changed flows (the new port's l2population entries) and when
    compute1's applied OVSDB ops (the VIF's tag), from their log lines after t0."""
    remote, local = log_events(agent_log(lab, "compute2")), log_events(agent_log(lab, "compute1"))
    for t in timings:
        end = t.t0_wall + max(t.ping_s or 0.0, t.active_s or 0.0, t.create_s) + 0.5
        r = first_event(remote, t.t0_wall, end, lambda e: e.flows != (0, 0))
        w = first_event(local, t.t0_wall, end, lambda e: e.ovsdb_ops > 0)
        t.remote_flows_s = None if r is None else max(0.0, r - t.t0_wall)
        t.wired_s = None if w is None else max(0.0, w - t.t0_wall)


def measure_port_to_wire(lab: Lab, api: Api, network_id: str, count: int, arp_retrans_ms: int,
                         ping_interval: float = POLL_S) -> list[VmTiming]:
    peer = make_vm(lab, "peer", "compute2", network_id)
    if wait_active(api, peer.port_id, time.monotonic() + VM_TIMEOUT) is None:
        raise BenchError(f"peer's port {peer.port_id} not ACTIVE after {VM_TIMEOUT:g} s")
    host.Place(peer.netns).run(["sysctl", "-q", "-w", f"net.ipv4.neigh.eth0.retrans_time_ms={arp_retrans_ms}"])
    pids = lab_pids(lab.paths.root)
    sock = raw_icmp_socket_in(NETNS_DIR / peer.netns)
    timings = []
    with contextlib.closing(sock), ThreadPoolExecutor(max_workers=1, thread_name_prefix="ping") as pool:
        probe = Probe(lab, api, sock, pool, network_id, {f"{n} {p}": pids[(n, p)] for n, p in CPU_WATCHED},
                      ping_interval)
        try:
            for i in range(1, count + 1):
                t = time_vm(probe, f"vm{i}", (os.getpid() + i) & 0xFFFF)
                timings.append(t)
                if t.error:
                    say(f"{t.name}: create FAILED after {_ms(t.create_s)}: {t.error[-300:]}")
                    continue
                say(f"{t.name} {t.address}: create {_ms(t.create_s)}, ACTIVE {_ms(t.active_s)}, "
                    f"first reply {_ms(t.ping_s)} ({t.requests} requests)")
        finally:
            probe.stop.set()  # an interrupted run must not wait for the ping thread's deadline
    attribute_log_lines(lab, timings)
    started = time.monotonic()
    for t in timings:
        try:
            vms.delete(lab, t.name)
        except (host.LabError, ApiError) as exc:
            if not t.error:
                raise BenchError(f"vm delete {t.name}: {exc}") from None
    say(f"deleted the {count} timed VMs in {time.monotonic() - started:.1f} s (peer stays)")
    return timings


# --------------------------------------------------------------------------- 2. wiring and resync


@dataclass
class Wiring:
    ports: int
    remote_ports: int
    post_s: float  # the bulk POST of the compute1 ports
    l2pop_flows: int  # flows compute2's agent added for them
    l2pop_s: float | None  # from the POST's answer to compute2's log line
    vsctl_s: float  # the one ovs-vsctl transaction (it waits for ovs-vswitchd)
    wired_s: float  # from the start of that transaction until every port is ACTIVE
    ovsdb_ops: int  # what compute1's agent logged meanwhile
    flows: dict[str, int] = field(default_factory=dict)  # compute1's agent flows per bridge
    remote_post_s: float | None = None
    remote_flows: int = 0  # flows compute1's agent added for the compute2 ports
    remote_flows_s: float | None = None
    posts: int = 1  # the bulk POSTs the ports were bound in


@dataclass
class Resync:
    flows_before: int
    missing: int  # agent flows present before and gone after
    reset: int  # present before and after, but with a duration that restarted
    new: int  # present after only
    kill_to_start_s: float
    reconciled_s: float  # agent start -> realised_seq >= S
    first_lines: list[str]  # the restarted agent's first log lines
    all_active: bool


def bulk_bind(api: Api, network_id: str, node: str, count: int, tag: str,
              chunk: int = 0) -> tuple[list[dict], float]:
    """``count`` ports of the network bound to ``node`` (compute:nova) in ONE bulk POST (in POSTs of
    ``chunk`` when given); (ports, seconds). Each with an explicit address (``labkit.create_ports``)."""
    return labkit.create_ports(api, network_id, count, f"bbench-{tag}", node=node, chunk=chunk or max(1, count),
                               rebind=True)


def flows_added_since(lab: Lab, node: str, since_wall: float) -> tuple[int, float | None]:
    """(flows the node's agent added since ``since_wall``, seconds from then to its last line that
    added some), from its log; call it once the node has realised the change."""
    events = [e for e in log_events(agent_log(lab, node), since_wall - 0.001) if e.flows[0]]
    if not events:
        return 0, None
    return sum(e.flows[0] for e in events), max(0.0, events[-1].wall - since_wall)


def bind_and_propagate(lab: Lab, api: Api, network_id: str, node: str, count: int, tag: str,
                       observer: str, chunk: int = 0) -> tuple[list[dict], float, int, float | None]:
    """Bind ``count`` ports to ``node`` in one POST, wait until both computes realised it; (ports,
    POST seconds, flows ``observer``'s agent added for them, seconds from the POST's answer to its line)."""
    before = time.time()
    ports, post_s = bulk_bind(api, network_id, node, count, tag, chunk)
    answered = time.time()
    wait_realised(api, ("compute1", "compute2"), api.seq())
    # NOTE: counted from the first POST (with chunks, the agent adds the first ones' flows while
    # the last POSTs run), timed from the last POST's answer.
    added, last = flows_added_since(lab, observer, before)
    after = None if last is None else max(0.0, before + last - answered)
    say(f"{count} ports bound to {node}: POST {post_s:.2f} s; {observer}'s agent +{added} flows after {_s(after)}")
    return ports, post_s, added, after


def not_active(api: Api, network_id: str, node: str) -> int:
    ports = api.get(f"/v2.0/ports?network_id={network_id}&status=DOWN&status=BUILD"
                    "&fields=id&fields=binding:host_id")["ports"]
    return sum(1 for p in ports if p["binding:host_id"] == node)


def vsctl(lab: Lab, node: str, args: list[str], timeout: float = WIRE_TIMEOUT) -> None:
    """ovs-vsctl on the node's own database socket (its ``NodeOvs``), one transaction."""
    ovs = lab.ovs(lab.topology.node(node))
    try:
        ovs.place().run(["ovs-vsctl", f"--db=unix:{ovs.db_sock}", f"--timeout={int(timeout)}", *args],
                        timeout=timeout + 30)
    except host.LabError as exc:
        raise BenchError(str(exc)[:2000]) from None


def measure_wiring(lab: Lab, api: Api, network_id: str, count: int, remote: int, chunk: int = 0) -> Wiring:
    ports, post_s, l2pop_flows, l2pop_s = bind_and_propagate(lab, api, network_id, "compute1", count, "r",
                                                             "compute2", chunk)
    remote_post_s, remote_flows, remote_flows_s = None, 0, None
    if remote:  # after: compute1 takes l2population entries only for networks it has a port on
        _, remote_post_s, remote_flows, remote_flows_s = bind_and_propagate(
            lab, api, network_id, "compute2", remote, "remote", "compute1", chunk)
    since, started = time.time(), time.monotonic()
    vsctl(lab, "compute1", labkit.internal_ports_args(ports))
    vsctl_s = time.monotonic() - started
    labkit.wait_for(lambda: not_active(api, network_id, "compute1") == 0, WIRE_TIMEOUT, f"{count} ports ACTIVE", 0.02)
    wired_s = time.monotonic() - started
    ops = sum(e.ovsdb_ops for e in log_events(agent_log(lab, "compute1"), since))
    flows = {b: len(agent_flows(lab, "compute1", b)) for b in ("br-int", "br-tun")}
    say(f"internal ports: ovs-vsctl {vsctl_s:.2f} s, all ACTIVE after {wired_s:.2f} s; compute1 flows {flows}")
    return Wiring(count, remote, post_s, l2pop_flows, l2pop_s, vsctl_s, wired_s, ops, flows,
                  remote_post_s, remote_flows, remote_flows_s, math.ceil(count / chunk) if chunk else 1)


_STATS_FIELDS = ("duration=", "n_packets=", "n_bytes=", "idle_age=", "hard_age=")


def agent_flows(lab: Lab, node: str, bridge: str) -> dict[str, float]:
    """The bridge's agent flows (its cookie) -> duration in seconds, keyed by the flow without its
    counters (``ovs-ofctl dump-flows BRIDGE cookie=0xb4770/-1`` on the node, as ``lab exec`` runs it)."""
    out = lab.place(lab.topology.node(node)).run(
        ["ovs-ofctl", "dump-flows", bridge, f"cookie={AGENT_COOKIE}/-1"]).stdout
    flows = {}
    for line in out.splitlines():
        line = line.strip()
        if not line or line.startswith(("OFPST_", "NXST_")):
            continue
        head, _, actions = line.partition(" actions=")
        tokens = [t.rstrip(",") for t in head.replace(", ", " ").split()]
        duration = next((float(t[9:].rstrip("s")) for t in tokens if t.startswith("duration=")), -1.0)
        key = " ".join(t for t in tokens if not t.startswith(_STATS_FIELDS)) + " actions=" + actions
        flows[key] = duration
    return flows


def compare_flows(before: dict[str, float], after: dict[str, float], elapsed: float,
                  slack: float = 0.01) -> tuple[int, int, int]:
    """(missing, reset, new). A flow left alone has a duration grown by the time between its two
    dumps, at least ``elapsed`` (end of the first dumps -> start of the second); ``slack`` covers the
    durations' millisecond rounding. A flow re-added after the first dump is younger than that."""
    missing = sum(1 for key in before if key not in after)
    reset = sum(1 for key, d in before.items() if key in after and after[key] < d + elapsed - slack)
    new = sum(1 for key in after if key not in before)
    return missing, reset, new


def restart_agent(lab: Lab, api: Api, state_dir: Path, network_id: str) -> tuple[float, float, float]:
    """Kill -9 compute1's agent, commit a change that concerns it (a port bound to compute2, no
    VIF, on ``network_id`` where compute1 has ports: its l2population flows are compute1's to add),
    start the agent again. Returns (kill time, start time, the wall time of the start) on the
    monotonic clock.

    NOTE: a change compute1's view does not hold would leave its reported etag current: the
    server would show its realised_seq caught up before the agent even started (module doc)."""
    pid = lab_pids(state_dir)[("compute1", "ovs-agent")]
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    labkit.wait_for(lambda: not host.ours(pid, lab.paths.marker), 10, f"agent {pid} to die", 0.005)
    bulk_bind(api, network_id, "compute2", 1, "marker")  # seq moves on; compute1's view changes
    start_wall, started = time.time(), time.monotonic()
    agents.start(lab.paths, lab.topology.node("compute1"), "ovs")
    return killed, started, start_wall


def measure_resync(lab: Lab, api: Api, state_dir: Path, network_id: str) -> Resync:
    bridges = ("br-int", "br-tun")
    time.sleep(1.0)  # every flow at least 1 s old: one re-added later cannot pass for an old one
    before = {b: agent_flows(lab, "compute1", b) for b in bridges}
    dumped = time.monotonic()
    killed, started, start_wall = restart_agent(lab, api, state_dir, network_id)
    target = api.seq()
    reconciled = wait_realised(api, ("compute1",), target)
    after = {b: agent_flows(lab, "compute1", b) for b in bridges}
    counts = [compare_flows(before[b], after[b], reconciled - dumped) for b in bridges]
    missing, reset, new = (sum(c[i] for c in counts) for i in range(3))
    lines = [e.text for e in log_events(agent_log(lab, "compute1"), start_wall - 0.001)][:4]
    all_active = not_active(api, network_id, "compute1") == 0
    return Resync(sum(len(f) for f in before.values()), missing, reset, new, started - killed,
                  reconciled - started, lines, all_active)


# --------------------------------------------------------------------------- 3. SIGTERM


@dataclass
class Term:
    pid: int
    exit_s: float | None  # None: still running after TERM_TIMEOUT (then killed)
    last_lines: list[str]
    lab_up_s: float


def measure_sigterm(lab: Lab, state_dir: Path) -> Term:
    pid = lab_pids(state_dir)[("compute1", "ovs-agent")]
    since = time.time()
    os.kill(pid, signal.SIGTERM)
    started = time.monotonic()
    labkit.poll_until(lambda: labkit.exited(pid), started + TERM_TIMEOUT, 0.005)
    exit_s = time.monotonic() - started
    if not labkit.exited(pid):
        say(f"agent {pid} still runs {TERM_TIMEOUT:g} s after SIGTERM: SIGKILL")
        os.kill(pid, signal.SIGKILL)
        exit_s = None
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it was started from here (part 2)
    lines = [e.text for e in log_events(agent_log(lab, "compute1"), since - 0.001)][-3:]
    return Term(pid, exit_s, lines, labkit.lab_up(state_dir))


# --------------------------------------------------------------------------- 4. footprint


@dataclass
class Usage:
    node: str
    process: str
    pid: int
    rss_kib: int | None
    cpu_pct: float | None


def measure_footprint(state_dir: Path, settle: float, seconds: float) -> tuple[list[Usage], float]:
    """Every lab process's RSS, and its CPU over ``seconds`` after ``settle`` s; (rows, seconds sampled)."""
    time.sleep(settle)
    pids = lab_pids(state_dir)
    window = labkit.sample_cpu(pids.values(), seconds)
    rows = [Usage(node, name, pid, labkit.rss_kib(pid), window.pct(pid))
            for (node, name), pid in sorted(pids.items(), key=lambda kv: (not kv[0][1].endswith("agent"), kv[0]))]
    return rows, window.seconds


# --------------------------------------------------------------------------- the whole run


def fill_node(lab: Lab, api: Api, count: int) -> labkit.Fill:
    """``--node-ports``: ``count`` ports bound to compute1 on network ``fill`` and plugged (module doc)."""
    if not count:
        return labkit.Fill(0, "", 0.0, 0)
    cidr = labkit.sized_cidr("10.60.0.0", count)
    network_id = labkit.create_network(api, "fill", cidr, dhcp=False)
    _, fill = labkit.fill_plugged(api, network_id, "compute1", count, lambda args: vsctl(lab, "compute1", args),
                                  f"bound to compute1 on network fill ({cidr}, vxlan, no port elsewhere), plugged")
    return fill


@dataclass
class Results:
    cidr: str
    vms: list[VmTiming]
    wiring: Wiring
    resync: Resync
    term: Term
    usage: list[Usage]
    idle_s: float
    loadavg: tuple[str, str] = ("?", "?")  # 1-minute load average at the start and at the end
    fill: labkit.Fill = field(default_factory=lambda: labkit.Fill(0, "", 0.0, 0))
    seconds: float = 0.0  # the whole run, lab up and down included
    rebound: list[str] = field(default_factory=list)  # labkit.REBOUND: ports bound again

    @property
    def node_ports(self) -> int:
        """compute1's ports during parts 2 to 4: the fill and part 2's."""
        return self.fill.ports + self.wiring.ports


def run_all(args: argparse.Namespace, base: Path) -> Results:
    state_dir = base / "lab"
    cidr = subnet_cidr(args.vms + args.resync_ports + args.remote_ports + 3)
    load_start, run_started = labkit.loadavg(), time.monotonic()
    with running_lab(state_dir) as lab:
        try:
            return _run(args, lab, state_dir, cidr, load_start, run_started)
        except BenchError:
            with contextlib.suppress(OSError):
                say(f"the lab's logs kept in {labkit.keep_logs(state_dir, 'agent')}")
            raise


def _run(args: argparse.Namespace, lab: Lab, state_dir: Path, cidr: str, load_start: str,
         run_started: float) -> Results:
    api = Api()
    if args.node_ports:
        say(f"0. node fill: {args.node_ports} ports bound to compute1 and plugged")
    fill = fill_node(lab, api, args.node_ports)
    for line in fill.lines(""):
        say(line)
    # Static addresses: port to wire is the OVS agents' path (bench/dhcp.py measures DHCP's).
    network_id = labkit.create_network(api, "bench", cidr, dhcp=False)
    say(f"1. port to wire: {args.vms} VMs on compute1, peer on compute2, network bench {cidr}")
    timings = measure_port_to_wire(lab, api, network_id, args.vms, args.arp_retrans_ms, args.ping_interval_ms / 1000)
    say(f"2. wiring and resync: {args.resync_ports} ports on compute1")
    wiring = measure_wiring(lab, api, network_id, args.resync_ports, args.remote_ports,
                            labkit.FILL_CHUNK if args.node_ports else 0)
    resync = measure_resync(lab, api, state_dir, network_id)
    say(f"resync: reconciled {resync.reconciled_s:.2f} s after the agent's start; flows reset {resync.reset}, "
        f"missing {resync.missing}, new {resync.new} of {resync.flows_before}")
    say("3. SIGTERM")
    term = measure_sigterm(lab, state_dir)
    say(f"agent exited {_s(term.exit_s)} after SIGTERM; lab up {term.lab_up_s:.2f} s")
    say(f"4. footprint: {args.settle:g} s of quiet, then {args.idle:g} s of CPU")
    usage, idle_s = measure_footprint(state_dir, args.settle, args.idle)
    api.close()
    return Results(cidr, timings, wiring, resync, term, usage, idle_s,
                   (load_start, labkit.loadavg()), fill, time.monotonic() - run_started, list(labkit.REBOUND))


# --------------------------------------------------------------------------- report


def percentile(values: list[float], q: float) -> float:
    """Nearest rank: the smallest value with at least ``q`` of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def _s(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f} s"


def vm_stats(timings: list[VmTiming], attr: str) -> tuple[float, float, float, int] | None:
    """(p50, p99, max, failures) of one VmTiming attribute; a failure (None) counts as infinitely slow."""
    values = [getattr(t, attr) for t in timings]
    known = [v for v in values if v is not None]
    if not known:
        return None
    padded = known + [math.inf] * (len(values) - len(known))
    return percentile(padded, 0.5), percentile(padded, 0.99), max(padded), len(values) - len(known)


PART1_ROWS = (("create call (port POST + bind + hybrid plug)", "create_s"),
              ("compute2's agent changed flows (log)", "remote_flows_s"),
              ("compute1's agent tagged the VIF (log)", "wired_s"),
              ("port ACTIVE (GET every 5 ms)", "active_s"),
              ("first ping reply from compute2", "ping_s"))


def targets(r: Results) -> list[tuple[str, str]]:
    ping = vm_stats(r.vms, "ping_s")
    p50, p99 = (ping[0], ping[1]) if ping else (math.inf, math.inf)
    rs, t = r.resync, r.term
    resync_ok = rs.reconciled_s <= TARGET_RESYNC_S and rs.reset == rs.missing == 0 and rs.all_active
    return [
        ("port to first ping p50 <= 200 ms", f"{_ms(p50)}: {verdict(p50 <= TARGET_P50_S)}"),
        ("port to first ping p99 <= 1 s", f"{_ms(p99)}: {verdict(p99 <= TARGET_P99_S)}"),
        (f"resync with {r.node_ports} ports <= 10 s, no flow removed or reset",
         f"{_s(rs.reconciled_s)}, {rs.reset} reset, {rs.missing} missing: {verdict(resync_ok)}"),
        ("exit within 1 s of SIGTERM",
         f"{_s(t.exit_s)}: {verdict(t.exit_s is not None and t.exit_s <= TARGET_TERM_S)}"),
    ]


def _part1_lines(r: Results, arp_retrans_ms: int, ping_interval_ms: int) -> list[str]:
    lines = [f"1. port to wire: {len(r.vms)} VMs on compute1, one at a time, pinged from peer on compute2 "
             f"(vxlan, {r.cidr});",
             "   from t0, just before vms.create (which includes the port POST and the hybrid plug), to:",
             f"   {'':<46}{'p50':>9}{'p99':>9}{'max':>9}  failed"]
    for label, attr in PART1_ROWS:
        stats = vm_stats(r.vms, attr)
        if stats:
            lines.append(f"   {label:<46}{_ms(stats[0]):>9}{_ms(stats[1]):>9}{_ms(stats[2]):>9}  {stats[3]}")
    lines += _growth_lines(r.vms)
    failed = [t for t in r.vms if t.error]
    if failed:
        lines.append(f"   create FAILED for {len(failed)} VM(s) (counted as never ACTIVE, never answered), e.g. "
                     f"{failed[0].name} after {_ms(failed[0].create_s)}: ...{failed[0].error[-160:]}")
    requests = statistics.median(t.requests for t in r.vms)
    lines += [f"   (echo requests every {ping_interval_ms} ms, median {requests:g} per VM; peer's ARP retransmit time "
              f"{arp_retrans_ms} ms; log times have 1 ms resolution)",
              "   slowest: " + ", ".join(f"{t.name} {_ms(t.ping_s)}" for t in sorted(
                  r.vms, key=lambda t: -(t.ping_s if t.ping_s is not None else math.inf))[:3])]
    return lines


def _median_of(timings: list[VmTiming], value: Callable[[VmTiming], float | None]) -> float | None:
    known = [v for v in map(value, timings) if v is not None]
    return statistics.median(known) if known else None


def _growth_lines(timings: list[VmTiming]) -> list[str]:
    """How the figures move as compute1 fills up: medians of the first and the last 10 VMs, and the
    CPU the busiest processes spent per VM."""
    k = min(10, len(timings) // 2)
    if k < 1:
        return []
    head, tail = timings[:k], timings[-k:]

    def move(value: Callable[[VmTiming], float | None]) -> str:
        return f"{_ms(_median_of(head, value))} -> {_ms(_median_of(tail, value))}"

    return [f"   as compute1 fills up, median of the first {k} -> the last {k} VMs: "
            f"create {move(lambda t: t.create_s)}, ACTIVE {move(lambda t: t.active_s)}, "
            f"first reply {move(lambda t: t.ping_s)}",
            "   CPU time per VM (t0 until ACTIVE and answered), same medians: "
            + ", ".join(f"{label} {move(lambda t, lb=label: t.cpu.get(lb))}" for label in timings[0].cpu)]


def _part2_lines(r: Results) -> list[str]:
    w, rs = r.wiring, r.resync
    rate = w.l2pop_flows / w.l2pop_s if w.l2pop_s else None
    how = "one bulk POST" if w.posts == 1 else f"{w.posts} bulk POSTs"
    lines = [f"2. {w.ports} ports bound to compute1 in {how}: {_s(w.post_s)}; compute2's agent added "
             f"{w.l2pop_flows} l2population flows {_s(w.l2pop_s)} after the POST's answer"
             + (f" ({rate:,.0f} flows/s, view to bundle)" if rate else "")]
    if w.remote_ports:
        rrate = w.remote_flows / w.remote_flows_s if w.remote_flows_s else None
        lines.append(f"   then {w.remote_ports} ports bound to compute2 (no VIF): compute1's agent added "
                     f"{w.remote_flows} flows {_s(w.remote_flows_s)} after the POST"
                     + (f" ({rrate:,.0f} flows/s)" if rrate else ""))
    lines += [f"   initial wiring: {w.ports} internal ports in one ovs-vsctl transaction ({_s(w.vsctl_s)}, it waits "
              f"for ovs-vswitchd) -> all ACTIVE {_s(w.wired_s)} after its start; compute1's agent logged "
              f"{w.ovsdb_ops} OVSDB op(s)",
              "   compute1's agent flows: " + ", ".join(f"{b} {n}" for b, n in w.flows.items()),
              f"   restart with {r.node_ports} ports on compute1 (kill -9; a port bound to compute2 on bench, a change "
              "that concerns compute1; start):",
              f"   start -> realised_seq caught up (fully reconciled) {_s(rs.reconciled_s)} (kill -> start "
              f"{_s(rs.kill_to_start_s)}); all ports still ACTIVE: {'yes' if rs.all_active else 'NO'}",
              f"   agent flows before: {rs.flows_before}; after: {rs.missing} missing, {rs.reset} with a reset "
              f"duration, {rs.new} new (the new port's l2population flows)",
              "   restarted agent's first log lines:"] + [f"     {line}" for line in rs.first_lines]
    if not any(line.startswith("seq ") for line in rs.first_lines):
        lines.append('     (no "seq N: ... OVSDB op(s), flows ..." line: its first reconcile changed nothing)')
    return lines


def _part34_lines(r: Results) -> list[str]:
    t = r.term
    lines = [f"3. SIGTERM to compute1's agent (PID {t.pid}, {r.node_ports} ports): exited after {_s(t.exit_s)}; "
             f"`lab up` restarted it in {t.lab_up_s:.2f} s",
             *[f"     {line}" for line in t.last_lines],
             f"4. footprint ({r.node_ports} ports on compute1): RSS, and CPU over {r.idle_s:.1f} s of quiet "
             "(% of one core)",
             f"   {'node':<12}{'process':<16}{'PID':>8}{'RSS':>10}{'CPU':>9}"]
    for u in r.usage:
        rss = "-" if u.rss_kib is None else f"{u.rss_kib / 1024:.1f} MiB"
        cpu = "-" if u.cpu_pct is None else f"{u.cpu_pct:.2f}%"
        lines.append(f"   {u.node:<12}{u.process:<16}{u.pid:>8}{rss:>10}{cpu:>9}")
    return lines


def report(r: Results, args: argparse.Namespace) -> str:
    lines = [f"Agents benchmark: 2-compute lab, prefix {PREFIX}, API {BENCH.api_url}; machine's 1-minute load "
             f"average {r.loadavg[0]} at the start, {r.loadavg[1]} at the end ({os.cpu_count()} CPUs); the run took "
             f"{r.seconds / 60:.1f} min", ""]
    if r.fill.ports:
        lines += ["0." + line[2:] if i == 0 else line for i, line in enumerate(r.fill.lines())] + [""]
    lines += _part1_lines(r, args.arp_retrans_ms, args.ping_interval_ms) + [""]
    lines += _part2_lines(r) + [""] + _part34_lines(r) + [""]
    lines += ["targets:"] + [f"   {what}: {result.replace('**', '')}" for what, result in targets(r)]
    lines += [f"NOTE: {note}" for note in r.rebound]
    lines += ["", SCALE]
    return "\n".join(lines)


# --------------------------------------------------------------------------- RESULTS.md


def section(r: Results, args: argparse.Namespace, m: dict, text: str) -> str:
    command = labkit.command_line("bench/agent.py", args, parse_args([]), ("vms", "resync_ports", "remote_ports",
                                                                           "node_ports", "arp_retrans_ms",
                                                                           "ping_interval_ms", "idle",
                                                                           "settle"))
    targets_note = ("Targets from the agents' issue (issue 5): port create to the first ping from another node "
                    "p50 <= 200 ms, p99 <= 1 s; an agent restart with 1,000 ports on its node fully reconciled "
                    "within 10 s, no flow of an unchanged port removed or re-added; exit within a second of SIGTERM.")
    return labkit.section(SECTION, "bench/agent.py", targets_note, m, command,
                          ["", *labkit.table(("target", "result"), targets(r))], text)


# --------------------------------------------------------------------------- command line


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--vms", type=int, default=100, help="VMs timed from create to ACTIVE and first ping reply")
    p.add_argument("--resync-ports", type=int, default=1000, help="ports bound to compute1 for wiring and resync")
    p.add_argument("--remote-ports", type=int, default=0,
                   help="ports bound to compute2 without a VIF first (l2population flows on compute1)")
    p.add_argument("--node-ports", type=int, default=0,
                   help="ports bound to compute1 and plugged (network fill) before any measurement (0: none)")
    p.add_argument("--arp-retrans-ms", type=int, default=10, help="peer's ARP retransmit time (kernel: 1000)")
    p.add_argument("--ping-interval-ms", type=int, default=5,
                   help="milliseconds between peer's echo requests to a new VM, part 1 (module doc)")
    p.add_argument("--idle", type=float, default=10.0, help="seconds of the idle CPU sample")
    p.add_argument("--settle", type=float, default=5.0, help="seconds of quiet before the idle sample")
    BENCH.add_write_options(p)
    args = p.parse_args(argv)
    if args.vms < 1 or args.resync_ports < 1 or args.remote_ports < 0 or args.node_ports < 0 or args.idle <= 0 \
            or args.settle < 0:
        p.error("--vms and --resync-ports must be at least 1, --remote-ports and --node-ports not negative, --idle "
                "positive, --settle not negative")
    if args.node_ports > 16000:
        p.error("--node-ports: at most 16000 (network fill is one subnet of 10.60.0.0/18 at most)")
    if not 1 <= args.arp_retrans_ms <= 60000:
        p.error("--arp-retrans-ms: 1 to 60000")
    if not 1 <= args.ping_interval_ms <= 1000:
        p.error("--ping-interval-ms: 1 to 1000")
    return args


def main(argv: list[str] | None = None) -> int:
    return BENCH.main(parse_args(argv), run_all, report, section, what="state directory",
                      interrupted="interrupted; the lab was taken down")


if __name__ == "__main__":
    sys.exit(main())
