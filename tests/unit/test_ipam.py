"""baryon.service.ipam: CIDRs, gateways, allocation pools, address choice, EUI-64."""

from __future__ import annotations

import ipaddress
import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from baryon.service import errors, ipam

A = ipaddress.ip_address
N = ipaddress.ip_network


def R(first: str, last: str) -> tuple:
    return A(first), A(last)


def ints(*addresses: str) -> set[int]:
    return {int(A(a)) for a in addresses}


# ---------------------------------------------------------------- parse_cidr


@pytest.mark.parametrize(("raw", "expected"), [
    ("10.0.0.0/24", "10.0.0.0/24"),
    ("192.168.1.128/25", "192.168.1.128/25"),
    ("10.0.0.7/32", "10.0.0.7/32"),
    ("0.0.0.0/0", "0.0.0.0/0"),
    ("2001:db8::/64", "2001:db8::/64"),
    ("2001:DB8::/64", "2001:db8::/64"),
    ("2001:db8:0:0::/64", "2001:db8::/64"),
    ("2001:db8::1/128", "2001:db8::1/128"),
])
def test_parse_cidr_valid(raw, expected):
    assert ipam.parse_cidr(raw) == N(expected)
    assert str(ipam.parse_cidr(raw)) == expected


@pytest.mark.parametrize(("raw", "normalised"), [
    ("10.0.0.1/24", "10.0.0.0/24"),
    ("192.168.1.200/25", "192.168.1.128/25"),
    ("2001:db8::1/64", "2001:db8::/64"),
])
def test_parse_cidr_host_bits_are_normalised_as_neutron_does(raw, normalised):
    assert str(ipam.parse_cidr(raw)) == normalised


@pytest.mark.parametrize(("raw", "recommended"), [
    ("10.0.0.0/255.255.255.0", "10.0.0.0/24"),
    ("10.0.0.7/255.255.255.0", "10.0.0.0/24"),
])
def test_parse_cidr_netmask_form_recommends_the_prefix_form(raw, recommended):
    with pytest.raises(errors.InvalidInput) as info:
        ipam.parse_cidr(raw)
    assert info.value.status == 400 and info.value.type == "InvalidInput"
    assert f"'{raw}'" in str(info.value) and f"'{recommended}' is recommended" in str(info.value)


@pytest.mark.parametrize("raw", ["", "garbage", "10.0.0.0", "10.0.0.0/33", "10.0.0.256/24", "2001:db8::/129",
                                 "10.0.0.0/", "/24", "2001:db8::", "fe80::%eth0/64", "10.0.0.0/24\n"])
def test_parse_cidr_garbage(raw):
    with pytest.raises(errors.InvalidInput) as info:
        ipam.parse_cidr(raw)
    assert info.value.status == 400
    assert "is not a valid IP subnet" in str(info.value)


# ---------------------------------------------------------------- default gateway and pools


@pytest.mark.parametrize(("cidr", "gateway"), [
    ("10.0.0.0/24", "10.0.0.1"),
    ("10.0.0.0/30", "10.0.0.1"),
    ("10.0.0.0/31", "10.0.0.0"),
    ("10.0.0.5/32", "10.0.0.5"),
    ("2001:db8::/64", "2001:db8::1"),
    ("2001:db8::/127", "2001:db8::"),
    ("2001:db8::5/128", "2001:db8::5"),
])
def test_default_gateway(cidr, gateway):
    assert ipam.default_gateway(N(cidr)) == A(gateway)


