"""baryon.api.request and baryon.api.schemas: request bodies and query strings -> service input."""

from __future__ import annotations

import uuid

import orjson
import pytest

from baryon.api import request as req
from baryon.api.schemas import network as network_schema
from baryon.api.schemas import port as port_schema
from baryon.api.schemas import subnet as subnet_schema
from baryon.api.schemas import types as t
from baryon.service import errors
from baryon.service.context import Context
from baryon.service.networks import LISTING as NETWORK_LISTING
from baryon.service.ports import LISTING as PORT_LISTING
from baryon.service.query import ListQuery
from baryon.service.subnets import LISTING as SUBNET_LISTING

NET, SUBNET, PORT = network_schema.ATTRS, subnet_schema.ATTRS, port_schema.ATTRS
MEMBER = Context(project_id="p1", is_admin=False, roles=frozenset({"member"}))
ADMIN = Context(project_id="admin-project", is_admin=True, roles=frozenset({"admin", "member", "reader"}))
NET_ID = str(uuid.UUID(int=1))
SUBNET_ID = str(uuid.UUID(int=2))


def bad_request(fn, *args, **kwargs) -> str:
    with pytest.raises(errors.HTTPBadRequest) as info:
        fn(*args, **kwargs)
    assert info.value.status == 400 and info.value.type == "HTTPBadRequest"
    return str(info.value)


def forbidden(fn, *args, **kwargs) -> str:
    with pytest.raises(errors.PolicyNotAuthorized) as info:
        fn(*args, **kwargs)
    assert info.value.status == 403 and info.value.type == "PolicyNotAuthorized"
    return str(info.value)


def check_network(item, ctx=MEMBER, create=True) -> dict:
    return req.check_item(NET, "network", item, ctx, create=create)


# ---------------------------------------------------------------- check_item


def test_check_item_converts_and_keeps_only_given_attributes():
    assert check_network({"name": "n", "admin_state_up": "true", "mtu": "1400"}) == {
        "name": "n", "admin_state_up": True, "mtu": 1400}
    assert check_network({}) == {}


def test_unknown_attribute():
    message = bad_request(check_network, {"name": "n", "colour": "blue"})
    assert message == "Unrecognized attribute(s) 'colour'"
    assert "Unrecognized attribute(s)" in bad_request(check_network, {"colour": 1}, create=False)


def test_unknown_attributes_are_all_named():
    message = bad_request(check_network, {"a": 1, "b": 2})
    assert message.startswith("Unrecognized attribute(s)") and "a" in message and "b" in message


@pytest.mark.parametrize("name", ["status", "subnets", "id", "provider:network_type", "tenant_id", "project_id",
                                  "availability_zone_hints", "tags"])
def test_read_only_attribute_on_put(name):
    value = {"status": "ACTIVE", "subnets": [], "id": NET_ID, "provider:network_type": "vxlan", "tenant_id": "p1",
             "project_id": "p1", "availability_zone_hints": [], "tags": ["a"]}[name]
    message = bad_request(check_network, {name: value}, ADMIN, create=False)
    assert message == f"Cannot update read-only attribute {name}"


@pytest.mark.parametrize(("schema", "name", "value"), [
    (NET, "status", "ACTIVE"), (NET, "id", NET_ID), (NET, "subnets", []), (NET, "created_at", "x"),
    (PORT, "binding:vif_type", "ovs"), (PORT, "status", "ACTIVE"), (SUBNET, "revision_number", 1),
])
def test_not_allowed_in_post(schema, name, value):
    message = bad_request(req.check_item, schema, "x", {name: value}, ADMIN, create=True)
    assert message == f"Attribute '{name}' not allowed in POST"


def test_required_attribute_missing():
    message = bad_request(req.check_item, PORT, "port", {"name": "p"}, MEMBER, create=True)
    assert message == "Failed to parse request. Required attribute 'network_id' not specified"
    message = bad_request(req.check_item, SUBNET, "subnet", {"network_id": NET_ID, "cidr": "10.0.0.0/24"},
                          MEMBER, create=True)
    assert "'ip_version'" in message
    # required only on create
    assert req.check_item(PORT, "port", {"name": "p"}, MEMBER, create=False) == {"name": "p"}


