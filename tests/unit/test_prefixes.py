"""Prefix arithmetic of subnet pools (``service.prefixes``): compaction, free space in Neutron's
order of preference, best-fit and specific allocation, quota units."""

from __future__ import annotations

from ipaddress import ip_network as net

import pytest

from baryon.service import prefixes


def nets(*cidrs: str) -> list:
    return [net(c) for c in cidrs]


@pytest.mark.parametrize(("given", "compacted"), [
    (["10.0.0.0/24", "10.0.1.0/24"], ["10.0.0.0/23"]),  # adjacent and aligned: merged
    (["10.0.1.0/24", "10.0.2.0/24"], ["10.0.1.0/24", "10.0.2.0/24"]),  # adjacent, not aligned: a range of two
    (["10.10.10.0/24", "10.10.0.0/16", "192.168.1.0/24"], ["10.10.0.0/16", "192.168.1.0/24"]),  # contained
    (["2001:db8:1234:1111::/64", "2001:db8:1234::/48"], ["2001:db8:1234::/48"]),
    ([], []),
])
def test_compact(given: list[str], compacted: list[str]):
    assert [str(n) for n in prefixes.compact(nets(*given))] == compacted


def test_available_prefers_the_smallest_blocks_in_address_order():
    free = prefixes.available(nets("10.0.0.0/24", "10.1.0.0/16"), nets("10.1.0.0/28"))
    assert [str(n) for n in free][:6] == ["10.1.0.16/28", "10.1.0.32/27", "10.1.0.64/26", "10.1.0.128/25",
                                          "10.0.0.0/24", "10.1.1.0/24"]


def test_allocate_any_is_a_best_fit():
    pool = nets("10.30.0.0/24", "10.31.0.0/16")
    assert str(prefixes.allocate_any(pool, [], 24)) == "10.30.0.0/24"
    assert str(prefixes.allocate_any(pool, nets("10.30.0.0/24"), 28)) == "10.31.0.0/28"
    assert str(prefixes.allocate_any(pool, nets("10.30.0.0/24", "10.31.0.0/28"), 24)) == "10.31.1.0/24"
    assert prefixes.allocate_any(pool, nets("10.30.0.0/24", "10.31.0.0/16"), 30) is None
    assert prefixes.allocate_any(pool, [], 15) is None  # larger than any prefix


def test_allocate_specific():
    pool = nets("10.31.0.0/16")
    assert prefixes.allocate_specific(pool, nets("10.31.0.0/24"), net("10.31.1.0/24"))
    assert not prefixes.allocate_specific(pool, nets("10.31.0.0/24"), net("10.31.0.128/25"))  # taken
    assert not prefixes.allocate_specific(pool, [], net("10.30.0.0/24"))  # outside
    assert not prefixes.allocate_specific(pool, [], net("10.0.0.0/8"))  # larger than the pool
    assert not prefixes.allocate_specific(pool, [], net("2001:db8::/64"))


def test_sets():
    assert prefixes.overlaps(nets("20.0.0.0/18"), nets("20.0.63.0/24"))
    assert not prefixes.overlaps(nets("20.0.0.0/18"), nets("20.0.64.0/24", "30.0.0.0/8"))
    assert prefixes.covers(nets("10.11.0.0/16"), nets("10.11.12.0/24"))
    assert not prefixes.covers(nets("10.11.12.0/26"), nets("10.11.12.0/24"))


def test_quota_units():
    assert prefixes.quota_units(30, 4) == 4 and prefixes.quota_units(24, 4) == 256
    assert prefixes.quota_units(64, 6) == 1 and prefixes.quota_units(48, 6) == 65536
    assert prefixes.quota_units(65, 6) == 0.5