@pytest.mark.parametrize(("cidr", "gateway", "pools"), [
    ("10.0.0.0/24", "10.0.0.1", [R("10.0.0.2", "10.0.0.254")]),
    ("10.0.0.0/24", None, [R("10.0.0.1", "10.0.0.254")]),
    ("10.0.0.0/24", "10.0.0.100", [R("10.0.0.1", "10.0.0.99"), R("10.0.0.101", "10.0.0.254")]),
    ("10.0.0.0/24", "10.0.0.254", [R("10.0.0.1", "10.0.0.253")]),
    ("10.0.0.0/24", "10.0.1.1", [R("10.0.0.1", "10.0.0.254")]),  # outside the CIDR
    ("10.0.0.0/24", "10.0.0.0", [R("10.0.0.1", "10.0.0.254")]),  # not a usable address
    ("10.0.0.0/24", "10.0.0.255", [R("10.0.0.1", "10.0.0.254")]),
    ("10.0.0.0/30", "10.0.0.1", [R("10.0.0.2", "10.0.0.2")]),
    ("10.0.0.0/30", "10.0.0.2", [R("10.0.0.1", "10.0.0.1")]),
    ("10.0.0.0/30", None, [R("10.0.0.1", "10.0.0.2")]),
    # RFC 3021: a /31 has no network nor broadcast address
    ("10.0.0.0/31", "10.0.0.0", [R("10.0.0.1", "10.0.0.1")]),
    ("10.0.0.0/31", None, [R("10.0.0.0", "10.0.0.1")]),
    ("10.0.0.5/32", "10.0.0.5", []),
    ("10.0.0.5/32", None, [R("10.0.0.5", "10.0.0.5")]),
    # IPv6 keeps the last address and excludes only the subnet-router anycast address
    ("2001:db8::/64", "2001:db8::1", [R("2001:db8::2", "2001:db8::ffff:ffff:ffff:ffff")]),
    ("2001:db8::/64", None, [R("2001:db8::1", "2001:db8::ffff:ffff:ffff:ffff")]),
    ("2001:db8::/64", "2001:db8::ffff:ffff:ffff:ffff", [R("2001:db8::1", "2001:db8::ffff:ffff:ffff:fffe")]),
    ("2001:db8::/64", "2001:db8:1::1", [R("2001:db8::1", "2001:db8::ffff:ffff:ffff:ffff")]),
    ("2001:db8::/127", "2001:db8::", [R("2001:db8::1", "2001:db8::1")]),
    ("2001:db8::/127", None, [R("2001:db8::", "2001:db8::1")]),
    ("2001:db8::5/128", "2001:db8::5", []),
    ("2001:db8::5/128", None, [R("2001:db8::5", "2001:db8::5")]),
])
def test_default_pools(cidr, gateway, pools):
    assert ipam.default_pools(N(cidr), A(gateway) if gateway else None) == pools


def test_default_pools_with_default_gateway_then_validate():
    """What a subnet created with every default gets is itself a valid configuration."""
    for cidr in ("10.0.0.0/24", "10.0.0.0/30", "10.0.0.0/31", "10.0.0.0/32", "2001:db8::/64",
                 "2001:db8::/127", "2001:db8::/128"):
        net = N(cidr)
        gateway = ipam.default_gateway(net)
        ipam.validate_gateway(net, gateway)
        ipam.validate_pools(net, ipam.default_pools(net, gateway), gateway)


# ---------------------------------------------------------------- parse_pools / validate_pools


def test_parse_pools():
    net = N("10.0.0.0/24")
    assert ipam.parse_pools(net, [{"start": "10.0.0.10", "end": "10.0.0.20"},
                                  {"start": "10.0.0.30", "end": "10.0.0.30"}]) == [
        R("10.0.0.10", "10.0.0.20"), R("10.0.0.30", "10.0.0.30")]
    assert ipam.parse_pools(net, []) == []


@pytest.mark.parametrize("pool", [
    {"start": "10.0.0.20", "end": "10.0.0.10"},  # reversed
    {"start": "10.0.0.x", "end": "10.0.0.10"},
    {"start": "10.0.0.1"},
    {"start": "2001:db8::1", "end": "2001:db8::2"},  # wrong version
    {"start": "10.0.0.1", "end": "2001:db8::2"},
])
def test_parse_pools_invalid(pool):
    with pytest.raises(errors.InvalidAllocationPool) as info:
        ipam.parse_pools(N("10.0.0.0/24"), [pool])
    assert info.value.status == 400 and info.value.type == "InvalidAllocationPool"