@pytest.mark.parametrize(("item", "attr"), [
    ({"shared": True}, "shared"),
    ({"router:external": True}, "router:external"),
    ({"provider:network_type": "vlan"}, "provider:network_type"),
    ({"provider:physical_network": "physnet1"}, "provider:physical_network"),
    ({"provider:segmentation_id": 100}, "provider:segmentation_id"),
])
def test_admin_only_attribute_by_member_on_create(item, attr):
    message = forbidden(check_network, item)
    assert f"create_network:{attr}" in message and "disallowed by policy" in message
    assert check_network(item, ADMIN) == item


def test_admin_only_attribute_by_member_on_update():
    assert "update_network:shared" in forbidden(check_network, {"shared": True}, create=False)
    assert check_network({"shared": True}, ADMIN, create=False) == {"shared": True}


def test_member_may_set_admin_only_attributes_to_their_default():
    assert check_network({"shared": False, "router:external": False}) == {"shared": False, "router:external": False}
    assert check_network({"shared": "false"}, create=False) == {"shared": False}
    assert check_network({"provider:physical_network": None}) == {"provider:physical_network": None}
    assert req.check_item(PORT, "port", {"network_id": NET_ID, "binding:host_id": ""}, MEMBER, create=True) == {
        "network_id": NET_ID, "binding:host_id": ""}
    assert req.check_item(PORT, "port", {"binding:host_id": None}, MEMBER, create=False) == {"binding:host_id": None}


def test_admin_only_port_attributes():
    for item, attr in (({"binding:host_id": "compute1"}, "binding:host_id"),
                       ({"binding:profile": {"a": 1}}, "binding:profile")):
        message = forbidden(req.check_item, PORT, "port", {"network_id": NET_ID, **item}, MEMBER, create=True)
        assert f"create_port:{attr}" in message
        assert req.check_item(PORT, "port", {"network_id": NET_ID, **item}, ADMIN, create=True)[attr] == item[attr]


def test_wrong_type_is_reported_before_policy():
    with pytest.raises(errors.InvalidInput) as info:
        check_network({"shared": "maybe"})
    assert info.value.status == 400 and "'maybe' cannot be converted to boolean" in str(info.value)


def test_tenant_id_becomes_project_id():
    assert check_network({"tenant_id": "p1"}) == {"project_id": "p1"}
    assert check_network({"project_id": "p1"}) == {"project_id": "p1"}
    assert check_network({"tenant_id": "p1", "project_id": "p1"}) == {"project_id": "p1"}


def test_tenant_id_and_project_id_mismatch():
    message = bad_request(check_network, {"tenant_id": "a", "project_id": "b"}, ADMIN)
    assert message == "'project_id' and 'tenant_id' do not match"


def test_member_creating_for_another_project():
    """Neutron (neutron-lib's ``populate_project_info``): a 400 before any policy check."""
    wanted = "other than the authenticated project in request requires admin or advsvc privileges"
    for key in ("tenant_id", "project_id"):
        assert wanted in bad_request(check_network, {key: "someone-else"})
    assert wanted in bad_request(req.check_item, PORT, "port", {"network_id": NET_ID, "project_id": "x"},
                                 MEMBER, create=True)


def test_admin_may_create_for_any_project():
    assert check_network({"project_id": "someone-else"}, ADMIN) == {"project_id": "someone-else"}


def test_item_not_a_dict():
    assert "is not a dictionary" in bad_request(check_network, ["name"])
    assert "is not a dictionary" in bad_request(check_network, "name")


def test_invalid_value_message_names_the_attribute():
    message = bad_request(check_network, {"name": 5})
    assert message == "Invalid input for name. Reason: '5' is not a valid string."
    message = bad_request(check_network, {"mtu": -1})  # Neutron takes 0-65535 here (68+ is checked per subnet)
    assert message.startswith("Invalid input for mtu. Reason: '-1' is too small")
    message = bad_request(req.check_item, PORT, "port",
                          {"network_id": NET_ID, "fixed_ips": [{"subnet_id": "nope"}]}, MEMBER, create=True)
    assert message == "Invalid input for fixed_ips. Reason: 'nope' is not a valid UUID."


