"""baryon.service.ml2, pure part: type drivers from settings, provider validation, id pools, MTU."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from baryon.config import load
from baryon.service import errors
from baryon.service.ml2 import Segment, TypeDrivers, lowest_free


def drivers(**sections: dict[str, str]) -> TypeDrivers:
    """TypeDrivers from the defaults plus ``section={option: raw value}`` overrides."""
    return TypeDrivers.from_settings(load([], overrides=sections))


ISSUE = dict(  # the issue's ml2_conf.ini
    ml2={"type_drivers": "flat,vlan,vxlan", "tenant_network_types": "vxlan"},
    ml2_type_flat={"flat_networks": "physnet1"},
    ml2_type_vlan={"network_vlan_ranges": ""},
    ml2_type_vxlan={"vni_ranges": "1:1000"},
)
VLANS = dict(ml2_type_vlan={"network_vlan_ranges": "physnet1:100:199,physnet2,physnet3:10:20,physnet3:1:5"})


def invalid(d: TypeDrivers, network_type, physical_network, segmentation_id) -> str:
    with pytest.raises(errors.InvalidInput) as info:
        d.validate_provider(network_type, physical_network, segmentation_id)
    assert info.value.status == 400 and info.value.type == "InvalidInput"
    return str(info.value)


# ---------------------------------------------------------------- from_settings


def test_from_settings_of_the_issue_file():
    d = drivers(**ISSUE)
    assert d.type_drivers == ("flat", "vlan", "vxlan")
    assert d.tenant_network_types == ("vxlan",)
    assert d.flat_networks == ("physnet1",)
    assert d.vlan_ranges == {}
    assert d.vni_ranges == ((1, 1000),)
    assert d.global_physnet_mtu == 1500 and d.path_mtu == 0 and d.overlay_ip_version == 4
    assert d.physnet_mtus == {}


def test_from_settings_groups_and_sorts_vlan_ranges():
    d = drivers(**VLANS)
    assert d.vlan_ranges == {"physnet1": ((100, 199),), "physnet2": (), "physnet3": ((1, 5), (10, 20))}


def test_from_settings_sorts_vni_ranges_and_reads_mtus():
    d = drivers(ml2_type_vxlan={"vni_ranges": "500:600,1:10"},
                ml2={"physical_network_mtus": "physnet1:9000,physnet2:1400", "path_mtu": "1400",
                     "overlay_ip_version": "6"},
                DEFAULT={"global_physnet_mtu": "9000"})
    assert d.vni_ranges == ((1, 10), (500, 600))
    assert d.physnet_mtus == {"physnet1": 9000, "physnet2": 1400}
    assert (d.global_physnet_mtu, d.path_mtu, d.overlay_ip_version) == (9000, 1400, 6)


# ---------------------------------------------------------------- validate_provider: flat


def test_flat_on_a_listed_physnet():
    assert drivers(**ISSUE).validate_provider("flat", "physnet1", None) == Segment("flat", "physnet1", None)


def test_flat_requires_physnet():
    for physnet in (None, ""):
        assert "provider:physical_network required" in invalid(drivers(**ISSUE), "flat", physnet, None)


def test_flat_prohibits_segmentation_id():
    assert "segmentation_id prohibited" in invalid(drivers(**ISSUE), "flat", "physnet1", 5)


def test_flat_unknown_physnet_when_flat_networks_is_a_list():
    message = invalid(drivers(**ISSUE), "flat", "physnet9", None)
    assert "physnet9" in message and "unknown" in message


def test_flat_star_accepts_any_physnet():
    d = drivers(ml2_type_flat={"flat_networks": "*"})
    assert d.validate_provider("flat", "anything", None) == Segment("flat", "anything", None)
    d = drivers(ml2_type_flat={"flat_networks": "physnet1,*"})
    assert d.validate_provider("flat", "other", None) == Segment("flat", "other", None)


def test_flat_empty_flat_networks_refuses_every_physnet():
    assert "unknown" in invalid(drivers(ml2_type_flat={"flat_networks": ""}), "flat", "physnet1", None)


# ---------------------------------------------------------------- validate_provider: vlan


@pytest.mark.parametrize(("physnet", "seg_id"), [
    ("physnet1", 150), ("physnet1", 1), ("physnet1", 4094),  # any id, also outside the tenant range
    ("physnet2", 7),  # a physnet with no tenant range
    ("physnet1", None), (None, None),  # ids allocated later
])
def test_vlan_valid(physnet, seg_id):
    assert drivers(**VLANS).validate_provider("vlan", physnet, seg_id) == Segment("vlan", physnet, seg_id)


def test_vlan_physnet_must_be_in_network_vlan_ranges():
    message = invalid(drivers(**VLANS), "vlan", "physnet9", 100)
    assert "physnet9" in message and "unknown" in message
    assert "unknown" in invalid(drivers(**ISSUE), "vlan", "physnet1", 100)  # no VLAN physnets at all


@pytest.mark.parametrize("seg_id", [0, 4095, -1, 5000])
def test_vlan_id_between_1_and_4094(seg_id):
    assert "out of range (1 through 4094)" in invalid(drivers(**VLANS), "vlan", "physnet1", seg_id)


def test_vlan_id_needs_a_physnet():
    assert "provider:physical_network required" in invalid(drivers(**VLANS), "vlan", None, 100)


# ---------------------------------------------------------------- validate_provider: vxlan


@pytest.mark.parametrize("seg_id", [None, 1, 1000, 5000, 2**24 - 1])
def test_vxlan_valid(seg_id):
    assert drivers(**ISSUE).validate_provider("vxlan", None, seg_id) == Segment("vxlan", None, seg_id)


def test_vxlan_empty_physnet_is_no_physnet():
    assert drivers(**ISSUE).validate_provider("vxlan", "", 5) == Segment("vxlan", None, 5)


def test_vxlan_prohibits_physnet():
    assert "provider:physical_network specified" in invalid(drivers(**ISSUE), "vxlan", "physnet1", 5)


@pytest.mark.parametrize("seg_id", [0, 2**24, -3])
def test_vxlan_id_range(seg_id):
    assert "out of range (1 through 16777215)" in invalid(drivers(**ISSUE), "vxlan", None, seg_id)


# ---------------------------------------------------------------- validate_provider: types


def test_network_type_required():
    assert "network_type required" in invalid(drivers(**ISSUE), None, None, None)


@pytest.mark.parametrize("network_type", ["gre", "geneve", "local", "bogus", ""])
def test_unknown_or_unsupported_type(network_type):
    assert "not supported" in invalid(drivers(**ISSUE), network_type, None, None)


def test_loaded_but_unimplemented_type_is_not_supported():
    d = drivers(ml2={"type_drivers": "flat,vlan,vxlan,gre"})
    assert "'gre' not supported" in invalid(d, "gre", None, 5)


def test_type_not_in_type_drivers_is_not_supported():
    d = drivers(ml2={"type_drivers": "vxlan", "tenant_network_types": "vxlan"})
    assert "'flat' not supported" in invalid(d, "flat", "physnet1", None)
    assert "'vlan' not supported" in invalid(d, "vlan", None, None)
    assert d.validate_provider("vxlan", None, None) == Segment("vxlan", None, None)


# ---------------------------------------------------------------- pools


def test_pools():
    d = drivers(ml2_type_vxlan={"vni_ranges": "100:200,1:10"}, **VLANS)
    assert d.pools("vxlan", None) == [("", ((1, 10), (100, 200)))]
    assert d.pools("vlan", "physnet3") == [("physnet3", ((1, 5), (10, 20)))]
    assert d.pools("vlan", "physnet2") == [("physnet2", ())]
    assert d.pools("vlan", None) == [("physnet1", ((100, 199),)), ("physnet2", ()), ("physnet3", ((1, 5), (10, 20)))]
    assert d.pools("flat", "physnet1") == []


def test_segment_key():
    assert Segment("vxlan", None, 7).key == ("vxlan", "", 7)
    assert Segment("flat", "physnet1", None).key == ("flat", "physnet1", 0)
    assert Segment("vlan", "physnet1", 100).key == ("vlan", "physnet1", 100)


# ---------------------------------------------------------------- MTU


def mtu(network_type: str, physnet: str | None = None, **sections: dict[str, str]) -> int:
    return drivers(**sections).mtu(Segment(network_type, physnet, None))


def test_mtu_defaults():
    assert mtu("vxlan") == 1450
    assert mtu("flat", "physnet1") == 1500
    assert mtu("vlan", "physnet1") == 1500


def test_mtu_vxlan_path_mtu():
    assert mtu("vxlan", ml2={"path_mtu": "1400"}) == 1350
    assert mtu("vxlan", ml2={"path_mtu": "9000"}) == 1450  # the smaller of global and path MTU
    assert mtu("vxlan", ml2={"path_mtu": "9000"}, DEFAULT={"global_physnet_mtu": "9000"}) == 8950
    assert mtu("flat", "physnet1", ml2={"path_mtu": "1400"}) == 1500  # path_mtu is the overlay's


def test_mtu_vxlan_over_ipv6():
    assert mtu("vxlan", ml2={"overlay_ip_version": "6"}) == 1430
    assert mtu("vxlan", ml2={"overlay_ip_version": "6", "path_mtu": "1400"}) == 1330


def test_mtu_global_physnet_mtu():
    assert mtu("flat", "physnet1", DEFAULT={"global_physnet_mtu": "9000"}) == 9000
    assert mtu("vxlan", DEFAULT={"global_physnet_mtu": "9000"}) == 8950


def test_mtu_unset_everywhere_is_zero():
    assert mtu("vxlan", DEFAULT={"global_physnet_mtu": "0"}) == 0
    assert mtu("flat", "physnet1", DEFAULT={"global_physnet_mtu": "0"}) == 0
    assert mtu("vxlan", DEFAULT={"global_physnet_mtu": "0"}, ml2={"path_mtu": "1400"}) == 1350


def test_mtu_physical_network_mtus():
    sections = dict(ml2={"physical_network_mtus": "physnet1:1400,physnet2:9000"})
    assert mtu("flat", "physnet1", **sections) == 1400
    assert mtu("vlan", "physnet1", **sections) == 1400
    assert mtu("vlan", "physnet2", **sections) == 1500  # never above global_physnet_mtu
    assert mtu("vlan", "physnet3", **sections) == 1500
    assert mtu("vxlan", None, **sections) == 1450
    assert mtu("flat", "physnet2", DEFAULT={"global_physnet_mtu": "0"}, **sections) == 9000


# ---------------------------------------------------------------- lowest_free


@pytest.mark.parametrize(("ranges", "taken", "expected"), [
    (((1, 10),), [], 1),
    (((1, 10),), [1, 2, 3], 4),
    (((1, 10),), [1, 2, 4, 5], 3),  # a gap
    (((1, 10),), [2, 3], 1),
    (((1, 3), (10, 12)), [1, 2, 3], 10),  # next range
    (((1, 3), (10, 12)), [1, 2, 3, 10, 11], 12),
    (((1, 3), (10, 12)), [1, 2, 3, 10, 11, 12], None),  # all taken
    (((5, 5),), [5], None),
    (((5, 5),), [4, 6], 5),
    (((100, 200),), [1, 2, 3], 100),  # taken ids outside the ranges do not matter
    ((), [], None),
])
def test_lowest_free(ranges, taken, expected):
    assert lowest_free(ranges, taken) == expected


@given(st.lists(st.tuples(st.integers(1, 60), st.integers(0, 10)), max_size=4), st.sets(st.integers(0, 80)))
def test_lowest_free_is_the_minimum_free_id(spans, taken):
    ranges = tuple(sorted((low, low + length) for low, length in spans))
    ids = {i for low, high in ranges for i in range(low, high + 1)}
    free = ids - taken
    assert lowest_free(ranges, sorted(taken)) == (min(free) if free else None)