def test_validate_pools_accepts_valid():
    net = N("10.0.0.0/24")
    ipam.validate_pools(net, [R("10.0.0.2", "10.0.0.100"), R("10.0.0.101", "10.0.0.254")], A("10.0.0.1"))
    ipam.validate_pools(net, [R("10.0.0.1", "10.0.0.254")], None)
    ipam.validate_pools(net, [R("10.0.0.1", "10.0.0.254")], A("192.168.0.1"))  # gateway outside
    ipam.validate_pools(net, [], A("10.0.0.1"))
    ipam.validate_pools(N("2001:db8::/64"), [R("2001:db8::2", "2001:db8::ffff:ffff:ffff:ffff")], A("2001:db8::1"))


@pytest.mark.parametrize(("cidr", "pool"), [
    ("10.0.0.0/24", R("10.0.0.200", "10.0.1.10")),
    ("10.0.0.0/24", R("9.255.255.250", "10.0.0.10")),
    ("10.0.0.0/24", R("10.0.1.1", "10.0.1.10")),
    ("10.0.0.0/24", R("10.0.0.0", "10.0.0.10")),  # network address
    ("10.0.0.0/24", R("10.0.0.10", "10.0.0.255")),  # broadcast address
    ("10.0.0.0/24", R("10.0.0.0", "10.0.0.255")),
    ("10.0.0.0/30", R("10.0.0.0", "10.0.0.0")),
    ("10.0.0.0/30", R("10.0.0.3", "10.0.0.3")),
    ("2001:db8::/64", R("2001:db8::", "2001:db8::10")),  # subnet-router anycast address
    ("2001:db8::/64", R("2001:db8::10", "2001:db8:0:1::10")),
    ("2001:db8::/64", R("10.0.0.1", "10.0.0.2")),  # other version
])
def test_validate_pools_out_of_bounds(cidr, pool):
    with pytest.raises(errors.OutOfBoundsAllocationPool) as info:
        ipam.validate_pools(N(cidr), [pool], None)
    assert info.value.status == 400 and cidr in str(info.value)


def test_validate_pools_point_to_point_use_every_address():
    ipam.validate_pools(N("10.0.0.0/31"), [R("10.0.0.0", "10.0.0.1")], None)
    ipam.validate_pools(N("10.0.0.9/32"), [R("10.0.0.9", "10.0.0.9")], None)
    ipam.validate_pools(N("2001:db8::/127"), [R("2001:db8::", "2001:db8::1")], None)


OVERLAPPING = [
    (R("10.0.0.10", "10.0.0.20"), R("10.0.0.20", "10.0.0.30")),  # shared end
    (R("10.0.0.10", "10.0.0.20"), R("10.0.0.15", "10.0.0.30")),
    (R("10.0.0.10", "10.0.0.50"), R("10.0.0.20", "10.0.0.30")),  # contained
    (R("10.0.0.10", "10.0.0.10"), R("10.0.0.10", "10.0.0.10")),  # identical
]


@pytest.mark.parametrize(("a", "b"), OVERLAPPING)
def test_validate_pools_overlaps_in_any_order(a, b):
    extra = R("10.0.0.100", "10.0.0.110")
    for pools in itertools.permutations([a, b, extra]):
        with pytest.raises(errors.OverlappingAllocationPools) as info:
            ipam.validate_pools(N("10.0.0.0/24"), list(pools), None)
        assert info.value.status == 409


def test_validate_pools_overlap_found_across_a_pool_in_between():
    pools = [R("10.0.0.1", "10.0.0.100"), R("10.0.0.2", "10.0.0.3"), R("10.0.0.50", "10.0.0.60")]
    for order in itertools.permutations(pools):
        with pytest.raises(errors.OverlappingAllocationPools):
            ipam.validate_pools(N("10.0.0.0/24"), list(order), None)


def test_validate_pools_adjacent_pools_do_not_overlap():
    ipam.validate_pools(N("10.0.0.0/24"), [R("10.0.0.21", "10.0.0.30"), R("10.0.0.10", "10.0.0.20")], None)


