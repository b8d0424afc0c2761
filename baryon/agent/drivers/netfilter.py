"""Netfilter of one node: iptables/ip6tables, ipset, conntrack and the bridge sysctls (the only
code of the agents that runs ``iptables-save``/``-restore``, ``ipset``, ``sysctl``, or deletes
conntrack entries).

``Netfilter(netns=None, scope=FIREWALL)``: the commands act on the network namespace they run in. The agent runs
inside its node's namespace, so in production ``netns`` is None and commands run as they are;
tests pass the name of a throwaway namespace and every command is prefixed with ``nsenter
--net=/run/netns/<netns> --`` (as ``baryon.lab.host.Place`` does; ~1.5 ms cheaper per command
than ``ip netns exec``, which also remounts /sys), and the ctnetlink socket is opened in it
(``baryon.agent.drivers.netlink.in_namespaces``). A missing namespace fails the command: it never
falls back to the caller's.

``Scope``: what a driver instance owns and reads: its tables, the prefixes of its chains'
names, its families, whether it manages ipsets. ``FIREWALL`` (the default) is the hybrid
firewall's: tables filter and raw, ``neutron-openvswi-`` chains, both families, ipsets. The L3
agent uses one per router namespace with the nat table, IPv4, chains ``neutron-l3-agent-*`` and
``neutron-postrouting-bottom``, no ipsets (``baryon.agent.plan.l3_nat.SCOPE``). Below, "our"
chains are those of the scope.

- ``observe() -> Ruleset``: ``iptables-save`` and ``ip6tables-save`` (every table, one process
  per family; the "filter" and "raw" tables are kept) and ``ipset save``. Kept: the chains named
  ``CHAIN_PREFIX...`` with their rules as printed, without the ``-A CHAIN`` head; as hooks, the
  rules of built-in chains (those with a policy) whose target (``-j``/``-g``) is one of our
  chains, in order; the sets named ``NIPv4...``/``NIPv6...`` (``baryon.agent.drivers.ipset``).
  Only non-empty (family, table) entries appear.
- ``apply(desired, observed) -> Changes``: makes netfilter match ``desired``, writing only what
  differs from ``observed`` (``diff``, pure); nothing runs when nothing differs. In order:
  1. Sets, before the rules that use them: ONE ``ipset restore`` creating the new sets, filled
     (no rule uses them yet); every restore of step 2 checked with ``--test`` (see Atomicity);
     ONE ``ipset restore`` replacing the changed sets atomically (temporary set, ``swap``,
     ``destroy``).
  2. Per family, ONE ``iptables-restore --noflush`` (``ip6tables-restore``), per table
     (``*filter`` ... ``COMMIT``, ``*raw`` ... ``COMMIT``): ``:CHAIN - [0:0]`` for new chains and
     for chains whose rules differ (with --noflush a declaration flushes the chain), then their
     full rule lists; but a long chain (``EDIT_MIN_RULES`` rules or more: the shared chains that
     list every port) that a few edits turn into the desired one is edited rule by rule instead
     (``-D CHAIN rule``, then ``-I CHAIN pos rule`` or ``-A CHAIN rule`` at its end;
     ``chain_edits``); hooks no longer wanted removed (``-D BUILTIN rule``) and missing ones
     inserted at the top in order (``-I BUILTIN pos rule``); last, our chains no longer wanted
     flushed (``-F``) and deleted (``-X``), once every rule that jumped to them is gone (rewritten
     or edited chains and removed hooks come first in the same transaction). Chains whose rules
     are equal are not touched, nor the rules an edit keeps: their counters keep running.
  3. ONE ``ipset restore`` destroying our sets no longer wanted (after the rules using them).
  Returns ``Changes`` (what was written, deleted, swapped, and the texts sent).
- ``delete_conntrack(entries) -> int``: the entries matching any of the filters, as ``conntrack
  -D`` would match them, deleted over ctnetlink: one dump per family, then one delete message per
  matching entry (by its tuple, zone and id), sent in batches; an entry already gone is no error.
  Returns how many entries were deleted (``baryon.agent.drivers.conntrack``).
- ``ensure_bridge_netfilter() -> bool``: ``net.bridge.bridge-nf-call-iptables`` and ``-ip6tables``
  set to 1 in this namespace (per namespace; the hybrid driver needs them); True if it wrote.

Atomicity: each table of a restore is one transaction (iptables-nft commits at each ``COMMIT``):
a rule rejected in ``*raw`` leaves the ``*filter`` part of the same restore applied, and the
ipv6 restore runs after the ipv4 one. So when an apply commits more than one table, or swaps sets
ahead of its rules, it first runs every restore with ``--test`` (parsed, nothing committed): a
rule that does not parse (unknown match, bad port, a set that does not exist...) fails the apply
before any rule is written or any set swapped; only the new sets, which ``--test`` needs to exist
and no rule uses, are there already (the next apply fills or destroys them). A change of one
table alone (the usual one-port change) skips ``--test``: its transaction is all or nothing
anyway (``--test`` costs as much as the restore: ~16 ms for a one-chain change among 200 ports).
Errors that only the kernel finds at commit (deleting a chain that an unchanged chain still jumps
to) fail that table alone; the next apply, from a fresh observe, converges. So does an edit made
from a baseline that is no longer true (someone deleted a rule that an edit deletes): the table's
transaction fails whole, nothing of it is written.
(Measured with 1,000 ports, ~61,000 rules: each restore costs 30-100 ms whatever it holds, for
iptables-nft reads the table first; a port added or removed is ~70 edit lines instead of ~16,000
rules rewritten, 0.2-0.3 s instead of ~1 s with the ``--test`` passes.)

Errors raise ``NetfilterError`` with the command and its stderr; for a rejected restore line the
message quotes that line of the input (and ``input`` holds the whole input).

Hooks: Baryon's hooks live at the top of each built-in chain. Edits keep the hooks that are still
wanted and in order and insert the missing ones at their position; when the kept ones are out of
order, all our hooks of that chain are removed and reinserted. A foreign rule inserted above our
hooks can cost one such reinsertion.

NOTE: compare "as printed". iptables-save (1.8.9, nf_tables) prints rules in a canonical form
that often differs from what was written, and a desired rule in another form is rewritten on every
apply (``diff`` cannot know they are equal). Written -> printed, as measured here:
``-p tcp --dport 22`` -> ``-p tcp -m tcp --dport 22`` (implicit matches made explicit);
``-s 10.0.0.5`` -> ``-s 10.0.0.5/32``; ``-s fd00::5/64`` -> ``-s fd00::/64`` (host bits cleared,
IPv6 lower case); ``--mac-source FA:16:3E:..`` -> ``fa:16:3e:..``; ``-p 6`` -> ``-p tcp``; ``-p icmpv6``
and ``-p 58`` -> ``-p ipv6-icmp``; ``--icmp-type echo-request`` -> ``--icmp-type 8``; ``--state
ESTABLISHED,RELATED`` -> ``RELATED,ESTABLISHED``; options reordered (addresses, then ``-p``, then
matches in order, then the target); ``-p all`` and ``--dport 0:65535`` dropped; a comment
without spaces loses its quotes, and ``'`` inside a quoted comment is printed ``\\'``. ``-m state``
stays ``-m state`` (not turned into ``-m conntrack``). The printed form restores to itself.

NOTE: ``diff`` compares hooks per built-in chain and set members as ``ipset`` prints them, so a
ruleset converges whatever its hooks' order across built-in chains or its members' spelling; for
``observe() == desired`` to hold as well, list hooks in the order iptables-save prints built-in
chains (filter: INPUT, FORWARD, OUTPUT; raw: PREROUTING, OUTPUT) and members in printed form,
sorted as strings.
"""