def test_subnet_and_port_items_convert():
    subnet = req.check_item(SUBNET, "subnet", {
        "network_id": NET_ID, "ip_version": 6, "cidr": "2001:db8::/64", "gateway_ip": None,
        "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac", "dns_nameservers": ["2001:DB8::53"],
        "allocation_pools": [{"start": "2001:db8::10", "end": "2001:db8::20"}],
        "host_routes": [{"destination": "10.1.0.0/16", "nexthop": "2001:db8::1"}]}, MEMBER, create=True)
    assert subnet["dns_nameservers"] == ["2001:db8::53"]
    assert subnet["gateway_ip"] is None and subnet["ip_version"] == 6
    port = req.check_item(PORT, "port", {
        "network_id": NET_ID, "fixed_ips": [{"subnet_id": SUBNET_ID, "ip_address": "10.0.0.5"}],
        "allowed_address_pairs": [{"ip_address": "10.0.0.0/24"},
                                  {"ip_address": "10.1.0.1", "mac_address": "FA:16:3E:00:00:01"}],
        "extra_dhcp_opts": [{"opt_name": "mtu", "opt_value": "1400", "ip_version": 4}],
        "binding:vnic_type": "normal", "security_groups": None}, MEMBER, create=True)
    assert port["allowed_address_pairs"][1]["mac_address"] == "fa:16:3e:00:00:01"
    assert port["fixed_ips"] == [{"subnet_id": SUBNET_ID, "ip_address": "10.0.0.5"}]
    assert port["security_groups"] is None


@pytest.mark.parametrize(("schema", "item"), [
    (SUBNET, {"network_id": NET_ID, "ip_version": 5, "cidr": "10.0.0.0/24"}),
    (SUBNET, {"network_id": NET_ID, "ip_version": 4, "cidr": "10.0.0.0/255.255.255.0"}),
    (SUBNET, {"network_id": NET_ID, "ip_version": 6, "ipv6_ra_mode": "fast"}),
    (SUBNET, {"network_id": "net", "ip_version": 4}),
    (SUBNET, {"network_id": NET_ID, "ip_version": 4, "allocation_pools": [{"start": "10.0.0.1"}]}),
    (SUBNET, {"network_id": NET_ID, "ip_version": 4, "host_routes": [{"destination": "x", "nexthop": "10.0.0.1"}]}),
    (PORT, {"network_id": NET_ID, "binding:vnic_type": "fancy"}),
    (PORT, {"network_id": NET_ID, "allowed_address_pairs": [{"mac_address": "fa:16:3e:00:00:01"}]}),
    (PORT, {"network_id": NET_ID, "fixed_ips": [{"subnet_id": SUBNET_ID, "ip": "10.0.0.1"}]}),
    (PORT, {"network_id": NET_ID, "extra_dhcp_opts": [{"opt_name": "mtu", "ip_version": 5}]}),
    (PORT, {"network_id": NET_ID, "security_groups": ["default"]}),
    (NET, {"tags": ["a,b"]}),
    (NET, {"tags": [""]}),
])
def test_invalid_items(schema, item):
    bad_request(req.check_item, schema, "x", item, ADMIN, create=True)


# ---------------------------------------------------------------- converters


@pytest.mark.parametrize(("raw", "expected"), [
    (True, True), (False, False), ("true", True), ("True", True), ("TRUE", True), ("1", True), (1, True),
    ("false", False), ("False", False), ("0", False), (0, False),
])
def test_boolean_forms(raw, expected):
    assert t.boolean(raw) is expected


@pytest.mark.parametrize("raw", ["yes", "no", "", "2", 2, -1, None, [], {}, 1.0, "t"])
def test_boolean_refused(raw):
    with pytest.raises(errors.InvalidInput) as info:
        t.boolean(raw)
    assert "cannot be converted to boolean" in str(info.value)


def test_integer_ranges():
    mtu = t.integer(68, 65535)
    assert mtu(68) == 68 and mtu(65535) == 65535 and mtu("1450") == 1450 and mtu(1450.0) == 1450
    for value in (67, 65536, "0"):
        with pytest.raises(t.Invalid):
            mtu(value)
    assert t.integer()(-5) == -5
    assert t.integer(0)(0) == 0


@pytest.mark.parametrize("raw", ["abc", "1.5", 1.5, None, True, False, [], "", "1e3"])
def test_integer_refused(raw):
    with pytest.raises(errors.InvalidInput) as info:
        t.integer(0, 10)(raw)
    assert "is not an integer" in str(info.value)


