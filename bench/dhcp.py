#!/usr/bin/env python3
"""Benchmark of the DHCP agent in a real lab: port create to lease, many networks from cold, footprint, agent restart.

    .venv/bin/python bench/dhcp.py [--ports 100] [--networks 200] [--ports-per-network 2] [--node-ports 0]
                                   [--poll-ms 10] [--idle 30] [--settle 5] [--no-watch]
                                   [--write] [--results bench/RESULTS.md]

Run it as root, on demand (it is not part of the test suite), on an otherwise idle machine. One
2-compute lab with its agents (``baryon lab up``: the DHCP agent runs on the network node) in a
temporary state directory in /tmp (its base directory made traversable, 0755: dnsmasq re-reads
its files as nobody), namespace prefix ``bbench-``, API on 127.0.0.1:9794, so that a user's lab
(``blab-``, 9696) is never touched. It refuses to start when a ``bbench-`` namespace exists or the
port is taken; the lab is taken down in ``finally`` (also on Ctrl-C or SIGTERM), then the lab's
dnsmasq processes that ``lab down`` left running, if any (that of revision 4966a35 leaves them
all), are stopped by PID (``labkit.stop_dnsmasqs``: only processes whose command line names this
run's state directory); at the end it checks that no ``bbench-`` namespace, no process naming the
state directory and no mount under it is left (the rules bench/labkit.py keeps for every lab
benchmark). It never touches the root network namespace: DHCP packets are sent and received by a
UDP socket opened inside the VM ``client``'s namespace (a thread entered with setns,
``labkit.NetnsThread``), ``ip netns ls`` runs on the network node (as ``baryon lab exec`` runs
it), dnsmasq processes are found in /proc by their command line (naming their pidfile under the
lab's state directory, as the DHCP agent finds them) and the DHCP agent is signalled by the PID
``baryon lab status --json`` gives.

0. node fill (``--node-ports N``, default 0: none): once bench (below) is served, before anything
   is measured, N more ports on bench, bound nowhere like part 1's samples (the cheapest kind: no
   OVS agent wires them, and the DHCP agent serves a port whatever its binding), made in bulk
   POSTs of 100 (explicit addresses), until bench's host file lists every one of them: the DHCP
   agent's view, bench's host file and its dnsmasq carry N more entries during every measurement
   below (each sample of part 1 rewrites a host file of N + i entries and reloads dnsmasq).
   Issue 11: every agent keeps its targets at 1,000 ports per node. A run with ``--node-ports
   1000`` (and the defaults) took 1.8 minutes on 2 loaded CPUs (the fill 4 s).
1. port create -> host entry served, ``--ports`` samples. Network ``bench`` (vxlan, one IPv4
   subnet with DHCP) and VM ``client`` on compute2 (its address by DHCP: busybox udhcpc, as
   ``vm create`` does). Sample i: t0 just before the POST of a port on ``bench`` bound nowhere
   (no device owner, no host), with a MAC of ours (``fa:16:3e:bb:..``); from the POST's answer
   on, client sends from its eth0 a DHCPDISCOVER for that MAC (chaddr; broadcast flag, so that
   dnsmasq's answer reaches client's socket although it is not for client's MAC) every
   ``--poll-ms`` ms until dnsmasq OFFERs an address for it (it must be the port's), then a
   DHCPREQUEST for that address every 200 ms until it is ACKed: the lease, end to end (the
   client-side of a boot, minus the VM). dnsmasq answers no DISCOVER for a MAC its host file does
   not list (static ranges only), so the first OFFER is the first moment the entry is served.
   Resolution: an OFFER comes at most ``--poll-ms`` plus one DHCP round trip (measured first, for
   client's own MAC: ~1 ms) after dnsmasq could first answer. Where the time goes: the POST's
   answer; the DHCP view published for the network node (a long-poll of its view on the loopback
   API, as the agent's, in a thread: ``--no-watch`` turns it off; it costs the server one more
   view per change); the agent's run (its log line "seq N: ... WriteFiles ... in X ms": logged
   once the files are written and dnsmasq signalled; its start = the line's time - X); the OFFER;
   the ACK. Between two samples the script waits for that line and 50 ms more. The ports stay:
   the host file grows to ``--ports`` entries. bench's dnsmasq PID must not change (a port change
   is a reload, SIGHUP, not a restart).
2. ``--networks`` networks from cold: one bulk POST of the networks, one of their subnets (each
   an IPv4 /24 with DHCP: the server schedules the network to the DHCP agent and makes its DHCP
   port), one of ``--ports-per-network`` ports per network (bound nowhere, explicit addresses).
   From t0 before the first POST, polled every 0.25 s while the POSTs run (they are sent from a
   thread): each network's ``qdhcp-`` namespace on the network node, its dnsmasq, its host file
   listing its ports, and (another thread, every 0.5 s) its DHCP port ACTIVE (the network node's
   OVS agent tagged its tap): the times of the first, the median and the last network.
   And the DHCP agent's runs meanwhile (its "seq N: ..." lines) and the CPU time of the agent and
   the server.
3. footprint, once every network is served and after ``--settle`` s of quiet: the DHCP agent's
   RSS and CPU over ``--idle`` s (the default 30 s holds one periodic resync of the agent), the
   dnsmasq processes: count, summed RSS (each counts the pages it shares) and PSS, CPU.
4. agent restart: every dnsmasq PID recorded; the DHCP agent killed (-9, PID from ``lab status
   --json``); client's DISCOVER answered meanwhile (leases outlive the agent); one change committed
   that CONCERNS the agent (a new port on bench, bound nowhere: bench's host file must gain its
   entry) so that the current sequence S exceeds what the agent realised; ``baryon lab up`` (in a
   thread) starts it again. From the new agent process's start (/proc/PID/stat, 10 ms resolution)
   to its first log line and to its ``realised_seq >= S`` (``GET /v2.0/agents``, every 20 ms): the
   agent reports it after its first whole successful run, which writes bench's files and reloads
   (SIGHUP, not a restart) its dnsmasq. NOTE: the change must concern the agent: the server shows
   an agent's ``realised_seq`` as current to the log for as long as its view keeps the etag the
   agent last reported with it, so after a change elsewhere (a network without subnet, say) the
   killed agent would count as caught up before it even started. Then, 5 s later (two
   supervision periods), every dnsmasq PID again: restarts (PID changed), gone, new.
   Target (issue 7): 0 restarts.

``--write`` puts the result in ``--results`` as the section "## DHCP (bench/dhcp.py)", replacing it
if present (else appending it): date, machine, revision, figures and the targets.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import ipaddress
import itertools
import math
import os
import random
import re
import select
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import labkit
from labkit import NETNS_DIR, ROOT, BenchError, LogTail, ViewWatch, median, percentile, stats, verdict

sys.path.insert(0, str(ROOT))

from baryon.lab import host, vms  # noqa: E402
from baryon.lab.api import ApiError  # noqa: E402
from baryon.lab.lab import Lab  # noqa: E402

PREFIX = "bbench-"
API_PORT = 9794
SECTION = "## DHCP (bench/dhcp.py)"
BENCH = labkit.Bench("bench/dhcp", PREFIX, API_PORT, SECTION)
say = BENCH.say
DHCP_NODE, CLIENT_NODE = "network", "compute2"
AGENT_TYPE = "DHCP agent"
SAMPLE_TIMEOUT, LOG_TIMEOUT, SETTLE_S = 10.0, 10.0, 0.05
REQUEST_INTERVAL = 0.2  # DHCPREQUEST resent this often until ACKed
RTT_SAMPLES = 20
COLD_POLL_S = 0.25
RESTART_TIMEOUT = 120.0
AFTER_RESTART_S = 5.0  # two supervision periods of the agent (2 s) and more before the PIDs are compared
MAC_PREFIX = "fa:16:3e:bb"  # part 1's ports (Neutron's base MAC fa:16:3e)
TARGET_RESTARTS = 0
RUN_LINE = re.compile(r"^seq (\d+): (.*) in (\d+) ms$")
OP_COUNT = re.compile(r"(\d+) (\w+)")

# --------------------------------------------------------------------------- DHCP on the wire

BOOTREQUEST, HTYPE_ETHER = 1, 1
MAGIC = b"\x63\x82\x53\x63"
DISCOVER, OFFER, REQUEST, ACK, NAK = 1, 2, 3, 5, 6
OPT_TYPE, OPT_REQUESTED, OPT_SERVER, OPT_PARAMS, OPT_END = 53, 50, 54, 55, 255
MESSAGE_NAMES = {OFFER: "OFFER", ACK: "ACK", NAK: "NAK"}


def dhcp_message(kind: int, mac: str, xid: int, options: bytes = b"") -> bytes:
    """A BOOTREQUEST from 0.0.0.0 for ``mac`` (chaddr) with the broadcast flag (the server's answer
    goes to 255.255.255.255, whatever the MAC), message type ``kind`` and ``options``."""
    chaddr = bytes.fromhex(mac.replace(":", "")).ljust(16, b"\0")
    header = struct.pack("!BBBBIHHIIII", BOOTREQUEST, HTYPE_ETHER, 6, 0, xid, 0, 0x8000, 0, 0, 0, 0)
    params = bytes([OPT_PARAMS, 4, 1, 3, 6, 26])  # mask, router, DNS, MTU
    return (header + chaddr + b"\0" * 192 + MAGIC + bytes([OPT_TYPE, 1, kind]) + options + params
            + bytes([OPT_END]))


@dataclass(frozen=True)
class Reply:
    xid: int
    mac: str
    address: str  # yiaddr
    kind: int  # OFFER, ACK, NAK ...
    server: str  # option 54


def parse_reply(data: bytes) -> Reply | None:
    """A BOOTREPLY's fields, None for anything else."""
    if len(data) < 240 or data[0] != 2 or data[236:240] != MAGIC:
        return None
    xid, yiaddr = struct.unpack("!I", data[4:8])[0], data[16:20]
    mac = data[28:28 + min(data[2], 16)].hex(":")
    kind, server, i, options = 0, "", 0, data[240:]
    while i < len(options) and options[i] != OPT_END:
        if options[i] == 0:
            i += 1
            continue
        if i + 1 >= len(options):
            break
        code, length = options[i], options[i + 1]
        value = options[i + 2:i + 2 + length]
        if code == OPT_TYPE and length == 1:
            kind = value[0]
        elif code == OPT_SERVER and length == 4:
            server = socket.inet_ntoa(value)
        i += 2 + length
    return Reply(xid, mac, socket.inet_ntoa(yiaddr), kind, server)