from __future__ import annotations

import errno
import itertools
import os
import re
import socket
import subprocess
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from baryon.agent.drivers import conntrack, ipset, netlink
from baryon.model.firewall import (CHAIN_PREFIX, FAMILIES, FIREWALL, MAX_CHAIN_LEN, TABLES, ConntrackDelete,
                                   Ruleset, Scope)

__all__ = ["FIREWALL", "TABLES", "Changes", "Netfilter", "NetfilterError", "Scope", "chain_edits", "check", "diff",
           "hook_edits", "parse_save", "target"]
DEFAULT_TIMEOUT = 60.0
CONNTRACK_BATCH = 256  # delete messages sent at once (their acknowledgements must fit the socket's buffer)
NETLINK_BUFSIZE = 1 << 18
EDIT_MIN_RULES = 32  # a chain of fewer rules is rewritten whole when it changes (``chain_edits``)
BRIDGE_SYSCTLS = ("net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables")
_SAVE = {"ipv4": "iptables-save", "ipv6": "ip6tables-save"}
_RESTORE = {"ipv4": "iptables-restore", "ipv6": "ip6tables-restore"}
# "Error occurred at line: 7" (parse), "line 2: CHAIN_DEL failed (...)" (commit), "line 7 failed" (legacy)
_ERROR_LINE = re.compile(r"\bline:? (\d+)")
_QUOTED = re.compile(r'"(?:\\.|[^"\\])*"')  # a double-quoted word as iptables-save prints it (\" and \' inside)