def test_uuid():
    value = str(uuid.uuid4())
    assert t.uuid_str(value) == value
    for raw in ("not-a-uuid", "", 123, None, value[:-1]):
        with pytest.raises(t.Invalid):
            t.uuid_str(raw)


@pytest.mark.parametrize(("raw", "expected"), [
    ("fa:16:3e:aa:bb:cc", "fa:16:3e:aa:bb:cc"),
    ("FA:16:3E:AA:BB:CC", "fa:16:3e:aa:bb:cc"),
    ("fa-16-3e-aa-bb-cc", "fa:16:3e:aa:bb:cc"),
    ("02:00:00:00:00:00", "02:00:00:00:00:00"),
])
def test_mac(raw, expected):
    assert t.mac_address(raw) == expected


@pytest.mark.parametrize("raw", [
    "01:00:5e:00:00:01", "ff:ff:ff:ff:ff:ff", "33:33:00:00:00:01",  # multicast / broadcast
    "00:00:00:00:00:00", "fa:16:3e:aa:bb", "fa:16:3e:aa:bb:cc:dd", "fa163eaabbcc", "gg:16:3e:aa:bb:cc",
    "", None, 5, " fa:16:3e:aa:bb:cc", "fa:16:3e:aa:bb:cc\n",
])
def test_mac_refused(raw):
    with pytest.raises(t.Invalid):
        t.mac_address(raw)


def test_cidr():
    assert t.cidr("10.0.0.0/24") == "10.0.0.0/24"
    assert t.cidr("2001:db8::/64") == "2001:db8::/64"
    assert t.cidr("10.0.0.1/24") == "10.0.0.1/24"  # accepted; the service normalises it
    with pytest.raises(t.Invalid) as info:
        t.cidr("10.0.0.0/255.255.255.0")
    assert "'10.0.0.0/24' is recommended" in info.value.reason
    for raw in ("10.0.0.0", "garbage", "10.0.0.0/33", None, 24, "fe80::%eth0/64", "10.0.0.0/24\n"):
        with pytest.raises(t.Invalid) as info:
            t.cidr(raw)
        assert "is not a valid IP subnet" in info.value.reason


def test_ip():
    assert t.ip_address("10.0.0.1") == "10.0.0.1"
    assert t.ip_address("2001:DB8:0::1") == "2001:db8::1"
    # a zone id would be a second spelling of one address (two ports, one IP)
    for raw in ("01.2.3.4", "1", "10.0.0.0/24", "10.0.0.256", "", None, 167772161, "fe80::1%eth0",
                "2001:db8::5%1", "10.0.0.1\n"):
        with pytest.raises(t.Invalid):
            t.ip_address(raw)
    assert t.ip_or_cidr("10.0.0.0/24") == "10.0.0.0/24"
    assert t.ip_or_cidr("10.0.0.7") == "10.0.0.7"
    for raw in ("nope", "fe80::1%eth0", "fe80::%eth0/64", None):
        with pytest.raises(t.Invalid):
            t.ip_or_cidr(raw)


def test_list_of():
    assert t.list_of(t.ip_address)(["10.0.0.1", "2001:DB8::1"]) == ["10.0.0.1", "2001:db8::1"]
    assert t.list_of(t.ip_address)([]) == []
    for raw in ("10.0.0.1", None, {"a": 1}, ["10.0.0.1", "x"]):
        with pytest.raises(t.Invalid):
            t.list_of(t.ip_address)(raw)
    with pytest.raises(t.Invalid):
        t.list_of(t.string(), max_items=1)(["a", "b"])


def test_nullable_and_one_of():
    assert t.nullable(t.ip_address)(None) is None
    assert t.one_of(4, 6)(6) == 6
    with pytest.raises(t.Invalid):
        t.one_of(4, 6)("4")


