#!/usr/bin/env python3
"""Benchmark of the hybrid iptables firewall in a real lab: rule to enforcement, one group of many ports, Neutron's expansion.

    .venv/bin/python bench/firewall.py [--rules 50] [--ports 200] [--cycles 20] [--loaded-rules 10]
                                       [--node-ports 0] [--no-watch] [--write] [--results bench/RESULTS.md]

Run it as root, on demand (it is not part of the test suite), on an otherwise idle machine. One
2-compute lab with its agents (``baryon lab up``) in a temporary state directory in /tmp, namespace
prefix ``bbench-``, API on 127.0.0.1:9793, so that a user's lab (``blab-``, 9696) is never touched.
It refuses to start when a ``bbench-`` namespace exists or the port is taken; the lab is taken
down in ``finally`` (also on Ctrl-C or SIGTERM), and at the end it checks that no ``bbench-``
namespace, no process naming the state directory and no mount under it is left (the rules
bench/labkit.py keeps for every lab benchmark). It never touches the root network namespace:
iptables-save, ip6tables-save and ipset run inside compute1's (and compute2's) namespace, as
``baryon lab exec`` runs them; the probes are UDP sockets opened inside the VMs' namespaces (a
thread entered with setns, ``labkit.NetnsThread``) and the echo responders run inside the target
VMs' namespaces, so every probe goes from one VM of the lab to another, over the lab's vxlan.
Each probe is bounded (every phase has a 10 s deadline). The responders are stopped by the PIDs
this script started them with.

Network ``bench`` (vxlan, one IPv4 subnet), made through the API; VMs made with the lab's Python
API in this process (``vms.create``), as bench/agent.py does.

0. node fill (``--node-ports N``, default 0: none): before anything is measured, N ports bound to
   compute1 with port security on, in a group ``fill`` that has Neutron's default-group rules
   (egress any; ingress IPv4 and IPv6 from remote group ``fill``: its own set of N members), on
   a second vxlan network ``fill`` (10.60.0.0/N, no DHCP, no port elsewhere), made in bulk POSTs
   of 100 (explicit addresses); then their VIFs as OVS internal ports on compute1's br-int in ONE
   ovs-vsctl transaction through compute1's own OVSDB socket (as part 2a and bench/agent.py),
   until all are ACTIVE (the agent wrote their chains, then wired them). Every measurement below
   then runs with compute1's hybrid firewall holding N more ports' chains (about 51 rules each)
   in the tables it reads, diffs and restores on every change; the rule counts of 2b include
   them, and part 3 counts their rules in Neutron's totals as Baryon's. Issue 11: every agent
   keeps its targets at 1,000 ports per node. A run with ``--node-ports 1000`` (and the
   defaults) took 9 minutes on 2 loaded CPUs (the fill 16 s).
1. rule create -> enforcement, ``--rules`` samples. VM ``target`` on compute1 in a fresh group
   ``fw-target`` (its egress rules only: nothing may come in) runs a UDP echo responder on ports
   BASE..BASE+n; VM ``client`` on compute2 has port security off. Sample i, port N = BASE + i:
   - allow: a fresh client socket; t0 just before the POST of an ingress rule UDP N (IPv4); then a
     UDP probe every 5 ms from that socket to target:N until one is echoed (t0 -> the echo);
   - revoke: t0 just before the DELETE of that rule; then every 5 ms two probes: one from the same
     socket (the established flow, whose conntrack entry only the agent's conntrack delete removes:
     it is cut when the entry is gone), one from a fresh socket (a new flow: blocked once the
     rule is gone). Each is "blocked" at the send time of the first probe of the final unanswered
     run, once 0.3 s pass without an answer. Then ``conntrack -L`` on compute1: the entries left
     for UDP port N (must be 0).
   Where the time goes: t0 -> the API's answer; -> the view published for compute1 (a long-poll of
   compute1's view on the loopback API, as the agent's, in a thread: ``--no-watch`` turns it off;
   it costs the server one more view per change); -> compute1's agent's log line "firewall: chains
   written ..." (after iptables-restore returned) and, for a revoke, "... conntrack entries deleted";
   -> the probes. Between two phases the script waits for those log lines (so phases never overlap)
   and 50 ms more.
   ``--loaded-rules`` more samples are taken the same way once compute1 carries the ``--ports``
   ports of part 2 (1b): the agent reads and diffs the whole host's rules on every change.
2. membership: group G with Neutron's default-group rules (egress any, ingress IPv4 and IPv6 from
   remote group G). VMs ``member-target`` (compute1, in G, a UDP echo responder), ``member-probe``
   (compute2, in G) and ``joiner`` (compute2, in group ``joiner-base``: egress only, not in G).
   (a) ``--ports`` ports in G bound to compute1 in one bulk POST; t0 just before it, until
       compute1's agent logs its firewall line (and compute2's: its G set grows), then their
       VIFs (OVS internal ports "qvo..." on compute1's br-int, one ovs-vsctl transaction, as
       bench/agent.py) until all are ACTIVE;
   (b) rule counts on compute1: ``-A`` lines of iptables-save and ip6tables-save, in total and per
       port (the lines of its own chains and the lines of shared chains that name its devices),
       with G at ``--ports``, 50 and 10 bound ports (ports deleted between two counts), and the
       time to read them (what the agent reads on its first run and its periodic repair pass); and
       the agent's firewall steps replayed in this process on compute1's view (parse,
       ``render_from``, ``Netfilter.observe``, ``diff``: pure or read-only) for its first run, and
       for a later run (``render_from`` reusing the first rendering, ``diff`` against it), which is
       what each change costs it before it writes;
   (c) ``--cycles`` join/leave cycles: t0 just before ``PUT /v2.0/ports/<joiner>`` adding G to its
       groups (join) or taking it away (leave), until compute1's set NIPv4<G> holds (no longer
       holds) joiner's address (``ipset test`` in compute1's namespace, polled in a thread) and
       until a probe from joiner to member-target gets through (join), or is blocked for new and
       established flows (leave, as in 1); plus both hosts' views and firewall log lines.
   A probe of a "new flow" binds a source port its prober never used before: one the kernel hands
   out again while the agent has not yet deleted its conntrack entry would pass as established.
3. Neutron's per-member expansion, computed (not measured): Neutron's iptables hybrid driver with
   ``enable_ipset = false`` writes one rule per remote member (its own address excepted) per port
   per remote-group rule (``_expand_sg_rule_with_remote_ips``), and no rule for a family without
   members; with ``enable_ipset = true`` one ``--match-set`` rule per port per remote-group rule,
   as here (Baryon also writes it, matching nothing, for a family whose set is empty). The fixed
   per-port rules are taken from Baryon's measured layout, which is Neutron's chain for chain.

``--write`` puts the result in ``--results`` as the section "## Firewall (bench/firewall.py)",
replacing it if present (else appending it): date, machine, revision, figures and the targets of
the firewall issue (issue 6): a membership change reaches its hosts in <= 500 ms p99; the rule
count per port does not grow with the group's size.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import math
import os
import re
import select
import selectors
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import labkit
from labkit import NETNS_DIR, ROOT, BenchError, LogTail, ViewWatch, median, stats, verdict

sys.path.insert(0, str(ROOT))

from baryon.agent.drivers.netfilter import Netfilter, diff  # noqa: E402
from baryon.agent.plan.firewall import render_from  # noqa: E402
from baryon.lab import host, vms  # noqa: E402
from baryon.model.host import HostView  # noqa: E402
from baryon.lab.api import ApiError  # noqa: E402
from baryon.lab.lab import Lab  # noqa: E402

PREFIX = "bbench-"
API_PORT = 9793
SECTION = "## Firewall (bench/firewall.py)"
BENCH = labkit.Bench("bench/firewall", PREFIX, API_PORT, SECTION)
say = BENCH.say
PROJECT = "4a5f2e7c9a0d5b1e8c3f6d2a7b9e0c14"  # the noauth admin's default project
POLL_S = 0.005  # probes and set polls
QUIET_S = 0.3  # a flow is blocked once this long passes without an answer
FRESH_LIFE_S = 1.0  # a fresh-flow probe socket is closed (its probe unanswered) after this long
FRESH_PORTS = range(10000, 32000)  # probes' source ports, each used once per pass (ephemeral: 32768-60999)
PHASE_TIMEOUT, LOG_TIMEOUT, SETTLE_S = 10.0, 10.0, 0.05
WIRE_TIMEOUT = 300.0
RULE_BASE_PORT = 20000  # part 1: target's UDP ports
MEMBER_PORT = 7  # part 2: member-target's UDP echo port
SMALL_SIZES = (10, 50)  # group sizes counted besides --ports
TARGET_MEMBERSHIP_P99_S = 0.5
FW_LINE = "firewall: chains written"
CT_LINE = re.compile(r"^firewall: (\d+) conntrack entr(?:y|ies) deleted \((\d+) filters\)")
CHANGES = re.compile(r"chains written (\d+), deleted (\d+); sets created (\d+), swapped (\d+), destroyed (\d+)")
NODES = ("compute1", "compute2")

RESPONDER = r"""
import select, socket, sys
base, count = int(sys.argv[1]), int(sys.argv[2])
socks = {}
for port in range(base, base + count):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    s.setblocking(False)
    socks[s.fileno()] = s