_SEQ = itertools.count(1)
Key = tuple[str, str]  # (family, table)
Chains = Mapping[str, Sequence[str]]


class NetfilterError(RuntimeError):
    """A netfilter command failed: ``command`` (argv as text), ``stderr``; for a restore, its
    ``input`` and the rejected ``line`` of it (when the tool named one)."""

    def __init__(self, message: str, *, command: str, stderr: str = "", input: str | None = None,
                 line: str | None = None) -> None:
        super().__init__(message)
        self.command = command
        self.stderr = stderr
        self.input = input
        self.line = line


@dataclass(frozen=True)
class Changes:
    """What ``apply`` changed (or would: ``diff``). Chains as (family, table, chain), hooks as
    (family, table, builtin chain, rule); ``chains_written`` every chain whose rules were written,
    of which ``chains_edited`` were edited rule by rule (``-D``/``-I``) rather than flushed and
    refilled; ``restores`` the iptables-restore inputs by family;
    ``ipset_create``/``ipset_swap``/``ipset_destroy`` the ipset restore inputs ("" when not run)."""

    chains_written: tuple[tuple[str, str, str], ...] = ()
    chains_deleted: tuple[tuple[str, str, str], ...] = ()
    chains_edited: tuple[tuple[str, str, str], ...] = ()  # those of chains_written edited rule by rule
    hooks_added: tuple[tuple[str, str, str, str], ...] = ()
    hooks_removed: tuple[tuple[str, str, str, str], ...] = ()
    sets_created: tuple[str, ...] = ()
    sets_swapped: tuple[str, ...] = ()
    sets_destroyed: tuple[str, ...] = ()
    restores: tuple[tuple[str, str], ...] = ()
    ipset_create: str = ""
    ipset_swap: str = ""
    ipset_destroy: str = ""

    def __bool__(self) -> bool:
        return bool(self.restores or self.ipset_create or self.ipset_swap or self.ipset_destroy)


