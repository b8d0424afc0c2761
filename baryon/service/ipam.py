"""IPAM rules: pure functions over ``ipaddress`` objects; no I/O, no clock, no globals.

Contract:
- ``default_gateway(net)``: the first host address (Neutron's default).
- ``default_pools(net, gateway)``: every usable address of the CIDR except the gateway, as
  ordered inclusive (first, last) ranges. IPv4 excludes the network and broadcast addresses
  (except for /31 and /32); IPv6 excludes only the subnet-router anycast address (the first).
- ``validate_pools(net, pools, gateway)`` raises the error Neutron raises for an invalid pool, a
  pool outside the CIDR, overlapping pools, or a gateway inside a pool.
- ``candidates(pools, taken, limit)`` yields free addresses in pool order; ``choose`` picks one:
  the first for ``prefer_first`` (DHCP ports, as Neutron), otherwise one at random among the
  first ``window`` free ones, so that concurrent creators rarely collide (a collision is caught
  by the database's unique key and retried).
- ``eui64(prefix, mac)``: the SLAAC address of a MAC in a /64.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable, Iterator, Sequence

from baryon.service import errors

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Range = tuple[IPAddress, IPAddress]

IPV6_SLAAC_MODES = ("slaac", "dhcpv6-stateless")
IPV6_MODES = ("slaac", "dhcpv6-stateful", "dhcpv6-stateless")


def cidr_problem(raw: str) -> str | None:
    """Why ``raw`` is not a CIDR as neutron-lib's ``validate_subnet`` sees it, or None.

    Host bits are allowed (``10.0.0.1/24`` is normalised to ``10.0.0.0/24``, as Neutron does);
    a netmask instead of a prefix length, a missing prefix, or an IPv6 zone id is not."""
    if not isinstance(raw, str) or "/" not in raw or "%" in raw:
        return f"'{raw}' is not a valid IP subnet"
    try:
        net = ipaddress.ip_network(raw, strict=False)
    except ValueError:
        return f"'{raw}' is not a valid IP subnet"
    prefix = raw.rpartition("/")[2]
    if not (prefix.isascii() and prefix.isdigit()):
        return f"'{raw}' isn't a recognized IP subnet cidr, '{net}' is recommended"
    return None


def parse_cidr(raw: str) -> IPNetwork:
    """A CIDR as Neutron accepts it (see ``cidr_problem``), normalised to its network address."""
    problem = cidr_problem(raw)
    if problem:
        raise errors.InvalidInput(error_message=problem)
    return ipaddress.ip_network(raw, strict=False)


def usable_bounds(net: IPNetwork) -> Range:
    """First and last address a port may hold (before removing the gateway)."""
    if net.version == 4 and net.prefixlen <= 30:
        return net.network_address + 1, net.broadcast_address - 1
    if net.version == 6 and net.prefixlen <= 126:
        return net.network_address + 1, net.broadcast_address
    return net.network_address, net.broadcast_address


def default_gateway(net: IPNetwork) -> IPAddress:
    first, _ = usable_bounds(net)
    return first


def default_pools(net: IPNetwork, gateway: IPAddress | None) -> list[Range]:
    first, last = usable_bounds(net)
    if gateway is None or not first <= gateway <= last:
        return [(first, last)] if first <= last else []
    pools: list[Range] = []
    if gateway > first:
        pools.append((first, gateway - 1))
    if gateway < last:
        pools.append((gateway + 1, last))
    return pools


def fmt_pool(pool: Range) -> str:
    return f"{pool[0]}-{pool[1]}"


def parse_pools(net: IPNetwork, raw: Iterable[dict]) -> list[Range]:
    """``[{"start": ..., "end": ...}]`` -> ranges, each one checked on its own."""
    pools: list[Range] = []
    for item in raw:
        start, end = item.get("start"), item.get("end")
        try:
            first, last = ipaddress.ip_address(start), ipaddress.ip_address(end)  # type: ignore[arg-type]
        except ValueError:
            raise errors.InvalidAllocationPool(pool=f"{start}-{end}") from None
        if first.version != net.version or last.version != net.version or first > last:
            raise errors.InvalidAllocationPool(pool=f"{start}-{end}")
        pools.append((first, last))
    return pools


def validate_pools(net: IPNetwork, pools: Sequence[Range], gateway: IPAddress | None) -> None:
    first, last = usable_bounds(net)
    for pool in pools:
        # NOTE: as Neutron, a pool may not hold the network address (IPv4's, or IPv6's subnet-router
        # anycast address) nor the IPv4 broadcast address: the bounds a port may hold.
        if pool[0] not in net or pool[1] not in net or pool[0] < first or pool[1] > last:
            raise errors.OutOfBoundsAllocationPool(pool=fmt_pool(pool), subnet_cidr=str(net))
    ordered = sorted(pools)
    for a, b in zip(ordered, ordered[1:]):
        if b[0] <= a[1]:
            raise errors.OverlappingAllocationPools(pool_1=fmt_pool(a), pool_2=fmt_pool(b), subnet_cidr=str(net))
    if gateway is not None:
        for pool in pools:
            if pool[0] <= gateway <= pool[1]:
                raise errors.GatewayConflictWithAllocationPools(ip_address=str(gateway), pool=fmt_pool(pool))


def in_pools(pools: Sequence[Range], address: IPAddress) -> bool:
    return any(first <= address <= last for first, last in pools)


def pool_size(pools: Sequence[Range]) -> int:
    return sum(int(last) - int(first) + 1 for first, last in pools)


def candidates(pools: Sequence[Range], taken: set[int], limit: int) -> Iterator[int]:
    """Free addresses (as ints) in pool order, at most ``limit`` of them."""
    found = 0
    for first, last in pools:
        value, end = int(first), int(last)
        while value <= end:
            if value not in taken:
                yield value
                found += 1
                if found >= limit:
                    return
            value += 1


def choose(pools: Sequence[Range], taken: set[int], *, prefer_first: bool, rng: random.Random,
           window: int = 100) -> int | None:
    if prefer_first:
        return next(candidates(pools, taken, 1), None)
    free = list(candidates(pools, taken, window))
    return rng.choice(free) if free else None


def to_address(value: int, version: int) -> IPAddress:
    """An int as an address of the given family (``ip_address(5)`` alone would be IPv4)."""
    return ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value)


def sample(pools: Sequence[Range], rng: random.Random, count: int) -> list[int]:
    """Up to ``count`` distinct addresses drawn uniformly from the pools (for probing a large,
    sparse pool without reading every allocation)."""
    total = pool_size(pools)
    picks: dict[int, None] = {}
    for _ in range(min(count, total) * 2):
        if len(picks) >= count:
            break
        offset = rng.randrange(total)
        for first, last in pools:
            size = int(last) - int(first) + 1
            if offset < size:
                picks[int(first) + offset] = None
                break
            offset -= size
    return list(picks)


def eui64(prefix: ipaddress.IPv6Network, mac: str) -> ipaddress.IPv6Address:
    octets = [int(part, 16) for part in mac.split(":")]
    octets[0] ^= 0x02
    iid = octets[:3] + [0xFF, 0xFE] + octets[3:]
    return ipaddress.IPv6Address(int(prefix.network_address) | int.from_bytes(bytes(iid), "big"))


def is_auto_address_subnet(ip_version: int, ipv6_address_mode: str | None, ipv6_ra_mode: str | None) -> bool:
    return ip_version == 6 and (ipv6_address_mode in IPV6_SLAAC_MODES or ipv6_ra_mode in IPV6_SLAAC_MODES)


def validate_ipv6_modes(ra_mode: str | None, address_mode: str | None) -> None:
    """Neutron's rule: when both are set they must be equal."""
    if ra_mode and address_mode and ra_mode != address_mode:
        raise errors.InvalidInput(
            error_message=f"ipv6_ra_mode set to '{ra_mode}' with ipv6_address_mode set to "
                          f"'{address_mode}' is not valid. If both attributes are set, they must be the same value")


