"""Subnet service types, pure: neutron-lib's validation and which subnets a port may take its
addresses from (``baryon.service.servicetypes``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from baryon.service import errors, servicetypes


@pytest.mark.parametrize("value", [["network:router_gateway", "compute:nova", "neutron:LOADBALANCERV2"],
                                   ["compute:"], ["test:type_1"], ["ovn:x"], [":"], [], None])
def test_accepted_as_neutron_lib_accepts_them(value):
    assert servicetypes.check(value) == (value or [])


@pytest.mark.parametrize("value, error", [
    (["foo:bar"], errors.InvalidSubnetServiceType),
    ([""], errors.InvalidSubnetServiceType),
    (["network:" + "x" * 300], errors.InvalidSubnetServiceType),
    ([5], errors.InvalidInputSubnetServiceType),
    ([None], errors.InvalidInputSubnetServiceType),
    (["compute:nova", "compute:nova"], errors.InvalidInput),
])
def test_refused(value, error):
    with pytest.raises(error) as exc:
        servicetypes.check(value)
    assert exc.value.status == 400


def test_not_a_list():
    with pytest.raises(servicetypes.NotAList):
        servicetypes.check("compute:nova")


@dataclass
class Subnet:
    name: str
    types: list[str] = field(default_factory=list)
    dhcp: bool = True


def pick(subnets: list[Subnet], owner: str) -> list[str]:
    return [s.name for s in servicetypes.candidates(subnets, owner, lambda s: s.types, lambda s: s.dhcp)]


def test_candidates_own_first_then_general_and_dhcp_anywhere_with_dhcp():
    subnets = [Subnet("general"), Subnet("gw", ["network:router_gateway"]),
               Subnet("vms", ["compute:nova"], dhcp=False), Subnet("fip", ["network:floatingip"])]
    assert pick(subnets, "network:router_gateway") == ["gw", "general"]
    assert pick(subnets, "compute:nova") == ["vms", "general"]
    assert pick(subnets, "") == ["general"]
    assert pick(subnets, "compute:other") == ["general"]  # exact device owners, no prefix match
    assert pick(subnets, "network:dhcp") == ["gw", "fip", "general"]  # not "vms": DHCP off there
    assert pick(subnets[1:], "") == []