class Netfilter:
    def __init__(self, netns: str | None = None, *, timeout: float = DEFAULT_TIMEOUT,
                 scope: Scope = FIREWALL) -> None:
        self.netns = netns
        self.timeout = timeout
        self.scope = scope
        self._prefix = ["nsenter", f"--net=/run/netns/{netns}", "--"] if netns else []

    # ------------------------------------------------------------ iptables + ipset

    def observe(self) -> Ruleset:
        """Our chains, hooks and sets, as the tools print them (see the module doc)."""
        chains: dict[Key, dict[str, tuple[str, ...]]] = {}
        hooks: dict[Key, tuple[tuple[str, str], ...]] = {}
        scope = self.scope
        # One table: ``-t`` spares the dump of the others (the L3 agent reads one per router).
        only = ["-t", scope.tables[0]] if len(scope.tables) == 1 else []
        for family in scope.families:
            tables = parse_save(self._run([_SAVE[family], *only]).stdout, scope.prefixes)
            for table in scope.tables:
                owned, hooked = tables.get(table, ({}, ()))
                if owned:
                    chains[(family, table)] = owned
                if hooked:
                    hooks[(family, table)] = hooked
        sets = ipset.parse_save(self._run(["ipset", "save"]).stdout) if scope.ipsets else {}
        return Ruleset(chains=chains, hooks=hooks, sets=sets)

    def apply(self, desired: Ruleset, observed: Ruleset) -> Changes:
        """Make netfilter match ``desired``, writing only what differs from ``observed``."""
        changes = diff(desired, observed, self.scope)
        self._ipset_restore(changes.ipset_create)
        if _transactions(changes) > 1 or (changes.ipset_swap and changes.restores):
            for family, text in changes.restores:  # parse every rule before writing any
                self._restore(family, text, test=True)
        self._ipset_restore(changes.ipset_swap)
        for family, text in changes.restores:
            self._restore(family, text)
        self._ipset_restore(changes.ipset_destroy)
        return changes

    def _restore(self, family: str, text: str, *, test: bool = False) -> None:
        argv = [_RESTORE[family], "--noflush", *(["--test"] if test else [])]
        try:
            self._run(argv, stdin=text)
        except NetfilterError as exc:
            raise _quoted(exc, text) from None

    def _ipset_restore(self, text: str) -> None:
        if not text:
            return
        try:
            self._run(["ipset", "restore"], stdin=text)
        except NetfilterError as exc:
            raise _quoted(exc, text) from None

    # ------------------------------------------------------------ conntrack, sysctl

    def delete_conntrack(self, entries: Sequence[ConntrackDelete]) -> int:
        """Delete the conntrack entries matching any of ``entries``; how many were deleted. Over
        ctnetlink: one dump per family concerned, then the matching entries deleted by their
        tuple, in batches of ``CONNTRACK_BATCH`` messages (see ``baryon.agent.drivers.conntrack``)."""
        for entry in entries:
            if entry.family not in FAMILIES:
                raise ValueError(f"conntrack delete: unknown family {entry.family!r}")
        try:
            filters = conntrack.compile_deletes(entries)
        except ValueError as exc:
            raise NetfilterError(str(exc), command="conntrack delete") from None
        if not filters:
            return 0
        where = f" (in namespace {self.netns})" if self.netns else ""
        try:
            sock = self._conntrack_socket()
        except OSError as exc:
            raise NetfilterError(f"conntrack delete{where}: {exc}", command="conntrack delete") from None
        try:
            total = 0
            for family in sorted({f[0] for f in filters}):
                found = conntrack.select(self._conntrack_dump(sock, family), [f for f in filters if f[0] == family])
                total += self._conntrack_delete(sock, found)
            return total
        except OSError as exc:
            raise NetfilterError(f"conntrack delete{where}: {exc}", command="conntrack delete") from None
        finally:
            sock.close()

    def _conntrack_socket(self) -> socket.socket:
        if self.netns is None:
            sock = _netfilter_socket()
        else:
            sock = netlink.in_namespaces([f"/run/netns/{self.netns}"], _netfilter_socket)[0]
            if sock is None:
                raise OSError(errno.ENOENT, f"no network namespace {self.netns}")
        sock.settimeout(self.timeout)
        return sock

    @staticmethod
    def _conntrack_dump(sock: socket.socket, family: str) -> list[conntrack.Entry]:
        sock.send(conntrack.dump_request(family, next(_SEQ)))
        entries: list[conntrack.Entry] = []
        done = False
        while not done:
            found, done = conntrack.parse_entries(sock.recv(NETLINK_BUFSIZE))
            entries += found
        return entries

    @staticmethod
    def _conntrack_delete(sock: socket.socket, entries: Sequence[conntrack.Entry]) -> int:
        """Delete ``entries`` by their tuple; how many were (ENOENT: already gone, not counted)."""
        deleted = 0
        for start in range(0, len(entries), CONNTRACK_BATCH):
            batch = {next(_SEQ): entry for entry in entries[start:start + CONNTRACK_BATCH]}
            sock.send(b"".join(conntrack.delete_request(entry, seq) for seq, entry in batch.items()))
            while batch:
                for seq, code in conntrack.parse_acks(sock.recv(NETLINK_BUFSIZE)):
                    if batch.pop(seq, None) is None:
                        continue
                    if code == 0:
                        deleted += 1
                    elif code != errno.ENOENT:
                        raise OSError(code, f"conntrack delete: {os.strerror(code)}")
        return deleted

    def ensure_bridge_netfilter(self) -> bool:
        """Bridged traffic through iptables/ip6tables in this namespace; True if it had to write."""
        values = self._run(["sysctl", "-n", *BRIDGE_SYSCTLS]).stdout.split()
        if values == ["1"] * len(BRIDGE_SYSCTLS):
            return False
        self._run(["sysctl", "-q", "-w", *(f"{key}=1" for key in BRIDGE_SYSCTLS)])
        return True

    # ------------------------------------------------------------ commands

    def _run(self, argv: Sequence[str], *, stdin: str | None = None,
             ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
        command = " ".join(argv)
        try:
            proc = subprocess.run([*self._prefix, *argv], input=stdin, capture_output=True, text=True,
                                  timeout=self.timeout, check=False)
        except FileNotFoundError:
            raise NetfilterError(f"{argv[0]}: command not found", command=command) from None
        except subprocess.TimeoutExpired:
            raise NetfilterError(f"{command}: no answer in {self.timeout:g} s", command=command) from None
        if proc.returncode not in ok:
            stderr = _strip_help(proc.stderr)
            where = f" (in namespace {self.netns})" if self.netns else ""
            raise NetfilterError(f"{command}{where}: {stderr or f'exit {proc.returncode}'}", command=command,
                                 stderr=stderr)
        return proc


def _netfilter_socket() -> socket.socket:
    """A NETLINK_NETFILTER socket in the calling thread's namespace."""
    return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, conntrack.NETLINK_NETFILTER)


