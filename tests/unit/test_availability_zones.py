"""Availability zones as pure code: the zones agents' rows make (``service.availabilityzones``), the
hints a network or router may carry (``api.schemas.availability_zone``), and the zone an agent
runtime reports with its heartbeat."""

from __future__ import annotations

import pytest

from baryon.agent.runtime import AgentRuntime
from baryon.api.schemas.availability_zone import hints
from baryon.api.schemas.types import Invalid
from baryon.service.availabilityzones import hints_of, matching, zones

DHCP, L3, OVS = "DHCP agent", "L3 agent", "Open vSwitch agent"


def test_each_zone_and_resource_once_available_while_one_agent_is_enabled() -> None:
    rows = [(DHCP, "az1", False), (DHCP, "az1", True), (DHCP, "az2", False), (L3, "az1", False),
            (OVS, "az3", True), (DHCP, None, True), (L3, "", True)]
    assert zones(rows) == [
        {"name": "az1", "resource": "network", "state": "available"},
        {"name": "az2", "resource": "network", "state": "unavailable"},
        {"name": "az1", "resource": "router", "state": "unavailable"},
    ]
    assert zones([]) == []


def test_filters_keep_the_zones_matching_any_value_of_each() -> None:
    found = zones([(DHCP, "az1", True), (DHCP, "az2", False), (L3, "az1", True)])
    assert matching(found, {}) == found
    assert [z["name"] for z in matching(found, {"state": ["unavailable"]})] == ["az2"]
    assert matching(found, {"name": ["az1", "az2"], "resource": ["router"]}) == [found[2]]
    assert matching(found, {"resource": ["port"]}) == []


def test_hints_are_unique_strings_that_fit_the_column() -> None:
    assert hints([]) == [] and hints(["az1", "az2"]) == ["az1", "az2"]
    assert hints_of(",".join(hints(["a", "b"]))) == ["a", "b"] and hints_of("") == []
    for bad, reason in ((["az1", "az1"], "Duplicate"), (["a,b"], "comma"), ("az1", "not a list"),
                        ([1], "not a valid string"), (["x" * 128, "y" * 128], "Too many")):
        with pytest.raises(Invalid, match=reason):
            hints(bad)


class _Kind:
    agent_type, binary, topic, view_kind = DHCP, "neutron-dhcp-agent", "dhcp_agent", "dhcp"

    @staticmethod
    def configurations() -> dict:
        return {"networks": 0}


def test_the_heartbeat_carries_the_zone_when_the_agent_has_one() -> None:
    with_zone = AgentRuntime(_Kind(), None, "h", 30, availability_zone="nova")  # type: ignore[arg-type]
    assert with_zone.state(True) == {"agent_type": DHCP, "binary": "neutron-dhcp-agent", "topic": "dhcp_agent",
                                     "host": "h", "start_flag": True, "configurations": {"networks": 0},
                                     "availability_zone": "nova"}
    assert "availability_zone" not in AgentRuntime(_Kind(), None, "h", 30).state(False)  # type: ignore[arg-type]