def test_dict_items():
    pool = t.dict_items({"start": t.ip_address, "end": t.ip_address}, ("start", "end"), "IP pool")
    assert pool({"start": "10.0.0.1", "end": "10.0.0.9"}) == {"start": "10.0.0.1", "end": "10.0.0.9"}
    with pytest.raises(t.Invalid) as info:
        pool({"start": "10.0.0.1", "end": "10.0.0.9", "extra": 1})
    assert info.value.reason == "Unrecognized attribute(s) 'extra'"
    with pytest.raises(t.Invalid) as info:
        pool({"start": "10.0.0.1"})
    assert "Invalid data format for IP pool" in info.value.reason
    with pytest.raises(t.Invalid):
        pool("10.0.0.1-10.0.0.9")
    with pytest.raises(t.Invalid):
        pool({"start": "10.0.0.1", "end": "x"})
    optional = t.dict_items({"ip_address": t.ip_or_cidr, "mac_address": t.mac_address}, ("ip_address",), "pair")
    assert optional({"ip_address": "10.0.0.1"}) == {"ip_address": "10.0.0.1"}


def test_string_length():
    assert t.string(3)("abc") == "abc"
    with pytest.raises(t.Invalid):
        t.string(3)("abcd")
    assert t.string(None)("x" * 10000) == "x" * 10000


# ---------------------------------------------------------------- parse_create / parse_update


def body(obj) -> bytes:
    return orjson.dumps(obj)


def create(raw: bytes, ctx=MEMBER):
    return req.parse_create(NET, "network", "networks", raw, ctx)


def test_parse_create_single():
    assert create(body({"network": {"name": "n"}})) == ([{"name": "n"}], False)
    assert create(body({"network": {}})) == ([{}], False)


def test_parse_create_bulk():
    items, bulk = create(body({"networks": [{"name": "a"}, {"name": "b", "shared": False}]}))
    assert bulk is True and items == [{"name": "a"}, {"name": "b", "shared": False}]


def test_parse_create_bulk_is_all_or_nothing():
    assert "Unrecognized attribute(s)" in bad_request(create, body({"networks": [{"name": "a"}, {"x": 1}]}))
    assert "create_network:shared" in forbidden(create, body({"networks": [{"name": "a"}, {"shared": True}]}))


@pytest.mark.parametrize("obj", [{"port": {"name": "n"}}, {"network": {}, "extra": 1},
                                 {"network": {}, "networks": []}, {"Network": {}}])
def test_parse_create_wrong_wrapper_key(obj):
    assert bad_request(create, body(obj)) == "Unable to find 'network' in request body"


@pytest.mark.parametrize("raw", [b"", b"{}", b"[]", b"null", b"3", b'"network"', b"[{\"network\": {}}]"])
def test_parse_create_empty_or_not_an_object(raw):
    assert bad_request(create, raw) == "Resource body required"


@pytest.mark.parametrize("raw", [b"{", b"{'network': {}}", b"network", b"\xff\xfe", b'{"network": {}}}'])
def test_parse_create_malformed_json(raw):
    assert bad_request(create, raw) == "Malformed request body"


@pytest.mark.parametrize("obj", [{"networks": []}, {"networks": {"name": "a"}}, {"networks": None}])
def test_parse_create_bulk_needs_a_non_empty_list(obj):
    assert bad_request(create, body(obj)) == "Resources required"


def test_parse_create_item_not_a_dict():
    assert "is not a dictionary" in bad_request(create, body({"network": "n"}))
    assert "is not a dictionary" in bad_request(create, body({"networks": ["n"]}))


def test_parse_update():
    assert req.parse_update(NET, "network", body({"network": {"name": "x"}}), MEMBER) == {"name": "x"}
    assert "Unable to find" in bad_request(req.parse_update, NET, "network", body({"networks": [{}]}), MEMBER)
    assert "Unable to find" in bad_request(req.parse_update, NET, "network", b"", MEMBER)
    assert bad_request(req.parse_update, NET, "network", b"{", MEMBER) == "Malformed request body"
    assert "read-only" in bad_request(req.parse_update, NET, "network", body({"network": {"status": "UP"}}), MEMBER)


# ---------------------------------------------------------------- If-Match


@pytest.mark.parametrize(("header", "expected"), [
    (None, None), ("", None), ("revision_number=0", 0), ("revision_number=42", 42),
    (" revision_number = 7 ", 7),
])
def test_parse_if_match(header, expected):
    assert req.parse_if_match(header) == expected


@pytest.mark.parametrize("header", ["revision_number=", "revision_number=abc", "revision_number=-1",
                                    "revision_number=1.5", "etag", "*", "rev=3", "revision_number=\u00b2",
                                    "revision_number=\u0663"])