# ---------------------------------------------------------------- text (pure)


def parse_save(text: str, prefixes: tuple[str, ...] = (CHAIN_PREFIX,),
               ) -> dict[str, tuple[dict[str, tuple[str, ...]], tuple[tuple[str, str], ...]]]:
    """``iptables-save`` output -> {table: (our chains {name: rules}, hooks ((builtin, rule), ...))};
    ours: the chains whose names start with one of ``prefixes``."""
    tables: dict[str, tuple[dict[str, list[str]], list[tuple[str, str]]]] = {}
    chains: dict[str, list[str]] = {}
    hooks: list[tuple[str, str]] = []
    builtins: set[str] = set()
    for line in text.splitlines():
        if line.startswith("*"):
            chains, hooks, builtins = {}, [], set()
            tables[line[1:].strip()] = (chains, hooks)
        elif line.startswith(":"):
            name, policy = (line[1:].split() + ["-"])[:2]
            if policy != "-":
                builtins.add(name)
            elif name.startswith(prefixes):
                chains[name] = []
        elif line.startswith("-A "):
            _, chain, rule = (line.split(" ", 2) + [""])[:3]
            if chain in chains:
                chains[chain].append(rule)
            elif chain in builtins and (target(rule) or "").startswith(prefixes):
                hooks.append((chain, rule))
    return {table: ({name: tuple(rules) for name, rules in owned.items()}, tuple(hooked))
            for table, (owned, hooked) in tables.items()}


def target(rule: str) -> str | None:
    """The rule's ``-j``/``-g`` target (the last one; text inside double quotes is skipped)."""
    words = _QUOTED.sub('""', rule).split()
    found = None
    for word, following in zip(words, words[1:]):
        if word in ("-j", "--jump", "-g", "--goto"):
            found = following
    return found


def diff(desired: Ruleset, observed: Ruleset, scope: Scope = FIREWALL) -> Changes:
    """What ``apply`` writes to go from ``observed`` to ``desired`` (see the module doc)."""
    check(desired, scope)
    written: list[tuple[str, str, str]] = []
    edited: list[tuple[str, str, str]] = []
    deleted: list[tuple[str, str, str]] = []
    added: list[tuple[str, str, str, str]] = []
    removed: list[tuple[str, str, str, str]] = []
    restores: list[tuple[str, str]] = []
    for family in scope.families:
        text = ""
        for table in scope.tables:
            key = (family, table)
            lines, edits = _table_edits(desired.chains.get(key, {}), observed.chains.get(key, {}),
                                        desired.hooks.get(key, ()), observed.hooks.get(key, ()))
            if lines:
                text += f"*{table}\n" + "".join(f"{line}\n" for line in lines) + "COMMIT\n"
            written += [(family, table, chain) for chain in edits[0]]
            edited += [(family, table, chain) for chain in edits[4]]
            deleted += [(family, table, chain) for chain in edits[1]]
            added += [(family, table, builtin, rule) for builtin, rule in edits[2]]
            removed += [(family, table, builtin, rule) for builtin, rule in edits[3]]
        if text:
            restores.append((family, text))
    want = {name: _members(value, observed.sets.get(name)) for name, value in desired.sets.items()}
    new = {name: value for name, value in want.items() if name not in observed.sets}
    changed = {name: value for name, value in want.items()
               if name in observed.sets and tuple(observed.sets[name]) != value}
    temps = {ipset.temp_name(name) for name in changed}
    gone = [name for name in observed.sets if name not in want and name not in temps]
    return Changes(chains_written=tuple(written), chains_deleted=tuple(deleted), chains_edited=tuple(edited),
                   hooks_added=tuple(added),
                   hooks_removed=tuple(removed), sets_created=tuple(new), sets_swapped=tuple(changed),
                   sets_destroyed=tuple(gone), restores=tuple(restores),
                   ipset_create=ipset.create_script(new), ipset_swap=ipset.swap_script(changed),
                   ipset_destroy=ipset.destroy_script(gone))


