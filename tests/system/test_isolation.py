"""Isolation on the wire in a real lab: tenants apart, and a VM that lies reaches no one.

One 2-compute lab with its agents for the module. Two projects, A and B, each have a VXLAN
network with the same subnet (``10.0.0.0/24``, DHCP on), so their VMs even get the same addresses.
A: ``a1`` (compute1, the attacker), ``a2`` (compute1) and ``a3`` (compute2), all with port
security in A's default group, which also admits any IPv4 from anywhere (so that a forged source
is stopped at the sender or not at all, never by the victim's ingress rules), and ``aopen``
(compute2, port security off: the control attacker, whose lies must get through, or the checks
could not fail). B: ``b1`` (compute1) and ``b2`` (compute2).

Every check counts frames that ``tcpdump`` (on the VMs' ``eth0``, promiscuous, started and
stopped by its PID) saw arrive; each attack is also made from ``aopen`` and, where it makes sense,
from ``a1`` telling the truth, and those frames must arrive. Each test prints its figures (frames
sent by the attack, frames the victims saw): run with ``-s`` to read them.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.lab import LabCli
from tests.support.wait import eventually

pytestmark = pytest.mark.lab

PROJECT_A, PROJECT_B = uuid.uuid4().hex, uuid.uuid4().hex
CIDR = "10.0.0.0/24"
# name: (node, project, port security, address): B's VMs have the addresses of A's
VMS = {"a1": ("compute1", PROJECT_A, True, "10.0.0.11"), "a2": ("compute1", PROJECT_A, True, "10.0.0.12"),
       "a3": ("compute2", PROJECT_A, True, "10.0.0.13"), "aopen": ("compute2", PROJECT_A, False, "10.0.0.14"),
       "b1": ("compute1", PROJECT_B, True, "10.0.0.11"), "b2": ("compute2", PROJECT_B, True, "10.0.0.13")}
VICTIMS = ("a2", "a3")  # a1's neighbours on its own node and on the other
UNKNOWN_MAC = "02:00:5e:ee:ee:01"  # nobody's: frames to it are unknown unicast, flooded
FORGED_MAC = {"a1": "02:66:00:00:00:01", "aopen": "02:66:00:00:00:02"}
# Addresses nobody has: the subnet's allocation pool is cut short of them.
POOL = ("10.0.0.2", "10.0.0.200")
FORGED_IP = {"a1": "10.0.0.249", "aopen": "10.0.0.248"}
NOBODY, UNKNOWN_IP = "10.0.0.250", "10.0.0.251"
ROGUE_RANGE = "10.0.0.240,10.0.0.245"
ROGUE_ROUTER = "10.0.0.246"
TCPDUMP_TIMEOUT = 60  # seconds: no capture outlives this, whatever happens to the test


# ---------------------------------------------------------------- frames


@dataclass(frozen=True)
class Frame:
    src: str
    dst: str
    text: str  # what tcpdump -e -n -t prints after the MACs: "ethertype ARP (0x0806), length 42: Request ..."

    @property
    def arp(self) -> bool:
        return self.text.startswith("ethertype ARP")

    def claims(self, address: str) -> bool:
        """An ARP frame whose sender address is ``address`` (request "tell", reply "is-at")."""
        return self.arp and (f"tell {address}," in self.text or f"Reply {address} is-at" in self.text)

    def mentions(self, address: str) -> bool:
        return re.search(rf"(?<![\d.]){re.escape(address)}(?![\d])", self.text) is not None

    @property
    def dhcp_reply(self) -> bool:
        return ".67 > " in self.text and ".68: " in self.text


_LINE = re.compile(r"^([0-9a-f]{2}(?::[0-9a-f]{2}){5}) > ([0-9a-f]{2}(?::[0-9a-f]{2}){5}), (.*)$")


def parse(out: str) -> list[Frame]:
    return [Frame(m[1], m[2], m[3]) for m in map(_LINE.match, out.splitlines()) if m]


# ---------------------------------------------------------------- the world


@dataclass(frozen=True)
class Vm:
    name: str
    netns: str
    mac: str
    ip: str
    port_id: str


@dataclass(frozen=True)
class World:
    lab: LabCli
    vms: dict[str, Vm]
    networks: dict[str, dict]  # project -> network
    dhcp_ip: dict[str, str]  # project -> its DHCP port's address
    dhcp_mac: dict[str, str]
    scripts: Path

    def vm(self, name: str) -> Vm:
        return self.vms[name]


def sh(world: World, vm: str, *cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` in the VM (its namespace) as its guest would."""
    proc = subprocess.run(["ip", "netns", "exec", world.vm(vm).netns, *cmd], capture_output=True, text=True,
                          timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{vm}: {' '.join(cmd)}: exit {proc.returncode}\n{proc.stdout}{proc.stderr}")
    return proc


def ping(world: World, vm: str, address: str, *extra: str, count: int = 1) -> bool:
    return sh(world, vm, "ping", "-n", "-c", str(count), "-i", "0.2", "-W", "1", *extra, address,
              check=False).returncode == 0


@pytest.fixture(scope="module")
def world(agents_lab: LabCli, tmp_path_factory: pytest.TempPathFactory) -> World:
    lab = agents_lab
    networks: dict[str, dict] = {}
    ports: dict[str, dict] = {}
    with lab.api() as api:
        for project, name in ((PROJECT_A, "iso-a"), (PROJECT_B, "iso-b")):
            as_project = {"X-Project-Id": project}
            response = api.post("/networks", json={"network": {"name": name}}, headers=as_project)
            assert response.status_code == 201, response.text
            networks[project] = response.json()["network"]
            response = api.post("/subnets", headers=as_project, json={"subnet": {
                "network_id": networks[project]["id"], "cidr": CIDR, "ip_version": 4, "name": name,
                "allocation_pools": [{"start": POOL[0], "end": POOL[1]}]}})
            assert response.status_code == 201, response.text
        for name, (_, project, secure, address) in VMS.items():
            body: dict = {"network_id": networks[project]["id"], "name": name,
                          "fixed_ips": [{"ip_address": address}]}
            if not secure:
                body["port_security_enabled"] = False
            response = api.post("/ports", json={"port": body}, headers={"X-Project-Id": project})
            assert response.status_code == 201, response.text
            ports[name] = response.json()["port"]
        default_a = ports["a1"]["security_groups"][0]
        response = api.post("/security-group-rules", headers={"X-Project-Id": PROJECT_A}, json={
            "security_group_rule": {"security_group_id": default_a, "direction": "ingress", "ethertype": "IPv4",
                                    "remote_ip_prefix": "0.0.0.0/0"}})
        assert response.status_code == 201, response.text
    for name, (node, *_) in VMS.items():
        lab.run("vm", "create", name, "--node", node, "--port", ports[name]["id"])
    listed = lab.vms()
    vms = {name: Vm(name, listed[name]["netns"], listed[name]["mac"], ports[name]["fixed_ips"][0]["ip_address"],
                    ports[name]["id"]) for name in VMS}
    dhcp_ip, dhcp_mac = {}, {}
    with lab.api() as api:
        for project, network in networks.items():
            [dhcp] = eventually(lambda n=network: api.get("/ports", params={
                "network_id": n["id"], "device_owner": "network:dhcp"}).json()["ports"], 20, "the DHCP port")
            dhcp_ip[project], dhcp_mac[project] = dhcp["fixed_ips"][0]["ip_address"], dhcp["mac_address"]
    scripts = tmp_path_factory.mktemp("isolation")
    scripts.chmod(0o755)
    built = World(lab, vms, networks, dhcp_ip, dhcp_mac, scripts)
    report("addresses", **{name: vm.ip for name, vm in vms.items()}, dhcp=dhcp_ip)
    for a, b in (("a1", "a2"), ("a1", "a3"), ("a2", "a3"), ("aopen", "a2"), ("b1", "b2")):
        eventually(lambda a=a, b=b: ping(built, a, vms[b].ip), 15, f"{a} reaching {b}")
    return built


# ---------------------------------------------------------------- capturing


@contextmanager
def captured(world: World, *names: str) -> Iterator[dict[str, list[Frame]]]:
    """tcpdump on each VM's eth0 for the duration of the block; the dict holds each VM's frames
    once the block is left (every capture stopped by its PID with SIGINT, killed if need be)."""
    frames: dict[str, list[Frame]] = {}
    procs: dict[str, subprocess.Popen[str]] = {}
    try:
        for name in names:
            # the PID is that of timeout (ip netns exec execs it), which bounds tcpdump's life and
            # passes our SIGINT on to it
            procs[name] = subprocess.Popen(
                ["ip", "netns", "exec", world.vm(name).netns, "timeout", "-s", "INT", str(TCPDUMP_TIMEOUT),
                 "tcpdump", "-i", "eth0", "-n", "-e", "-t", "-l", "--immediate-mode", "-c", "20000"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, proc in procs.items():
            said = b""
            while b"listening on eth0" not in said:  # after "verbose output suppressed..."
                ready, _, _ = select.select([proc.stderr], [], [], 10)
                chunk = os.read(proc.stderr.fileno(), 4096) if ready else b""  # type: ignore[union-attr]
                assert chunk, f"tcpdump in {name} did not start: {said!r}"
                said += chunk
        yield frames
        # the last frames of the block are on the wire for a moment yet
        subprocess.run(["sleep", "0.5"], check=True)
    finally:
        for name, proc in procs.items():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            try:
                out, _ = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
            frames[name] = parse(out)


def report(title: str, **figures: object) -> None:
    print(f"\n[isolation] {title}: " + ", ".join(f"{k}={v}" for k, v in figures.items()), file=sys.stderr)


# ---------------------------------------------------------------- 1. projects apart


def test_two_projects_with_the_same_cidr_never_see_each_others_frames(world: World) -> None:
    a1, a3 = world.vm("a1"), world.vm("a3")
    a_macs = {world.vm(n).mac for n in VMS if n.startswith("a")} | {world.dhcp_mac[PROJECT_A], UNKNOWN_MAC}
    with captured(world, "a1", "a3", "b1", "b2") as seen:
        assert ping(world, "a1", world.vm("a2").ip, count=3)  # same node
        assert ping(world, "a1", a3.ip, count=3)  # across the tunnel
        assert ping(world, "b1", world.vm("b2").ip, count=3)  # B's own traffic: B's captures work
        # broadcasts: ARP for an address nobody has, and a ping to the subnet's broadcast address
        sh(world, "a1", "arping", "-c", "2", "-w", "2", "-I", "eth0", NOBODY, check=False)
        sh(world, "a3", "arping", "-c", "2", "-w", "2", "-I", "eth0", NOBODY, check=False)
        sh(world, "a1", "ping", "-n", "-b", "-c", "3", "-i", "0.2", "-W", "1", "10.0.0.255", check=False)
        # unknown unicast: to a MAC no switch has learned, flooded in A's network
        sh(world, "a1", "ip", "neigh", "replace", UNKNOWN_IP, "lladdr", UNKNOWN_MAC, "dev", "eth0", "nud",
           "permanent")
        try:
            sh(world, "a1", "ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", UNKNOWN_IP, check=False)
        finally:
            sh(world, "a1", "ip", "neigh", "del", UNKNOWN_IP, "dev", "eth0", check=False)
    sent = [f for f in seen["a1"] if f.src == a1.mac]
    leaked = {b: [f for f in seen[b] if f.src in a_macs or f.dst in a_macs] for b in ("b1", "b2")}
    # the controls: A's broadcasts and unknown unicast did flood A's network, B's captures saw B
    in_a = {
        "broadcast ARP": [f for f in seen["a3"] if f.src == a1.mac and f.arp and f"who-has {NOBODY}" in f.text],
        "broadcast ping": [f for f in seen["a3"] if f.src == a1.mac and f.dst == "ff:ff:ff:ff:ff:ff"
                           and "ICMP echo request" in f.text],
        "unknown unicast": [f for f in seen["a3"] if f.dst == UNKNOWN_MAC],
    }
    b_seen = {b: len(seen[b]) for b in ("b1", "b2")}
    report("projects", a1_sent=len(sent), a3_saw_of_a1={k: len(v) for k, v in in_a.items()},
           b_frames_total=b_seen, b_frames_from_or_to_a={b: len(v) for b, v in leaked.items()})
    assert all(in_a.values()), {k: len(v) for k, v in in_a.items()}
    assert [f for f in seen["b2"] if f.src == world.vm("b1").mac], "b2's capture saw nothing of b1"
    assert leaked == {"b1": [], "b2": []}


# ---------------------------------------------------------------- 2. a VM that lies


def _victims_saw(seen: dict[str, list[Frame]], which) -> dict[str, int]:  # noqa: ANN001 - a predicate
    return {victim: sum(1 for f in seen[victim] if which(f)) for victim in VICTIMS}


def _forge_mac(world: World, attacker: str, mac: str) -> None:
    """The attacker's eth0 takes ``mac``; it pings the victims (static neighbours: IP frames go out
    at once) and ARPs for one of them (broadcast: both would see it), then gets its own MAC back."""
    own = world.vm(attacker).mac
    sh(world, attacker, "ip", "link", "set", "eth0", "address", mac)
    try:
        for victim in VICTIMS:
            v = world.vm(victim)
            sh(world, attacker, "ip", "neigh", "replace", v.ip, "lladdr", v.mac, "dev", "eth0", "nud", "permanent")
            sh(world, attacker, "ping", "-n", "-c", "2", "-i", "0.2", "-W", "1", v.ip, check=False)
        sh(world, attacker, "arping", "-c", "2", "-w", "2", "-I", "eth0", world.vm(VICTIMS[0]).ip, check=False)
    finally:
        sh(world, attacker, "ip", "link", "set", "eth0", "address", own)
        for vm in (attacker, *VICTIMS):
            sh(world, vm, "ip", "neigh", "flush", "dev", "eth0")


def test_a_forged_source_mac_reaches_no_one(world: World) -> None:
    figures = {}
    for attacker, mac, expect in (("a1", FORGED_MAC["a1"], False), ("a1", world.vm("a1").mac, True),
                                  ("aopen", FORGED_MAC["aopen"], True)):
        with captured(world, attacker, *VICTIMS) as seen:
            _forge_mac(world, attacker, mac)
        sent = sum(1 for f in seen[attacker] if f.src == mac)
        arrived = _victims_saw(seen, lambda f, mac=mac: f.src == mac)
        figures[f"{attacker}{'' if mac == world.vm(attacker).mac else ' forged'}"] = (sent, arrived)
        assert sent >= 6, (attacker, mac, sent)
        assert all(arrived.values()) if expect else not any(arrived.values()), (attacker, mac, arrived)
    report("forged MAC (sent, seen by victims)", **figures)


def _forge_ip(world: World, attacker: str, address: str) -> None:
    """The attacker sends from ``address``: first letting the kernel ARP (the requests name it as
    sender), then to static neighbours (IP packets from it go out at once)."""
    own = world.vm(attacker).ip
    if address != own:
        sh(world, attacker, "ip", "address", "add", f"{address}/24", "dev", "eth0")
    try:
        sh(world, attacker, "ip", "neigh", "flush", "dev", "eth0")
        for victim in VICTIMS:
            sh(world, attacker, "ping", "-n", "-c", "2", "-i", "0.2", "-W", "1", "-I", address, world.vm(victim).ip,
               check=False)
        for victim in VICTIMS:
            v = world.vm(victim)
            sh(world, attacker, "ip", "neigh", "replace", v.ip, "lladdr", v.mac, "dev", "eth0", "nud", "permanent")
            sh(world, attacker, "ping", "-n", "-c", "2", "-i", "0.2", "-W", "1", "-I", address, v.ip, check=False)
    finally:
        if address != own:
            sh(world, attacker, "ip", "address", "del", f"{address}/24", "dev", "eth0", check=False)
        for vm in (attacker, *VICTIMS):
            sh(world, vm, "ip", "neigh", "flush", "dev", "eth0")


def test_a_forged_source_ip_reaches_no_one(world: World) -> None:
    figures = {}
    for attacker, address, expect in (("a1", FORGED_IP["a1"], False), ("a1", world.vm("a1").ip, True),
                                      ("aopen", FORGED_IP["aopen"], True)):
        mac = world.vm(attacker).mac
        with captured(world, attacker, *VICTIMS) as seen:
            _forge_ip(world, attacker, address)
        sent = sum(1 for f in seen[attacker] if f.src == mac and f.mentions(address) and
                   (f.claims(address) or f.text.split(": ", 1)[-1].startswith(f"{address} > ")))
        arrived = _victims_saw(seen, lambda f, a=address, m=mac: f.src == m and f.mentions(a))
        figures[f"{attacker}{'' if address == world.vm(attacker).ip else ' forged'}"] = (sent, arrived)
        assert sent >= 4, (attacker, address, sent)
        assert all(arrived.values()) if expect else not any(arrived.values()), (attacker, address, arrived)
    report("forged IP (sent, seen by victims)", **figures)


ARP_SENDER = """
import socket, sys
def b(mac): return bytes.fromhex(mac.replace(':', ''))
def ip(a): return socket.inet_aton(a)
dst, src, op, spa, tha, tpa, count = sys.argv[1:8]
frame = (b(dst) + b(src) + bytes.fromhex('0806') + bytes.fromhex('000108000604') + int(op).to_bytes(2, 'big')
         + b(src) + ip(spa) + b(tha) + ip(tpa))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(('eth0', 0))
for _ in range(int(count)):
    s.send(frame)
"""


def _claim(world: World, attacker: str, address: str) -> None:
    """From its own MAC, the attacker claims ``address``: gratuitous ARP (broadcast) and ARP
    replies sent to each victim unasked, three of each."""
    mac = world.vm(attacker).mac
    sh(world, attacker, sys.executable, "-c", ARP_SENDER, "ff:ff:ff:ff:ff:ff", mac, "1", address,
       "00:00:00:00:00:00", address, "3")
    for victim in VICTIMS:
        v = world.vm(victim)
        sh(world, attacker, sys.executable, "-c", ARP_SENDER, v.mac, mac, "2", address, v.mac, v.ip, "3")


def _neighbour(world: World, vm: str, address: str) -> str:
    return sh(world, vm, "ip", "neigh", "show", address, "dev", "eth0").stdout.strip()


def test_arp_for_another_vms_address_reaches_no_one(world: World) -> None:
    a2, a3 = world.vm("a2"), world.vm("a3")
    assert ping(world, "a2", a3.ip) and ping(world, "a3", a2.ip)  # each has the other in its ARP cache
    before = {"a2": _neighbour(world, "a2", a3.ip), "a3": _neighbour(world, "a3", a2.ip)}
    assert a3.mac in before["a2"] and a2.mac in before["a3"], before
    figures = {}
    try:
        for attacker, address, expect in (("a1", a3.ip, False), ("a1", world.vm("a1").ip, True),
                                          ("aopen", a3.ip, True)):
            mac = world.vm(attacker).mac
            with captured(world, attacker, *VICTIMS) as seen:
                _claim(world, attacker, address)
            sent = sum(1 for f in seen[attacker] if f.src == mac and f.claims(address))
            arrived = _victims_saw(seen, lambda f, a=address, m=mac: f.src == m and f.claims(a))
            figures[f"{attacker} claims {'its own' if address == world.vm(attacker).ip else 'a3'}"] = (sent, arrived)
            assert sent >= 9, (attacker, address, sent)
            assert all(arrived.values()) if expect else not any(arrived.values()), (attacker, address, arrived)
            if attacker == "a1" and not expect:
                # a2 still reaches a3 at a3's MAC (and a3 a2 at a2's)
                assert a3.mac in _neighbour(world, "a2", a3.ip) and world.vm("a1").mac not in _neighbour(
                    world, "a2", a3.ip)
                assert ping(world, "a2", a3.ip)
    finally:
        for victim in VICTIMS:  # aopen may have poisoned them
            sh(world, victim, "ip", "neigh", "flush", "dev", "eth0")
    report("ARP for a3's address (sent, seen by victims)", **figures)


UDHCPC_RECORD = """#!/bin/sh
[ "$1" = bound ] && echo "ip=$ip serverid=$serverid router=$router" >> "$OFFERS"
exit 0
"""


@contextmanager
def rogue_dhcp(world: World, vm: str) -> Iterator[list[str]]:
    """A dnsmasq of the test's own in ``vm``, offering ``ROGUE_RANGE`` with a router of its own,
    stopped by its PID (that of ``timeout``, which passes the signal on and bounds its life); the
    list holds its log once the block is left."""
    proc = subprocess.Popen(
        ["ip", "netns", "exec", world.vm(vm).netns, "timeout", "-s", "TERM", str(TCPDUMP_TIMEOUT),
         "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--port=0",
         "--user=root", "--pid-file=", "--leasefile-ro", "--interface=eth0", "--bind-interfaces",
         f"--dhcp-range={ROGUE_RANGE},255.255.255.0,2m", f"--dhcp-option=3,{ROGUE_ROUTER}",
         "--dhcp-authoritative", "--no-ping", "--log-dhcp", "--log-facility=-"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log: list[str] = []
    try:
        eventually(lambda: ":67 " in sh(world, vm, "ss", "-lun").stdout or proc.poll() is not None, 10,
                   f"the rogue dnsmasq in {vm} listening")
        assert proc.poll() is None, proc.communicate()[0]
        yield log
    finally:
        if proc.poll() is None:
            proc.terminate()
        try:
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        log += out.splitlines()


def _ask_for_leases(world: World, tries: int) -> dict[str, list[str]]:
    """Each victim asks for a lease ``tries`` times (busybox udhcpc, whose script only records the
    lease: the victim's address stays as it is)."""
    script = world.scripts / "record.sh"
    script.write_text(UDHCPC_RECORD)
    script.chmod(0o755)
    leases = {}
    for victim in VICTIMS:
        offers = world.scripts / f"{victim}.offers"
        offers.unlink(missing_ok=True)
        for _ in range(tries):
            sh(world, victim, "env", f"OFFERS={offers}", "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f",
               "-t", "3", "-T", "1", "-s", str(script), check=False)
        leases[victim] = offers.read_text().splitlines() if offers.exists() else []
    return leases


def test_a_rogue_dhcp_server_serves_no_one(world: World) -> None:
    figures = {}
    for attacker, expect in (("a1", False), ("aopen", True)):
        mac = world.vm(attacker).mac
        with captured(world, attacker, *VICTIMS) as seen, rogue_dhcp(world, attacker) as log:
            leases = _ask_for_leases(world, tries=2)
        sent = sum(1 for f in seen[attacker] if f.src == mac and f.dhcp_reply)
        arrived = _victims_saw(seen, lambda f, m=mac: f.src == m and f.dhcp_reply)
        figures[attacker] = (sent, arrived)
        assert sent >= 2, (attacker, sent, [line for line in log if "dnsmasq-dhcp" in line])  # it answered
        assert any("DHCPOFFER" in line for line in log), log[-20:]
        if expect:
            assert all(arrived.values()), (attacker, arrived)
            continue
        assert not any(arrived.values()), (attacker, arrived)
        for victim, got in leases.items():
            own = f"ip={world.vm(victim).ip} serverid={world.dhcp_ip[PROJECT_A]} "
            assert len(got) == 2 and all(line.startswith(own) for line in got), (victim, got)
            assert not any(ROGUE_ROUTER in line for line in got)
    report("rogue DHCP (replies sent, seen by victims)", **figures)