def test_parse_if_match_refused(header):
    assert "If-Match" in bad_request(req.parse_if_match, header)


# ---------------------------------------------------------------- parse_list


def list_networks(items, ctx=MEMBER, max_limit=-1) -> req.ListRequest:
    return req.parse_list(NET, items, ctx, NETWORK_LISTING.sortable, NETWORK_LISTING.filterable(), max_limit)


def test_parse_list_nothing():
    assert list_networks([]) == req.ListRequest(ListQuery(), ())


def test_filters_converted_per_attribute_type():
    query = list_networks([("admin_state_up", "True"), ("mtu", "1450"), ("name", "n1"), ("shared", "0"),
                           ("id", NET_ID), ("router:external", "false")]).query
    assert query.filters == {"admin_state_up": [True], "mtu": [1450], "name": ["n1"], "shared": [False],
                             "id": [NET_ID], "router:external": [False]}


def test_subnet_and_port_filters_converted():
    query = req.parse_list(SUBNET, [("ip_version", "6"), ("cidr", "10.0.0.0/24"), ("enable_dhcp", "true")], MEMBER,
                           SUBNET_LISTING.sortable, SUBNET_LISTING.filterable(), -1).query
    assert query.filters == {"ip_version": [6], "cidr": ["10.0.0.0/24"], "enable_dhcp": [True]}
    query = req.parse_list(PORT, [("mac_address", "FA:16:3E:00:00:01"), ("device_owner", "compute:nova"),
                                  ("fixed_ips", "ip_address=10.0.0.5")], MEMBER,
                           PORT_LISTING.sortable, PORT_LISTING.filterable(), -1).query
    assert query.filters["device_owner"] == ["compute:nova"]
    assert query.filters["fixed_ips"] == ["ip_address=10.0.0.5"]
    assert "mac_address" in query.filters


def test_repeated_filter_keys_accumulate():
    query = list_networks([("name", "a"), ("name", "b"), ("mtu", "1450"), ("name", "c")]).query
    assert query.filters == {"name": ["a", "b", "c"], "mtu": [1450]}


@pytest.mark.parametrize("key", ["colour", "availability_zones", "tags_any", "created_at", "l2_adjacency"])
def test_unknown_or_unfilterable_filter(key):
    assert bad_request(list_networks, [(key, "x")]) == f"{key} is invalid attribute for filtering"


@pytest.mark.parametrize(("key", "value"), [("admin_state_up", "maybe"), ("mtu", "big"), ("mtu", "70000")])
def test_filter_value_of_wrong_type(key, value):
    with pytest.raises(errors.BadRequest) as info:
        list_networks([(key, value)])
    assert info.value.status == 400


def test_admin_read_filters_ignored_for_members():
    assert list_networks([("provider:network_type", "vxlan")]).query.filters == {}
    assert list_networks([("provider:network_type", "vxlan")], ADMIN).query.filters == {
        "provider:network_type": ["vxlan"]}


def test_tag_filters_accumulate():
    query = list_networks([("tags", "a,b"), ("tags-any", "c"), ("not-tags", "d"), ("not-tags-any", "e"),
                           ("tags", "f")]).query
    assert query.tags == {"tags": ["a,b", "f"], "tags-any": ["c"], "not-tags": ["d"], "not-tags-any": ["e"]}
    assert query.filters == {}


def test_sorting():
    query = list_networks([("sort_key", "name"), ("sort_dir", "desc"), ("sort_key", "id"), ("sort_dir", "asc")]).query
    assert query.sorts == (("name", False), ("id", True))


def test_sort_keys_need_as_many_dirs_as_neutron_requires():
    assert bad_request(list_networks, [("sort_key", "name"), ("sort_key", "mtu")]) == \
        "The number of sort_keys and sort_dirs must be same"


def test_sort_key_validated():
    assert bad_request(list_networks, [("sort_key", "colour"), ("sort_dir", "asc")]) == \
        "colour is invalid attribute for sort_key"
    assert "invalid attribute for sort_key" in bad_request(list_networks, [("sort_key", "subnets")])


