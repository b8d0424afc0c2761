"""The firewall's netfilter driver on real netfilter (iptables-nft, ipset, conntrack), each test in
a throwaway network namespace ``bnf-<hex>`` (root). The driver is given the namespace
(``Netfilter(netns=...)``: every command under ``nsenter --net``); the test reads back with the
same tools inside it. Nothing runs in the root namespace.

The rulesets are Neutron's hybrid layout (``OVSHybridIptablesFirewallDriver``): per port an
ingress ``i<id>``, an egress ``o<id>`` and an anti-spoofing ``s<id>`` chain, the shared
``sg-chain``/``sg-fallback``/``INPUT`` chains, conntrack zones in raw ``PREROUTING``, remote
groups as ipsets; every rule written in the form iptables-save prints it back.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from baryon.agent.drivers import conntrack, ipset
from baryon.agent.drivers.netfilter import (EDIT_MIN_RULES, Netfilter, NetfilterError, chain_edits, check, diff,
                                            hook_edits, parse_save, target)
from baryon.model.firewall import CHAIN_PREFIX, ConntrackDelete, Ruleset
from tests.support.netns import Netns

P = CHAIN_PREFIX
GROUP = "abcdef01-2345-6789-abcd-ef0123456789"
SET4, SET6 = "NIPv4" + GROUP[:24], "NIPv6" + GROUP[:24]  # 29 characters, as Neutron cuts them
SAVE = {"ipv4": "iptables-save", "ipv6": "ip6tables-save"}
RELATED = ('-m state --state RELATED,ESTABLISHED -m comment --comment "Direct packets associated with a known '
           'session to the RETURN chain." -j RETURN')
INVALID = ('-m state --state INVALID -m comment --comment "Drop packets that appear related to an existing '
           'connection (e.g. TCP ACK/FIN) but do not have an entry in conntrack." -j DROP')
FALLBACK = f'-m comment --comment "Send unmatched traffic to the fallback chain." -j {P}sg-fallback'


@dataclass(frozen=True)
class Port:
    id: str
    mac: str
    ip4: str
    ip6: str
    zone: int = 3

    @property
    def tap(self) -> str:
        return "tap" + self.id[:11]

    def chain(self, kind: str) -> str:
        return f"{P}{kind}{self.id[:10]}"


def port(n: int) -> Port:
    return Port(f"{n:08x}-1f2e-4d3c-8b7a-69584f3e2d1c", f"fa:16:3e:00:{n // 256:02x}:{n % 256:02x}",
                f"10.0.{n // 250}.{n % 250 + 2}", f"fd00::{n + 2:x}", zone=3 + n % 4)


PORTS = (port(1), port(2))


def port_chains(p: Port, family: str) -> dict[str, tuple[str, ...]]:
    if family == "ipv4":
        ingress = (RELATED, f"-d {p.ip4}/32 -p udp -m udp --sport 67 --dport 68 -j RETURN",
                   "-d 255.255.255.255/32 -p udp -m udp --sport 67 --dport 68 -j RETURN",
                   f"-m set --match-set {SET4} src -j RETURN", "-p tcp -m tcp --dport 22 -j RETURN",
                   "-p tcp -m tcp -m multiport --dports 8000:8080,9000 -j RETURN", "-p icmp -j RETURN",
                   "-s 192.168.0.0/16 -p udp -m udp --dport 53 -j RETURN", INVALID, FALLBACK)
        egress = ('-s 0.0.0.0/32 -d 255.255.255.255/32 -p udp -m udp --sport 68 --dport 67 -m comment --comment '
                  '"Allow DHCP client traffic." -j RETURN', f"-j {p.chain('s')}",
                  '-p udp -m udp --sport 68 --dport 67 -m comment --comment "Allow DHCP client traffic." -j RETURN',
                  '-p udp -m udp --sport 67 --dport 68 -m comment --comment "Prevent DHCP Spoofing by VM." -j DROP',
                  RELATED, "-j RETURN", INVALID, FALLBACK)
        spoof = (f'-s {p.ip4}/32 -m mac --mac-source {p.mac} -m comment --comment "Allow traffic from defined IP/MAC '
                 'pairs." -j RETURN',)
    else:
        ingress = (RELATED, "-s fe80::/64 -p udp -m udp --sport 547 --dport 546 -j RETURN",
                   *(f"-p ipv6-icmp -m icmp6 --icmpv6-type {t} -j RETURN" for t in (130, 134, 135, 136)),
                   f"-m set --match-set {SET6} src -j RETURN", "-p tcp -m tcp --dport 22 -j RETURN", INVALID,
                   FALLBACK)
        egress = (*(f'-s ::/128 -d ff02::/16 -p ipv6-icmp -m icmp6 --icmpv6-type {t} -m comment --comment "Allow IPv6 '
                    'ICMP traffic." -j RETURN' for t in (131, 135, 143)), f"-j {p.chain('s')}",
                  '-p ipv6-icmp -m icmp6 --icmpv6-type 134 -m comment --comment "Drop IPv6 Router Advts from VM '
                  'Instance." -j DROP', "-p ipv6-icmp -j RETURN",
                  '-p udp -m udp --sport 546 --dport 547 -m comment --comment "Allow DHCP client traffic." -j RETURN',
                  '-p udp -m udp --sport 547 --dport 546 -m comment --comment "Prevent DHCP Spoofing by VM." -j DROP',
                  RELATED, "-j RETURN", INVALID, FALLBACK)
        lla = f"fe80::f816:3eff:fe00:{int(p.mac[-5:].replace(':', ''), 16):x}"
        spoof = tuple(f'-s {ip}/128 -m mac --mac-source {p.mac} -m comment --comment "Allow traffic from defined '
                      'IP/MAC pairs." -j RETURN' for ip in (p.ip6, lla))
    spoof += ('-m comment --comment "Drop traffic without an IP/MAC allow rule." -j DROP',)
    return {p.chain("i"): ingress, p.chain("o"): egress, p.chain("s"): spoof}


def hybrid(ports: Sequence[Port] = PORTS, families: Sequence[str] = ("ipv4", "ipv6")) -> Ruleset:
    """Neutron's hybrid layout for ``ports``, both families, filter and raw, and the group's sets."""
    chains: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {}
    hooks: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {}
    for family in families:
        sg = f'-m comment --comment "Jump to the VM specific chain." -j {P}'
        filter_chains = {
            f"{P}sg-chain": (*(rule for p in ports for rule in (
                f"-m physdev --physdev-out {p.tap} --physdev-is-bridged {sg}{p.chain('i')[len(P):]}",
                f"-m physdev --physdev-in {p.tap} --physdev-is-bridged {sg}{p.chain('o')[len(P):]}")), "-j ACCEPT"),
            f"{P}sg-fallback": ('-m comment --comment "Default drop rule for unmatched traffic." -j DROP',),
            f"{P}INPUT": tuple(f'-m physdev --physdev-in {p.tap} --physdev-is-bridged -m comment --comment "Direct '
                               f'incoming traffic from VM to the security group chain." -j {p.chain("o")}'
                               for p in ports),
        }
        for p in ports:
            filter_chains.update(port_chains(p, family))
        chains[(family, "filter")] = filter_chains
        chains[(family, "raw")] = {f"{P}PREROUTING": tuple(
            f'{match} -m comment --comment "Set zone for {p.id[:11]}" -j CT --zone {p.zone}' for p in ports
            for match in (f"-m physdev --physdev-in qvb{p.id[:11]}", f"-i qvb{p.id[:11]}",
                          f"-m physdev --physdev-in {p.tap}"))}
        hooks[(family, "filter")] = (("INPUT", f"-j {P}INPUT"), *(
            ("FORWARD", f"-m physdev --physdev-{way} {p.tap} --physdev-is-bridged -m comment --comment \"Direct "
                        f"traffic from the VM interface to the security group chain.\" -j {P}sg-chain")
            for p in ports for way in ("out", "in")))
        hooks[(family, "raw")] = (("PREROUTING", f"-j {P}PREROUTING"),)
    sets = {SET4: ("ipv4", tuple(sorted(p.ip4 for p in ports))),
            SET6: ("ipv6", tuple(sorted(p.ip6 for p in ports)))}
    return Ruleset(chains, hooks, {k: v for k, v in sets.items() if v[0] in families})


def with_chain(rules: Ruleset, family: str, table: str, chain: str, chain_rules: Sequence[str] | None) -> Ruleset:
    """``rules`` with one chain replaced (``None``: removed)."""
    chains = {key: dict(value) for key, value in rules.chains.items()}
    if chain_rules is None:
        chains[(family, table)].pop(chain)
    else:
        chains.setdefault((family, table), {})[chain] = tuple(chain_rules)
    return replace(rules, chains=chains)


def assert_same(observed: Ruleset, desired: Ruleset) -> None:
    """``observed == desired``, failing on the first differing chain with both texts."""
    for key in sorted({*observed.chains, *desired.chains}):
        have, want = observed.chains.get(key, {}), desired.chains.get(key, {})
        assert sorted(have) == sorted(want), key
        for name in want:
            assert list(have[name]) == list(want[name]), (key, name)
    assert observed.hooks == desired.hooks
    assert observed.sets == desired.sets
    assert observed == desired


def counters(ns: Netns, family: str, table: str) -> dict[tuple[str, str], int]:
    """Packet counters of every rule: (chain, rule) -> packets."""
    found = {}
    for line in ns.run([SAVE[family], "-c", "-t", table]).stdout.splitlines():
        match = re.match(r"\[(\d+):\d+\] -A (\S+) ?(.*)$", line)
        if match:
            found.setdefault((match.group(2), match.group(3)), int(match.group(1)))
    return found


class Recording(Netfilter):
    """The driver, noting which tools it ran (to show that an apply with nothing to do runs none)."""

    def __init__(self, netns: str) -> None:
        super().__init__(netns)
        self.tools: list[str] = []

    def _run(self, argv, **kwargs):  # noqa: ANN001, ANN003, ANN202
        self.tools.append(" ".join(argv))
        return super()._run(argv, **kwargs)


@pytest.fixture
def netns() -> Iterator[Netns]:
    if os.geteuid() != 0:
        pytest.skip("netfilter tests create a network namespace: they need root")
    ns = Netns().create()
    try:
        yield ns
    finally:
        ns.remove()


@pytest.fixture
def nf(netns: Netns) -> Recording:
    return Recording(netns.name)


# ---------------------------------------------------------------- observe and apply


def test_observe_an_empty_namespace(nf: Netfilter) -> None:
    assert nf.observe() == Ruleset()


def test_apply_writes_both_families_and_tables_and_observe_reads_it_back_text_for_text(nf: Recording) -> None:
    desired = hybrid()
    changes = nf.apply(desired, nf.observe())

    assert set(changes.sets_created) == {SET4, SET6}
    assert len(changes.chains_written) == 2 * (3 + 3 * len(PORTS) + 1) and not changes.chains_deleted
    assert [family for family, _ in changes.restores] == ["ipv4", "ipv6"]
    assert all(text.count("COMMIT") == 2 for _, text in changes.restores)
    assert_same(nf.observe(), desired)

    nf.tools.clear()
    again = nf.apply(desired, nf.observe())
    assert not again and again.restores == () and again.ipset_create == again.ipset_swap == again.ipset_destroy == ""
    assert nf.tools == ["iptables-save", "ip6tables-save", "ipset save"]  # the observe: no restore at all


def test_a_changed_chain_is_the_only_one_written_and_other_counters_keep_running(netns: Netns, nf: Recording) -> None:
    # A probe chain hooked on loopback traffic, so that a rule of an untouched chain counts packets.
    probe = with_chain(hybrid(), "ipv4", "filter", f"{P}lo", ["-p icmp -j RETURN"])
    probe = replace(probe, hooks={**probe.hooks, ("ipv4", "filter"): (
        *probe.hooks[("ipv4", "filter")][:1], ("INPUT", f"-i lo -j {P}lo"), *probe.hooks[("ipv4", "filter")][1:])})
    nf.apply(probe, nf.observe())
    netns.run(["ping", "-c", "3", "-i", "0.01", "-W", "1", "127.0.0.1"])
    before = counters(netns, "ipv4", "filter"), counters(netns, "ipv4", "raw")
    assert before[0][(f"{P}lo", "-p icmp -j RETURN")] == 6  # 3 requests, 3 replies

    ingress = PORTS[0].chain("i")
    changed = with_chain(probe, "ipv4", "filter", ingress,
                         [*probe.chains[("ipv4", "filter")][ingress][:-1], "-p tcp -m tcp --dport 80 -j RETURN",
                          FALLBACK])
    observed = nf.observe()
    nf.tools.clear()
    changes = nf.apply(changed, observed)

    assert nf.tools == ["iptables-restore --noflush"]  # one table of one family: no --test pass needed
    assert changes.chains_written == (("ipv4", "filter", ingress),)
    assert not (changes.chains_deleted or changes.hooks_added or changes.hooks_removed or changes.sets_swapped)
    rules = changed.chains[("ipv4", "filter")][ingress]
    assert changes.restores == (("ipv4", f"*filter\n:{ingress} - [0:0]\n"
                                 + "".join(f"-A {ingress} {rule}\n" for rule in rules) + "COMMIT\n"),)
    assert_same(nf.observe(), changed)
    after = counters(netns, "ipv4", "filter"), counters(netns, "ipv4", "raw")
    assert after[0][(f"{P}lo", "-p icmp -j RETURN")] == 6  # untouched chain: counter kept
    assert after[0][("INPUT", f"-j {P}INPUT")] == before[0][("INPUT", f"-j {P}INPUT")] > 0  # hooks untouched
    assert after[1][("PREROUTING", f"-j {P}PREROUTING")] == before[1][("PREROUTING", f"-j {P}PREROUTING")] > 0

    # The counters are not just stuck: rewriting the probe chain resets its rule's.
    rewritten = with_chain(changed, "ipv4", "filter", f"{P}lo", ["-p icmp -j RETURN", "-j RETURN"])
    assert nf.apply(rewritten, nf.observe()).chains_written == (("ipv4", "filter", f"{P}lo"),)
    assert counters(netns, "ipv4", "filter")[(f"{P}lo", "-p icmp -j RETURN")] == 0


def test_removed_chains_are_deleted_with_the_hooks_and_jumps_that_led_to_them(nf: Netfilter) -> None:
    nf.apply(hybrid(), nf.observe())
    gone = PORTS[1]
    # Port 2 goes: its chains (jumped to from sg-chain, INPUT and its own o-chain) and its FORWARD hooks.
    one_port = hybrid(PORTS[:1])
    changes = nf.apply(one_port, nf.observe())
    assert {(f, t, c) for f, t, c in changes.chains_deleted} == {
        (family, "filter", gone.chain(kind)) for family in ("ipv4", "ipv6") for kind in "ios"}
    assert {c for _, _, c in changes.chains_written} == {f"{P}sg-chain", f"{P}INPUT", f"{P}PREROUTING"}
    assert len(changes.hooks_removed) == 4 and not changes.hooks_added
    assert set(changes.sets_swapped) == {SET4, SET6}
    assert_same(nf.observe(), one_port)

    # All of IPv6 goes, including sg-chain that FORWARD's hooks jumped to directly.
    ipv4_only = hybrid(PORTS[:1], families=("ipv4",))
    changes = nf.apply(ipv4_only, nf.observe())
    assert {c for f, _, c in changes.chains_deleted if f == "ipv6"} >= {f"{P}sg-chain", f"{P}PREROUTING"}
    assert changes.sets_destroyed == (SET6,)
    assert [family for family, _ in changes.restores] == ["ipv6"]
    assert_same(nf.observe(), ipv4_only)

    assert nf.apply(Ruleset(), nf.observe()).sets_destroyed == (SET4,)
    assert nf.observe() == Ruleset()


def test_hooks_are_inserted_at_the_top_in_order_above_foreign_rules(netns: Netns, nf: Netfilter) -> None:
    netns.run(["iptables-restore", "--noflush"], input="*filter\n-A FORWARD -s 192.0.2.1/32 -j DROP\nCOMMIT\n")
    desired = hybrid(PORTS[:1], families=("ipv4",))
    nf.apply(desired, nf.observe())
    forward = [line for line in netns.run(["iptables-save", "-t", "filter"]).stdout.splitlines()
               if line.startswith("-A FORWARD")]
    assert forward[-1] == "-A FORWARD -s 192.0.2.1/32 -j DROP"  # the foreign rule stays, below ours

    two = hybrid(PORTS, families=("ipv4",))  # port 2's hooks go after port 1's, still above the foreign rule
    changes = nf.apply(two, nf.observe())
    assert [h[3] for h in changes.hooks_added] == [h[1] for h in two.hooks[("ipv4", "filter")][3:]]
    assert "-I FORWARD 3 " in changes.restores[0][1] and "-I FORWARD 4 " in changes.restores[0][1]
    assert_same(nf.observe(), two)
    forward = [line for line in netns.run(["iptables-save", "-t", "filter"]).stdout.splitlines()
               if line.startswith("-A FORWARD")]
    assert forward[-1] == "-A FORWARD -s 192.0.2.1/32 -j DROP" and len(forward) == 5


def counted(ns: Netns, family: str, table: str, chain: str, packets: int) -> None:
    """Give every rule of ``chain`` ``packets`` packets (rewritten as they are, with counters)."""
    rules = [line.split(" ", 2)[2] for line in ns.run([SAVE[family], "-t", table]).stdout.splitlines()
             if line.startswith(f"-A {chain} ")]
    restore = "iptables-restore" if family == "ipv4" else "ip6tables-restore"
    ns.run([restore, "--noflush", "--counters"], input=f"*{table}\n:{chain} - [0:0]\n" + "".join(
        f"[{packets}:{packets * 100}] -A {chain} {rule}\n" for rule in rules) + "COMMIT\n")


def test_a_port_added_or_removed_edits_the_long_shared_chains_rule_by_rule(netns: Netns, nf: Netfilter) -> None:
    ports = [port(n) for n in range(0, 80, 2)]  # 40 ports: sg-chain 81 rules, INPUT 40, PREROUTING 120
    desired = hybrid(ports, families=("ipv4",))
    nf.apply(desired, nf.observe())
    sg_chain, inputs, prerouting = f"{P}sg-chain", f"{P}INPUT", f"{P}PREROUTING"
    counted(netns, "ipv4", "filter", sg_chain, 7)

    # One port added in the middle (odd number: between two others), one at the end, one removed.
    changed = [port(n) for n in sorted({*range(0, 80, 2), 41, 99} - {10})]
    want = hybrid(changed, families=("ipv4",))
    changes = nf.apply(want, nf.observe())

    assert {c for _, _, c in changes.chains_edited} == {sg_chain, inputs, prerouting}
    assert {c for _, _, c in changes.chains_written} == {sg_chain, inputs, prerouting} | {
        p.chain(kind) for p in (port(41), port(99)) for kind in "ios"}
    text = changes.restores[0][1]
    assert f":{sg_chain} " not in text and f":{prerouting} " not in text  # not flushed and refilled
    gone = [line for line in text.splitlines() if line.startswith(f"-D {sg_chain} ")]
    assert gone == [f"-D {sg_chain} {rule}" for rule in desired.chains[("ipv4", "filter")][sg_chain]
                    if port(10).tap in rule]
    below = 2 * changed.index(port(41))  # the rules of the ports before it
    assert f"-I {sg_chain} {below + 1} " in text and f"-I {sg_chain} {below + 2} " in text
    assert f"-A {prerouting} " in text  # port 99's rules: at the end, appended
    assert_same(nf.observe(), want)
    kept = counters(netns, "ipv4", "filter")
    for rule in want.chains[("ipv4", "filter")][sg_chain]:
        new = port(41).tap in rule or port(99).tap in rule
        assert kept[(sg_chain, rule)] == (0 if new else 7), rule  # the others were never rewritten

    # Back: the edits undo each other.
    changes = nf.apply(desired, nf.observe())
    assert {c for _, _, c in changes.chains_edited} == {sg_chain, inputs, prerouting}
    assert_same(nf.observe(), desired)


def test_an_edit_from_a_stale_baseline_fails_whole_and_the_next_observe_converges(netns: Netns, nf: Netfilter) -> None:
    ports = [port(n) for n in range(40)]
    desired = hybrid(ports, families=("ipv4",))
    nf.apply(desired, nf.observe())
    sg_chain = f"{P}sg-chain"
    rules = desired.chains[("ipv4", "filter")][sg_chain]
    # Someone else deletes a rule: the baseline (what the driver last wrote) is stale.
    netns.run(["iptables-restore", "--noflush"], input=f"*filter\n-D {sg_chain} {rules[0]}\nCOMMIT\n")
    fewer = hybrid(ports[1:], families=("ipv4",))
    before = netns.run(["iptables-save", "-t", "filter"]).stdout
    with pytest.raises(NetfilterError, match="sg-chain"):
        nf.apply(fewer, desired)  # its -D of the rule already gone fails the table's transaction
    after = netns.run(["iptables-save", "-t", "filter"]).stdout
    assert [line for line in after.splitlines() if line.startswith("-A")] == [
        line for line in before.splitlines() if line.startswith("-A")]  # nothing of it was committed
    nf.apply(fewer, nf.observe())
    assert_same(nf.observe(), fewer)


# ---------------------------------------------------------------- sets


def test_a_membership_change_swaps_the_set_and_leaves_the_rules_alone(netns: Netns, nf: Recording) -> None:
    desired = hybrid()
    nf.apply(desired, nf.observe())
    members = ("10.0.0.3", "10.0.1.0/24", "10.0.0.9/32")  # the driver compares them as ipset prints them
    grown = replace(desired, sets={**desired.sets, SET4: ("ipv4", members)})
    nf.tools.clear()
    changes = nf.apply(grown, nf.observe())

    assert changes.sets_swapped == (SET4,) and not changes.sets_created and not changes.sets_destroyed
    assert changes.restores == () and not changes.chains_written
    assert nf.tools == ["iptables-save", "ip6tables-save", "ipset save", "ipset restore"]  # no restore of rules
    temp = ipset.temp_name(SET4)
    assert changes.ipset_swap.splitlines() == [
        f"create {temp} hash:net family inet -exist", f"flush {temp}", f"add {temp} 10.0.0.3",
        f"add {temp} 10.0.0.9", f"add {temp} 10.0.1.0/24", f"swap {temp} {SET4}", f"destroy {temp}"]
    assert nf.observe().sets[SET4] == ("ipv4", ("10.0.0.3", "10.0.0.9", "10.0.1.0/24"))
    assert netns.run(["ipset", "test", SET4, "10.0.1.77"], check=False).returncode == 0
    assert netns.run(["ipset", "test", SET4, PORTS[1].ip4], check=False).returncode != 0
    assert sorted(netns.run(["ipset", "list", "-n"]).stdout.split()) == sorted([SET4, SET6])  # no temporary left
    assert not nf.apply(replace(grown, sets={**grown.sets, SET4: ("ipv4", ("10.0.0.9", "10.0.0.3", "10.0.1.0/24"))}),
                        nf.observe())


def test_a_leftover_temporary_set_is_reused_or_destroyed(netns: Netns, nf: Netfilter) -> None:
    desired = hybrid(families=("ipv4",))
    nf.apply(desired, nf.observe())
    temp = ipset.temp_name(SET4)
    netns.run(["ipset", "create", temp, "hash:net", "family", "inet"])  # as if a swap was interrupted
    netns.run(["ipset", "add", temp, "192.0.2.9"])
    assert nf.apply(desired, nf.observe()).sets_destroyed == (temp,)
    netns.run(["ipset", "create", temp, "hash:net", "family", "inet"])
    changes = nf.apply(replace(desired, sets={SET4: ("ipv4", ("10.9.9.9",))}), nf.observe())
    assert changes.sets_swapped == (SET4,) and changes.sets_destroyed == ()
    assert nf.observe().sets == {SET4: ("ipv4", ("10.9.9.9",))}


def test_a_set_is_destroyed_after_the_rules_using_it_are_gone(nf: Netfilter) -> None:
    desired = hybrid(families=("ipv4",))
    without = desired
    for p in PORTS:
        ingress = p.chain("i")
        without = with_chain(without, "ipv4", "filter", ingress,
                             [r for r in without.chains[("ipv4", "filter")][ingress] if "--match-set" not in r])
    without = replace(without, sets={})
    for _ in range(5):  # the rules go and the set goes in one apply, again and again
        nf.apply(desired, nf.observe())
        changes = nf.apply(without, nf.observe())
        assert changes.sets_destroyed == (SET4,) and len(changes.chains_written) == len(PORTS)
        assert_same(nf.observe(), without)


# ---------------------------------------------------------------- errors


def test_a_bad_rule_fails_the_apply_quoting_it_and_changes_nothing(nf: Netfilter) -> None:
    desired = hybrid()
    nf.apply(desired, nf.observe())
    before = nf.observe()
    bad_rule = "-m physdev --physdev-in tapdeadbeef-00 -p tcp -m tcp --dport 99999 -j RETURN"
    bad = with_chain(desired, "ipv4", "filter", PORTS[0].chain("i"), ["-j RETURN"])  # fine, written first...
    bad = with_chain(bad, "ipv6", "raw", f"{P}PREROUTING", [bad_rule])  # ...but this one is ip6tables' last
    bad = replace(bad, sets={**bad.sets, SET4: ("ipv4", ("10.1.1.1",))})
    with pytest.raises(NetfilterError) as caught:
        nf.apply(bad, before)
    assert caught.value.line == f"-A {P}PREROUTING {bad_rule}"
    assert f"-A {P}PREROUTING {bad_rule}" in str(caught.value) and "99999" in caught.value.stderr
    assert caught.value.command == "ip6tables-restore --noflush --test" and caught.value.input is not None
    assert nf.observe() == before  # nothing written: every restore is parsed (--test) before anything


def test_a_bad_rule_in_a_one_table_change_fails_that_transaction_whole(nf: Netfilter) -> None:
    desired = hybrid(families=("ipv4",))
    nf.apply(desired, nf.observe())
    before = nf.observe()
    ingress = PORTS[1].chain("i")
    bad = with_chain(desired, "ipv4", "filter", ingress, ["-j RETURN", "-m nosuchmatch -j RETURN", FALLBACK])
    with pytest.raises(NetfilterError) as caught:
        nf.apply(bad, before)
    assert caught.value.command == "iptables-restore --noflush"  # no --test pass: the table is one transaction
    assert caught.value.line == f"-A {ingress} -m nosuchmatch -j RETURN" and "nosuchmatch" in str(caught.value)
    assert nf.observe() == before


def test_a_bad_set_member_is_quoted(nf: Netfilter) -> None:
    with pytest.raises(NetfilterError) as caught:
        nf.apply(Ruleset(sets={SET4: ("ipv4", ("10.0.0.5", "10.0.0.300"))}), nf.observe())
    assert caught.value.command == "ipset restore" and caught.value.line == f"add {SET4} 10.0.0.300"
    assert f"add {SET4} 10.0.0.300" in str(caught.value)


def test_deleting_a_chain_still_referenced_fails_that_table_only(nf: Netfilter) -> None:
    desired = hybrid(families=("ipv4",))
    nf.apply(desired, nf.observe())
    before = nf.observe()
    # sg-fallback goes while the unchanged port chains still jump to it: the kernel refuses at COMMIT.
    broken = with_chain(desired, "ipv4", "filter", f"{P}sg-fallback", None)
    broken = with_chain(broken, "ipv4", "raw", f"{P}PREROUTING", ["-j CT --zone 9"])
    with pytest.raises(NetfilterError) as caught:
        nf.apply(broken, before)
    assert caught.value.line == f"-X {P}sg-fallback" and "busy" in str(caught.value)
    assert nf.observe() == before  # filter (the failing table) untouched; raw came after it


def test_a_ruleset_the_driver_cannot_own_is_refused() -> None:
    with pytest.raises(ValueError, match="neutron-openvswi-much-too-long-chain"):
        check(Ruleset(chains={("ipv4", "filter"): {f"{P}much-too-long-chain": ()}}))
    with pytest.raises(ValueError, match="FORWARD"):
        check(Ruleset(hooks={("ipv4", "filter"): (("FORWARD", "-j ACCEPT"),)}))
    with pytest.raises(ValueError, match="mangle"):
        check(Ruleset(chains={("ipv4", "mangle"): {f"{P}x": ()}}))
    with pytest.raises(ValueError, match="other-set"):
        check(Ruleset(sets={"other-set": ("ipv4", ())}))


# ---------------------------------------------------------------- conntrack, sysctl


def insert_flow(netns: Netns, src: str, dst: str, zone: int) -> None:
    netns.run(["conntrack", "-I", "-p", "udp", "-s", src, "-d", dst, "--sport", "40000",
               "--dport", "53", "--timeout", "120", "--zone", str(zone)])


def flows(netns: Netns, family: str) -> str:
    return netns.run(["conntrack", "-L", "-f", family]).stdout


def test_delete_conntrack_by_zone_protocol_and_addresses(netns: Netns, nf: Netfilter) -> None:
    insert_flow(netns, "10.0.0.5", "10.0.0.6", 3)
    insert_flow(netns, "10.0.0.5", "10.0.0.6", 4)  # another zone: stays
    insert_flow(netns, "10.0.0.5", "10.0.0.7", 3)  # another destination: stays
    insert_flow(netns, "fd00::5", "fd00::6", 3)

    deleted = nf.delete_conntrack([ConntrackDelete("ipv4", 3, "udp", "10.0.0.5", "10.0.0.6"),
                                   ConntrackDelete("ipv6", 3, "udp", source="fd00::5")])
    assert deleted == 2
    left = flows(netns, "ipv4")
    assert "zone=4" in left and "dst=10.0.0.7" in left and left.count("udp") == 2
    assert "fd00::5" not in flows(netns, "ipv6")

    assert nf.delete_conntrack([ConntrackDelete("ipv4", 3, "udp", "10.0.0.5", "10.0.0.6")]) == 0  # gone: success
    assert nf.delete_conntrack([ConntrackDelete("ipv4", 4)]) == 1  # a whole zone
    assert nf.delete_conntrack([]) == 0


def test_delete_conntrack_of_hundreds_of_filters_deletes_exactly_what_they_match(netns: Netns, nf: Netfilter) -> None:
    """A member leaving a group: one filter per port of the group (here 200), against one dump."""
    flow = "-I -p udp -s {} -d 10.0.0.6 --sport 40000 --dport 53 --timeout 120 --zone {}\n"
    netns.run(["conntrack", "-R", "-"], input="".join(
        flow.format(f"10.0.1.{n}", zone) for n in range(1, 201) for zone in (3, 4)))
    netns.run(["conntrack", "-I", "-p", "icmp", "-s", "10.0.1.1", "-d", "10.0.0.6", "--icmp-type", "8", "--icmp-code",
               "0", "--icmp-id", "77", "--timeout", "29", "--zone", "3"])
    netns.run(["conntrack", "-I", "-p", "udp", "-s", "10.0.0.9", "-d", "8.8.8.8", "--sport", "1000", "--dport", "53",
               "-r", "8.8.8.8", "-q", "192.0.2.1", "--reply-port-src", "53", "--reply-port-dst", "1000",
               "--timeout", "120"])  # SNATed to 192.0.2.1, zone 0
    assert flows(netns, "ipv4").count("\n") == 402

    filters = [ConntrackDelete("ipv4", 3, None, f"10.0.{net}.{n}", "10.0.0.6")
               for net in (1, 2) for n in range(1, 201, 2)]
    assert nf.delete_conntrack(filters) == 100 + 1  # 100 of those sources have flows, and the ICMP flow of 10.0.1.1
    left = flows(netns, "ipv4")
    assert left.count("zone=3") == 100 and left.count("zone=4") == 200 and "icmp" not in left
    assert all(f"src=10.0.1.{n} " not in line for n in range(1, 201, 2) for line in left.splitlines()
               if "zone=3" in line)
    assert nf.delete_conntrack([ConntrackDelete("ipv4", None, reply_destination="192.0.2.1")]) == 1  # the L3 agent's
    assert "8.8.8.8" not in flows(netns, "ipv4")
    assert nf.delete_conntrack(filters) == 0  # gone: nothing, and no error


def test_delete_conntrack_reports_a_real_failure(nf: Netfilter) -> None:
    with pytest.raises(NetfilterError, match="conntrack -D"):
        nf.delete_conntrack([ConntrackDelete("ipv4", 3, "udp", "not-an-address")])


def test_ensure_bridge_netfilter_sets_the_sysctls_in_the_namespace(netns: Netns, nf: Netfilter) -> None:
    keys = ["net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables"]
    netns.run(["sysctl", "-q", "-w", *(f"{key}=0" for key in keys)])
    assert netns.run(["sysctl", "-n", *keys]).stdout.split() == ["0", "0"]
    assert nf.ensure_bridge_netfilter() is True
    assert netns.run(["sysctl", "-n", *keys]).stdout.split() == ["1", "1"]
    assert nf.ensure_bridge_netfilter() is False


def test_a_missing_namespace_fails_and_never_falls_back_to_the_callers() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    with pytest.raises(NetfilterError, match="bnf-does-not-exist"):
        Netfilter("bnf-does-not-exist").observe()


# ---------------------------------------------------------------- 200 ports


def test_200_ports_converge_a_one_chain_change_and_a_200_member_swap(netns: Netns, nf: Netfilter) -> None:
    ports = [port(n) for n in range(200)]
    desired = hybrid(ports)
    assert sum(len(c) for c in desired.chains.values()) == 2 * (3 + 3 * 200 + 1)
    nf.apply(desired, Ruleset())
    observed = nf.observe()
    assert_same(observed, desired)

    ingress = ports[100].chain("i")
    changed = with_chain(desired, "ipv4", "filter", ingress, ["-p tcp -m tcp --dport 443 -j RETURN", FALLBACK])
    assert nf.apply(changed, observed).chains_written == (("ipv4", "filter", ingress),)

    swapped = replace(changed, sets={**changed.sets, SET4: ("ipv4", tuple(f"10.1.{n // 250}.{n % 250 + 2}"
                                                                           for n in range(200)))})
    changes = nf.apply(swapped, nf.observe())
    assert changes.sets_swapped == (SET4,) and changes.restores == ()
    assert_same(nf.observe(), replace(swapped, sets={
        **swapped.sets, SET4: ("ipv4", tuple(sorted(swapped.sets[SET4][1])))}))


# ---------------------------------------------------------------- text (pure)


def test_parse_save_keeps_our_chains_and_the_hooks_into_them() -> None:
    text = "\n".join([
        "# Generated by iptables-save v1.8.9 (nf_tables)", "*filter", ":INPUT ACCEPT [0:0]",
        ":FORWARD DROP [0:0]", ":other - [0:0]", f":{P}a - [0:0]", f":{P}empty - [0:0]",
        f"-A FORWARD -j {P}a", "-A FORWARD -j other", f'-A FORWARD -m comment --comment "-j {P}a" -j ACCEPT',
        f"-A other -j {P}a", f'-A {P}a -m comment --comment "it\\\'s" -j RETURN', f"-A {P}a", "COMMIT", "*nat",
        ":PREROUTING ACCEPT [0:0]", "COMMIT"])
    assert parse_save(text) == {
        "filter": ({f"{P}a": ('-m comment --comment "it\\\'s" -j RETURN', ""), f"{P}empty": ()},
                   (("FORWARD", f"-j {P}a"),)),
        "nat": ({}, ())}
    assert target(f'-m comment --comment "a -j b" -g {P}x') == f"{P}x"


@pytest.mark.parametrize(("want", "have", "removes", "inserts"), [
    ("abc", "abc", "", []),
    ("abc", "", "", [(1, "a"), (2, "b"), (3, "c")]),
    ("abc", "ac", "", [(2, "b")]),
    ("ac", "abc", "b", []),
    ("abcd", "bd", "", [(1, "a"), (3, "c")]),
    ("ab", "ba", "ba", [(1, "a"), (2, "b")]),  # out of order: all reinserted
    ("ab", "abx", "x", []),
    ("aa", "a", "", [(2, "a")]),
])
def test_hook_edits(want: str, have: str, removes: str, inserts: list[tuple[int, str]]) -> None:
    assert hook_edits(list(want), list(have)) == (list(removes), inserts)


def _rules(text: str) -> list[str]:
    """A chain of ``EDIT_MIN_RULES`` filler rules with the letters of ``text`` spliced in at their places."""
    return [f"-j X{i}" for i in range(EDIT_MIN_RULES)] + list(text)


@pytest.mark.parametrize(("want", "have", "edits"), [
    (_rules("ab"), _rules("ab"), ([], [])),  # equal: nothing
    (_rules("ab"), _rules("a"), ([], [(EDIT_MIN_RULES + 2, "b")])),  # added at the end
    (_rules("ab"), _rules("b"), ([], [(EDIT_MIN_RULES + 1, "a")])),  # inserted
    (_rules("a"), _rules("ab"), (["b"], [])),  # removed
    (_rules("ac"), _rules("ab"), (["b"], [(EDIT_MIN_RULES + 2, "c")])),  # replaced
    (["a", *_rules("")], _rules(""), ([], [(1, "a")])),  # at the top
    (_rules("ba"), _rules("ab"), (["a", "b"], [(EDIT_MIN_RULES + 1, "b"), (EDIT_MIN_RULES + 2, "a")])),  # reordered
    (_rules("")[::-1], _rules(""), None),  # all reordered: as many edits as rules
    (["x", *_rules(""), "y"], ["x", *_rules("")[1:], "z", "-j X0"], None),
    (["x", *_rules("ab"), "y"], ["x", *_rules("a"), "c", "y"], (["c"], [(EDIT_MIN_RULES + 3, "b")])),  # in the middle
    (_rules("a"), _rules("abb"), None),  # a rule to delete is there twice: -D takes the first, maybe one to keep
    (_rules("a"), _rules("aab"), None),
    (_rules("aa"), _rules("aab"), (["b"], [])),  # a duplicate kept whole is no ambiguity
    (list("ab"), list("a"), None),  # a short chain: rewritten
    (_rules("")[:EDIT_MIN_RULES - 2] + ["a"], _rules("")[:EDIT_MIN_RULES - 2], None),  # one rule short of it
    (_rules("")[:EDIT_MIN_RULES - 1] + ["a"], _rules("")[:EDIT_MIN_RULES - 1] + ["b"],
     (["b"], [(EDIT_MIN_RULES, "a")])),
    # 20 edits in a chain of 42 rules; 22 in one of 43: as many as half its rules, rewritten
    (_rules("abcdefghij"), _rules("ABCDEFGHIJ"),
     (list("ABCDEFGHIJ"), [(EDIT_MIN_RULES + i + 1, c) for i, c in enumerate("abcdefghij")])),
    (_rules("abcdefghijk"), _rules("ABCDEFGHIJK"), None),
])
def test_chain_edits(want: list[str], have: list[str], edits: tuple | None) -> None:
    assert chain_edits(want, have) == edits


def _replayed(have: list[str], removes: list[str], inserts: list[tuple[int, str]]) -> list[str]:
    """What netfilter makes of the edits: ``-D`` deletes the first equal rule, ``-I N`` inserts at N."""
    chain = list(have)
    for rule in removes:
        chain.remove(rule)
    for position, rule in inserts:
        chain.insert(position - 1, rule)
    return chain


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from([f"-j X{i}" for i in range(60)] + list("abc")), max_size=90),
       st.lists(st.tuples(st.integers(0, 90), st.sampled_from(["drop", "add", "move"]),
                          st.sampled_from(list("abcde")))))
def test_chain_edits_turn_have_into_want_whatever_the_change(have: list[str], changes: list) -> None:
    want = list(have)
    for index, kind, rule in changes:
        if kind == "drop" and want:
            want.pop(index % len(want))
        elif kind == "add":
            want.insert(index % (len(want) + 1), rule)
        elif want:
            want.insert(index % len(want), want.pop(index % len(want)))
    edits = chain_edits(want, have)
    if edits is not None:
        assert _replayed(have, *edits) == want
        assert len(want) >= EDIT_MIN_RULES and 2 * (len(edits[0]) + len(edits[1])) < len(want)


def test_diff_edits_a_long_chain_appending_past_its_end_and_rewrites_a_short_one() -> None:
    long, short = f"{P}long", f"{P}short"
    have = Ruleset({("ipv4", "filter"): {long: tuple(_rules("ab")), short: ("-j X0", "-j X1")}})
    want = Ruleset({("ipv4", "filter"): {long: tuple(_rules("acd")), short: ("-j X0",)}})
    changes = diff(want, have)
    assert changes.chains_written == (("ipv4", "filter", long), ("ipv4", "filter", short))
    assert changes.chains_edited == (("ipv4", "filter", long),)
    assert changes.restores == (("ipv4", f"*filter\n:{short} - [0:0]\n-A {short} -j X0\n-D {long} b\n"
                                         f"-A {long} c\n-A {long} d\nCOMMIT\n"),)
    inserted = Ruleset({("ipv4", "filter"): {long: tuple(_rules("xab")), short: ("-j X0", "-j X1")}})
    assert diff(inserted, have).restores == (("ipv4", f"*filter\n-I {long} {EDIT_MIN_RULES + 1} x\nCOMMIT\n"),)


def test_set_text() -> None:
    assert [ipset.member(m) for m in ("10.0.0.5/32", "10.0.0.5", "10.0.0.5/24", "FD00::5/128", "fd00::5/64")] == [
        "10.0.0.5", "10.0.0.5", "10.0.0.0/24", "fd00::5", "fd00::/64"]
    assert len(ipset.temp_name("NIPv4" + "x" * 26)) == 31
    saved = ("create NIPv6a hash:net family inet6 hashsize 1024 maxelem 65536\nadd NIPv6a fd00::2\n"
             "create other hash:ip family inet\nadd other 10.0.0.1\n")
    assert ipset.parse_save(saved) == {"NIPv6a": ("ipv6", ("fd00::2",))}
    assert conntrack.delete_argv(ConntrackDelete("ipv6", 5, "udp", None, "fd00::1")) == [
        "conntrack", "-D", "-f", "ipv6", "--zone", "5", "-p", "udp", "-d", "fd00::1"]


@settings(max_examples=300, deadline=None)
@given(st.ip_addresses(), st.sampled_from(["{}", "{}/32", "{}/128", "{}/24", "{}/64", " {}", "::ffff:{}", "{}%eth0"]),
       st.booleans())
def test_set_members_are_compared_as_ipset_prints_them_whatever_their_spelling(address, form: str, upper: bool) -> None:
    text = form.format(address.exploded.upper() if upper else str(address))
    try:
        net = ipaddress.ip_network(text, strict=False)
        printed = str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)
    except ValueError:
        printed = text  # unparsable: left as it is
    assert ipset.member(text) == printed


def test_diff_of_equal_rulesets_is_empty() -> None:
    desired = hybrid()
    assert not diff(desired, desired)