def check(desired: Ruleset, scope: Scope = FIREWALL) -> None:
    """Refuse a ruleset the driver could never converge to (it would rewrite it on every apply, or
    never delete it again); ValueError naming the offenders."""
    bad: list[str] = []
    for (family, table), chains in desired.chains.items():
        if family not in scope.families or table not in scope.tables:
            bad.append(f"table {family}/{table}")
        bad += [f"chain {name!r}" for name in chains if not scope.owns(name) or len(name) > MAX_CHAIN_LEN]
    for (family, table), hooks in desired.hooks.items():
        if family not in scope.families or table not in scope.tables:
            bad.append(f"hooks of table {family}/{table}")
        bad += [f"hook {builtin} {rule!r} (its target is not one of our chains)" for builtin, rule in hooks
                if not scope.owns(target(rule) or "") or scope.owns(builtin)]
    bad += [f"set {name!r}" for name, (family, _) in desired.sets.items()
            if not scope.ipsets or not ipset.ours(name) or len(name) > ipset.MAX_SET_LEN
            or family not in scope.families]
    if bad:
        raise ValueError("netfilter: not a ruleset Baryon can own: " + "; ".join(bad))


def _members(value: tuple[str, Sequence[str]], have: tuple[str, Sequence[str]] | None) -> tuple[str, tuple[str, ...]]:
    """A desired set as ``ipset`` prints it: as it is when equal to what is observed (which is in that
    form, or is what was last written), else each member in printed form, sorted.
    NOTE: printing 1,000 members anew (ipaddress) cost more than the rest of a diff."""
    family, members = value[0], tuple(value[1])
    if have is not None and have[0] == family and tuple(have[1]) == members:
        return family, members
    return family, tuple(sorted({ipset.member(m) for m in members}))


def _table_edits(want: Chains, have: Chains, want_hooks: Sequence[tuple[str, str]],
                 have_hooks: Sequence[tuple[str, str]]) -> tuple[list[str], tuple[list, list, list, list, list]]:
    """One table's restore lines and (chains written, chains deleted, hooks added, hooks removed,
    chains of those written that are edited rule by rule)."""
    write: list[str] = []
    edits: dict[str, tuple[list[str], list[tuple[int, str]]]] = {}
    for name, rules in want.items():
        if name not in have:
            write.append(name)
        elif tuple(have[name]) != tuple(rules):
            write.append(name)
            found = chain_edits(rules, have[name])
            if found is not None:
                edits[name] = found
    delete = [name for name in have if name not in want]
    lines = [f":{name} - [0:0]" for name in write if name not in edits]
    lines += [f"-A {name} {rule}".rstrip() for name in write if name not in edits for rule in want[name]]
    for name, (removes, inserts) in edits.items():
        lines += [f"-D {name} {rule}" for rule in removes]
        length = len(have[name]) - len(removes)
        for position, rule in inserts:
            # NOTE: at the end, an append: no position to check against the chain's length
            lines.append(f"-A {name} {rule}" if position > length else f"-I {name} {position} {rule}")
            length += 1
    added: list[tuple[str, str]] = []
    removed: list[tuple[str, str]] = []
    hook_inserts: list[str] = []
    for builtin in _ordered(b for b, _ in [*want_hooks, *have_hooks]):
        removes, adds = hook_edits([r for b, r in want_hooks if b == builtin],
                                   [r for b, r in have_hooks if b == builtin])
        lines += [f"-D {builtin} {rule}" for rule in removes]
        hook_inserts += [f"-I {builtin} {position} {rule}" for position, rule in adds]
        removed += [(builtin, rule) for rule in removes]
        added += [(builtin, rule) for _, rule in adds]
    lines += hook_inserts
    lines += [f"-F {name}" for name in delete] + [f"-X {name}" for name in delete]
    return lines, (write, delete, added, removed, list(edits))