def test_sort_dir_validated():
    message = bad_request(list_networks, [("sort_key", "name"), ("sort_dir", "up")])
    assert message == "up is invalid value for sort_dir, valid value is 'asc' and 'desc'"
    assert "invalid value for sort_dir" in bad_request(list_networks, [("sort_key", "name"), ("sort_dir", "ASC")])


@pytest.mark.parametrize("items", [
    [("sort_key", "name"), ("sort_key", "id"), ("sort_dir", "asc")],
    [("sort_key", "name"), ("sort_dir", "asc"), ("sort_dir", "desc")],
    [("sort_dir", "asc")],
])
def test_sort_keys_and_dirs_counts_must_match(items):
    assert bad_request(list_networks, items) == "The number of sort_keys and sort_dirs must be same"


@pytest.mark.parametrize(("raw", "max_limit", "expected"), [
    (None, -1, None),
    ("10", -1, 10),
    ("0", -1, None),  # 0: no limit, as Neutron
    ("1", -1, 1),
    ("10", 5, 5),  # capped by pagination_max_limit
    ("3", 5, 3),
    ("0", 5, 5),
    (None, 5, 5),
    ("10", 0, 10),  # 0 or -1: no cap
])
def test_limit(raw, max_limit, expected):
    items = [("limit", raw)] if raw is not None else []
    assert list_networks(items, max_limit=max_limit).query.limit == expected


@pytest.mark.parametrize("raw", ["-1", "abc", "", "1.5"])
def test_limit_refused(raw):
    message = bad_request(list_networks, [("limit", raw)])
    assert message == f"Limit must be an integer 0 or greater and not '{raw}'"


def test_marker_and_page_reverse():
    query = list_networks([("limit", "2"), ("marker", NET_ID), ("page_reverse", "True")]).query
    assert (query.limit, query.marker, query.page_reverse) == (2, NET_ID, True)
    assert list_networks([("page_reverse", "false")]).query.page_reverse is False
    assert list_networks([]).query.page_reverse is False
    with pytest.raises(errors.InvalidInput):
        list_networks([("page_reverse", "sideways")])


def test_fields():
    assert list_networks([("fields", "id"), ("fields", "name"), ("fields", "")]).fields == ("id", "name")
    assert list_networks([("fields", "id"), ("name", "x")]).query.filters == {"name": ["x"]}


# ---------------------------------------------------------------- present


NETWORK_BODY = {"id": NET_ID, "name": "n", "mtu": 1450, "shared": False, "provider:network_type": "vxlan",
                "provider:physical_network": None, "provider:segmentation_id": 7, "status": "ACTIVE"}
PORT_BODY = {"id": NET_ID, "binding:host_id": "c1", "binding:vif_type": "ovs", "binding:vif_details": {},
             "binding:profile": {}, "binding:vnic_type": "normal", "mac_address": "fa:16:3e:00:00:01"}


def test_present_hides_admin_read_attributes_from_members():
    assert req.present(NET, NETWORK_BODY, MEMBER) == {"id": NET_ID, "name": "n", "mtu": 1450, "shared": False,
                                                      "status": "ACTIVE"}
    assert req.present(NET, NETWORK_BODY, ADMIN) == NETWORK_BODY
    assert req.present(PORT, PORT_BODY, MEMBER) == {"id": NET_ID, "binding:vnic_type": "normal",
                                                    "mac_address": "fa:16:3e:00:00:01"}


def test_present_restricts_to_fields():
    assert req.present(NET, NETWORK_BODY, ADMIN, ("id", "provider:segmentation_id")) == {
        "id": NET_ID, "provider:segmentation_id": 7}
    assert req.present(NET, NETWORK_BODY, MEMBER, ("id", "provider:segmentation_id")) == {"id": NET_ID}
    assert req.present(NET, NETWORK_BODY, MEMBER, ("nothing",)) == {}


def test_present_keeps_attributes_outside_the_schema():
    assert req.present(NET, {"id": NET_ID, "extra": 1}, MEMBER) == {"id": NET_ID, "extra": 1}


def test_present_does_not_change_its_input():
    before = dict(NETWORK_BODY)
    req.present(NET, NETWORK_BODY, MEMBER, ("id",))
    assert NETWORK_BODY == before


def test_marker_without_limit_is_ignored_as_in_neutron():
    assert list_networks([("marker", NET_ID)]).query.marker is None