@dataclass
class Exchange:
    """One DISCOVER/OFFER then REQUEST/ACK for a MAC: monotonic times (None: not seen)."""

    started: float
    offered: float | None = None
    acked: float | None = None
    address: str = ""  # the address offered
    answer: str = ""  # "ACK", "NAK" or "" (none)
    discovers: int = 0
    requests: int = 0


class DhcpClient:
    """A UDP socket on port 68 inside a VM's namespace (bound to its eth0, broadcast allowed),
    opened by a thread that entered the namespace (``labkit.NetnsThread``) and driven from here.
    NOTE: the VM's own DHCP client (udhcpc -q) has exited by then: nothing else holds port 68."""

    def __init__(self, vm: vms.Vm) -> None:
        self.thread = labkit.NetnsThread(NETNS_DIR / vm.netns)
        try:
            self.sock = self.thread.call(self._open)
        except OSError as exc:
            self.thread.close()
            raise BenchError(f"cannot open a DHCP client socket in {vm.name}: {exc}") from None
        self.xids = itertools.count(random.getrandbits(31))

    @staticmethod
    def _open() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
        sock.bind(("0.0.0.0", 68))
        sock.setblocking(False)
        return sock

    def close(self) -> None:
        self.sock.close()
        self.thread.close()

    def _send(self, kind: int, mac: str, options: bytes = b"") -> int:
        xid = next(self.xids) & 0xFFFFFFFF
        with contextlib.suppress(OSError):
            self.sock.sendto(dhcp_message(kind, mac, xid, options), ("255.255.255.255", 67))
        return xid

    def _replies(self, timeout: float) -> list[Reply]:
        ready, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        found = []
        while ready:
            try:
                data = self.sock.recv(4096, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue
            reply = parse_reply(data)
            if reply is not None:
                found.append(reply)
        return found

    def exchange(self, mac: str, deadline: float, interval: float, request: bool = True) -> Exchange:
        """DISCOVER every ``interval`` s until an OFFER for ``mac`` comes back; then (``request``)
        REQUEST that address every ``REQUEST_INTERVAL`` s until ACK or NAK, or ``deadline``."""
        self._replies(0)  # drop what earlier exchanges left
        ex = Exchange(time.monotonic())
        sent: set[int] = set()
        next_send, server = 0.0, ""
        while (now := time.monotonic()) < deadline and ex.offered is None:
            if now >= next_send:
                sent.add(self._send(DISCOVER, mac))
                ex.discovers += 1
                next_send = now + interval
            for reply in self._replies(next_send - time.monotonic()):
                if reply.kind == OFFER and reply.xid in sent and reply.mac == mac:
                    ex.offered, ex.address, server = time.monotonic(), reply.address, reply.server
                    break
        if ex.offered is None or not request:
            return ex
        options = (bytes([OPT_REQUESTED, 4]) + socket.inet_aton(ex.address)
                   + (bytes([OPT_SERVER, 4]) + socket.inet_aton(server) if server else b""))
        sent, next_send = set(), 0.0
        while (now := time.monotonic()) < deadline and not ex.answer:
            if now >= next_send:
                sent.add(self._send(REQUEST, mac, options))
                ex.requests += 1
                next_send = now + REQUEST_INTERVAL
            for reply in self._replies(next_send - time.monotonic()):
                if reply.kind in (ACK, NAK) and reply.xid in sent and reply.mac == mac:
                    ex.acked, ex.answer = time.monotonic(), MESSAGE_NAMES[reply.kind]
                    break
        return ex


# --------------------------------------------------------------------------- the lab


@contextlib.contextmanager
def running_lab(state_dir: Path, left: list[int]) -> Iterator[Lab]:
    """``lab up`` (2 computes, agents), the lab's Python handle; ``lab down`` whatever happens, then
    the lab's dnsmasq processes that ``lab down`` left (their PIDs appended to ``left``)."""
    try:
        seconds = labkit.lab_up(state_dir, "--prefix", PREFIX, "--api-port", str(API_PORT), "--computes", "2")
        say(f"lab up in {seconds:.1f} s ({state_dir})")
        yield Lab.open(state_dir)
    finally:
        say("lab down")
        BENCH.down_regardless(state_dir)
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            left += labkit.stop_dnsmasqs(str(state_dir))
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if left:
            say(f"lab down left {len(left)} dnsmasq process(es) running: stopped by PID")


class Api(labkit.Api):
    def __init__(self) -> None:
        super().__init__(API_PORT)

    def seq(self) -> int:
        return int(self.get("/agent/v1/seq")["seq"])

    def dhcp_agent(self) -> dict:
        found = self.get(f"/v2.0/agents?host={DHCP_NODE}&agent_type={AGENT_TYPE.replace(' ', '%20')}")["agents"]
        if len(found) != 1:
            raise BenchError(f"{len(found)} DHCP agents on {DHCP_NODE}")
        return found[0]


def view_cost() -> tuple[float, float]:
    """(seconds, KiB) of one GET of the network node's DHCP view (no etag: answered at once), own connection."""
    conn = http.client.HTTPConnection("127.0.0.1", API_PORT, timeout=60)
    try:
        started = time.monotonic()
        conn.request("GET", f"/agent/v1/hosts/{DHCP_NODE}/dhcp", headers=labkit.AGENT_HEADERS)
        data = conn.getresponse().read()
        return time.monotonic() - started, len(data) / 1024
    finally:
        conn.close()


def dhcp_dir(lab: Lab) -> Path:
    """The DHCP agent's ``dhcp_confs`` on the network node (``state_path`` = the node's lib/)."""
    return lab.paths.lib(DHCP_NODE) / "dhcp"


def agent_log(lab: Lab) -> Path:
    return lab.paths.log(DHCP_NODE) / "dhcp-agent.log"


def dnsmasqs(confs: Path) -> dict[str, list[int]]:
    """network id -> PIDs of the live dnsmasq processes whose ``--pid-file`` is that network's
    (``<dhcp_confs>/<network id>/pid``), from /proc: what the DHCP agent runs, strays included."""
    flag = f"--pid-file={confs}/".encode()
    found: dict[str, list[int]] = {}
    for pid in labkit.dnsmasq_pids(str(confs)):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        for arg in argv:
            if arg.startswith(flag):
                found.setdefault(arg[len(flag):].split(b"/")[0].decode(), []).append(pid)
    return found


def qdhcp_namespaces(lab: Lab) -> set[str]:
    """Network ids of the ``qdhcp-`` namespaces on the network node (``ip netns ls`` there)."""
    out = lab.place(lab.topology.node(DHCP_NODE)).run(["ip", "netns", "ls"], check=False).stdout
    return {line.split()[0][len("qdhcp-"):] for line in out.splitlines() if line.startswith("qdhcp-")}


def make_vm(lab: Lab, name: str, node: str, network_id: str) -> vms.Vm:
    try:
        return vms.create(lab, name, node, network=network_id)
    except (host.LabError, ApiError) as exc:
        raise BenchError(f"vm create {name} on {node}: {exc}") from None


# --------------------------------------------------------------------------- what the server and the agent tell


def is_port_run(text: str) -> bool:
    """The agent's line for a run that rewrote files (a port change)."""
    return RUN_LINE.match(text) is not None and "WriteFiles" in text


def run_ops(text: str) -> tuple[Counter, float] | None:
    """(op kind -> count, milliseconds) of a "seq N: 1 EnsureDevice, 2 WriteFiles in 90 ms" line."""
    match = RUN_LINE.match(text)
    if not match:
        return None
    return Counter({kind: int(n) for n, kind in OP_COUNT.findall(match.group(2))}), float(match.group(3))


# --------------------------------------------------------------------------- 1. port create -> served


@dataclass
class Sample:
    mac: str
    address: str  # the port's
    api_s: float
    ex: Exchange
    t0: float
    view_s: float | None = None
    run_start_s: float | None = None  # the agent's run began (its line's time - its duration)
    run_s: float | None = None  # its line (files written, dnsmasq signalled)
    run_ms: float | None = None
    run_text: str = ""

    def since(self, monotonic: float | None) -> float | None:
        return None if monotonic is None else monotonic - self.t0

    @property
    def offer_s(self) -> float | None:
        return self.since(self.ex.offered) if self.ex.address == self.address else None

    @property
    def ack_s(self) -> float | None:
        return self.since(self.ex.acked) if self.ex.answer == "ACK" and self.offer_s is not None else None


def port_sample(api: Api, client: DhcpClient, log: LogTail, watch: ViewWatch | None, network_id: str, i: int,
                interval: float) -> Sample:
    mac = f"{MAC_PREFIX}:{(i >> 8) & 0xFF:02x}:{i & 0xFF:02x}"
    t0_wall, t0 = time.time(), time.monotonic()
    port = api.call("POST", "/v2.0/ports", {"port": {"network_id": network_id, "mac_address": mac,
                                                     "name": f"bbench-d{i}"}})["port"]
    api_s = time.monotonic() - t0
    ex = client.exchange(mac, t0 + SAMPLE_TIMEOUT, interval)
    s = Sample(mac, port["fixed_ips"][0]["ip_address"], api_s, ex, t0)
    log.wait(t0_wall, is_port_run)
    time.sleep(SETTLE_S)
    end = time.monotonic()
    line = next(((w, t) for w, t in log.since(t0_wall, t0_wall + (end - t0)) if is_port_run(t)), None)
    if line is not None:
        s.run_s, s.run_text = max(0.0, line[0] - t0_wall), line[1]
        parsed = run_ops(line[1])
        if parsed is not None:
            s.run_ms = parsed[1]
            s.run_start_s = max(0.0, s.run_s - parsed[1] / 1000)
    if watch is not None:
        s.view_s = s.since(watch.first(t0, end))
    return s


@dataclass
class PortResults:
    cidr: str
    client_address: str
    rtt: list[Exchange]
    samples: list[Sample]
    dnsmasq_before: list[int]
    dnsmasq_after: list[int]
    restart_lines: int  # "dnsmasq restarted/started" lines for bench during part 1
    interval: float
    watch: bool
    watch_errors: int
    view: tuple[float, float]  # one GET of the DHCP view at the end: (seconds, KiB)
    client_failure: str = ""  # the first `vm create client` failed: why, and what the lab looked like
    network_id: str = ""  # bench's
    fill: labkit.Fill = field(default_factory=lambda: labkit.Fill(0, "", 0.0, 0))


def diagnose(lab: Lab, api: Api, network_id: str) -> str:
    """What a DHCP client's failure may come from: the DHCP port, the dnsmasq, the agent's last lines."""
    found = []
    with contextlib.suppress(BenchError):
        for port in api.get(f"/v2.0/ports?network_id={network_id}")["ports"]:
            found.append(f"port {port['device_owner'] or '-'} {port['mac_address']} {port['status']} "
                         f"{port['binding:host_id'] or '-'} {port['binding:vif_type']}")
    found.append(f"dnsmasq {dnsmasqs(dhcp_dir(lab)).get(network_id, [])}")
    with contextlib.suppress(OSError):
        found.append("host file: " + (dhcp_dir(lab) / network_id / "host").read_text().replace("\n", " | "))
    for node, name in ((DHCP_NODE, "dhcp-agent"), (DHCP_NODE, "ovs-agent"), (CLIENT_NODE, "ovs-agent")):
        tail = [t for _, t in labkit.log_lines(lab.paths.log(node) / f"{name}.log")][-3:]
        found.append(f"{node} {name}: " + " / ".join(tail))
    return "; ".join(found)


def host_file_lists(lab: Lab, network_id: str, macs: list[str]) -> bool:
    """The network's host file (the DHCP agent's) lists every one of ``macs``."""
    try:
        text = (dhcp_dir(lab) / network_id / "host").read_text().lower()
    except OSError:
        return False
    return all(mac.lower() in text for mac in macs)


def fill_bench(lab: Lab, api: Api, network_id: str, count: int) -> labkit.Fill:
    """``--node-ports``: ``count`` ports on bench, bound nowhere, until its host file lists them all."""
    if not count:
        return labkit.Fill(0, "", 0.0, 0)
    started = time.monotonic()
    ports, post_s = labkit.create_ports(api, network_id, count, "bbench-fill")
    macs = [p["mac_address"] for p in ports]
    labkit.wait_for(lambda: host_file_lists(lab, network_id, macs), labkit.FILL_TIMEOUT,
                    f"bench's host file to list the {count} fill ports", 0.1)
    return labkit.Fill(count, "on network bench, bound nowhere", post_s, math.ceil(count / labkit.FILL_CHUNK),
                       ready_s=time.monotonic() - started, ready_what="bench's host file lists them all")


def measure_ports(lab: Lab, api: Api, args: argparse.Namespace,
                  stoppable: list[Callable[[], None]]) -> tuple[PortResults, DhcpClient, str]:
    """Part 1 (after the node fill, ``--node-ports``); (its results, client's DHCP socket, client's MAC)."""
    cidr = subnet_cidr(args.ports + args.node_ports + 10)
    network_id = labkit.create_network(api, "bench", cidr)
    confs = dhcp_dir(lab)
    labkit.wait_for(lambda: dnsmasqs(confs).get(network_id), 30, "bench's dnsmasq", 0.05)
    fill = fill_bench(lab, api, network_id, args.node_ports)
    for line in fill.lines(""):
        say(line)
    try:
        client_vm = make_vm(lab, "client", CLIENT_NODE, network_id)
        client_failure = ""
    except BenchError as exc:  # once more, after saying what the lab looked like
        client_failure = f"{str(exc)[:100]}...; {diagnose(lab, api, network_id)}"
        say(f"PROBLEM: {client_failure}; once more")
        client_vm = make_vm(lab, "client", CLIENT_NODE, network_id)
    if not client_vm.dhcp:
        raise BenchError("client did not take its address by DHCP (no live DHCP agent for bench?)")
    lease = vms.read_lease(lab, "client")
    say(f"client on {CLIENT_NODE}: {client_vm.addresses[0]} by DHCP (lease {lease.get('ip')}, router "
        f"{lease.get('router')}, mtu {lease.get('mtu')})")
    client = DhcpClient(client_vm)
    stoppable.append(client.close)
    interval = args.poll_ms / 1000
    rtt = [client.exchange(client_vm.mac, time.monotonic() + 2.0, interval) for _ in range(RTT_SAMPLES)]
    if not all(r.offered for r in rtt):
        raise BenchError(f"client's own DISCOVERs: {sum(1 for r in rtt if not r.offered)} of {RTT_SAMPLES} "
                         "not answered")
    watch = ViewWatch(DHCP_NODE, "dhcp", API_PORT) if args.watch else None
    if watch is not None:
        stoppable.append(watch.stop)
        time.sleep(0.3)  # its first (initial) view is not a change
    log = LogTail(agent_log(lab))
    before = dnsmasqs(confs).get(network_id, [])
    start_wall = time.time()
    samples = []
    for i in range(1, args.ports + 1):
        s = port_sample(api, client, log, watch, network_id, i, interval)
        samples.append(s)
        say(f"port {i} {s.mac} {s.address}: POST {_ms(s.api_s)}, view {_ms(s.view_s)}, agent run "
            f"{_ms(s.run_start_s)}..{_ms(s.run_s)}, OFFER {_ms(s.offer_s)} ({s.ex.discovers} DISCOVERs"
            + (f", offered {s.ex.address}!" if s.ex.address and s.ex.address != s.address else "")
            + f"), {s.ex.answer or 'no answer'} {_ms(s.ack_s)}")
    after = dnsmasqs(confs).get(network_id, [])
    restarts = sum(1 for _, t in log.since(start_wall) if network_id in t and "dnsmasq" in t
                   and ("restarted" in t or "started" in t))
    if watch is not None:
        watch.stop()
    results = PortResults(cidr, client_vm.addresses[0], rtt, samples, before, after, restarts, interval, args.watch,
                          watch.errors if watch else 0, view_cost(), client_failure, network_id, fill)
    return results, client, client_vm.mac


def subnet_cidr(ports: int) -> str:
    prefix = min(24, 32 - math.ceil(math.log2(ports + 32)))
    if prefix < 12:
        raise BenchError(f"{ports} ports do not fit in 172.16.0.0/12")
    return f"172.16.0.0/{prefix}"


# --------------------------------------------------------------------------- 2. many networks from cold


@dataclass
class Cold:
    networks: int
    ports_per_network: int
    post_s: dict[str, float]  # networks, subnets, ports -> seconds of the bulk POST
    namespace_s: list[float | None]  # per network: t0 -> its qdhcp namespace seen
    dnsmasq_s: list[float | None]
    files_s: list[float | None]  # its host file lists every one of its ports
    active_s: list[float | None]  # its DHCP port ACTIVE
    runs: list[tuple[float, str]]  # the agent's "seq N: ..." lines (seconds after t0, text)
    cpu_s: dict[str, float]  # process -> CPU seconds from t0 to the end
    duplicates: int  # networks with more than one dnsmasq at the end
    view: tuple[float, float]  # one GET of the DHCP view at the end: (seconds, KiB)


def cidr_of(i: int) -> str:
    return f"10.{128 + i // 256}.{i % 256}.0/24"


def bulk_networks(api: Api, count: int, per: int) -> tuple[list[str], dict[str, list[str]], dict[str, float]]:
    """``count`` networks, their subnets and ``per`` ports each, three bulk POSTs; (network ids,
    network id -> its ports' MACs, seconds per POST)."""
    post_s = {}
    started = time.monotonic()
    networks = api.call("POST", "/v2.0/networks", {"networks": [{"name": f"bbench-n{i}"}
                                                                for i in range(count)]})["networks"]
    post_s["networks"] = time.monotonic() - started
    ids = [n["id"] for n in networks]
    started = time.monotonic()
    subnets = api.call("POST", "/v2.0/subnets", {"subnets": [
        {"network_id": nid, "cidr": cidr_of(i), "ip_version": 4, "name": f"bbench-n{i}"}
        for i, nid in enumerate(ids)]})["subnets"]
    post_s["subnets"] = time.monotonic() - started
    by_network = {s["network_id"]: s for s in subnets}
    started = time.monotonic()
    body = []
    for i, nid in enumerate(ids):
        base = ipaddress.ip_network(cidr_of(i)).network_address
        body += [{"network_id": nid, "name": f"bbench-n{i}-p{k}",
                  "fixed_ips": [{"subnet_id": by_network[nid]["id"], "ip_address": str(base + 100 + k)}]}
                 for k in range(per)]
    ports = api.call("POST", "/v2.0/ports", {"ports": body})["ports"] if body else []
    post_s["ports"] = time.monotonic() - started
    macs: dict[str, list[str]] = {nid: [] for nid in ids}
    for port in ports:
        macs[port["network_id"]].append(port["mac_address"].lower())
    return ids, macs, post_s


def poll_active(t0: float, found: dict[str, float], stop: threading.Event, interval: float = 0.5) -> None:
    """Every ``interval`` s (own API connection, in a thread: the loop polling the node must not wait
    behind the server), the DHCP ports' status: network id -> seconds after ``t0`` it was first ACTIVE."""
    api = Api()
    try:
        while not stop.is_set():
            now = time.monotonic()
            with contextlib.suppress(BenchError):
                for port in api.get("/v2.0/ports?device_owner=network:dhcp&fields=network_id&fields=status")["ports"]:
                    if port["status"] == "ACTIVE":
                        found.setdefault(port["network_id"], now - t0)
            stop.wait(interval)
    finally:
        api.close()


def measure_cold(lab: Lab, state_dir: Path, count: int, per: int) -> Cold:
    """Part 2: the POSTs in one thread, the DHCP ports' status in another, the network node polled here
    from t0 on (while the POSTs run too)."""
    confs = dhcp_dir(lab)
    log = LogTail(agent_log(lab))
    pids = labkit.lab_pids(state_dir)
    watched = {"DHCP agent": pids[(DHCP_NODE, "dhcp-agent")], "network's OVS agent": pids[(DHCP_NODE, "ovs-agent")],
               "server": pids[("controller", "baryon-server")]}
    ticks = {name: labkit.cpu_ticks(pid) or 0 for name, pid in watched.items()}
    seen: dict[str, dict[str, float]] = {}  # network id (any) -> "ns"/"dnsmasq"/"files" -> seconds after t0
    active: dict[str, float] = {}
    stop = threading.Event()
    creator = Api()
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="cold") as pool:
        t0_wall, t0 = time.time(), time.monotonic()
        creating = pool.submit(bulk_networks, creator, count, per)
        polling = pool.submit(poll_active, t0, active, stop)
        deadline = t0 + max(300.0, 3.0 * count)
        last_report, created = time.monotonic(), None
        try:
            while True:
                now = time.monotonic()
                namespaces, running = qdhcp_namespaces(lab), dnsmasqs(confs)
                for nid in namespaces:
                    seen.setdefault(nid, {}).setdefault("ns", now - t0)
                for nid, found in running.items():
                    if found:
                        seen.setdefault(nid, {}).setdefault("dnsmasq", now - t0)
                if created is None and creating.done():
                    created = creating.result()  # raises what the POSTs raised
                    say(f"{count} networks, subnets, {count * per} ports: POSTs "
                        + ", ".join(f"{k} {v:.2f} s" for k, v in created[2].items()))
                if created is not None:
                    ids, macs, _ = created
                    for nid in ids:
                        marks = seen.setdefault(nid, {})
                        if "files" not in marks:
                            with contextlib.suppress(OSError):
                                text = (confs / nid / "host").read_text().lower()
                                if all(mac in text for mac in macs[nid]):
                                    marks["files"] = now - t0
                    if all(len(seen[nid]) == 3 and nid in active for nid in ids):
                        break
                if now > deadline:
                    say(f"cold start: gave up after {now - t0:.0f} s")
                    break
                if created is not None and now - last_report > 10:
                    ids = created[0]
                    say(f"cold start, {now - t0:.0f} s: namespaces "
                        f"{sum(1 for n in ids if 'ns' in seen[n])}, dnsmasq "
                        f"{sum(1 for n in ids if 'dnsmasq' in seen[n])}, host files "
                        f"{sum(1 for n in ids if 'files' in seen[n])}, DHCP ports ACTIVE "
                        f"{sum(1 for n in ids if n in active)} of {count}")
                    last_report = now
                time.sleep(COLD_POLL_S)
        finally:
            stop.set()
            polling.result()
            creator.close()
    if created is None:
        raise BenchError(f"the bulk POSTs of {count} networks did not end within {deadline - t0:.0f} s")
    end = time.monotonic()
    ids, _, post_s = created
    cpu = {name: ((labkit.cpu_ticks(pid) or 0) - ticks[name]) / labkit.CLOCK_HZ for name, pid in watched.items()}
    runs = [(max(0.0, w - t0_wall), t) for w, t in log.since(t0_wall, t0_wall + (end - t0)) if RUN_LINE.match(t)]
    duplicates = sum(1 for pids_ in dnsmasqs(confs).values() if len(pids_) > 1)

    def column(kind: str) -> list[float | None]:
        return [active.get(nid) if kind == "active" else seen.get(nid, {}).get(kind) for nid in ids]

    return Cold(count, per, post_s, column("ns"), column("dnsmasq"), column("files"), column("active"), runs, cpu,
                duplicates, view_cost())