@pytest.mark.parametrize("gateway", ["10.0.0.10", "10.0.0.15", "10.0.0.20"])
def test_validate_pools_gateway_inside_a_pool(gateway):
    with pytest.raises(errors.GatewayConflictWithAllocationPools) as info:
        ipam.validate_pools(N("10.0.0.0/24"), [R("10.0.0.10", "10.0.0.20")], A(gateway))
    assert info.value.status == 409 and gateway in str(info.value)


# ---------------------------------------------------------------- validate_gateway


@pytest.mark.parametrize(("cidr", "gateway"), [
    ("10.0.0.0/24", "10.0.0.1"),
    ("10.0.0.0/24", "10.0.0.254"),
    ("10.0.0.0/24", "192.168.0.1"),  # outside: Neutron allows it (reached by a host route)
    ("10.0.0.0/31", "10.0.0.0"),
    ("2001:db8::/64", "2001:db8::1"),
    ("2001:db8::/64", "2001:db8::ffff:ffff:ffff:ffff"),
    ("2001:db8::/64", "fe80::1"),
])
def test_validate_gateway_accepts(cidr, gateway):
    ipam.validate_gateway(N(cidr), A(gateway))


@pytest.mark.parametrize(("cidr", "gateway"), [
    ("10.0.0.0/24", "10.0.0.0"),
    ("10.0.0.0/24", "10.0.0.255"),
    ("10.0.0.0/30", "10.0.0.3"),
    ("2001:db8::/64", "2001:db8::"),
])
def test_validate_gateway_refuses_network_and_broadcast(cidr, gateway):
    with pytest.raises(errors.InvalidInput) as info:
        ipam.validate_gateway(N(cidr), A(gateway))
    assert "Gateway is not valid on subnet" in str(info.value)


@pytest.mark.parametrize(("cidr", "gateway"), [("10.0.0.0/24", "2001:db8::1"), ("2001:db8::/64", "10.0.0.1")])
def test_validate_gateway_version_mismatch(cidr, gateway):
    with pytest.raises(errors.InvalidInput) as info:
        ipam.validate_gateway(N(cidr), A(gateway))
    assert "gateway_ip" in str(info.value) and "ip_version" in str(info.value)


# ---------------------------------------------------------------- candidates / choose

POOLS = [R("10.0.0.10", "10.0.0.12"), R("10.0.0.20", "10.0.0.21")]


def test_candidates_in_pool_order_skipping_taken():
    taken = ints("10.0.0.11", "10.0.0.20")
    assert list(ipam.candidates(POOLS, taken, 10)) == sorted(ints("10.0.0.10", "10.0.0.12", "10.0.0.21"))
    assert list(ipam.candidates(POOLS, taken, 2)) == sorted(ints("10.0.0.10", "10.0.0.12"))


def test_choose_prefer_first_gives_lowest_free():
    rng = random.Random(1)
    assert ipam.choose(POOLS, set(), prefer_first=True, rng=rng) == int(A("10.0.0.10"))
    assert ipam.choose(POOLS, ints("10.0.0.10", "10.0.0.11", "10.0.0.12"), prefer_first=True,
                       rng=rng) == int(A("10.0.0.20"))


def test_choose_none_when_full():
    full = ints("10.0.0.10", "10.0.0.11", "10.0.0.12", "10.0.0.20", "10.0.0.21")
    assert ipam.choose(POOLS, full, prefer_first=True, rng=random.Random(0)) is None
    assert ipam.choose(POOLS, full, prefer_first=False, rng=random.Random(0)) is None
    assert ipam.choose([], set(), prefer_first=False, rng=random.Random(0)) is None


def test_choose_random_stays_in_pools_and_off_taken():
    taken = ints("10.0.0.11", "10.0.0.21")
    free = ints("10.0.0.10", "10.0.0.12", "10.0.0.20")
    seen = {ipam.choose(POOLS, taken, prefer_first=False, rng=random.Random(seed)) for seed in range(200)}
    assert seen == free  # every free address is reachable, nothing else is


def test_choose_random_within_window():
    pools = [R("10.0.0.1", "10.0.0.254")]
    taken = ints("10.0.0.1", "10.0.0.3")
    window = 5
    allowed = ints("10.0.0.2", "10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.0.7")
    seen = {ipam.choose(pools, taken, prefer_first=False, rng=random.Random(s), window=window) for s in range(300)}
    assert seen == allowed