def chain_edits(want: Sequence[str], have: Sequence[str]) -> tuple[list[str], list[tuple[int, str]]] | None:
    """Turn one of our chains' rules ``have`` into ``want`` rule by rule: the rules to delete
    (``-D CHAIN rule``), then the (1-based position, rule) to insert, in that order (``hook_edits``
    of the part between the rules both begin and end with); None when the chain is better flushed
    and refilled: it is short (under ``EDIT_MIN_RULES`` rules), the edits are not fewer than half
    its rules, or a rule to delete is in the chain more than once (``-D`` takes the first, which
    may be one to keep).

    NOTE: the shared chains (FORWARD, INPUT, sg-chain, raw PREROUTING) hold two or three rules
    per port: with 1,000 ports a port added or removed rewrote ~16,000 rules (0.5 s of
    iptables-restore), where its own few edits cost about as much as one short chain."""
    if len(want) < EDIT_MIN_RULES:
        return None
    # NOTE: only the part between the rules both lists begin and end with is compared (the chains
    # hold thousands of rules, a change a few): its edits, their positions shifted past the head.
    head = 0
    while head < len(want) and head < len(have) and want[head] == have[head]:
        head += 1
    tail = 0
    while tail < len(want) - head and tail < len(have) - head and want[-1 - tail] == have[-1 - tail]:
        tail += 1
    removes, inserts = hook_edits(want[head:len(want) - tail], have[head:len(have) - tail])
    if 2 * (len(removes) + len(inserts)) >= len(want):
        return None
    if "" in removes or "" in (rule for _, rule in inserts):
        return None  # a rule with nothing to match it by (``-A CHAIN`` alone) cannot be deleted by its text
    if removes:
        counts = Counter(have)
        if any(counts[rule] > 1 for rule in removes):
            return None
    return removes, [(head + position, rule) for position, rule in inserts]


def hook_edits(want: Sequence[str], have: Sequence[str]) -> tuple[list[str], list[tuple[int, str]]]:
    """Turn a built-in chain's hooks ``have`` (in order, at the top) into ``want``: the rules to
    delete (``-D``), then the (1-based position, rule) to insert (``-I``), in that order."""
    if list(want) == list(have):
        return [], []
    pending = Counter(want)
    kept: list[str] = []
    removes: list[str] = []
    for rule in have:
        if pending[rule] > 0:
            pending[rule] -= 1
            kept.append(rule)
        else:
            removes.append(rule)
    if not _subsequence(kept, want):  # out of order: remove ours, reinsert all
        removes, kept = list(have), []
    inserts: list[tuple[int, str]] = []
    next_kept = 0
    for position, rule in enumerate(want, 1):
        if next_kept < len(kept) and kept[next_kept] == rule:
            next_kept += 1
        else:
            inserts.append((position, rule))
    return removes, inserts


def _subsequence(part: Sequence[str], whole: Sequence[str]) -> bool:
    rest = iter(whole)
    return all(any(item == other for other in rest) for item in part)


def _ordered(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _transactions(changes: Changes) -> int:
    """How many table transactions the restores of ``changes`` commit (one per ``COMMIT``)."""
    return sum(text.count("\nCOMMIT\n") for _, text in changes.restores)


def _strip_help(stderr: str) -> str:
    return "\n".join(line for line in stderr.strip().splitlines()
                     if line.strip() and not line.startswith("Try `")).strip()


def _quoted(exc: NetfilterError, text: str) -> NetfilterError:
    """``exc`` with the input line the tool rejected quoted, when it named one."""
    lines = text.splitlines()
    match = _ERROR_LINE.search(exc.stderr)
    number = int(match.group(1)) if match else 0
    line = lines[number - 1] if 0 < number <= len(lines) else None
    message = str(exc) + (f"\n  input line {number}: {line}" if line is not None else "")
    return NetfilterError(message, command=exc.command, stderr=exc.stderr, input=text, line=line)