# --------------------------------------------------------------------------- 3. footprint


@dataclass
class Footprint:
    networks: int
    agent_pid: int
    agent_rss_kib: int | None
    agent_cpu_pct: float | None
    server_cpu_pct: float | None
    dnsmasq_count: int
    dnsmasq_rss_kib: int
    dnsmasq_pss_kib: int
    dnsmasq_cpu_pct: float
    seconds: float
    machine_busy_pct: float


def measure_footprint(lab: Lab, state_dir: Path, settle: float, seconds: float) -> Footprint:
    time.sleep(settle)
    pids = labkit.lab_pids(state_dir)
    agent, server = pids[(DHCP_NODE, "dhcp-agent")], pids[("controller", "baryon-server")]
    running = [pid for found in dnsmasqs(dhcp_dir(lab)).values() for pid in found]
    window = labkit.sample_cpu([agent, server, *running], seconds)
    return Footprint(len(running), agent, labkit.rss_kib(agent), window.pct(agent), window.pct(server), len(running),
                     sum(labkit.rss_kib(p) or 0 for p in running), sum(labkit.pss_kib(p) or 0 for p in running),
                     sum(window.pct(p) or 0.0 for p in running), window.seconds, window.machine_busy_pct)


# --------------------------------------------------------------------------- 4. agent restart