def test_choose_random_is_spread():
    """Concurrent creators rarely collide: a /24 gives many different first picks."""
    pools = [R("10.0.0.2", "10.0.0.254")]
    picks = {ipam.choose(pools, set(), prefer_first=False, rng=random.Random(s)) for s in range(50)}
    assert len(picks) > 20


def test_in_pools_and_pool_size():
    assert ipam.in_pools(POOLS, A("10.0.0.12")) and ipam.in_pools(POOLS, A("10.0.0.20"))
    assert not ipam.in_pools(POOLS, A("10.0.0.13")) and not ipam.in_pools(POOLS, A("10.0.0.9"))
    assert ipam.pool_size(POOLS) == 5
    assert ipam.pool_size([]) == 0


# ---------------------------------------------------------------- EUI-64 and IPv6 modes


@pytest.mark.parametrize(("prefix", "mac", "address"), [
    ("2001:db8::/64", "fa:16:3e:12:34:56", "2001:db8::f816:3eff:fe12:3456"),
    ("2001:db8::/64", "FA:16:3E:12:34:56", "2001:db8::f816:3eff:fe12:3456"),
    ("fe80::/64", "52:54:00:12:34:56", "fe80::5054:ff:fe12:3456"),
    ("fe80::/64", "00:00:5e:00:53:01", "fe80::200:5eff:fe00:5301"),  # RFC 7042 documentation MAC
    ("2001:db8:1:2::/64", "02:00:00:00:00:01", "2001:db8:1:2::ff:fe00:1"),  # U/L bit flipped off
    ("2001:db8::/64", "ff:ff:ff:ff:ff:ff", "2001:db8::fdff:ffff:feff:ffff"),
])
def test_eui64_known_vectors(prefix, mac, address):
    assert ipam.eui64(N(prefix), mac) == A(address)


@pytest.mark.parametrize(("version", "address_mode", "ra_mode", "expected"), [
    (6, "slaac", None, True),
    (6, "dhcpv6-stateless", None, True),
    (6, None, "slaac", True),
    (6, None, "dhcpv6-stateless", True),
    (6, "slaac", "slaac", True),
    (6, "dhcpv6-stateful", None, False),
    (6, None, "dhcpv6-stateful", False),
    (6, None, None, False),
    (4, "slaac", "slaac", False),
])
def test_is_auto_address_subnet(version, address_mode, ra_mode, expected):
    assert ipam.is_auto_address_subnet(version, address_mode, ra_mode) is expected


@pytest.mark.parametrize(("ra", "address"), [
    (None, None), ("slaac", None), (None, "dhcpv6-stateful"), ("slaac", "slaac"),
    ("dhcpv6-stateful", "dhcpv6-stateful"), ("dhcpv6-stateless", "dhcpv6-stateless"),
])
def test_validate_ipv6_modes_accepts(ra, address):
    ipam.validate_ipv6_modes(ra, address)


@pytest.mark.parametrize(("ra", "address"), [
    ("slaac", "dhcpv6-stateful"), ("dhcpv6-stateless", "slaac"), ("dhcpv6-stateful", "dhcpv6-stateless"),
])
def test_validate_ipv6_modes_refuses_different(ra, address):
    with pytest.raises(errors.InvalidInput) as info:
        ipam.validate_ipv6_modes(ra, address)
    assert ra in str(info.value) and address in str(info.value)


# ---------------------------------------------------------------- properties


@st.composite
def small_subnet(draw):
    version = draw(st.sampled_from([4, 6]))
    if version == 4:
        prefix = draw(st.integers(24, 32))
        address = draw(st.integers(0, 2**32 - 1))
        return ipaddress.IPv4Network((address >> (32 - prefix) << (32 - prefix), prefix))
    prefix = draw(st.integers(120, 128))
    address = draw(st.integers(0, 2**128 - 1))
    return ipaddress.IPv6Network((address >> (128 - prefix) << (128 - prefix), prefix))


