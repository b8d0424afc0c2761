"""baryon.api.schemas.router and .floatingip: gateway info, routes and interface bodies -> service input."""

from __future__ import annotations

import uuid

import orjson
import pytest

from baryon.api import request as req
from baryon.api.schemas import floatingip as fip_schema
from baryon.api.schemas import router as router_schema
from baryon.api.schemas.types import Invalid
from baryon.service import errors
from baryon.service.context import Context

MEMBER = Context(project_id="p1", is_admin=False, roles=frozenset({"member"}))
ADMIN = Context.admin("admin-project")
NET_ID, SUBNET_ID, PORT_ID = (str(uuid.UUID(int=i)) for i in (1, 2, 3))


def reason(convert, data) -> str:  # noqa: ANN001
    with pytest.raises(Invalid) as info:
        convert(data)
    return info.value.reason


def test_gateway_info_is_dict_or_nodata():
    convert = router_schema.gateway_info
    assert convert({}) == {}
    assert convert({"network_id": NET_ID}) == {"network_id": NET_ID}
    assert convert({"external_fixed_ips": [{"ip_address": "203.0.113.9"}], "enable_snat": "false",
                    "network_id": NET_ID}) == {
        "network_id": NET_ID, "enable_snat": False, "external_fixed_ips": [{"ip_address": "203.0.113.9"}]}
    assert reason(convert, "net") == "'net' is not a dictionary"
    assert reason(convert, {"enable_snat": True}).startswith("Validation of dictionary's keys failed.")
    assert reason(convert, {"network_id": NET_ID, "qos_policy_id": None}) == "Unexpected keys supplied: qos_policy_id"
    assert reason(convert, {"network_id": "x"}) == "'x' is not a valid UUID"
    assert "not a valid IP address" in reason(convert, {"network_id": NET_ID,
                                                        "external_fixed_ips": [{"ip_address": "1.2.3"}]})


def test_routes_are_hostroutes():
    convert = router_schema.routes
    assert convert(None) == []
    assert convert([{"nexthop": "10.0.0.9", "destination": "2001:DB8::/64"}]) == [
        {"nexthop": "10.0.0.9", "destination": "2001:db8::/64"}]
    route = {"destination": "10.9.0.0/24", "nexthop": "10.0.0.9"}
    assert reason(convert, [route, dict(route)]).startswith("Duplicate hostroute '")
    assert "is not a valid IP subnet" in reason(convert, [{"destination": "10.9.0.0", "nexthop": "10.0.0.9"}])
    assert "Invalid data format for hostroute" in reason(convert, [{"destination": "10.9.0.0/24"}])


def test_router_bodies_and_policy():
    body = orjson.dumps({"router": {"name": "r", "ha": True}})
    with pytest.raises(errors.PolicyNotAuthorized):
        req.parse_create(router_schema.ATTRS, "router", "routers", body, MEMBER)
    [attrs], _ = req.parse_create(router_schema.ATTRS, "router", "routers", body, ADMIN)
    assert attrs == {"name": "r", "ha": True}  # refused by the service: no HA routers
    with pytest.raises(errors.HTTPBadRequest):
        req.parse_create(router_schema.ATTRS, "router", "routers", orjson.dumps({"router": {"routes": []}}), ADMIN)
    shown = req.present(router_schema.ATTRS, {"id": "r", "ha": False, "distributed": False}, MEMBER)
    assert shown == {"id": "r"}


def test_interface_info():
    info = router_schema.interface_info
    assert info({"subnet_id": SUBNET_ID, "name": "ignored"}, removal=False) == {"subnet_id": SUBNET_ID}
    assert info({"subnet_id": SUBNET_ID, "port_id": PORT_ID}, removal=True) == {
        "port_id": PORT_ID, "subnet_id": SUBNET_ID}
    for body, removal, message in (
            (None, False, "Either subnet_id or port_id must be specified"),
            ([], True, "Either subnet_id or port_id must be specified"),
            ({"subnet_id": SUBNET_ID, "port_id": PORT_ID}, False, "Cannot specify both subnet-id and port-id"),
            ({"port_id": 7}, False, "'7' is not a valid UUID")):
        with pytest.raises(errors.BadRequest) as error:
            info(body, removal=removal)
        assert str(error.value) == f"Bad router request: {message}."


def test_floating_ip_bodies():
    body = orjson.dumps({"floatingip": {"floating_network_id": NET_ID, "floating_ip_address": "203.0.113.5"}})
    with pytest.raises(errors.PolicyNotAuthorized):
        req.parse_create(fip_schema.ATTRS, "floatingip", "floatingips", body, MEMBER)
    for attrs in ({"name": "x"}, {"router_id": NET_ID}, {"status": "ACTIVE"}):
        with pytest.raises(errors.HTTPBadRequest):
            req.parse_create(fip_schema.ATTRS, "floatingip", "floatingips",
                             orjson.dumps({"floatingip": {"floating_network_id": NET_ID, **attrs}}), MEMBER)
    update = req.parse_update(fip_schema.ATTRS, "floatingip", orjson.dumps({"floatingip": {"port_id": None}}), MEMBER)
    assert update == {"port_id": None}
    with pytest.raises(errors.HTTPBadRequest):
        req.parse_update(fip_schema.ATTRS, "floatingip", orjson.dumps({"floatingip": {"subnet_id": None}}), MEMBER)