@dataclass
class Restart:
    networks: int  # dnsmasq processes before
    old_pid: int
    new_pid: int | None
    served_while_dead_s: float | None  # client's DISCOVER -> OFFER while the agent was dead
    kill_to_up_s: float  # the kill -> `lab up` started (the marker change in between)
    up_s: float  # `lab up`'s wall time
    process_start_s: float | None  # `lab up` started -> the new agent process started
    first_line_s: float | None  # the new agent's process start -> its first log line
    reconciled_s: float | None  # the new agent's process start -> realised_seq >= target
    target_seq: int
    restarted: list[str]  # network ids whose dnsmasq PID changed
    gone: list[str]
    new: list[str]
    lines: list[str]  # the restarted agent's log lines (up to AFTER_RESTART_S after reconciled)
    rss_kib: int | None  # the new agent's


def measure_restart(lab: Lab, api: Api, state_dir: Path, client: DhcpClient, client_mac: str,
                    interval: float, network_id: str) -> Restart:
    """Part 4; ``network_id``: bench's, where the change made while the agent is dead goes."""
    confs = dhcp_dir(lab)
    log = LogTail(agent_log(lab))
    before = dnsmasqs(confs)
    old_pid = labkit.lab_pids(state_dir)[(DHCP_NODE, "dhcp-agent")]
    os.kill(old_pid, signal.SIGKILL)
    killed = time.monotonic()
    labkit.wait_for(lambda: not host.ours(old_pid, lab.paths.marker), 10, f"DHCP agent {old_pid} to die", 0.005)
    ex = client.exchange(client_mac, time.monotonic() + 3.0, interval, request=False)
    served_while_dead = None if ex.offered is None else ex.offered - ex.started
    # The sequence moves on AND the agent's view changes (see the module doc: a change elsewhere
    # would leave the etag it reported current, and its realised_seq caught up at once).
    labkit.create_ports(api, network_id, 1, "bbench-marker")
    target = api.seq()
    pidfile = lab.paths.run(DHCP_NODE) / "dhcp-agent.pid"
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lab-up") as pool:
        up_started_wall, up_started = time.time(), time.monotonic()
        upping = pool.submit(labkit.lab_up, state_dir)
        new_pid, reconciled = None, None
        deadline = up_started + RESTART_TIMEOUT
        while time.monotonic() < deadline and reconciled is None:
            if new_pid is None:
                pid = host.read_pid(pidfile)
                new_pid = pid if pid not in (None, old_pid) and host.ours(pid, lab.paths.marker) else None
            with contextlib.suppress(BenchError):
                if api.dhcp_agent()["realised_seq"] >= target:
                    reconciled = time.monotonic()
            if upping.done() and upping.exception() is not None:
                raise upping.exception()  # type: ignore[misc]
            time.sleep(0.02)
        up_s = upping.result()
    if reconciled is None:
        raise BenchError(f"the restarted DHCP agent did not report seq {target} within {RESTART_TIMEOUT:g} s")
    started = labkit.process_start(new_pid) if new_pid else None
    time.sleep(AFTER_RESTART_S)
    after = dnsmasqs(confs)
    lines = [t for _, t in log.since(up_started_wall)]
    first = next((w for w, t in log.since(up_started_wall) if t.startswith("dhcp agent on host")), None)
    first_line_s = None
    if first is not None and started is not None:
        first_line_s = (up_started + (first - up_started_wall)) - started
    restarted = sorted(n for n, p in before.items() if n in after and set(p) != set(after[n]))
    return Restart(sum(len(p) for p in before.values()), old_pid, new_pid, served_while_dead, up_started - killed,
                   up_s, None if started is None else started - up_started, first_line_s,
                   None if started is None else reconciled - started, target, restarted,
                   sorted(set(before) - set(after)), sorted(set(after) - set(before)), lines,
                   labkit.rss_kib(new_pid) if new_pid else None)


