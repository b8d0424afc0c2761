"""Prefix arithmetic for subnet pools: pure functions over ``ipaddress`` networks; no I/O.

Contract (Neutron's ``SubnetAllocator`` and ``SubnetPoolReader``, with sets of addresses held as
sorted, disjoint, inclusive integer ranges instead of netaddr's ``IPSet``):
- ``compact(prefixes)``: the fewest CIDRs covering exactly the union of ``prefixes`` (overlapping
  and adjacent ones merged), in address order: what a pool stores and shows.
- ``available(prefixes, allocated)``: the pool's free space as CIDRs, the smallest blocks (longest
  prefixes) first and in address order among equals: Neutron's order of preference, which keeps
  large blocks whole for large requests.
- ``allocate_any(prefixes, allocated, prefixlen)``: the first ``/prefixlen`` of the first free
  block that can hold one (best fit), or None when none can.
- ``allocate_specific(prefixes, allocated, cidr)``: whether ``cidr`` lies wholly in free space.
- ``quota_units(prefixlen, version)``: what a subnet counts against a pool's ``default_quota``:
  addresses for IPv4, /64s for IPv6.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Span = tuple[int, int]  # inclusive first, last address as integers

DEFAULT_MIN_PREFIXLEN = {4: 8, 6: 64}
MAX_PREFIXLEN = {4: 32, 6: 128}
QUOTA_UNIT = {4: 32, 6: 64}


def _spans(nets: Iterable[IPNetwork]) -> list[Span]:
    """The union of ``nets`` as sorted, disjoint, non-adjacent ranges."""
    spans = sorted((int(n.network_address), int(n.broadcast_address)) for n in nets)
    merged: list[Span] = []
    for first, last in spans:
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def _subtract(spans: list[Span], taken: list[Span]) -> list[Span]:
    result: list[Span] = []
    for first, last in spans:
        cursor = first
        for t_first, t_last in taken:
            if t_last < cursor or t_first > last:
                continue
            if t_first > cursor:
                result.append((cursor, t_first - 1))
            cursor = max(cursor, t_last + 1)
        if cursor <= last:
            result.append((cursor, last))
    return result


def _cidrs(spans: list[Span], version: int) -> list[IPNetwork]:
    address = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    return [net for first, last in spans
            for net in ipaddress.summarize_address_range(address(first), address(last))]


def compact(prefixes: Iterable[IPNetwork]) -> list[IPNetwork]:
    nets = list(prefixes)
    if not nets:
        return []
    return _cidrs(_spans(nets), nets[0].version)


def overlaps(a: Iterable[IPNetwork], b: Iterable[IPNetwork]) -> bool:
    return _intersect(_spans(a), _spans(b))


def _intersect(a: list[Span], b: list[Span]) -> bool:
    return any(x_first <= y_last and y_first <= x_last for x_first, x_last in a for y_first, y_last in b)


def covers(outer: Iterable[IPNetwork], inner: Iterable[IPNetwork]) -> bool:
    """Whether every address of ``inner`` is in ``outer``."""
    return not _subtract(_spans(inner), _spans(outer))


def available(prefixes: Iterable[IPNetwork], allocated: Iterable[IPNetwork]) -> list[IPNetwork]:
    nets = list(prefixes)
    if not nets:
        return []
    free = _cidrs(_subtract(_spans(nets), _spans(allocated)), nets[0].version)
    return sorted(free, key=lambda n: -n.prefixlen)  # stable: address order among equals


def allocate_any(prefixes: Iterable[IPNetwork], allocated: Iterable[IPNetwork], prefixlen: int) -> IPNetwork | None:
    for block in available(prefixes, allocated):
        if block.prefixlen <= prefixlen:
            return next(block.subnets(new_prefix=prefixlen))
    return None


def allocate_specific(prefixes: Iterable[IPNetwork], allocated: Iterable[IPNetwork], cidr: IPNetwork) -> bool:
    return any(cidr.subnet_of(block) for block in available(prefixes, allocated)  # type: ignore[arg-type]
               if block.version == cidr.version)


def quota_units(prefixlen: int, version: int) -> float:
    return 2.0 ** (QUOTA_UNIT[version] - prefixlen)  # an IPv6 /65 is half a unit, as in Neutron