def validate_version(attr: str, address: IPAddress | IPNetwork, ip_version: int) -> None:
    if address.version != ip_version:
        raise errors.InvalidInput(
            error_message=f"{attr} '{address}' does not match the ip_version '{ip_version}'")


def validate_gateway(net: IPNetwork, gateway: IPAddress) -> None:
    """Neutron allows a gateway outside the CIDR (reached by a host route), but never the
    network address, nor an IPv4 broadcast address."""
    validate_version("gateway_ip", gateway, net.version)
    if gateway == net.network_address and net.prefixlen < net.max_prefixlen - 1:
        raise errors.InvalidInput(error_message="Gateway is not valid on subnet")
    if net.version == 4 and net.prefixlen <= 30 and gateway == net.broadcast_address:
        raise errors.InvalidInput(error_message="Gateway is not valid on subnet")


def validate_dhcp(net: IPNetwork, enable_dhcp: bool, ra_mode: str | None, address_mode: str | None) -> None:
    """Neutron's ``_validate_subnet`` rules for DHCP: IPv6 modes need DHCP enabled; a DHCP-enabled
    subnet needs room for the DHCP port (IPv4 /30, IPv6 /126 at least) and a usable range."""
    if (ra_mode or address_mode) and not enable_dhcp:
        raise errors.InvalidInput(
            error_message="ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False")
    if not enable_dhcp:
        return
    if net.prefixlen > net.max_prefixlen - 2:
        raise errors.InvalidInput(error_message="Subnet has a prefix length that is incompatible with DHCP "
                                                "service enabled")
    if net.is_multicast:
        raise errors.InvalidInput(error_message="Multicast IP subnet is not supported if enable_dhcp is True")
    if net.is_loopback:
        raise errors.InvalidInput(error_message="Loopback IP subnet is not supported if enable_dhcp is True")
    if net.version == 4 and int(net.network_address) == 0:
        raise errors.InvalidInput(error_message="First IP '0.0.0.0' of network is not supported if "
                                                "enable_dhcp is True.")