# --------------------------------------------------------------------------- the whole run


@dataclass
class Results:
    ports: PortResults
    cold: Cold
    footprint: Footprint
    restart: Restart
    loadavg: tuple[str, str]
    left_by_down: int = 0  # dnsmasq processes `lab down` left running (stopped by this script)
    seconds: float = 0.0  # the whole run, lab up and down included


def keep_logs(state_dir: Path) -> Path:
    """A copy of the lab's logs and the DHCP agent's files (not its pidfiles and leases), outside
    the state directory, for a failed run: the lab and its state directory go."""
    keep = Path(tempfile.mkdtemp(prefix="baryon-bench-dhcp-failed-"))
    nodes = state_dir / "nodes"
    for log in nodes.glob("*/log/*.log"):
        target = keep / log.relative_to(nodes)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log, target)
    for path in nodes.glob(f"{DHCP_NODE}/lib/dhcp/*/*"):
        if path.name in ("host", "addn_hosts", "opts"):
            target = keep / path.relative_to(nodes)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    return keep


def run_all(args: argparse.Namespace, base: Path) -> Results:
    state_dir = base / "lab"
    # NOTE: dnsmasq re-reads its files on SIGHUP as nobody: every directory above them must be
    # traversable by others. mkdtemp makes the base directory 0700: unless it is opened (labkit's
    # Bench.start does it too, in the working tree after 4966a35), no port made after a dnsmasq
    # started is ever served (the agent of 4966a35 only warns "... is not traversable by others").
    base.chmod(0o755)
    load_start, run_started = labkit.loadavg(), time.monotonic()
    left: list[int] = []
    stoppable: list[Callable[[], None]] = []
    with running_lab(state_dir, left) as lab:
        api = Api()
        try:
            say(f"1. port create -> served: {args.ports} ports, DISCOVER every {args.poll_ms} ms from client on "
                f"{CLIENT_NODE}")
            ports, client, client_mac = measure_ports(lab, api, args, stoppable)
            say(f"2. {args.networks} networks from cold, {args.ports_per_network} ports each")
            cold = measure_cold(lab, state_dir, args.networks, args.ports_per_network)
            say(f"3. footprint: {args.settle:g} s of quiet, then {args.idle:g} s of CPU")
            footprint = measure_footprint(lab, state_dir, args.settle, args.idle)
            say(f"DHCP agent RSS {_mib(footprint.agent_rss_kib)}, CPU {_pct(footprint.agent_cpu_pct)}; "
                f"{footprint.dnsmasq_count} dnsmasq, RSS {_mib(footprint.dnsmasq_rss_kib)} in all")
            say("4. agent restart (kill -9, a new port on bench, lab up)")
            restart = measure_restart(lab, api, state_dir, client, client_mac, args.poll_ms / 1000,
                                      ports.network_id)
            say(f"restart: reconciled {_ms(restart.reconciled_s)} after the agent's start; dnsmasq restarted "
                f"{len(restart.restarted)}, gone {len(restart.gone)}, new {len(restart.new)} of {restart.networks}")
        except BenchError:
            with contextlib.suppress(OSError):
                say(f"the lab's logs and the DHCP agent's files kept in {keep_logs(state_dir)}")
            raise
        finally:
            for stop in reversed(stoppable):
                with contextlib.suppress(Exception):
                    stop()
            api.close()
    results = Results(ports, cold, footprint, restart, (load_start, labkit.loadavg()))
    results.left_by_down = len(left)
    results.seconds = time.monotonic() - run_started
    return results


