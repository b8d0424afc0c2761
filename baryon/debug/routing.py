"""What a router namespace does to a packet: its nat table and its route lookup, read (pure).

Input: ``iptables-save -t nat`` and ``ip -j route get`` output from a ``qrouter-`` namespace
(``baryon.debug.trace`` runs them). The nat table is walked as netfilter walks it for the first
packet of a connection, rule by rule from a built-in chain through the jumps, with the matches
the L3 agent writes (``baryon.agent.plan.l3_nat``): ``[!] -s/-d NET``, ``[!] -i/-o DEV``, ``-p``,
``-m conntrack [!] --ctstate DNAT``, ``-m comment``; targets ``SNAT``/``DNAT`` (``--to-source``,
``--to-destination``), ``ACCEPT``, ``RETURN``, a user chain. A rule with any other match is
never taken, and is listed in ``NatResult.skipped`` so that the trace says so.

- ``parse_save(text) -> dict[chain, list[rule text]]``: the rules of each chain of one table, in order.
- ``walk(chains, hook, packet) -> NatResult``: the rule that decides (its chain and text) and the
  translation (``SNAT``/``DNAT`` and the address), or no translation.
- ``parse_route_get(text) -> Route``: the route ``ip -j route get`` picked (device, gateway,
  type), or the error the kernel gave.
"""

from __future__ import annotations

import ipaddress
import json
import shlex
from dataclasses import dataclass, field

BUILTINS = ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING")
MAX_DEPTH = 16


@dataclass(frozen=True)
class NatPacket:
    src: str
    dst: str
    protocol: str
    in_dev: str | None  # None: generated in the namespace
    out_dev: str | None  # None: not routed yet (PREROUTING)
    dnat: bool = False  # the connection's destination was translated (conntrack's DNAT state)


@dataclass(frozen=True)
class NatResult:
    target: str | None  # "SNAT" | "DNAT" | "ACCEPT" | None (fell off the chains: no translation)
    address: str | None  # the new source (SNAT) or destination (DNAT)
    chain: str | None  # the chain of the deciding rule
    rule: str | None  # the deciding rule, as iptables-save prints it (without "-A CHAIN")
    skipped: tuple[str, ...] = field(default=())  # rules with matches this reader does not understand

    @property
    def translated(self) -> bool:
        return self.target in ("SNAT", "DNAT")


@dataclass(frozen=True)
class Route:
    dev: str | None
    gateway: str | None
    type: str  # "unicast", "local", "unreachable", "error"...
    error: str | None = None


def parse_save(text: str) -> dict[str, list[str]]:
    chains: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.startswith(":"):
            chains.setdefault(line[1:].split()[0], [])
        elif line.startswith("-A "):
            _, chain, *rest = line.split(" ", 2)
            chains.setdefault(chain, []).append(rest[0] if rest else "")
    return chains


def walk(chains: dict[str, list[str]], hook: str, packet: NatPacket) -> NatResult:
    skipped: list[str] = []
    result = _walk(chains, hook, packet, skipped, 0)
    if result is None:
        return NatResult(None, None, None, None, tuple(skipped))
    return NatResult(*result, skipped=tuple(skipped))


def _walk(chains: dict[str, list[str]], chain: str, packet: NatPacket, skipped: list[str],
          depth: int) -> tuple[str, str | None, str, str] | None:
    if depth > MAX_DEPTH:
        return None
    for rule in chains.get(chain, []):
        parsed = _parse_rule(rule)
        if parsed is None:
            skipped.append(f"-A {chain} {rule}")
            continue
        conditions, target, argument = parsed
        if not all(_holds(cond, packet) for cond in conditions):
            continue
        if target in ("SNAT", "DNAT"):
            return target, _address(argument), chain, rule
        if target == "ACCEPT":
            return "ACCEPT", None, chain, rule
        if target == "RETURN":
            return None
        if target in chains:
            found = _walk(chains, target, packet, skipped, depth + 1)
            if found is not None:
                return found
    return None


def _address(argument: str | None) -> str | None:
    """``10.0.0.5``, ``10.0.0.5:80``, ``10.0.0.5-10.0.0.9`` -> the first address."""
    if not argument:
        return None
    return argument.split("-")[0].split(":")[0]


_FLAGS_WITHOUT_VALUE = {"--random-fully", "--random", "--persistent"}


def _parse_rule(rule: str) -> tuple[list[tuple[str, bool, str]], str, str | None] | None:
    """(conditions (option, negated, value), target, target argument), or None if not understood."""
    try:
        words = shlex.split(rule)
    except ValueError:
        return None
    conditions: list[tuple[str, bool, str]] = []
    target, argument = "", None
    negate = False
    i = 0
    while i < len(words):
        word = words[i]
        if word == "!":
            negate = True
            i += 1
            continue
        if word in ("-s", "-d", "-i", "-o", "-p", "--ctstate") and i + 1 < len(words):
            conditions.append((word, negate, words[i + 1]))
            i += 2
        elif word == "-m" and i + 1 < len(words) and words[i + 1] in ("conntrack", "comment"):
            i += 2
        elif word == "--comment" and i + 1 < len(words):
            i += 2
        elif word == "-j" and i + 1 < len(words):
            target = words[i + 1]
            i += 2
        elif word in ("--to-source", "--to-destination") and i + 1 < len(words):
            argument = words[i + 1]
            i += 2
        elif word in _FLAGS_WITHOUT_VALUE:
            i += 1
        else:
            return None
        negate = False
    return (conditions, target, argument) if target else None


def _holds(condition: tuple[str, bool, str], packet: NatPacket) -> bool:
    option, negated, value = condition
    if option in ("-s", "-d"):
        address = ipaddress.ip_address(packet.src if option == "-s" else packet.dst)
        try:
            result = address in ipaddress.ip_network(value, strict=False)
        except ValueError:
            result = False
    elif option in ("-i", "-o"):
        device = packet.in_dev if option == "-i" else packet.out_dev
        result = device is not None and _dev_match(value, device)
    elif option == "-p":
        result = value == packet.protocol
    else:  # --ctstate
        states = set(value.split(","))
        result = "DNAT" in states and packet.dnat
    return result != negated


def _dev_match(pattern: str, device: str) -> bool:
    return device.startswith(pattern[:-1]) if pattern.endswith("+") else device == pattern


def parse_route_get(text: str, error: str = "") -> Route:
    try:
        routes = json.loads(text) if text.strip() else []
    except ValueError:
        routes = []
    if not routes:
        return Route(None, None, "error", error.strip() or "no route")
    route = routes[0]
    return Route(route.get("dev"), route.get("gateway"), route.get("type", "unicast"))
