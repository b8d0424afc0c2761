"""A node's netfilter state as the firewall planner wants it and the drivers find it (pure).

The hybrid iptables firewall (Neutron's ``OVSHybridIptablesFirewallDriver``) filters each VM
port's traffic on the port's own Linux bridge ``qbr<id>`` (physdev matches on ``tap<id>``), in
the node's network namespace. The planner (``baryon.agent.plan.firewall``) renders a
``Ruleset`` from the host view; the driver (``baryon.agent.drivers.netfilter``) makes the
node's netfilter match it, writing only what differs:

- ``chains``: for each (family, table) — family "ipv4" (iptables) or "ipv6" (ip6tables), table
  "filter" or "raw" — the chains Baryon owns, each with its rules in order, as
  ``iptables-save`` prints them without the "-A CHAIN" head (e.g. ``-m state --state
  RELATED,ESTABLISHED -j RETURN``). Owned chains are named with the prefix ``neutron-openvswi-``
  as Neutron's (e.g. ``neutron-openvswi-i3f2a1b2c-4``), at most 28 characters.
- ``hooks``: for each (family, table), the rules Baryon puts at the top of the built-in chains
  (``FORWARD``, ``INPUT``, ``PREROUTING``...) to jump into its own chains, as
  (builtin chain, rule) pairs.
- ``sets``: ipset sets of remote-group members (``NIPv4<group id prefix>`` / ``NIPv6...``, at
  most 31 characters, Neutron's names), each with its family and members, sorted.

The driver applies, in one ``iptables-restore --noflush`` per family (atomic per table): chains
that differ are declared (which flushes them) and refilled; new chains created; chains Baryon
owns that are no longer wanted flushed and deleted last; hooks inserted when missing. Sets are
replaced atomically (``ipset restore`` into a temporary set, then ``swap``) before the rules
that use them, and destroyed after the rules that used them are gone. Conntrack entries that a
removed rule allowed are deleted (``conntrack_deletes``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

CHAIN_PREFIX = "neutron-openvswi-"  # Neutron's wrapper prefix for the OVS agent's iptables chains
MAX_CHAIN_LEN = 28
MAX_SET_LEN = 31
FAMILIES = ("ipv4", "ipv6")
TABLES = ("filter", "raw")


@dataclass(frozen=True)
class Scope:
    """The part of a namespace's netfilter one netfilter driver owns and reads: its tables, the
    prefixes of its chains' names, its families, whether it manages ipsets. ``FIREWALL`` is the
    hybrid firewall's; the L3 agent has its own (``baryon.agent.plan.l3_nat.SCOPE``)."""

    tables: tuple[str, ...] = TABLES
    prefixes: tuple[str, ...] = (CHAIN_PREFIX,)  # a chain is ours if its name starts with one of these
    families: tuple[str, ...] = FAMILIES
    ipsets: bool = True

    def owns(self, chain: str) -> bool:
        return chain.startswith(self.prefixes)


FIREWALL = Scope()


@dataclass(frozen=True, order=True)
class ConntrackDelete:
    """Delete conntrack entries in ``zone`` matching these fields (None: any), as Neutron does
    when a rule that allowed them goes away."""

    family: str  # ipv4 | ipv6
    zone: int | None  # None: any zone (the L3 agent's router namespaces use none)
    protocol: str | None = None  # tcp, udp, icmp, or a number
    source: str | None = None  # an address (the port's, for egress; the remote's, for ingress)
    destination: str | None = None
    reply_destination: str | None = None  # the reply direction's destination (an SNAT's address)


@dataclass(frozen=True)
class Ruleset:
    chains: dict[tuple[str, str], dict[str, tuple[str, ...]]] = field(default_factory=dict)
    hooks: dict[tuple[str, str], tuple[tuple[str, str], ...]] = field(default_factory=dict)
    sets: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)  # name -> (family, members)