# --------------------------------------------------------------------------- report


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return "never" if math.isinf(seconds) else f"{round(seconds * 1000)} ms"


def _s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return "never" if math.isinf(seconds) else f"{seconds:.2f} s"


def _mib(kib: int | None) -> str:
    return "-" if kib is None else f"{kib / 1024:.1f} MiB"


def _pct(pct: float | None) -> str:
    return "-" if pct is None else f"{pct:.2f}%"


HEADER = f"   {'from t0 (just before the POST) to':<60}{'p50':>9}{'p99':>9}{'max':>9}  failed"


def _row(label: str, values: list[float | None]) -> str:
    s = stats(values)
    if s is None:
        return f"   {label:<60}{'-':>9}{'-':>9}{'-':>9}  {len(values)}"
    return f"   {label:<60}{_ms(s[0]):>9}{_ms(s[1]):>9}{_ms(s[2]):>9}  {s[3]}"


def _gap(samples: list[Sample], a: Callable[[Sample], float | None], b: Callable[[Sample], float | None]) -> str:
    return _ms(median([b(s) - a(s) for s in samples if a(s) is not None and b(s) is not None]))


def _part1_lines(p: PortResults) -> list[str]:
    ss = p.samples
    rtt = [r.offered - r.started for r in p.rtt if r.offered]
    lines = [f"1. port create -> host entry served: {len(ss)} ports on network bench {p.cidr} (vxlan), bound nowhere, "
             "each with a MAC of ours" + (f" (bench holds the {p.fill.ports} fill ports too)" if p.fill.ports else "")
             + ";",
             f"   client on {CLIENT_NODE} ({p.client_address}, by DHCP) sends from its eth0 a DHCPDISCOVER for the "
             f"port's MAC every {p.interval * 1000:g} ms from the POST's answer",
             "   until dnsmasq (network node, through the tunnel) OFFERs the port's address, then DHCPREQUESTs it "
             "until ACKed.", HEADER,
             _row("POST answered", [s.api_s for s in ss])]
    if p.watch:
        lines.append(_row("DHCP view published to the network node (own long-poll)", [s.view_s for s in ss]))
    lines += [_row("the agent's run began (its line's time - its duration)", [s.run_start_s for s in ss]),
              _row("the agent logged its run (files written, SIGHUP sent)", [s.run_s for s in ss]),
              _row("dnsmasq OFFERed the port's address (served, end to end)", [s.offer_s for s in ss]),
              _row("dnsmasq ACKed it (the lease)", [s.ack_s for s in ss])]
    wrong = [s for s in ss if s.ex.address and s.ex.address != s.address]
    naks = sum(1 for s in ss if s.ex.answer == "NAK")
    run_texts = Counter(RUN_LINE.sub(r"\2", s.run_text) if s.run_text else "-" for s in ss)
    discovers = median([float(s.ex.discovers) for s in ss])
    runs = [s.run_ms / 1000 for s in ss if s.run_ms is not None]
    lines += [f"   resolution: a DISCOVER every {p.interval * 1000:g} ms (median {discovers:g} per port); an OFFER "
              f"comes at most that plus one DHCP round trip after dnsmasq could",
              f"   answer; the round trip for client's own MAC (already served): p50 {_ms(median(rtt))}, max "
              f"{_ms(max(rtt) if rtt else None)} ({len(rtt)} DISCOVERs); log times have 1 ms resolution",
              f"   the agent's run in itself ('in X ms' of its line): p50 {_ms(median(runs))}, "
              f"max {_ms(max(runs, default=None))}; one GET of the network node's DHCP view at the end: "
              f"{_ms(p.view[0])}, {p.view[1]:.0f} KiB"]
    if p.watch:
        lines.append("   where the time goes (medians): POST -> view published " + _gap(ss, lambda s: s.api_s,
                                                                                         lambda s: s.view_s)
                     + ", view -> the agent's run begins " + _gap(ss, lambda s: s.view_s, lambda s: s.run_start_s)
                     + ", its run " + _gap(ss, lambda s: s.run_start_s, lambda s: s.run_s)
                     + ", its line -> OFFER " + _gap(ss, lambda s: s.run_s, lambda s: s.offer_s)
                     + ", OFFER -> ACK " + _gap(ss, lambda s: s.offer_s, lambda s: s.ack_s))
    else:
        lines.append("   where the time goes (medians): POST -> the agent's run begins "
                     + _gap(ss, lambda s: s.api_s, lambda s: s.run_start_s) + ", its run "
                     + _gap(ss, lambda s: s.run_start_s, lambda s: s.run_s) + ", its line -> OFFER "
                     + _gap(ss, lambda s: s.run_s, lambda s: s.offer_s))
    lines.append("   the agent's lines: " + "; ".join(f"{n}x \"{t}\"" for t, n in run_texts.most_common(3)))
    same = p.dnsmasq_before == p.dnsmasq_after and len(p.dnsmasq_before) == 1
    lines.append(f"   bench's dnsmasq: PID {p.dnsmasq_before} before, {p.dnsmasq_after} after: "
                 f"{'unchanged' if same else 'CHANGED'}; the agent's dnsmasq start/restart lines meanwhile: "
                 f"{p.restart_lines}")
    if p.client_failure:
        lines.append(f"   PROBLEM: the first `vm create client` failed (a second one worked): {p.client_failure}")
    if wrong or naks:
        lines.append(f"   PROBLEMS: {len(wrong)} OFFER(s) of another address than the port's"
                     + (f" (e.g. {wrong[0].mac}: port {wrong[0].address}, offered {wrong[0].ex.address})" if wrong
                        else "") + f"; {naks} NAK(s)")
    if p.watch and p.watch_errors:
        lines.append(f"   (view long-polls: {p.watch_errors} errors, retried)")
    return lines