@st.composite
def subnet_gateway(draw):
    net = draw(small_subnet())
    choice = draw(st.sampled_from(["default", "none", "inside", "outside"]))
    if choice == "default":
        return net, ipam.default_gateway(net)
    if choice == "none":
        return net, None
    if choice == "inside":
        return net, net[draw(st.integers(0, net.num_addresses - 1))]
    outside = (int(net.broadcast_address) + 1) % 2**net.max_prefixlen
    return net, type(net.network_address)(outside)


def addresses(pools) -> list[int]:
    return [v for first, last in pools for v in range(int(first), int(last) + 1)]


@given(subnet_gateway())
def test_default_pools_exclude_gateway_and_reserved(case):
    net, gateway = case
    pools = ipam.default_pools(net, gateway)
    members = addresses(pools)
    assert len(members) == len(set(members))
    assert all(int(net.network_address) <= v <= int(net.broadcast_address) for v in members)
    if gateway is not None:
        assert int(gateway) not in members
    if net.version == 4 and net.prefixlen <= 30:
        assert int(net.network_address) not in members
        assert int(net.broadcast_address) not in members
    if net.version == 6 and net.prefixlen <= 126:
        assert int(net.network_address) not in members
    # everything usable but the gateway is there
    first, last = ipam.usable_bounds(net)
    expected = {v for v in range(int(first), int(last) + 1)} - ({int(gateway)} if gateway is not None else set())
    assert set(members) == expected
    # and the result is a valid explicit configuration
    ipam.validate_pools(net, pools, gateway)


@given(subnet_gateway(), st.data(), st.integers(0, 2**32 - 1), st.booleans(), st.integers(1, 300))
def test_choose_returns_a_free_address_in_the_pools_or_none(case, data, seed, prefer_first, window):
    net, gateway = case
    pools = ipam.default_pools(net, gateway)
    universe = [int(a) for a in net]
    taken = set(data.draw(st.lists(st.sampled_from(universe), max_size=len(universe))))
    free = sorted(set(addresses(pools)) - taken)
    choice = ipam.choose(pools, taken, prefer_first=prefer_first, rng=random.Random(seed), window=window)
    if not free:
        assert choice is None
        return
    assert choice is not None
    assert choice not in taken
    assert ipam.in_pools(pools, type(net.network_address)(choice))
    if prefer_first:
        assert choice == free[0]
    else:
        assert choice in free[:window]


@given(st.lists(st.tuples(st.integers(1, 60), st.integers(0, 5)), min_size=1, max_size=5))
def test_validate_pools_overlap_iff_some_pair_overlaps(spans):
    net = N("10.0.0.0/24")
    pools = [(net[start], net[start + length]) for start, length in spans]
    overlapping = any(a[0] <= b[1] and b[0] <= a[1] for a, b in itertools.combinations(pools, 2))
    if overlapping:
        with pytest.raises(errors.OverlappingAllocationPools):
            ipam.validate_pools(net, pools, None)
    else:
        ipam.validate_pools(net, pools, None)


# ---------------------------------------------------------------- probing large pools


def test_to_address_keeps_the_family():
    assert str(ipam.to_address(5, 6)) == "::5"
    assert str(ipam.to_address(5, 4)) == "0.0.0.5"


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=2**16), st.integers(min_value=1, max_value=64), st.integers())
def test_sample_draws_distinct_addresses_inside_the_pools(offset, count, seed):
    first = ipaddress.ip_address("10.0.0.0") + offset % 1000
    pools = [(first, first + 9), (first + 100, first + 100 + offset % 50)]
    picks = ipam.sample(pools, random.Random(seed), count)
    assert len(picks) == len(set(picks)) <= count
    assert all(any(int(a) <= p <= int(b) for a, b in pools) for p in picks)
    assert picks  # never empty for a non-empty pool


def test_sample_of_a_tiny_pool_returns_at_most_its_addresses():
    pool = [(ipaddress.ip_address("10.0.0.2"), ipaddress.ip_address("10.0.0.3"))]
    picks = ipam.sample(pool, random.Random(1), 16)
    assert set(picks) <= {int(pool[0][0]), int(pool[0][1])}
