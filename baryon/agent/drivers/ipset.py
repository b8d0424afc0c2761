"""ipset text for the netfilter driver (pure): what ``ipset save`` prints, what ``ipset restore`` reads.

Baryon's sets are Neutron's: ``NIPv4<id>`` / ``NIPv6<id>``, type ``hash:net``, family ``inet`` or
``inet6``, one member per remote-group address. ``baryon.agent.drivers.netfilter`` runs the
commands; this module only parses and renders their text.

- ``parse_save(text)``: ``ipset save`` output -> ``{name: (family, members)}`` for our sets only
  (names starting with ``SET_PREFIXES``), members sorted as ``ipset`` prints them.
- ``member(text)``: a member as ``ipset`` prints it back: a host without its full-length prefix
  (``10.0.0.5``, not ``10.0.0.5/32``), a network with its host bits cleared (``10.0.0.0/24``),
  IPv6 compressed and lower case. The driver compares desired members in this form, so a planner
  that writes ``10.0.0.5/32`` does not make every apply swap the set.
- ``create_script(new)``: the ``ipset restore`` input that creates the new sets with their members.
- ``swap_script(changed)``: the ``ipset restore`` input that replaces each changed set atomically:
  a temporary set is created (``-exist``: a leftover from an interrupted run is reused) and
  flushed, filled, ``swap``ped with the live set (rules referencing the set see the old members,
  then the new ones, never an empty set), and destroyed.
- ``destroy_script(names)``: the ``ipset restore`` input that destroys sets.

NOTE: the temporary set of ``NAME`` is ``temp_name(NAME)``: ``NAME`` cut to 27 characters plus
``-new`` (set names are limited to 31 characters; Neutron, whose suffix is ``-n``, cuts its names
to 29 instead). It starts with the live set's prefix, so a temporary left by a run killed between
``create`` and ``destroy`` is observed as one of our sets that is not desired and destroyed by the
next apply.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Mapping

SET_PREFIXES = ("NIPv4", "NIPv6")
SET_TYPE = "hash:net"
MAX_SET_LEN = 31
TEMP_SUFFIX = "-new"
_IPSET_FAMILY = {"ipv4": "inet", "ipv6": "inet6"}
_FAMILY = {v: k for k, v in _IPSET_FAMILY.items()}

Sets = Mapping[str, tuple[str, tuple[str, ...]]]  # name -> (family "ipv4"|"ipv6", members)


def ours(name: str) -> bool:
    return name.startswith(SET_PREFIXES)


def temp_name(name: str) -> str:
    return name[:MAX_SET_LEN - len(TEMP_SUFFIX)] + TEMP_SUFFIX


def member(text: str) -> str:
    """``text`` (an address or a network) as ``ipset`` prints it back; unparsable text unchanged.
    NOTE: a plain address is printed by ``socket.inet_ntop`` (as ``ipaddress`` prints it but for
    IPv6 addresses holding an IPv4 one, left to ``ipaddress``): ~50 times faster, for sets of
    1,000 members compared on every change."""
    if "/" not in text:
        for af in (socket.AF_INET, socket.AF_INET6):
            try:
                printed = socket.inet_ntop(af, socket.inet_pton(af, text))
            except (OSError, ValueError):
                continue
            if af == socket.AF_INET or "." not in printed:
                return printed
            break
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return text
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


def parse_save(text: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Our sets in ``ipset save`` (or ``ipset list -o save``) output, members sorted."""
    families: dict[str, str] = {}
    members: dict[str, list[str]] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) < 3 or not ours(words[1]):
            continue
        if words[0] == "create":
            family = words[words.index("family") + 1] if "family" in words[3:-1] else "inet"
            families[words[1]] = _FAMILY.get(family, family)
            members.setdefault(words[1], [])
        elif words[0] == "add":
            members.setdefault(words[1], []).append(words[2])
    return {name: (families.get(name, "ipv4"), tuple(sorted(members[name]))) for name in families}


def create_script(new: Sets) -> str:
    """``ipset restore`` input creating the ``new`` sets, filled."""
    lines: list[str] = []
    for name, (family, entries) in new.items():
        lines.append(f"create {name} {SET_TYPE} family {_IPSET_FAMILY[family]}")
        lines += _adds(name, entries)
    return "".join(f"{line}\n" for line in lines)


def swap_script(changed: Sets) -> str:
    """``ipset restore`` input replacing each of the ``changed`` sets by way of a temporary set."""
    lines: list[str] = []
    for name, (family, entries) in changed.items():
        temp = temp_name(name)
        lines += [f"create {temp} {SET_TYPE} family {_IPSET_FAMILY[family]} -exist", f"flush {temp}"]
        lines += _adds(temp, entries)
        lines += [f"swap {temp} {name}", f"destroy {temp}"]
    return "".join(f"{line}\n" for line in lines)


def destroy_script(names: Iterable[str]) -> str:
    return "".join(f"destroy {name}\n" for name in names)


def _adds(name: str, entries: Iterable[str]) -> list[str]:
    return [f"add {name} {entry}" for entry in entries]