def _spread(values: list[float | None]) -> tuple[str, str, str, str]:
    known = sorted(v for v in values if v is not None)
    missing = len(values) - len(known)
    if not known:
        return "-", "-", "-", str(missing)
    return _s(known[0]), _s(percentile(known, 0.5)), _s(known[-1]) if not missing else "never", str(missing)


def _cold_lines(c: Cold) -> list[str]:
    ops: Counter = Counter()
    total_ms, longest = 0.0, (0.0, "")
    for _, text in c.runs:
        parsed = run_ops(text)
        if parsed:
            ops.update(parsed[0])
            total_ms += parsed[1]
            longest = max(longest, (parsed[1], text))
    lines = [f"2. {c.networks} networks from cold: bulk POSTs of the networks {_s(c.post_s['networks'])}, their "
             f"subnets (DHCP; the server schedules each network and makes its DHCP port) {_s(c.post_s['subnets'])},",
             f"   {c.networks * c.ports_per_network} ports ({c.ports_per_network} per network) "
             f"{_s(c.post_s['ports'])}; polled every {COLD_POLL_S:g} s (the DHCP ports' status every 0.5 s):",
             f"   {'from t0 (just before the first POST) to':<60}{'first':>9}{'median':>9}{'last':>9}  missing"]
    for label, values in (("its qdhcp- namespace on the network node", c.namespace_s),
                          ("its dnsmasq running", c.dnsmasq_s),
                          ("its host file lists its ports", c.files_s),
                          ("its DHCP port ACTIVE (the OVS agent tagged the tap)", c.active_s)):
        first, mid, last, missing = _spread(values)
        lines.append(f"   {label:<60}{first:>9}{mid:>9}{last:>9}  {missing}")
    served = [max(v) if None not in v else None for v in zip(c.namespace_s, c.dnsmasq_s, c.files_s, c.active_s)]
    first, mid, last, _ = _spread(served)
    lines += [f"   {'served (all four)':<60}{first:>9}{mid:>9}{last:>9}",
              f"   dnsmasq per network: {c.duplicates} network(s) with more than one; one GET of the network node's "
              f"DHCP view then: {_ms(c.view[0])}, {c.view[1]:.0f} KiB",
              f"   the DHCP agent meanwhile: {len(c.runs)} runs logged, {total_ms / 1000:.2f} s in runs (the longest "
              f"{longest[0] / 1000:.2f} s); ops: " + ", ".join(f"{n} {k}" for k, n in sorted(ops.items())),
              "   CPU time from t0 to the end: " + ", ".join(f"{k} {v:.2f} s" for k, v in c.cpu_s.items())]
    lines.append("   the agent's runs (seconds after t0: began = logged - its duration):")
    for t, text in c.runs[:12]:
        parsed = run_ops(text)
        began = f"{t - parsed[1] / 1000:6.2f}" if parsed else "     ?"
        lines.append(f"     began +{began} s, logged +{t:6.2f} s: {text}")
    if len(c.runs) > 12:
        lines.append(f"     ... and {len(c.runs) - 12} more runs")
    return lines


def _footprint_lines(f: Footprint) -> list[str]:
    per = f.dnsmasq_rss_kib / f.dnsmasq_count if f.dnsmasq_count else 0
    return [f"3. footprint with {f.dnsmasq_count} networks served (after the quiet period; CPU over {f.seconds:.1f} s, "
            "% of one core; the agent resyncs every 30 s):",
            f"   DHCP agent (PID {f.agent_pid}): RSS {_mib(f.agent_rss_kib)}, CPU {_pct(f.agent_cpu_pct)}; the "
            f"server meanwhile {_pct(f.server_cpu_pct)}",
            f"   dnsmasq: {f.dnsmasq_count} processes, RSS {_mib(f.dnsmasq_rss_kib)} in all ({per:.0f} KiB each; "
            f"shared pages counted in each), PSS {_mib(f.dnsmasq_pss_kib)} in all, CPU {_pct(f.dnsmasq_cpu_pct)} "
            "in all",
            f"   (the machine was {f.machine_busy_pct:.0f}% busy over the window, all CPUs, everything included)"]


