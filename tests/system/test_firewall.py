"""Security groups on the wire in a real lab: the hybrid iptables firewall on each VM's qbr.

One 2-compute lab with its agents for the module. Network ``sg`` has an IPv4 and an IPv6 subnet.
VMs ``a`` (compute1) and ``b`` (compute2) are in their project's default group; ``out``
(compute1) has port security off: the world outside the groups, on the same network.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.support.lab import BARYON, LabCli
from tests.support.wait import eventually

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def lab(agents_lab: LabCli) -> LabCli:
    return agents_lab


@pytest.fixture(scope="module")
def net(lab: LabCli) -> dict:
    with lab.api() as api:
        network = api.post("/networks", json={"network": {"name": "sg"}}).json()["network"]
        for cidr, version in (("10.1.0.0/24", 4), ("fd00:1::/64", 6)):
            api.post("/subnets", json={"subnet": {"network_id": network["id"], "cidr": cidr, "ip_version": version,
                                                  "enable_dhcp": False}}).raise_for_status()
    for name, node, extra in (("a", "compute1", []), ("b", "compute2", []), ("out", "compute1", ["--no-port-security"])):
        lab.run("vm", "create", name, "--node", node, "--network", "sg", *extra)
    vms = lab.vms()
    for name in ("a", "b", "out"):
        eventually(lambda n=name: port(lab, vms[n]["port_id"])["status"] == "ACTIVE", 10, f"{name} ACTIVE")
    return network


def port(lab: LabCli, port_id: str) -> dict:
    with lab.api() as api:
        return api.get(f"/ports/{port_id}").json()["port"]


def v4(lab: LabCli, vm: str) -> str:
    return next(a.split("/")[0] for a in lab.vms()[vm]["addresses"] if ":" not in a)


def v6(lab: LabCli, vm: str) -> str:
    return next(a.split("/")[0] for a in lab.vms()[vm]["addresses"] if ":" in a)


def ping(lab: LabCli, vm: str, address: str, *extra: str) -> bool:
    return lab.vm_exec(vm, "ping", "-c", "1", "-W", "1", *extra, address, check=False).returncode == 0


UDP_SERVER = ("import socket,sys; s=socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET, "
              "socket.SOCK_DGRAM); s.bind((sys.argv[1], int(sys.argv[2]))); s.settimeout(4); "
              "print(s.recv(100).decode(), flush=True)")
UDP_CLIENT = ("import socket,sys; s=socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET, "
              "socket.SOCK_DGRAM); s.bind(('', int(sys.argv[3]))); s.sendto(sys.argv[4].encode(), "
              "(sys.argv[1], int(sys.argv[2])))")


def reaches(lab: LabCli, client: str, server: str, address: str, proto: str, port: int, *,
            source_port: int = 0) -> bool:
    """Does a datagram or a TCP connection from ``client`` reach a listener in ``server``?
    (busybox nc for TCP; Python for UDP, which busybox's nc lacks.)"""
    token = uuid.uuid4().hex[:12]
    vm_exec = [*BARYON, "lab", "--state-dir", str(lab.state_dir), "vm", "exec"]
    if proto == "udp":
        bind = "::" if ":" in address else "0.0.0.0"
        serve = [sys.executable, "-c", UDP_SERVER, bind, str(port)]
        send = [sys.executable, "-c", UDP_CLIENT, address, str(port), str(source_port), token]
    else:
        serve = ["timeout", "4", "busybox", "nc", "-l", "-p", str(port)]
        send = ["busybox", "nc", *(["-p", str(source_port)] if source_port else []), "-w", "1", address, str(port)]
    listener = subprocess.Popen([*vm_exec, server, "--", *serve], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True)
    try:
        flag = "-lun" if proto == "udp" else "-ltn"
        eventually(lambda: f":{port} " in lab.vm_exec(server, "ss", flag).stdout, 5, f"{server} listening on {port}")
        subprocess.run([*vm_exec, client, "--", *send], input=token + "\n", text=True, capture_output=True, timeout=15)
        out, _ = listener.communicate(timeout=10)
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.wait()
    return token in out


def rule(lab: LabCli, group_id: str, **attrs: object) -> dict:
    with lab.api() as api:
        response = api.post("/security-group-rules", json={"security_group_rule": {
            "security_group_id": group_id, "direction": "ingress", **attrs}})
        assert response.status_code == 201, response.text
        return response.json()["security_group_rule"]


def delete_rule(lab: LabCli, rule_id: str) -> None:
    with lab.api() as api:
        assert api.delete(f"/security-group-rules/{rule_id}").status_code == 204


def group(lab: LabCli, name: str) -> dict:
    with lab.api() as api:
        return api.post("/security-groups", json={"security_group": {"name": name}}).json()["security_group"]


@pytest.fixture
def default_group(lab: LabCli, net: dict) -> str:
    return port(lab, lab.vms()["a"]["port_id"])["security_groups"][0]


@pytest.fixture
def opened(lab: LabCli, default_group: str) -> Iterator[list[str]]:
    """Rules a test adds to the default group, removed afterwards."""
    ids: list[str] = []
    yield ids
    for rule_id in ids:
        delete_rule(lab, rule_id)


def test_members_of_the_default_group_reach_each_other_and_outsiders_do_not(lab: LabCli, net: dict) -> None:
    assert ping(lab, "a", v4(lab, "b")) and ping(lab, "b", v4(lab, "a"))
    assert not ping(lab, "out", v4(lab, "a"))
    assert not reaches(lab, "out", "a", v4(lab, "a"), "tcp", 22)
    assert ping(lab, "a", v4(lab, "out"))  # egress is open; the reply is established traffic
    assert reaches(lab, "a", "out", v4(lab, "out"), "tcp", 2222)  # a port without security is open


def test_a_rule_opens_the_way_and_removing_it_cuts_it_again(lab: LabCli, default_group: str, opened: list) -> None:
    ssh = rule(lab, default_group, protocol="tcp", port_range_min=22, port_range_max=22, ethertype="IPv4",
               remote_ip_prefix="0.0.0.0/0")
    eventually(lambda: reaches(lab, "out", "a", v4(lab, "a"), "tcp", 22), 10, "TCP 22 open from outside")
    assert not ping(lab, "out", v4(lab, "a"))  # only TCP 22
    assert not reaches(lab, "out", "a", v4(lab, "a"), "tcp", 23)
    delete_rule(lab, ssh["id"])
    eventually(lambda: not reaches(lab, "out", "a", v4(lab, "a"), "tcp", 22), 10, "TCP 22 closed again")


def test_established_traffic_survives_other_changes_and_is_cut_with_its_rule(lab: LabCli, default_group: str,
                                                                             opened: list) -> None:
    icmp = rule(lab, default_group, protocol="icmp", ethertype="IPv4", remote_ip_prefix="0.0.0.0/0")
    eventually(lambda: ping(lab, "out", v4(lab, "a")), 10, "ICMP open from outside")
    pinger = subprocess.Popen([*BARYON, "lab", "--state-dir", str(lab.state_dir), "vm", "exec", "out", "--",
                               "ping", "-i", "0.05", "-c", "100", "-W", "1", v4(lab, "a")],
                              stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        opened.append(rule(lab, default_group, protocol="udp", port_range_min=53, port_range_max=53,
                           ethertype="IPv4")["id"])  # another rule: the ping's entry stays
        time.sleep(1.5)
        delete_rule(lab, icmp["id"])  # its own rule: its conntrack entry goes, and it is cut
        out, _ = pinger.communicate(timeout=30)
    finally:
        if pinger.poll() is None:
            pinger.kill()
            pinger.wait()
    replies = [int(line.split("icmp_seq=")[1].split()[0]) for line in out.splitlines() if "icmp_seq=" in line]
    assert replies, out
    first, last = min(replies), max(replies)
    assert replies == list(range(first, last + 1)), "a reply was lost while only other rules changed"
    assert last < 80, f"replies went on after the rule was deleted (last icmp_seq {last})"


def test_port_ranges_udp_and_icmp_types(lab: LabCli, default_group: str, opened: list) -> None:
    a = v4(lab, "a")
    opened.append(rule(lab, default_group, protocol="tcp", port_range_min=8000, port_range_max=8010,
                       ethertype="IPv4")["id"])
    opened.append(rule(lab, default_group, protocol="udp", port_range_min=5353, port_range_max=5353,
                       ethertype="IPv4")["id"])
    opened.append(rule(lab, default_group, protocol="icmp", port_range_min=8, port_range_max=0,
                       ethertype="IPv4")["id"])  # ICMP type 8 code 0: echo request
    eventually(lambda: reaches(lab, "out", "a", a, "tcp", 8005), 10, "TCP 8005 open")
    assert reaches(lab, "out", "a", a, "tcp", 8010)
    assert not reaches(lab, "out", "a", a, "tcp", 8011)
    assert reaches(lab, "out", "a", a, "udp", 5353)
    assert not reaches(lab, "out", "a", a, "udp", 5354)
    assert ping(lab, "out", a)


def test_ipv4_and_ipv6_rules_each_affect_their_family_only(lab: LabCli, default_group: str, opened: list) -> None:
    assert not ping(lab, "out", v6(lab, "a"))
    opened.append(rule(lab, default_group, protocol="ipv6-icmp", ethertype="IPv6", remote_ip_prefix="::/0")["id"])
    eventually(lambda: ping(lab, "out", v6(lab, "a")), 10, "ICMPv6 open from outside")
    assert not ping(lab, "out", v4(lab, "a"))
    opened.append(rule(lab, default_group, protocol="tcp", port_range_min=80, port_range_max=80,
                       ethertype="IPv4")["id"])
    eventually(lambda: reaches(lab, "out", "a", v4(lab, "a"), "tcp", 80), 10, "TCP 80 over IPv4")
    assert not reaches(lab, "out", "a", v6(lab, "a"), "tcp", 80)


def test_joining_a_remote_group_opens_the_way_within_a_reconcile(lab: LabCli, net: dict) -> None:
    web, clients = group(lab, "web"), group(lab, "clients")
    rule(lab, web["id"], protocol="icmp", ethertype="IPv4", remote_group_id=clients["id"])
    lab.run("vm", "create", "w", "--node", "compute1", "--network", "sg", "--security-group", "web")
    lab.run("vm", "create", "c", "--node", "compute2", "--network", "sg", "--security-group", "default")
    w = v4(lab, "w")
    eventually(lambda: port(lab, lab.vms()["w"]["port_id"])["status"] == "ACTIVE", 10, "w ACTIVE")
    assert not ping(lab, "c", w)
    with lab.api() as api:
        api.put(f"/ports/{lab.vms()['c']['port_id']}",
                json={"port": {"security_groups": [clients["id"]]}}).raise_for_status()
    started = time.monotonic()
    eventually(lambda: ping(lab, "c", w), 10, "c reaching w once in clients")
    assert time.monotonic() - started < 5
    with lab.api() as api:
        api.put(f"/ports/{lab.vms()['c']['port_id']}", json={"port": {"security_groups": []}}).raise_for_status()
    eventually(lambda: not ping(lab, "c", w), 10, "c cut off once it left clients")


def test_spoofed_addresses_reach_nobody_unless_allowed(lab: LabCli, net: dict) -> None:
    lab.run("vm", "create", "s", "--node", "compute1", "--network", "sg")
    s_port = lab.vms()["s"]["port_id"]
    eventually(lambda: port(lab, s_port)["status"] == "ACTIVE", 10, "s ACTIVE")
    b = v4(lab, "b")
    assert ping(lab, "s", b)
    lab.vm_exec("s", "ip", "address", "add", "10.1.0.200/24", "dev", "eth0")
    assert not ping(lab, "s", b, "-I", "10.1.0.200")  # another IP
    with lab.api() as api:
        api.put(f"/ports/{s_port}", json={"port": {"allowed_address_pairs": [{"ip_address": "10.1.0.200"}]}}
                ).raise_for_status()
    eventually(lambda: ping(lab, "s", b, "-I", "10.1.0.200"), 10, "the allowed address pair let through")
    mac = lab.vms()["s"]["mac"]
    lab.vm_exec("s", "ip", "link", "set", "eth0", "address", "fa:16:3e:66:66:66")
    try:
        lab.vm_exec("s", "ip", "neigh", "flush", "all")
        assert not ping(lab, "s", b)  # another MAC, its own IP
    finally:
        lab.vm_exec("s", "ip", "link", "set", "eth0", "address", mac)
    assert ping(lab, "s", b)


def test_dhcp_server_replies_from_a_vm_are_dropped(lab: LabCli, net: dict) -> None:
    out = v4(lab, "out")
    assert reaches(lab, "a", "out", out, "udp", 68, source_port=1067)  # any other source port passes
    assert not reaches(lab, "a", "out", out, "udp", 68, source_port=67)  # a DHCP server's reply does not


def test_an_address_group_admits_its_addresses_and_follows_their_changes(lab: LabCli, default_group: str,
                                                                         opened: list) -> None:
    """Rules naming an address group (address-group): ``out`` reaches ``a`` while its addresses
    are in the group, per family, and no longer once one is removed; nothing about a port changes."""
    out4, out6, a4, a6 = v4(lab, "out"), v6(lab, "out"), v4(lab, "a"), v6(lab, "a")
    assert not ping(lab, "out", a4) and not ping(lab, "out", a6)
    revision = port(lab, lab.vms()["a"]["port_id"])["revision_number"]
    with lab.api() as api:
        response = api.post("/address-groups", json={"address_group": {
            "name": "outside", "addresses": [f"{out4}/32", f"{out6}/128", "192.0.2.0/24"]}})
        assert response.status_code == 201, response.text
        ag = response.json()["address_group"]
    try:
        opened.append(rule(lab, default_group, protocol="icmp", ethertype="IPv4",
                           remote_address_group_id=ag["id"])["id"])
        opened.append(rule(lab, default_group, protocol="ipv6-icmp", ethertype="IPv6",
                           remote_address_group_id=ag["id"])["id"])
        eventually(lambda: ping(lab, "out", a4), 10, "ICMP from an address in the group")
        eventually(lambda: ping(lab, "out", a6), 10, "ICMPv6 from an address in the group")
        with lab.api() as api:
            removed = api.put(f"/address-groups/{ag['id']}/remove_addresses", json={"addresses": [out4]})
            assert removed.status_code == 200, removed.text
        eventually(lambda: not ping(lab, "out", a4), 10, "ICMP cut once the address left the group")
        assert ping(lab, "out", a6)  # the IPv6 address is still in the group
        with lab.api() as api:
            api.put(f"/address-groups/{ag['id']}/add_addresses",
                    json={"addresses": [f"{out4.rsplit('.', 1)[0]}.0/24"]}).raise_for_status()
        eventually(lambda: ping(lab, "out", a4), 10, "ICMP again from the network added to the group")
        assert port(lab, lab.vms()["a"]["port_id"])["revision_number"] == revision  # no port changed
    finally:
        for rule_id in opened:
            delete_rule(lab, rule_id)
        opened.clear()
        with lab.api() as api:
            assert api.delete(f"/address-groups/{ag['id']}").status_code == 204
