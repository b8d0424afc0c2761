"""``HybridFirewall.sync``: what reaches netfilter, and when netfilter is read again to repair
what someone else changed (``repair_due``), against an in-memory netfilter that applies a diff
as the real driver does (only what differs from the baseline it is given is written)."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from baryon.agent.drivers.netfilter import Changes, diff
from baryon.agent.firewall import OBSERVE_INTERVAL, HybridFirewall, repair_due
from baryon.agent.plan.firewall import port_chain, render
from baryon.model.firewall import ConntrackDelete, Ruleset
from baryon.model.host import GroupMembers, HostView, Port, Rule, SecurityGroup

NET = "aaaaaaaa-0000-4000-8000-00000000000a"
ZONES = {NET: 3}
GROUP = SecurityGroup("d0000000-0000-4000-8000-0000000000d1", (
    Rule("r1", "ingress", "IPv4", None, None, None, None, "d0000000-0000-4000-8000-0000000000d1"),
    Rule("r2", "egress", "IPv4", None, None, None, None, None)))


def port(n: int) -> Port:
    return Port(f"a{n:07d}-0000-4000-8000-000000000000", NET, f"fa:16:3e:00:00:{n:02x}", (f"10.0.0.{n + 10}",),
                "compute:nova", True, True, (GROUP.id,))


def view(*ns: int, etag: str = "") -> HostView:
    ports = tuple(port(n) for n in ns)
    return HostView("compute1", ports=ports, security_groups=(GROUP,), etag=etag or f"e{ns}",
                    group_members=(GroupMembers(GROUP.id, tuple(sorted(a for p in ports for a in p.fixed_ips))),))


class MemoryNetfilter:
    """Netfilter in memory: ``apply`` writes what ``diff`` finds between desired and the baseline
    it is given (as the driver does), so a baseline that is not the truth leaves the truth wrong."""

    def __init__(self) -> None:
        self.state = Ruleset()
        self.fail_next = False
        self.deleted: list[tuple[ConntrackDelete, ...]] = []

    def observe(self) -> Ruleset:
        return self.state

    def apply(self, desired: Ruleset, observed: Ruleset) -> Changes:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("iptables-restore: line 2 failed")
        changes = diff(desired, observed)
        chains = {key: dict(value) for key, value in self.state.chains.items()}
        for family, table, chain in changes.chains_written:
            chains.setdefault((family, table), {})[chain] = desired.chains[(family, table)][chain]
        for family, table, chain in changes.chains_deleted:
            chains.get((family, table), {}).pop(chain, None)
        sets = {**{k: v for k, v in self.state.sets.items() if k not in changes.sets_destroyed},
                **{k: desired.sets[k] for k in (*changes.sets_created, *changes.sets_swapped)}}
        self.state = Ruleset(chains, dict(desired.hooks), sets)
        return changes

    def ensure_bridge_netfilter(self) -> bool:
        return False

    def tamper(self, chain: str) -> None:
        """Someone else deletes one of our chains."""
        chains = {key: dict(value) for key, value in self.state.chains.items()}
        chains[("ipv4", "filter")].pop(chain)
        self.state = replace(self.state, chains=chains)


@pytest.mark.parametrize(("applied", "changed", "waited", "due"), [
    (False, False, 0.0, True), (False, True, 0.0, True),  # nothing known: read
    (True, False, 0.0, False), (True, True, 0.0, False),  # just read: trust what was written
    (True, False, OBSERVE_INTERVAL - 0.1, False), (True, True, OBSERVE_INTERVAL - 0.1, False),
    (True, False, OBSERVE_INTERVAL, True),  # due, and nothing else to do: read
    (True, True, OBSERVE_INTERVAL, False),  # due, but a change waits: not now
    (True, True, 2 * OBSERVE_INTERVAL - 0.1, False),
    (True, True, 2 * OBSERVE_INTERVAL, True), (True, False, 2 * OBSERVE_INTERVAL, True),  # overdue: read anyway
    (True, True, float("inf"), True),
])
def test_repair_due(applied: bool, changed: bool, waited: float, due: bool) -> None:
    assert repair_due(applied, changed, waited) is due


def test_changes_trust_what_was_written_and_the_repair_comes_in_a_quiet_run_or_when_overdue() -> None:
    now = [0.0]
    nf = MemoryNetfilter()
    fw = HybridFirewall(nf, clock=lambda: now[0])  # type: ignore[arg-type]
    fw.sync(view(1), ZONES)
    assert nf.state == render(view(1), ZONES)

    nf.tamper(port_chain(port(1).id, "i"))
    now[0] = 10.0
    fw.sync(view(1, 2), ZONES)  # a change: written against what was last written
    assert port_chain(port(2).id, "i") in nf.state.chains[("ipv4", "filter")]
    assert nf.state != render(view(1, 2), ZONES)  # port 1's chain is still missing
    now[0] = OBSERVE_INTERVAL + 1
    fw.sync(view(1, 2), ZONES)  # nothing to write, and a read is due: it goes beside the loop
    finish_read(fw)
    fw.sync(view(1, 2), ZONES)  # the run the read's end wakes: repaired
    assert nf.state == render(view(1, 2), ZONES)

    nf.tamper(port_chain(port(2).id, "i"))
    now[0] = 2 * OBSERVE_INTERVAL + 1.5  # due again, but every run brings a change: no read
    fw.sync(view(1, 2, 3), ZONES)
    assert port_chain(port(2).id, "i") not in nf.state.chains[("ipv4", "filter")]
    now[0] = 3 * OBSERVE_INTERVAL + 1  # twice the interval: read with the change
    fw.sync(view(1, 3), ZONES)
    assert nf.state == render(view(1, 3), ZONES)


def finish_read(fw: HybridFirewall) -> None:
    assert fw.reading is not None, "a periodic read should be in flight"
    assert fw.reading.done.wait(5)


class GatedNetfilter(MemoryNetfilter):
    """A netfilter whose reads wait for ``gate`` once ``gated`` is set (a slow iptables-save)."""

    def __init__(self) -> None:
        super().__init__()
        self.gated = False
        self.gate = threading.Event()
        self.reads = 0

    def observe(self) -> Ruleset:
        if self.gated:
            assert self.gate.wait(5)
        self.reads += 1
        return super().observe()


def test_a_change_during_the_periodic_read_is_written_at_once_and_the_stale_read_dropped() -> None:
    now = [0.0]
    nf = GatedNetfilter()
    woken = threading.Event()
    fw = HybridFirewall(nf, clock=lambda: now[0])  # type: ignore[arg-type]
    fw.start(woken.set)
    fw.sync(view(1), ZONES)
    assert nf.reads == 1  # the first run reads in the run

    nf.gated = True
    nf.tamper(port_chain(port(1).id, "i"))
    now[0] = OBSERVE_INTERVAL + 1
    fw.sync(view(1), ZONES)  # quiet: the read starts beside the loop and blocks
    assert fw.reading is not None and not fw.reading.done.is_set()
    fw.sync(view(1, 2), ZONES)  # a change meanwhile: written without waiting for the read
    assert port_chain(port(2).id, "i") in nf.state.chains[("ipv4", "filter")]
    nf.gate.set()
    finish_read(fw)
    assert woken.is_set()  # the read's end wakes the loop
    fw.sync(view(1, 2), ZONES)  # the read began before that write: dropped, not a repair
    assert port_chain(port(1).id, "i") not in nf.state.chains[("ipv4", "filter")]
    assert fw.reading is not None  # still quiet and due: read again
    finish_read(fw)
    fw.sync(view(1, 2), ZONES)
    assert nf.state == render(view(1, 2), ZONES)
    assert fw.reading is None and fw.observed_at == OBSERVE_INTERVAL + 1
    fw.sync(view(1, 2), ZONES)  # just read: no other read
    assert fw.reading is None and nf.reads == 3
    fw.stop()


def test_a_failed_apply_makes_the_next_run_read_netfilter() -> None:
    nf = MemoryNetfilter()
    fw = HybridFirewall(nf, clock=lambda: 0.0)  # type: ignore[arg-type]
    fw.sync(view(1), ZONES)
    nf.tamper(port_chain(port(1).id, "o"))
    nf.fail_next = True
    with pytest.raises(RuntimeError):
        fw.sync(view(1, 2), ZONES)
    assert fw.applied is None and fw.rule_count == 0
    fw.sync(view(1, 2), ZONES)  # the retry reads netfilter, though no time has passed
    assert nf.state == render(view(1, 2), ZONES)
    assert fw.rule_count == sum(len(rules) for chains in nf.state.chains.values() for rules in chains.values()) + sum(
        len(hooks) for hooks in nf.state.hooks.values())


def test_conntrack_deletes_are_queued_for_a_changed_view_only() -> None:
    nf = MemoryNetfilter()
    fw = HybridFirewall(nf, clock=lambda: 0.0)  # type: ignore[arg-type]
    fw.sync(view(1, 2), ZONES)
    fw.sync(view(1, 2), ZONES)  # the same view again: nothing
    assert fw._deletes.empty()
    fw.sync(view(1), ZONES)  # port 2 gone: its entries and those it allowed
    assert fw._deletes.get_nowait() == (
        ConntrackDelete("ipv4", 3, None, None, "10.0.0.12"), ConntrackDelete("ipv4", 3, None, "10.0.0.12", None))
    assert fw._deletes.empty()