def _restart_lines(r: Restart) -> list[str]:
    lines = [f"4. DHCP agent restart with {r.networks} dnsmasq processes: kill -9 (PID {r.old_pid}), a change that "
             f"concerns it (a new port on bench, seq {r.target_seq}), `baryon lab up`",
             "   while the agent was dead, client's DISCOVER for its own MAC: "
             + ("OFFERed in " + _ms(r.served_while_dead_s) if r.served_while_dead_s is not None else "NOT answered"),
             f"   kill -> `lab up` started {_s(r.kill_to_up_s)}; `lab up` took {_s(r.up_s)} (it returns once the "
             "server sees the agent alive); `lab up` -> the new agent process "
             f"(PID {r.new_pid}) started {_ms(r.process_start_s)}",
             f"   from the new agent process's start to: its first log line {_ms(r.first_line_s)} (Python start-up), "
             f"realised_seq >= {r.target_seq} (reconciled) {_ms(r.reconciled_s)}",
             f"   dnsmasq PIDs {AFTER_RESTART_S:g} s after that, compared with before the kill: {len(r.restarted)} "
             f"restarted (PID changed), {len(r.gone)} gone, {len(r.new)} new; the new agent's RSS "
             f"{_mib(r.rss_kib)}",
             "   the restarted agent's log lines:"]
    lines += [f"     {line}" for line in r.lines[:8]] or ["     (none)"]
    if len(r.lines) > 8:
        lines.append(f"     ... and {len(r.lines) - 8} more")
    if not any(RUN_LINE.match(line) for line in r.lines):
        lines.append("     (no \"seq N: ...\" line: its first run changed nothing, not even the new port's entry?)")
    return lines


def targets(r: Results) -> list[tuple[str, str]]:
    p, rs = r.ports, r.restart
    offer, ack = stats([s.offer_s for s in p.samples]), stats([s.ack_s for s in p.samples])
    same = p.dnsmasq_before == p.dnsmasq_after and len(p.dnsmasq_before) == 1
    restarts = len(rs.restarted) + len(rs.gone)
    return [
        ("port create -> host entry served (OFFER), p50 / p99 (issue 7: measured, no figure set)",
         f"{_ms(offer[0]) if offer else '-'} / {_ms(offer[1]) if offer else '-'}"),
        ("port create -> lease (ACK), p50 / p99", f"{_ms(ack[0]) if ack else '-'} / {_ms(ack[1]) if ack else '-'}"),
        (f"{len(p.samples)} new ports served without restarting dnsmasq (PID unchanged)", verdict(same)),
        (f"agent restart with {rs.networks} networks: time to reconciled (agent start -> realised_seq)",
         _ms(rs.reconciled_s)),
        (f"agent restart with {rs.networks} networks: dnsmasq restarts = {TARGET_RESTARTS}",
         f"{len(rs.restarted)} restarted, {len(rs.gone)} gone: {verdict(restarts == TARGET_RESTARTS)}"),
        ("leases served while the agent is dead", verdict(rs.served_while_dead_s is not None)),
    ]


def report(r: Results, args: argparse.Namespace) -> str:
    lines = [f"DHCP benchmark: 2-compute lab, prefix {PREFIX}, API {BENCH.api_url}; the DHCP agent and its dnsmasq "
             f"processes on the network node; machine's 1-minute load average {r.loadavg[0]} at the start, "
             f"{r.loadavg[1]} at the end ({os.cpu_count()} CPUs); the run took {r.seconds / 60:.1f} min", ""]
    if r.ports.fill.ports:
        lines += ["0." + line[2:] if i == 0 else line for i, line in enumerate(r.ports.fill.lines())] + [""]
    lines += _part1_lines(r.ports) + [""] + _cold_lines(r.cold) + [""] + _footprint_lines(r.footprint) + [""]
    lines += _restart_lines(r.restart) + [""]
    lines += ["targets:"] + [f"   {what}: {result.replace('**', '')}" for what, result in targets(r)]
    if r.left_by_down:
        lines.append(f"NOTE: `lab down` left {r.left_by_down} dnsmasq process(es) of this lab running (not its "
                     "processes by pidfile nor inside its namespaces); this script stopped them by PID")
    return "\n".join(lines)


def section(r: Results, args: argparse.Namespace, m: dict, text: str) -> str:
    command = labkit.command_line("bench/dhcp.py", args, parse_args([]),
                                  ("ports", "networks", "ports_per_network", "node_ports", "poll_ms", "idle",
                                   "settle"))
    if not args.watch:
        command = command.replace(" --write", " --no-watch --write")
    note = ("Targets from the DHCP agent's issue (issue 7): time from port create to the host entry served "
            "(p50/p99, no figure set); an agent restart with 200 networks: time to reconciled, and no dnsmasq "
            "restarted.")
    f = r.footprint
    body = ["", *labkit.table(("measure", "result"), [
        *targets(r),
        (f"{r.cold.networks} networks from cold: creation -> all served (namespace, dnsmasq, host file, DHCP port "
         "ACTIVE)", _spread([max(v) if None not in v else None for v in zip(
             r.cold.namespace_s, r.cold.dnsmasq_s, r.cold.files_s, r.cold.active_s)])[2]),
        (f"DHCP agent with {f.dnsmasq_count} networks: RSS, idle CPU", f"{_mib(f.agent_rss_kib)}, "
                                                                       f"{_pct(f.agent_cpu_pct)}"),
        ("dnsmasq: count, RSS in all, PSS in all", f"{f.dnsmasq_count}, {_mib(f.dnsmasq_rss_kib)}, "
                                                   f"{_mib(f.dnsmasq_pss_kib)}"),
    ])]
    return labkit.section(SECTION, "bench/dhcp.py", note, m, command, body, text)


# --------------------------------------------------------------------------- command line


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ports", type=int, default=100, help="port create -> served samples (part 1)")
    p.add_argument("--networks", type=int, default=200, help="networks served for the cold start and the restart")
    p.add_argument("--ports-per-network", type=int, default=2, help="ports of each of those networks")
    p.add_argument("--node-ports", type=int, default=0,
                   help="ports put on bench (bound nowhere) before any measurement: the DHCP agent serves them (0: none)")
    p.add_argument("--poll-ms", type=int, default=10, help="DISCOVER interval of part 1 (its resolution)")
    p.add_argument("--idle", type=float, default=30.0, help="seconds of the idle CPU sample")
    p.add_argument("--settle", type=float, default=5.0, help="seconds of quiet before the idle sample")
    p.add_argument("--no-watch", dest="watch", action="store_false",
                   help="do not long-poll the network node's DHCP view (no server -> agent split)")
    BENCH.add_write_options(p)
    args = p.parse_args(argv)
    if args.ports < 1 or args.networks < 1 or args.ports_per_network < 0 or args.node_ports < 0:
        p.error("--ports and --networks must be at least 1, --ports-per-network and --node-ports not negative")
    if args.node_ports > 16000:
        p.error("--node-ports: at most 16000")
    if args.ports > 4000:
        p.error("--ports: at most 4000 (they share one subnet of 172.16.0.0/12)")
    if args.networks > 990:
        p.error("--networks: at most 990 (the lab's vni_ranges 1:1000)")
    if args.ports_per_network > 100:
        p.error("--ports-per-network: at most 100 (.100 to .199 of each /24)")
    if not 1 <= args.poll_ms <= 1000 or args.idle <= 0 or args.settle < 0:
        p.error("--poll-ms: 1 to 1000; --idle positive; --settle not negative")
    return args


def main(argv: list[str] | None = None) -> int:
    return BENCH.main(parse_args(argv), run_all, report, section, what="state directory",
                      interrupted="interrupted; the lab was taken down")


if __name__ == "__main__":
    sys.exit(main())