poller = select.epoll()
for fd in socks:
    poller.register(fd, select.EPOLLIN)
print("ready", flush=True)
while True:
    for fd, _ in poller.poll():
        while True:
            try:
                data, peer = socks[fd].recvfrom(2048)
            except BlockingIOError:
                break
            socks[fd].sendto(data, peer)
"""


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


class Api(labkit.Api):
    """The loopback API, and what the agents report through it."""

    def __init__(self) -> None:
        super().__init__(API_PORT)

    def wait_active(self, ids: set[str], timeout: float = WIRE_TIMEOUT) -> None:
        """Until every port of ``ids`` is ACTIVE (its host's agent applied its filters, then wired it).

        NOTE: not ``realised_seq``: the port's status is what says it is wired (filters first).
        (An agent's ``realised_seq`` says it realised every change that concerns it: the server
        counts it current while its view keeps the etag it last reported, so a change that does
        not concern it does not wait for it.)"""
        def pending() -> int:
            ports = self.get("/v2.0/ports?fields=id&fields=status")["ports"]
            return sum(1 for p in ports if p["id"] in ids and p["status"] != "ACTIVE")
        labkit.wait_for(lambda: pending() == 0, timeout, f"{len(ids)} port(s) ACTIVE", 0.05)

    def group(self, name: str) -> dict:
        return self.call("POST", "/v2.0/security-groups", {"security_group": {"name": name}})["security_group"]

    def rule(self, group_id: str, **attrs: object) -> dict:
        body = {"security_group_rule": {"security_group_id": group_id, **attrs}}
        return self.call("POST", "/v2.0/security-group-rules", body)["security_group_rule"]


def make_vm(lab: Lab, name: str, node: str, network_id: str, groups: list[str] | None = None,
            port_security: bool = True) -> vms.Vm:
    try:
        return vms.create(lab, name, node, network=network_id, security_groups=groups, port_security=port_security)
    except (host.LabError, ApiError) as exc:
        raise BenchError(f"vm create {name} on {node}: {exc}") from None


def address_of(vm: vms.Vm) -> str:
    return vm.addresses[0].split("/")[0]


def agent_log(lab: Lab, node: str) -> Path:
    return lab.paths.log(node) / "ovs-agent.log"


# --------------------------------------------------------------------------- echo responders and probes


class Responder:
    """A UDP echo responder on ports ``base``..``base+count-1`` inside a VM's namespace (a child of
    this process, stopped by its PID)."""

    def __init__(self, vm: vms.Vm, base: int, count: int) -> None:
        argv = host.Place(vm.netns).argv([sys.executable, "-c", RESPONDER, str(base), str(count)])
        self.name = vm.name
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 10)
        if not ready or self.proc.stdout.readline().strip() != b"ready":
            self.stop()
            raise BenchError(f"the UDP responder in {vm.name} did not start: "
                             f"{self.proc.stderr.read().decode(errors='replace')[-500:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()


_tokens = itertools.count(1)


def token() -> bytes:
    return b"bbench-fw %d" % next(_tokens)


def drain(sock: socket.socket) -> list[bytes]:
    found = []
    while True:
        try:
            found.append(sock.recv(2048, socket.MSG_DONTWAIT))
        except (BlockingIOError, InterruptedError):
            return found
        except OSError:  # an ICMP error queued on the socket: not an answer
            continue


class Prober:
    """UDP sockets opened inside a VM's namespace (``NetnsThread``), each bound to a source port
    this prober never used before (``FRESH_PORTS``, below the kernel's ephemeral range).

    NOTE: not port 0: the kernel may hand out a port used a second ago whose conntrack entry the
    agent has not deleted yet, and such a "new" flow passes as an established one."""

    def __init__(self, vm: vms.Vm) -> None:
        self.name = vm.name
        self.thread = labkit.NetnsThread(NETNS_DIR / vm.netns)
        self.ports = itertools.cycle(FRESH_PORTS)

    def socket(self) -> socket.socket:
        def opened() -> socket.socket:
            for _ in range(100):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    sock.bind(("0.0.0.0", next(self.ports)))
                except OSError:
                    sock.close()
                    continue
                sock.setblocking(False)
                return sock
            raise BenchError(f"no free source port in {self.name}")
        return self.thread.call(opened)

    def close(self) -> None:
        self.thread.close()


def until_through(sock: socket.socket, dest: tuple[str, int], deadline: float,
                  interval: float = POLL_S) -> tuple[float | None, int]:
    """A probe from ``sock`` to ``dest`` every ``interval`` s until one is echoed: (monotonic time
    of that echo, or None at ``deadline``; probes sent). A late echo of any earlier probe counts."""
    sent: set[bytes] = set()
    next_send = 0.0
    while (now := time.monotonic()) < deadline:
        if now >= next_send:
            probe = token()
            with contextlib.suppress(OSError):
                sock.sendto(probe, dest)
            sent.add(probe)
            next_send = now + interval
        ready, _, _ = select.select([sock], [], [], max(0.0, next_send - time.monotonic()))
        if ready and any(data in sent for data in drain(sock)):
            return time.monotonic(), len(sent)
    return None, len(sent)


@dataclass
class _Stream:
    sent: list[float] = field(default_factory=list)  # send times, by probe index
    answered: int = -1  # the highest index echoed

    def blocked_at(self, now: float, quiet: float) -> float | None:
        """The send time of the first probe of the final unanswered run, once it is ``quiet`` old."""
        first = self.answered + 1
        if first < len(self.sent) and now - self.sent[first] >= quiet:
            return self.sent[first]
        return None


def until_blocked(established: socket.socket, prober: Prober, dest: tuple[str, int], deadline: float,
                  interval: float = POLL_S, quiet: float = QUIET_S) -> tuple[float | None, float | None, int]:
    """Every ``interval`` s a probe from ``established`` (its flow's conntrack entry exists) and one
    from a fresh socket (a new flow), until both are unanswered for ``quiet`` s: (new flows blocked,
    established flow cut: the monotonic send time of the first probe of the final unanswered run,
    None when still answered at ``deadline``; probes sent)."""
    streams = {"est": _Stream(), "new": _Stream()}
    index: dict[bytes, tuple[str, int]] = {}
    fresh: list[tuple[float, socket.socket]] = []
    selector = selectors.DefaultSelector()
    selector.register(established, selectors.EVENT_READ)
    next_send = 0.0
    try:
        while True:
            now = time.monotonic()
            if now >= deadline or all(s.blocked_at(now, quiet) is not None for s in streams.values()):
                break
            if now >= next_send:
                new_sock = prober.socket()
                selector.register(new_sock, selectors.EVENT_READ)
                fresh.append((now, new_sock))
                for name, sock in (("est", established), ("new", new_sock)):
                    probe = token()
                    index[probe] = (name, len(streams[name].sent))
                    streams[name].sent.append(time.monotonic())
                    with contextlib.suppress(OSError):
                        sock.sendto(probe, dest)
                next_send = now + interval
                while fresh and now - fresh[0][0] > FRESH_LIFE_S:
                    _, old = fresh.pop(0)
                    selector.unregister(old)
                    old.close()
            for key, _ in selector.select(max(0.0, next_send - time.monotonic())):
                for data in drain(key.fileobj):  # type: ignore[arg-type]
                    if data in index:
                        name, i = index[data]
                        streams[name].answered = max(streams[name].answered, i)
    finally:
        for _, sock in fresh:
            selector.unregister(sock)
            sock.close()
        selector.close()
    now = time.monotonic()
    return (streams["new"].blocked_at(now, quiet), streams["est"].blocked_at(now, quiet),
            len(streams["new"].sent) + len(streams["est"].sent))


def check_blocked(prober: Prober, dest: tuple[str, int], timeout: float = 0.5) -> bool:
    """True when a probe to ``dest`` gets no echo within ``timeout`` s (sanity checks)."""
    with contextlib.closing(prober.socket()) as sock:
        replied, _ = until_through(sock, dest, time.monotonic() + timeout, interval=0.05)
    return replied is None


# --------------------------------------------------------------------------- what the servers and agents tell


def is_fw(text: str) -> bool:
    return text.startswith(FW_LINE)


def is_ct(text: str) -> bool:
    return CT_LINE.match(text) is not None


@dataclass
class Observers:
    """What a change is measured against: the agents' logs and (optionally) the hosts' views."""

    logs: dict[str, LogTail]
    watches: dict[str, ViewWatch]


# --------------------------------------------------------------------------- one change


@dataclass
class Change:
    """One change (allow, revoke, join or leave), seconds after its t0 (None: not seen)."""

    kind: str
    t0: float  # monotonic
    t0_wall: float
    end: float = 0.0  # monotonic: the measurement of this change ended (logs and views are attributed up to it)
    api_s: float = 0.0  # the API call answered
    through_s: float | None = None  # allow/join: the first probe echoed
    new_blocked_s: float | None = None  # revoke/leave: a new flow is blocked
    cut_s: float | None = None  # revoke/leave: the established flow is cut
    set_s: float | None = None  # join/leave: compute1's set holds the change
    view_s: dict[str, float | None] = field(default_factory=dict)  # node -> its view published
    fw_s: dict[str, float | None] = field(default_factory=dict)  # node -> its firewall log line
    fw_text: dict[str, str] = field(default_factory=dict)
    ct_s: dict[str, float | None] = field(default_factory=dict)  # node -> its conntrack log line
    ct_text: dict[str, str] = field(default_factory=dict)
    probes: int = 0
    left: list[str] = field(default_factory=list)  # revoke/leave: compute1's entries of the flows, original direction
    reverse: list[str] = field(default_factory=list)  # revoke/leave: compute1's entries of the probed flow, reversed

    def since(self, monotonic: float | None) -> float | None:
        return None if monotonic is None else monotonic - self.t0

    def attribute(self, obs: Observers, nodes: tuple[str, ...]) -> None:
        """Views and log lines of ``nodes`` within this change's window."""
        end_wall = self.t0_wall + (self.end - self.t0)
        for node in nodes:
            log = obs.logs[node]
            log.read()
            fw = log.first(self.t0_wall, end_wall, is_fw)
            ct = log.first(self.t0_wall, end_wall, is_ct)
            self.fw_s[node] = None if fw is None else max(0.0, fw[0] - self.t0_wall)
            self.ct_s[node] = None if ct is None else max(0.0, ct[0] - self.t0_wall)
            if fw:
                self.fw_text[node] = fw[1]
            if ct:
                self.ct_text[node] = ct[1]
            if node in obs.watches:
                self.view_s[node] = self.since(obs.watches[node].first(self.t0, self.end))


def settle(obs: Observers, change: Change, nodes: tuple[str, ...], conntrack: bool) -> None:
    """Wait for the firewall lines of ``nodes`` (and their conntrack lines), then ``SETTLE_S``: the
    next change must not start while an agent still applies this one."""
    for node in nodes:
        obs.logs[node].wait(change.t0_wall, is_fw)
        if conntrack:
            obs.logs[node].wait(change.t0_wall, is_ct)
    time.sleep(SETTLE_S)
    change.end = time.monotonic()


# --------------------------------------------------------------------------- 1. rule create -> enforcement


@dataclass
class RuleSample:
    port: int
    allow: Change
    revoke: Change


def conntrack_list(lab: Lab, *filters: str) -> list[str]:
    """compute1's conntrack entries matching ``filters`` (``conntrack -L -p udp`` in its namespace)."""
    proc = host.Place(lab.topology.node("compute1").netns).run(["conntrack", "-L", "-p", "udp", *filters],
                                                                check=False)
    return [line.strip() for line in proc.stdout.splitlines() if line.startswith("udp")]


def rule_sample(lab: Lab, api: Api, obs: Observers, group_id: str, client: Prober, target: str, port: int) -> RuleSample:
    dest = (target, port)
    sock = client.socket()
    try:
        allow = Change("allow", time.monotonic(), time.time())
        rule = api.rule(group_id, direction="ingress", ethertype="IPv4", protocol="udp",
                        port_range_min=port, port_range_max=port)
        allow.api_s = time.monotonic() - allow.t0
        through, allow.probes = until_through(sock, dest, allow.t0 + PHASE_TIMEOUT)
        allow.through_s = allow.since(through)
        settle(obs, allow, ("compute1",), conntrack=False)
        revoke = Change("revoke", time.monotonic(), time.time())
        api.call("DELETE", f"/v2.0/security-group-rules/{rule['id']}")
        revoke.api_s = time.monotonic() - revoke.t0
        new_blocked, cut, revoke.probes = until_blocked(sock, client, dest, revoke.t0 + PHASE_TIMEOUT)
        revoke.new_blocked_s, revoke.cut_s = revoke.since(new_blocked), revoke.since(cut)
        settle(obs, revoke, ("compute1",), conntrack=True)
        # left: entries of UDP to the port (the probes' flows); reverse: the probed flow's entry
        # with target as its originator (its echo in flight when the original entry was deleted)
        revoke.left = conntrack_list(lab, "--orig-port-dst", str(port), "--orig-dst", target)
        revoke.reverse = conntrack_list(lab, "--orig-src", target, "--orig-port-src", str(port),
                                        "--orig-port-dst", str(sock.getsockname()[1]))
    finally:
        sock.close()
    for change in (allow, revoke):
        change.attribute(obs, ("compute1",))
    return RuleSample(port, allow, revoke)


def measure_rules(lab: Lab, api: Api, obs: Observers, group_id: str, client: Prober, target: str,
                  ports: range, label: str) -> list[RuleSample]:
    samples = []
    for port in ports:
        s = rule_sample(lab, api, obs, group_id, client, target, port)
        samples.append(s)
        say(f"{label} UDP {port}: allow {_ms(s.allow.through_s)} (log {_ms(s.allow.fw_s.get('compute1'))}), "
            f"revoke new {_ms(s.revoke.new_blocked_s)} / established {_ms(s.revoke.cut_s)} "
            f"(log {_ms(s.revoke.fw_s.get('compute1'))}, conntrack {_ms(s.revoke.ct_s.get('compute1'))}); "
            f"left {len(s.revoke.left)}, reversed {len(s.revoke.reverse)}")
    return samples


# --------------------------------------------------------------------------- 2. membership


@dataclass
class Counts:
    """Rule counts on compute1 with G at ``size`` bound ports (plus member-target)."""

    size: int
    group_ports: int  # G's ports on compute1
    members_v4: int  # G's IPv4 members (the whole deployment)
    total: dict[str, int]  # family -> -A lines
    per_port: dict[str, tuple[int, int]]  # family -> (min, max) over G's ports on compute1
    port_sum: int  # the lines of G's ports, both families
    set_rules: dict[str, int]  # family -> --match-set lines of one G port (the max)
    set_members: int  # members of NIPv4<G> on compute1
    read_s: float  # iptables-save + ip6tables-save + ipset save, one after the other
    view_s: float  # compute1's view, computed and sent by the server (GET without etag)
    view_kib: float
    replay: Replay | None = None

    @property
    def all_total(self) -> int:
        return sum(self.total.values())

    @property
    def port_max(self) -> int:
        return sum(hi for _, hi in self.per_port.values())

    @property
    def port_min(self) -> int:
        return sum(lo for lo, _ in self.per_port.values())


PORT_CHAIN = re.compile(r"^neutron-openvswi-[ios]([0-9a-f-]{10})$")
PORT_DEVICE = re.compile(r"\b(?:tap|qvb)([0-9a-f-]{11})\b")


def port_rule_counts(save: str, port_ids: list[str]) -> tuple[int, Counter, Counter]:
    """(``-A`` lines, lines per port, ``--match-set`` lines per port) of one ``*tables-save`` output.
    A line belongs to a port when it is in one of the port's chains (``i``/``o``/``s`` + 10
    characters of its id) or names one of its devices (``tap``/``qvb`` + 11)."""
    by10 = {pid[:10]: pid for pid in port_ids}
    by11 = {pid[:11]: pid for pid in port_ids}
    total, per_port, sets = 0, Counter(), Counter()
    for line in save.splitlines():
        if not line.startswith("-A "):
            continue
        total += 1
        _, chain, rest = (line.split(" ", 2) + [""])[:3]
        match = PORT_CHAIN.match(chain)
        owner = by10.get(match.group(1)) if match else None
        if owner is None:
            device = PORT_DEVICE.search(rest)
            owner = by11.get(device.group(1)) if device else None
        if owner is not None:
            per_port[owner] += 1
            if "--match-set" in rest:
                sets[owner] += 1
    return total, per_port, sets


def view_cost(node: str) -> tuple[float, float, dict]:
    """(seconds, KiB, the view) of one GET of the node's view (no etag: answered at once), own connection."""
    conn = http.client.HTTPConnection("127.0.0.1", API_PORT, timeout=60)
    try:
        started = time.monotonic()
        conn.request("GET", f"/agent/v1/hosts/{node}/ovs", headers=labkit.AGENT_HEADERS)
        data = conn.getresponse().read()
        elapsed = time.monotonic() - started
        return elapsed, len(data) / 1024, json.loads(data)["view"]
    finally:
        conn.close()


@dataclass
class Replay:
    """The firewall work of one of compute1's agent runs, replayed in this process on its view:
    what every change costs it before it writes anything (seconds)."""

    parse_s: float  # HostView.from_json
    render_s: float  # baryon.agent.plan.firewall.render_from, from nothing (the agent's first run)
    observe_s: float  # Netfilter.observe: iptables-save, ip6tables-save, ipset save (nsenter'd here)
    diff_s: float  # baryon.agent.drivers.netfilter.diff
    pending: bool  # the diff found something to write (it should not: the agent applied this view)
    rerender_s: float = 0.0  # render_from again, reusing the first rendering (the agent's later runs)
    rediff_s: float = 0.0  # diff of that against the first rendering (what the agent last wrote)


def local_vlans(lab: Lab, view: dict) -> dict[str, int]:
    """network id -> its local VLAN on compute1 (the agent's conntrack zone for it): the tag of one
    of its ports' VIF ("qvo" + id[:11]) on br-int, from compute1's own OVSDB."""
    ovs = lab.ovs(lab.topology.node("compute1"))
    out = ovs.place().run(["ovs-vsctl", f"--db=unix:{ovs.db_sock}", "--format=json", "--columns=name,tag",
                           "list", "Port"]).stdout
    tags = {row[0]: row[1] for row in json.loads(out)["data"] if isinstance(row[1], int)}
    zones: dict[str, int] = {}
    for port in view.get("ports", ()):
        tag = tags.get("qvo" + port["id"][:11])
        if tag is not None:
            zones.setdefault(port["network_id"], tag)
    return zones


def replay(lab: Lab, view: dict, network_id: str, save: str) -> Replay:
    """Time the agent's firewall steps on ``view``; each network's zone is its local VLAN on
    compute1 (``local_vlans``; bench's from compute1's rules, ``save``, when none is found)."""
    zones = local_vlans(lab, view)
    if network_id not in zones:
        zone = re.search(r"-j CT --zone (\d+)", save)
        if zone is None:
            raise BenchError("no conntrack zone in compute1's raw table")
        zones[network_id] = int(zone.group(1))
    t0 = time.perf_counter()
    host_view = HostView.from_json(view)
    t1 = time.perf_counter()
    first = render_from(host_view, zones, None)
    t2 = time.perf_counter()
    observed = Netfilter(lab.topology.node("compute1").netns).observe()
    t3 = time.perf_counter()
    changes = diff(first.ruleset, observed)
    t4 = time.perf_counter()
    again = render_from(HostView.from_json(view), zones, first)
    t5 = time.perf_counter()
    diff(again.ruleset, first.ruleset)
    t6 = time.perf_counter()
    return Replay(t1 - t0, t2 - t1, t3 - t2, t4 - t3, bool(changes), t5 - t4 - (t1 - t0), t6 - t5)


def count_rules(lab: Lab, size: int, port_ids: list[str], set_name: str, members_v4: int,
                network_id: str) -> Counts:
    view_s, view_kib, view = view_cost("compute1")
    place = host.Place(lab.topology.node("compute1").netns)
    started = time.monotonic()
    saves = {"ipv4": place.run(["iptables-save"]).stdout, "ipv6": place.run(["ip6tables-save"]).stdout}
    ipsets = place.run(["ipset", "save"]).stdout
    read_s = time.monotonic() - started
    total, per_port, set_rules, port_sum = {}, {}, {}, 0
    for family, save in saves.items():
        total[family], counts, sets = port_rule_counts(save, port_ids)
        values = [counts.get(pid, 0) for pid in port_ids]
        per_port[family] = (min(values), max(values))
        port_sum += sum(values)
        set_rules[family] = max((sets.get(pid, 0) for pid in port_ids), default=0)
    members = sum(1 for line in ipsets.splitlines() if line.startswith(f"add {set_name} "))
    return Counts(size, len(port_ids), members_v4, total, per_port, port_sum, set_rules, members, read_s, view_s,
                  view_kib, replay(lab, view, network_id, saves["ipv4"]))


def find_set(lab: Lab, port_id: str) -> str:
    """The IPv4 set a port's ingress chain matches (iptables-save's ``--match-set NAME src``)."""
    save = host.Place(lab.topology.node("compute1").netns).run(["iptables-save"]).stdout
    chain = f"neutron-openvswi-i{port_id[:10]}"
    for line in save.splitlines():
        match = re.search(r"--match-set (\S+) src", line)
        if line.startswith(f"-A {chain} ") and match:
            return match.group(1)
    raise BenchError(f"no --match-set rule in {chain} on compute1")


def bulk_ports(api: Api, network_id: str, node: str, count: int, group_id: str) -> list[dict]:
    """``count`` ports of the network in ``group_id``, bound to ``node`` (compute:nova), one bulk POST."""
    body = {"ports": [{"network_id": network_id, "name": f"bbench-g{i}", "device_owner": "compute:nova",
                       "device_id": f"bbench-g{i}", "binding:host_id": node, "security_groups": [group_id]}
                      for i in range(count)]}
    ports = api.call("POST", "/v2.0/ports", body)["ports"]
    failed = [p["id"] for p in ports if p["binding:vif_type"] != "ovs"]
    if failed:
        raise BenchError(f"{len(failed)} ports not bound to {node} (binding:vif_type), e.g. {failed[0]}")
    return ports


def vsctl(lab: Lab, node: str, args: list[str], timeout: float = WIRE_TIMEOUT) -> None:
    """ovs-vsctl on the node's own database socket, one transaction."""
    if not args:
        return
    ovs = lab.ovs(lab.topology.node(node))
    try:
        ovs.place().run(["ovs-vsctl", f"--db=unix:{ovs.db_sock}", f"--timeout={int(timeout)}", *args],
                        timeout=timeout + 30)
    except host.LabError as exc:
        raise BenchError(str(exc)[:2000]) from None


def del_internal_ports(ports: list[dict]) -> list[str]:
    return [arg for port in ports for arg in ("--", "--if-exists", "del-port", "br-int", "qvo" + port["id"][:11])]


@dataclass
class Bulk:
    ports: int
    post_s: float  # the bulk POST
    view_s: dict[str, float | None]
    fw_s: dict[str, float | None]  # t0 -> the node's firewall line
    fw_text: dict[str, str]
    vsctl_s: float  # the internal ports' one transaction
    active_s: float  # from its start until every port is ACTIVE


def measure_bulk(lab: Lab, api: Api, obs: Observers, network_id: str, group_id: str, count: int) -> tuple[list[dict], Bulk]:
    change = Change("bulk", time.monotonic(), time.time())
    ports = bulk_ports(api, network_id, "compute1", count, group_id)
    post_s = time.monotonic() - change.t0
    for node in NODES:
        if not obs.logs[node].wait(change.t0_wall, is_fw, timeout=WIRE_TIMEOUT):
            say(f"no firewall line from {node}'s agent after the bulk POST")
    change.end = time.monotonic()
    change.attribute(obs, NODES)
    started = time.monotonic()
    vsctl(lab, "compute1", labkit.internal_ports_args(ports))
    vsctl_s = time.monotonic() - started
    api.wait_active({p["id"] for p in ports})
    bulk = Bulk(count, post_s, change.view_s, change.fw_s, change.fw_text, vsctl_s, time.monotonic() - started)
    say(f"{count} ports in G on compute1: POST {post_s:.2f} s; firewall lines compute1 {_ms(bulk.fw_s['compute1'])}, "
        f"compute2 {_ms(bulk.fw_s['compute2'])}; VIFs {vsctl_s:.2f} s, all ACTIVE {bulk.active_s:.2f} s")
    return ports, bulk


def poll_set(place: host.Place, name: str, address: str, member: bool, deadline: float,
             stop: threading.Event, out: list[float | None]) -> None:
    """``ipset test NAME ADDRESS`` every ``POLL_S`` s until it says ``member``; the monotonic time of
    that answer (its end: an upper bound) appended to ``out``, None at ``deadline`` or ``stop``."""
    argv = place.argv(["ipset", "test", name, address])
    while time.monotonic() < deadline and not stop.is_set():
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if (proc.returncode == 0) == member:
            out.append(time.monotonic())
            return
        time.sleep(POLL_S)
    out.append(None)


@dataclass
class Membership:
    set_name: str
    joins: list[Change]
    leaves: list[Change]


def membership_cycles(lab: Lab, api: Api, obs: Observers, joiner: vms.Vm, joiner_probe: Prober,
                      target: tuple[str, int], base_group: str, group_id: str, set_name: str,
                      cycles: int) -> Membership:
    place = host.Place(lab.topology.node("compute1").netns)
    address = address_of(joiner)
    joins, leaves = [], []

    def change(kind: str, groups: list[str], member: bool, sock: socket.socket) -> Change:
        stop, found = threading.Event(), []
        c = Change(kind, time.monotonic(), time.time())
        poller = threading.Thread(target=poll_set, args=(place, set_name, address, member, c.t0 + PHASE_TIMEOUT,
                                                         stop, found), name="ipset-poll", daemon=True)
        poller.start()
        try:
            api.call("PUT", f"/v2.0/ports/{joiner.port_id}", {"port": {"security_groups": groups}})
            c.api_s = time.monotonic() - c.t0
            if member:
                through, c.probes = until_through(sock, target, c.t0 + PHASE_TIMEOUT)
                c.through_s = c.since(through)
            else:
                new_blocked, cut, c.probes = until_blocked(sock, joiner_probe, target, c.t0 + PHASE_TIMEOUT)
                c.new_blocked_s, c.cut_s = c.since(new_blocked), c.since(cut)
        finally:
            poller.join(PHASE_TIMEOUT + 5)
            stop.set()
        c.set_s = c.since(found[0] if found else None)
        settle(obs, c, NODES, conntrack=not member)
        if not member:
            c.left = conntrack_list(lab, "--orig-src", address, "--orig-dst", target[0])
            c.reverse = conntrack_list(lab, "--orig-src", target[0], "--orig-dst", address, "--orig-port-src",
                                       str(target[1]), "--orig-port-dst", str(sock.getsockname()[1]))
        c.attribute(obs, NODES)
        return c

    for i in range(1, cycles + 1):
        with contextlib.closing(joiner_probe.socket()) as sock:
            join = change("join", [base_group, group_id], True, sock)
            leave = change("leave", [base_group], False, sock)
        joins.append(join)
        leaves.append(leave)
        say(f"cycle {i}: join set {_ms(join.set_s)}, probe {_ms(join.through_s)}, logs compute1 "
            f"{_ms(join.fw_s.get('compute1'))} compute2 {_ms(join.fw_s.get('compute2'))}; leave set {_ms(leave.set_s)}, "
            f"new {_ms(leave.new_blocked_s)}, established {_ms(leave.cut_s)}, conntrack logs compute1 "
            f"{_ms(leave.ct_s.get('compute1'))} compute2 {_ms(leave.ct_s.get('compute2'))}; left {len(leave.left)}, "
            f"reversed {len(leave.reverse)}")
    return Membership(set_name, joins, leaves)


def delete_ports(lab: Lab, api: Api, ports: list[dict], set_name: str, members: int) -> float:
    """Delete ``ports`` (their VIFs first, one transaction), until compute1's rules name none of them
    and its set has ``members`` members; seconds."""
    started = time.monotonic()
    vsctl(lab, "compute1", del_internal_ports(ports))
    for port in ports:
        api.call("DELETE", f"/v2.0/ports/{port['id']}")
    place = host.Place(lab.topology.node("compute1").netns)
    chains = {f"neutron-openvswi-i{p['id'][:10]}" for p in ports}

    def gone() -> bool:
        save = place.run(["iptables-save", "-t", "filter"]).stdout
        listed = place.run(["ipset", "list", set_name]).stdout
        return not any(f":{chain} " in save for chain in chains) and f"Number of entries: {members}\n" in listed
    labkit.wait_for(gone, WIRE_TIMEOUT, f"compute1's rules of {len(ports)} deleted ports to go", 0.2)
    return time.monotonic() - started


# --------------------------------------------------------------------------- the whole run


def fill_node(lab: Lab, api: Api, count: int) -> labkit.Fill:
    """``--node-ports``: ``count`` ports in group ``fill`` bound to compute1 and plugged (module doc)."""
    if not count:
        return labkit.Fill(0, "", 0.0, 0)
    group = api.group("fill")
    for ethertype in ("IPv4", "IPv6"):
        api.rule(group["id"], direction="ingress", ethertype=ethertype, remote_group_id=group["id"])
    cidr = labkit.sized_cidr("10.60.0.0", count)
    network_id = labkit.create_network(api, "fill", cidr, dhcp=False)
    _, fill = labkit.fill_plugged(api, network_id, "compute1", count, lambda args: vsctl(lab, "compute1", args),
                                  f"bound to compute1 on network fill ({cidr}, vxlan), port security on, in group "
                                  "fill (Neutron's default-group rules), plugged",
                                  attrs={"security_groups": [group["id"]], "port_security_enabled": True})
    return fill


@dataclass
class Results:
    cidr: str
    rules: list[RuleSample]
    loaded: list[RuleSample]
    bulk: Bulk
    counts: list[Counts]  # by size, ascending
    membership: Membership
    watch: bool
    watch_errors: int
    deleted_s: dict[int, float]  # size -> seconds to delete the ports down to it
    loadavg: tuple[str, str] = ("?", "?")
    fill: labkit.Fill = field(default_factory=lambda: labkit.Fill(0, "", 0.0, 0))
    seconds: float = 0.0  # the whole run, lab up and down included


def subnet_cidr(ports: int) -> str:
    prefix = min(24, 32 - math.ceil(math.log2(ports + 32)))
    if prefix < 12:
        raise BenchError(f"{ports} ports do not fit in 172.16.0.0/12")
    return f"172.16.0.0/{prefix}"


def run_all(args: argparse.Namespace, base: Path) -> Results:
    state_dir = base / "lab"
    cidr = subnet_cidr(args.ports + 10)
    load_start, started = labkit.loadavg(), time.monotonic()
    stoppable: list[Callable[[], None]] = []
    with running_lab(state_dir) as lab:
        api = Api()
        try:
            results = _measure(lab, api, args, cidr, load_start, stoppable)
        finally:
            for stop in reversed(stoppable):
                with contextlib.suppress(Exception):
                    stop()
            api.close()
    results.seconds = time.monotonic() - started
    return results


def _measure(lab: Lab, api: Api, args: argparse.Namespace, cidr: str, load_start: str,
             stoppable: list[Callable[[], None]]) -> Results:
    if args.ports + args.node_ports + 20 > 400:
        api.call("PUT", f"/v2.0/quotas/{PROJECT}", {"quota": {"port": -1}})
    if args.node_ports:
        say(f"0. node fill: {args.node_ports} ports in group fill bound to compute1 and plugged")
    fill = fill_node(lab, api, args.node_ports)
    for line in fill.lines(""):
        say(line)
    network_id = labkit.create_network(api, "bench", cidr)
    obs = Observers({n: LogTail(agent_log(lab, n)) for n in NODES}, {})
    if args.watch:
        for node in NODES:
            obs.watches[node] = ViewWatch(node, "ovs", API_PORT)
            stoppable.append(obs.watches[node].stop)

    say(f"1. rule create -> enforcement: {args.rules} samples (then {args.loaded_rules} with {args.ports} ports "
        f"on compute1), network bench {cidr}")
    fw_target = api.group("fw-target")
    target = make_vm(lab, "target", "compute1", network_id, [fw_target["id"]])
    client = make_vm(lab, "client", "compute2", network_id, port_security=False)
    responder = Responder(target, RULE_BASE_PORT, args.rules + args.loaded_rules)
    stoppable.append(responder.stop)
    client_probe = Prober(client)
    stoppable.append(client_probe.close)
    api.wait_active({target.port_id, client.port_id})
    if not check_blocked(client_probe, (address_of(target), RULE_BASE_PORT)):
        raise BenchError(f"client reaches target's UDP {RULE_BASE_PORT} before any rule allows it")
    rules = measure_rules(lab, api, obs, fw_target["id"], client_probe, address_of(target),
                          range(RULE_BASE_PORT, RULE_BASE_PORT + args.rules), "rule")

    say(f"2. membership: {args.ports} ports in one group G on compute1")
    g = api.group("G")
    for ethertype in ("IPv4", "IPv6"):
        api.rule(g["id"], direction="ingress", ethertype=ethertype, remote_group_id=g["id"])
    base_group = api.group("joiner-base")
    member_target = make_vm(lab, "member-target", "compute1", network_id, [g["id"]])
    member_probe = make_vm(lab, "member-probe", "compute2", network_id, [g["id"]])
    joiner = make_vm(lab, "joiner", "compute2", network_id, [base_group["id"]])
    member_responder = Responder(member_target, MEMBER_PORT, 1)
    stoppable.append(member_responder.stop)
    joiner_probe, member_probe_probe = Prober(joiner), Prober(member_probe)
    stoppable += [joiner_probe.close, member_probe_probe.close]
    api.wait_active({member_target.port_id, member_probe.port_id, joiner.port_id})
    dest = (address_of(member_target), MEMBER_PORT)
    if check_blocked(member_probe_probe, dest, timeout=3.0):
        raise BenchError("member-probe (in G) does not reach member-target (in G)")
    if not check_blocked(joiner_probe, dest):
        raise BenchError("joiner (not in G) reaches member-target before joining G")
    set_name = find_set(lab, member_target.port_id)

    ports, bulk = measure_bulk(lab, api, obs, network_id, g["id"], args.ports)
    sizes = sorted({args.ports, *(s for s in SMALL_SIZES if s < args.ports)}, reverse=True)
    members_fixed = 2  # member-target and member-probe
    counts = [count_rules(lab, args.ports, [member_target.port_id, *(p["id"] for p in ports)], set_name,
                          args.ports + members_fixed, network_id)]
    say(f"rules on compute1 with {args.ports} ports in G: {counts[0].all_total} (per port {counts[0].port_min}-"
        f"{counts[0].port_max}); read in {counts[0].read_s * 1000:.0f} ms")

    say(f"1b. {args.loaded_rules} rule samples with {args.ports} ports on compute1")
    loaded = measure_rules(lab, api, obs, fw_target["id"], client_probe, address_of(target),
                           range(RULE_BASE_PORT + args.rules, RULE_BASE_PORT + args.rules + args.loaded_rules),
                           "loaded rule")

    say(f"2c. {args.cycles} join/leave cycles of joiner (compute2) in G, set {set_name}")
    membership = membership_cycles(lab, api, obs, joiner, joiner_probe, dest, base_group["id"], g["id"], set_name,
                                   args.cycles)

    deleted_s = {}
    for size in sizes[1:]:
        gone, ports = ports[size:], ports[:size]
        deleted_s[size] = delete_ports(lab, api, gone, set_name, size + members_fixed)
        counts.append(count_rules(lab, size, [member_target.port_id, *(p["id"] for p in ports)], set_name,
                                  size + members_fixed, network_id))
        say(f"rules on compute1 with {size} ports in G: {counts[-1].all_total} (per port {counts[-1].port_min}-"
            f"{counts[-1].port_max}); {len(gone)} ports deleted in {deleted_s[size]:.1f} s")
    watch_errors = sum(w.errors for w in obs.watches.values())
    return Results(cidr, rules, loaded, bulk, sorted(counts, key=lambda c: c.size), membership, args.watch,
                   watch_errors, deleted_s, (load_start, labkit.loadavg()), fill)


# --------------------------------------------------------------------------- report


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return "never" if math.isinf(seconds) else f"{round(seconds * 1000)} ms"


def _row(label: str, values: list[float | None]) -> str:
    s = stats(values)
    if s is None:
        return f"   {label:<52}{'-':>9}{'-':>9}{'-':>9}  {len(values)}"
    return f"   {label:<52}{_ms(s[0]):>9}{_ms(s[1]):>9}{_ms(s[2]):>9}  {s[3]}"


HEADER = f"   {'from t0 to':<52}{'p50':>9}{'p99':>9}{'max':>9}  failed"


def _gaps(changes: list[Change], node: str, end: Callable[[Change], float | None]) -> str:
    """Medians of: t0 -> view, view -> firewall line, firewall line -> ``end``."""
    view = median([c.view_s.get(node) for c in changes])
    agent = median([c.fw_s[node] - c.view_s[node] for c in changes
                    if c.fw_s.get(node) is not None and c.view_s.get(node) is not None])
    wire = median([end(c) - c.fw_s[node] for c in changes if c.fw_s.get(node) is not None and end(c) is not None])
    return (f"server -> view published {_ms(view)}, agent (view -> rules applied and logged) {_ms(agent)}, "
            f"log line -> probe {_ms(wire)}")


def _rule_lines(samples: list[RuleSample], title: str, watch: bool) -> list[str]:
    allows, revokes = [s.allow for s in samples], [s.revoke for s in samples]
    lines = [title, HEADER,
             "   allow (ingress UDP N created)",
             _row("  POST answered", [c.api_s for c in allows])]
    if watch:
        lines.append(_row("  view published to compute1 (own long-poll)", [c.view_s.get("compute1") for c in allows]))
    lines += [_row("  compute1's agent logged its firewall change", [c.fw_s.get("compute1") for c in allows]),
              _row("  first probe echoed (enforced)", [c.through_s for c in allows]),
              "   revoke (that rule deleted)",
              _row("  DELETE answered", [c.api_s for c in revokes])]
    if watch:
        lines.append(_row("  view published to compute1 (own long-poll)", [c.view_s.get("compute1") for c in revokes]))
    lines += [_row("  compute1's agent logged its firewall change", [c.fw_s.get("compute1") for c in revokes]),
              _row("  compute1's agent logged its conntrack deletes", [c.ct_s.get("compute1") for c in revokes]),
              _row("  a new flow blocked (fresh source port)", [c.new_blocked_s for c in revokes]),
              _row("  the established flow cut (same source port)", [c.cut_s for c in revokes])]
    if any(c.cut_s is None for c in revokes):
        lines.append(_row("  the established flow cut, when it was", [c.cut_s for c in revokes if c.cut_s is not None]))
    lines += _survivors(revokes, "target", "client")
    if watch:
        lines += ["   where the time goes (medians): allow: " + _gaps(allows, "compute1", lambda c: c.through_s),
                  "                                  revoke: " + _gaps(revokes, "compute1", lambda c: c.cut_s)]
    texts = Counter(c.fw_text.get("compute1", "-") for c in allows + revokes)
    lines.append("   compute1's firewall lines: " + "; ".join(f"{n}x \"{t}\"" for t, n in texts.most_common(3)))
    return lines


def _survivors(changes: list[Change], responder: str, prober: str) -> list[str]:
    """What compute1's conntrack held after each revoke/leave, and why an established flow survived."""
    left = sum(len(c.left) for c in changes)
    survived = [c for c in changes if c.cut_s is None]
    lines = [f"   after it, compute1's conntrack entries of the probes' flows (original direction): {left} in all; "
             f"established flow not cut within {PHASE_TIMEOUT:g} s: {len(survived)} of {len(changes)}"]
    if survived:
        reversed_ = sum(1 for c in survived if c.reverse)
        lines += [f"   in {reversed_} of those {len(survived)}, compute1 held the flow's entry reversed ({responder} as "
                  f"its originator): {responder}'s echo, in flight when the agent",
                  f"   deleted the original entry, became a new flow that {responder}'s egress rules allow; its "
                  f"delete (-d {responder}, the original direction only,",
                  f"   as Neutron's ip_conntrack) does not match it, and {prober}'s probes keep it alive, e.g.:",
                  f"     {next((c.reverse[0] for c in survived if c.reverse), '-')}"]
    return lines


def _part2_lines(r: Results) -> list[str]:
    b, m = r.bulk, r.membership
    lines = ["2. membership: group G (egress any; ingress IPv4 and IPv6 from remote group G), member-target on "
             "compute1 and member-probe on compute2 in G, joiner on compute2 not in G",
             f"   (a) {b.ports} ports in G bound to compute1 in one bulk POST ({b.post_s * 1000:.0f} ms); from t0 "
             "before the POST to:"]
    for node in NODES:
        view = f"view published {_ms(b.view_s.get(node))}, " if r.watch else ""
        lines.append(f"       {node}: {view}firewall applied and logged {_ms(b.fw_s.get(node))}"
                     f"  (\"{b.fw_text.get(node, '-')}\")")
    lines += [f"       their VIFs: one ovs-vsctl transaction of {b.ports} internal ports {b.vsctl_s:.2f} s; all ACTIVE "
              f"{b.active_s:.2f} s after its start",
              "   (b) rules on compute1 (iptables-save and ip6tables-save `-A` lines; G's ports are the bound ports and "
              "member-target):",
              f"       {'ports in G':>10}{'G members':>11}{'total v4+v6':>13}{'per port v4+v6':>16}{'set rules/port':>16}"
              f"{'NIPv4 set':>11}{'read':>9}{'view':>18}"]
    for c in r.counts:
        per = f"{c.port_min}" if c.port_min == c.port_max else f"{c.port_min}-{c.port_max}"
        lines.append(f"       {c.group_ports:>10}{c.members_v4:>11}{c.all_total:>13,}{per:>16}"
                     f"{sum(c.set_rules.values()):>16}{c.set_members:>11}{c.read_s * 1000:>7.0f}ms"
                     f"{c.view_s * 1000:>7.0f}ms {c.view_kib:>5.0f} KiB")
    lines.append("       (read: iptables-save, ip6tables-save and ipset save in compute1's namespace, what the agent reads "
                 "on its first run and every 30 s; view: one GET of compute1's view, as its agent gets it on every change)")
    lines.append("       the agent's firewall work, replayed here on compute1's view before anything is written: its first "
                 "run (render, read, diff) and every later run (render reusing the last rendering, diff against it; "
                 "netfilter is read again every 30 s only):")
    for c in r.counts:
        if c.replay:
            rp = c.replay
            lines.append(f"       {c.group_ports:>10} ports: parse view {_ms(rp.parse_s)}, render {_ms(rp.render_s)}, "
                         f"observe netfilter {_ms(rp.observe_s)}, diff {_ms(rp.diff_s)}; in all "
                         f"{_ms(rp.parse_s + rp.render_s + rp.observe_s + rp.diff_s)}; later runs: render "
                         f"{_ms(rp.rerender_s)}, diff {_ms(rp.rediff_s)}"
                         + ("" if not rp.pending else " (the diff found changes to write: the agent had not converged)"))
    if len(r.counts) > 1:
        lo, hi = r.counts[0], r.counts[-1]
        marginal = (hi.all_total - lo.all_total) / max(1, hi.group_ports - lo.group_ports)
        lines.append(f"       marginal: {marginal:.1f} rules per port added ({lo.group_ports} -> {hi.group_ports} ports); "
                     "per family at the largest size: " + ", ".join(
                         f"{f} {hi.per_port[f][1]} per port, {hi.total[f]:,} in all" for f in hi.total))
    if r.deleted_s:
        lines.append("       (ports deleted between counts, until compute1's rules and set had none of them: " + ", ".join(
            f"down to {size} in {s:.1f} s" for size, s in sorted(r.deleted_s.items(), reverse=True)) + ")")
    lines += [f"   (c) {len(m.joins)} join/leave cycles of joiner (PUT security_groups), set {m.set_name}, probe joiner -> "
              "member-target UDP:", HEADER, "   join (G added)",
              _row("  PUT answered", [c.api_s for c in m.joins])]
    for kind, changes in (("join", m.joins), ("leave", m.leaves)):
        if kind == "leave":
            lines += ["   leave (G taken away)", _row("  PUT answered", [c.api_s for c in changes])]
        if r.watch:
            lines += [_row(f"  view published to {node}", [c.view_s.get(node) for c in changes]) for node in NODES]
        lines += [_row(f"  {node}'s agent logged its firewall change", [c.fw_s.get(node) for c in changes])
                  for node in NODES]
        if kind == "leave":
            lines += [_row(f"  {node}'s agent logged its conntrack deletes", [c.ct_s.get(node) for c in changes])
                      for node in NODES]
        lines.append(_row(f"  compute1's set {'holds' if kind == 'join' else 'no longer holds'} joiner (ipset test)",
                          [c.set_s for c in changes]))
        if kind == "join":
            lines.append(_row("  first probe to member-target echoed", [c.through_s for c in changes]))
        else:
            lines += [_row("  a new flow blocked (fresh source port)", [c.new_blocked_s for c in changes]),
                      _row("  the established flow cut (same source port)", [c.cut_s for c in changes])]
        if kind == "leave":
            if any(c.cut_s is None for c in changes):
                lines.append(_row("  the established flow cut, when it was",
                                  [c.cut_s for c in changes if c.cut_s is not None]))
            lines.append(_row("  new flows blocked on both hosts (logs, set, probe)", [reached(c) for c in changes]))
            lines.append(_row("  ... and conntrack purged on both hosts (logs)", [purged(c) for c in changes]))
            lines += _survivors(changes, "member-target", "joiner")
        else:
            lines.append(_row("  reached both hosts (logs, set, probe)", [reached(c) for c in changes]))
    if r.watch:
        lines += ["   where the time goes on compute1 (medians): join: " + _gaps(m.joins, "compute1", lambda c: c.through_s),
                  "                                              leave: " + _gaps(m.leaves, "compute1",
                                                                                   lambda c: c.new_blocked_s)]
    for kind, changes in (("join", m.joins), ("leave", m.leaves)):
        for node in NODES:
            texts = Counter(c.fw_text.get(node, "-") for c in changes)
            cts = Counter(c.ct_text.get(node, "-") for c in changes) if kind == "leave" else Counter()
            lines.append(f"   {kind}, {node}'s lines: " + "; ".join(f"{n}x \"{t}\"" for t, n in texts.most_common(2))
                         + ("; " + "; ".join(f"{n}x \"{t}\"" for t, n in cts.most_common(2)) if cts else ""))
    return lines


def _latest(values: list[float | None]) -> float | None:
    return None if not values or any(v is None for v in values) else max(values)  # type: ignore[type-var]


def reached(c: Change) -> float | None:
    """When a membership change held on both hosts for new flows: the latest of both hosts'
    firewall lines, compute1's set and the probe (echoed for a join, blocked for a leave)."""
    return _latest([c.fw_s.get(n) for n in NODES] + [c.set_s, c.through_s if c.kind == "join" else c.new_blocked_s])


def purged(c: Change) -> float | None:
    """A leave, also for established flows: ``reached`` and both hosts' conntrack lines."""
    return _latest([reached(c), *(c.ct_s.get(n) for n in NODES)])


@dataclass(frozen=True)
class Neutron:
    """Rule counts on compute1 for one group size: Baryon's (measured) and Neutron's (computed)."""

    size: int
    ports: int
    members: int
    baryon_total: int
    baryon_per_port: int
    fixed_per_port: int
    ipset_total: int
    ipset_per_port: int
    expanded_total: int
    expanded_per_port: int


def neutron(c: Counts) -> Neutron:
    """Neutron's counts for ``c``: its fixed per-port rules are Baryon's without the set rules;
    with ipset one rule per remote-group rule whose family has members (here IPv4 only: no port has
    an IPv6 address); without ipset one per remote member but the port's own address."""
    set_rules = sum(c.set_rules.values())
    fixed = c.port_max - set_rules
    ipset_rules = 1 if c.members_v4 else 0  # the IPv4 rule; the IPv6 set would be empty: no rule
    expanded = c.members_v4 - 1  # its own address excepted
    others = c.all_total - c.port_sum  # rules not of G's ports (hooks, shared chains' ends, other ports)
    return Neutron(c.size, c.group_ports, c.members_v4, c.all_total, c.port_max, fixed,
                   others + c.group_ports * (fixed + ipset_rules), fixed + ipset_rules,
                   others + c.group_ports * (fixed + expanded), fixed + expanded)


def _neutron_lines(r: Results) -> list[str]:
    lines = ["3. rule count on compute1, Baryon (measured) and Neutron's iptables hybrid driver (computed: its "
             "fixed per-port rules",
             "   as Baryon's, plus per port and remote-group rule one --match-set rule with enable_ipset = true, or "
             "one rule per",
             "   remote member but itself with enable_ipset = false, Neutron's _expand_sg_rule_with_remote_ips):",
             f"   {'ports in G':>10}{'members':>9}{'Baryon total':>14}{'/port':>7}{'Neutron ipset':>15}{'/port':>7}"
             f"{'Neutron no ipset':>18}{'/port':>7}{'ratio':>8}"]
    for c in r.counts:
        n = neutron(c)
        lines.append(f"   {n.ports:>10}{n.members:>9}{n.baryon_total:>14,}{n.baryon_per_port:>7}{n.ipset_total:>15,}"
                     f"{n.ipset_per_port:>7}{n.expanded_total:>18,}{n.expanded_per_port:>7}"
                     f"{n.expanded_total / n.baryon_total:>7.1f}x")
    big = neutron(r.counts[-1])
    if r.fill.ports:
        lines.append(f"   (the totals hold the {r.fill.ports} fill ports' rules too, in Neutron's as Baryon's: without "
                     f"ipset, Neutron would also expand group fill's remote-group rules, {r.fill.ports - 1} per fill "
                     "port)")
    lines += [f"   a membership change: Baryon swaps one set per host (NIPv4<G>: {r.counts[-1].set_members} members) and "
              "rewrites no rule; Neutron without ipset",
              f"   adds or removes one rule in each of the {big.ports} ports' ingress chains on compute1 (its "
              f"{big.expanded_total:,}-rule table rewritten); with ipset it updates the set too.",
              f"   Baryon writes the IPv6 --match-set rule with an empty set ({sum(r.counts[-1].set_rules.values())} set "
              "rules per port); Neutron writes none until the set has a member."]
    return lines


def targets(r: Results) -> list[tuple[str, str]]:
    m = r.membership

    def p99(values: list[float | None]) -> float:
        found = stats(values)
        return found[1] if found else math.inf

    join, leave, purge = p99([reached(c) for c in m.joins]), p99([reached(c) for c in m.leaves]), \
        p99([purged(c) for c in m.leaves])
    sizes = r.counts
    growth = sizes[-1].port_max - sizes[0].port_max
    return [
        ("a membership change reaches its hosts <= 500 ms p99: join (both hosts' rules, set, probe)",
         f"{_ms(join)}: {verdict(join <= TARGET_MEMBERSHIP_P99_S)}"),
        ("... leave, for new flows (both hosts' rules, set, probe blocked)",
         f"{_ms(leave)}: {verdict(leave <= TARGET_MEMBERSHIP_P99_S)}"),
        ("... leave, with the conntrack deletes done on both hosts",
         f"{_ms(purge)}: {verdict(purge <= TARGET_MEMBERSHIP_P99_S)}"),
        ("rule count per port does not grow with the group's size",
         f"{' / '.join(f'{c.port_max} ({c.group_ports} ports)' for c in sizes)}: {verdict(growth <= 0)}"),
    ]


def report(r: Results, args: argparse.Namespace) -> str:
    lines = [f"Firewall benchmark: 2-compute lab, prefix {PREFIX}, API {BENCH.api_url}, network bench {r.cidr} (vxlan); "
             f"machine's 1-minute load average {r.loadavg[0]} at the start, {r.loadavg[1]} at the end "
             f"({os.cpu_count()} CPUs); the run took {r.seconds / 60:.1f} min",
             "UDP probes every 5 ms between the lab's VMs; a flow is blocked at the first probe of a final unanswered "
             f"run of {QUIET_S * 1000:.0f} ms; log times have 1 ms resolution"
             + ("" if r.watch else "; views not watched (--no-watch)"), ""]
    if r.fill.ports:
        lines += ["0." + line[2:] if i == 0 else line for i, line in enumerate(r.fill.lines())] + [""]
    filled = f" (and the {r.fill.ports} fill ports)" if r.fill.ports else ""
    lines += _rule_lines(r.rules, f"1. rule create -> enforcement, {len(r.rules)} samples: target on compute1{filled} "
                         "(a group with no ingress rule), client on compute2 (port security off)", r.watch)
    if r.loaded:
        lines += [""] + _rule_lines(r.loaded, f"1b. the same with {r.bulk.ports + 1} ports of G on compute1 too, "
                                    f"{len(r.loaded)} samples", r.watch)
    lines += [""] + _part2_lines(r) + [""] + _neutron_lines(r) + [""]
    lines += ["targets:"] + [f"   {what}: {result.replace('**', '')}" for what, result in targets(r)]
    if r.watch and r.watch_errors:
        lines.append(f"(view long-polls: {r.watch_errors} errors, retried)")
    return "\n".join(lines)


def section(r: Results, args: argparse.Namespace, m: dict, text: str) -> str:
    command = labkit.command_line("bench/firewall.py", args, parse_args([]),
                                  ("rules", "ports", "cycles", "loaded_rules", "node_ports"))
    if not args.watch:
        command = command.replace(" --write", " --no-watch --write")
    note = ("Targets from the firewall issue (issue 6): a membership change reaches its hosts in <= 500 ms p99; the "
            "rule count per port does not grow with the group's size.")
    def p50_p99(values: list[float | None]) -> str:
        found = stats(values)
        return f"{_ms(found[0])} / {_ms(found[1])}" if found else "-"

    def cut(samples: list[RuleSample]) -> str:
        survived = sum(1 for s in samples if s.revoke.cut_s is None)
        return p50_p99([s.revoke.cut_s for s in samples if s.revoke.cut_s is not None]) + (
            f" ({survived} of {len(samples)} never cut: entry re-created reversed)" if survived else "")

    big = neutron(r.counts[-1])
    loaded = []
    if r.loaded:
        loaded = [(f"the same with {r.bulk.ports + 1} ports on compute1: create -> enforced, p50 / p99",
                   p50_p99([s.allow.through_s for s in r.loaded])),
                  ("... delete -> established flow cut, p50 / p99", cut(r.loaded))]
    body = ["", *labkit.table(("measure", "result"), [
        ("rule create -> enforced (probe), p50 / p99", p50_p99([s.allow.through_s for s in r.rules])),
        ("rule delete -> established flow cut, p50 / p99", cut(r.rules)),
        *loaded,
        (f"{r.bulk.ports} ports in one group: POST -> compute1's firewall applied", _ms(r.bulk.fw_s.get("compute1"))),
        (f"rules on compute1 with {big.ports} ports in G: Baryon / Neutron ipset / Neutron no ipset",
         f"{big.baryon_total:,} / {big.ipset_total:,} / {big.expanded_total:,}"),
        *targets(r)])]
    return labkit.section(SECTION, "bench/firewall.py", note, m, command, body, text)


# --------------------------------------------------------------------------- command line


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rules", type=int, default=50, help="rule create/delete samples (part 1)")
    p.add_argument("--ports", type=int, default=200, help="ports in one group bound to compute1 (part 2)")
    p.add_argument("--cycles", type=int, default=20, help="join/leave cycles of the group (part 2c)")
    p.add_argument("--loaded-rules", type=int, default=10,
                   help="rule samples repeated with --ports ports on compute1 (1b; 0: none)")
    p.add_argument("--node-ports", type=int, default=0,
                   help="ports in group fill bound to compute1 and plugged before any measurement (0: none)")
    p.add_argument("--no-watch", dest="watch", action="store_false",
                   help="do not long-poll the hosts' views (no server -> agent split)")
    BENCH.add_write_options(p)
    args = p.parse_args(argv)
    if args.rules < 1 or args.ports < 1 or args.cycles < 1 or args.loaded_rules < 0 or args.node_ports < 0:
        p.error("--rules, --ports and --cycles must be at least 1, --loaded-rules and --node-ports not negative")
    if args.node_ports > 16000:
        p.error("--node-ports: at most 16000 (network fill is one subnet of 10.60.0.0/18 at most)")
    if args.rules + args.loaded_rules > 5000:
        p.error("--rules + --loaded-rules: at most 5000 (one UDP port each)")
    return args


def main(argv: list[str] | None = None) -> int:
    return BENCH.main(parse_args(argv), run_all, report, section, what="state directory",
                      interrupted="interrupted; the lab was taken down")


if __name__ == "__main__":
    sys.exit(main())
