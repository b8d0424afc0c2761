"""Bad input, through a running server on every backend: each request is refused with Neutron's
fault body and its status, and changes nothing (the project's resources listed before and after).

- ``[oslo_middleware] max_request_body_size`` (Neutron's default, 114688 bytes): a larger body is a
  413, whether it says so in ``Content-Length`` (answered without the body being sent) or comes
  chunked (reading stops at the limit); a body just under it is parsed;
- absurd ``limit`` and ``marker``, malformed UUIDs (filters and bodies), CIDRs, IP and MAC
  addresses, huge tag lists and long tags, names that are too long or not valid text (valid
  unicode is accepted and comes back as it was sent), NUL characters, wrong JSON types, bodies
  that are not JSON or not an object, unknown attributes: all 400s.

Each test works as a member of a fresh project; one snapshot of the project's resources per test.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.api.helpers import fault, http

LIMIT = 114688  # Neutron's default max_request_body_size, which the shared servers keep
COLLECTIONS = ("networks", "subnets", "ports", "routers", "security-groups", "security-group-rules", "floatingips")
BAD_REQUEST = {"HTTPBadRequest", "InvalidInput", "BadRequest"}


def snapshot(client: httpx.Client) -> dict[str, Any]:
    """Everything the project sees, and its quotas."""
    state: dict[str, Any] = {}
    for collection in COLLECTIONS:
        response = client.get(f"/{collection}")
        assert response.status_code == 200, response.text
        state[collection] = sorted(response.json()[collection.replace("-", "_")], key=lambda r: r["id"])
    state["quota"] = client.get(f"/quotas/{client.headers['x-project-id']}").json()
    return state


@pytest.fixture
def client(baryon, project: str) -> Iterator[httpx.Client]:
    """A member of the fresh project."""
    with http(baryon.endpoint, project) as member:
        yield member


@pytest.fixture
def net(client: httpx.Client) -> dict:
    """A network with an IPv4 subnet, in the project: the target of port, subnet and router cases."""
    network = client.post("/networks", json={"network": {"name": "bad-input"}}).json()["network"]
    subnet = client.post("/subnets", json={"subnet": {"network_id": network["id"], "cidr": "10.77.0.0/24",
                                                      "ip_version": 4}}).json()["subnet"]
    return {"network": network["id"], "subnet": subnet["id"]}


def refused(client: httpx.Client, cases: list[tuple], status: int = 400, via: httpx.Client | None = None) -> None:
    """Each ``(method, path, body, types[, text])``, sent by ``via`` (default: ``client``): refused
    with ``status``, one of ``types``, and ``text`` in the message when given; ``client``'s project
    unchanged after them all. ``body``: JSON, or bytes sent as they are."""
    before = snapshot(client)
    sender = via or client
    for method, path, body, types, *text in cases:
        if isinstance(body, bytes):
            response = sender.request(method, path, content=body, headers={"Content-Type": "application/json"})
        else:
            response = sender.request(method, path, json=body)
        assert response.status_code == status, (method, path, body, response.text)
        error = fault(response, status, response.json()["NeutronError"]["type"])
        assert error["type"] in ({types} if isinstance(types, str) else types), (method, path, body, error)
        for expected in text:
            assert expected in error["message"], (method, path, body, error)
    assert snapshot(client) == before


# ---------------------------------------------------------------- request size


def test_bodies_over_the_size_limit_are_413_before_parsing(client: httpx.Client) -> None:
    def body(size: int) -> bytes:
        # Valid JSON of exactly ``size`` bytes: a network whose name is far too long, so a body
        # that is parsed is a 400 (name), one that is not a 413 (size).
        head, tail = b'{"network": {"name": "', b'"}}'
        return head + b"x" * (size - len(head) - len(tail)) + tail

    refused(client, [("POST", "/networks", body(LIMIT + 1), "HTTPRequestEntityTooLarge", "Request is too large"),
                     ("POST", "/networks", body(4 * LIMIT), "HTTPRequestEntityTooLarge"),
                     ("PUT", f"/networks/{uuid.uuid4()}", body(LIMIT + 1), "HTTPRequestEntityTooLarge")], 413)
    refused(client, [("POST", "/networks", body(LIMIT), "HTTPBadRequest", "exceeds maximum length of 255")])
    before = snapshot(client)
    # Chunked (no Content-Length): counted as it is read, refused once past the limit.
    chunks = iter([body(3 * LIMIT)[i:i + 8192] for i in range(0, 3 * LIMIT, 8192)])
    response = client.post("/networks", content=chunks, headers={"Content-Type": "application/json"})
    assert "content-length" not in response.request.headers
    fault(response, 413, "HTTPRequestEntityTooLarge")
    # A bulk POST over the limit: nothing of it is created.
    networks = [{"name": f"bulk-{i}", "description": "d" * 200} for i in range(600)]
    fault(client.post("/networks", json={"networks": networks}), 413, "HTTPRequestEntityTooLarge")
    assert snapshot(client) == before


def test_a_content_length_over_the_limit_is_answered_without_the_body(client: httpx.Client) -> None:
    url = urlsplit(str(client.base_url))
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(f"POST /v2.0/networks HTTP/1.1\r\nHost: {url.hostname}\r\nContent-Type: application/json\r\n"
                     f"X-Project-Id: {client.headers['x-project-id']}\r\nContent-Length: {10**9}\r\n\r\n".encode())
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.endswith(b"}}"):  # not one byte of the body was sent
            data = sock.recv(65536)
            assert data, answer
            answer += data
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 "), head
    assert b'"type":"HTTPRequestEntityTooLarge"' in payload


def test_the_agent_api_is_not_limited(baryon, client: httpx.Client) -> None:
    # An agent's status report grows with its host's ports: Neutron's agents report over RPC,
    # which the option does not limit. Here the report reaches the route (no such agent: 404).
    ports = {str(uuid.uuid4()): "ACTIVE" for _ in range(3000)}
    with httpx.Client(base_url=baryon.endpoint, timeout=30) as admin:
        response = admin.post("/agent/v1/hosts/no-such-host/status",
                              json={"agent_type": "Open vSwitch agent", "seq": 0, "ports": ports})
    assert len(response.request.content) > LIMIT
    fault(response, 404, "AgentNotFoundByTypeHost")


# ---------------------------------------------------------------- query strings


def test_absurd_limits_and_markers(client: httpx.Client) -> None:
    cases: list[tuple] = [("GET", f"/networks?limit={v}", None, "HTTPBadRequest", "Limit must be an integer")
                          for v in ("-1", "abc", "1.5", str(10**30), "", "1e3", str(2**31))]
    cases += [("GET", f"/{c}?limit=2&marker={m}", None, "HTTPBadRequest", "Invalid input for marker")
              for c in ("networks", "ports") for m in ("zzz", "1' OR '1'='1", "0" * 40)]
    cases += [("GET", "/networks?marker=zzz", None, "HTTPBadRequest", "is not a valid UUID")]  # even without limit
    refused(client, cases)
    refused(client, [("GET", f"/networks?limit=1&marker={uuid.uuid4()}", None, "NetworkNotFound")], 404)
    assert client.get("/networks", params={"limit": str(2**31 - 1)}).status_code == 200


def test_malformed_filters(client: httpx.Client) -> None:
    cases = [("GET", f"/{path}", None, types, text) for path, types, text in [
        ("networks?id=zzz", "HTTPBadRequest", "Invalid input for id"),
        ("ports?network_id=not-a-uuid", "HTTPBadRequest", "is not a valid UUID"),
        ("ports?security_groups=zzz", "HTTPBadRequest", "is not a valid UUID"),
        ("subnets?network_id=12345", "HTTPBadRequest", "is not a valid UUID"),
        ("floatingips?port_id=zzz", "HTTPBadRequest", "is not a valid UUID"),
        ("security-group-rules?security_group_id=zzz", "HTTPBadRequest", "is not a valid UUID"),
        ("ports?mac_address=zz:zz:zz:zz:zz:zz", "HTTPBadRequest", "is not a valid MAC address"),
        ("subnets?cidr=10.0.0.0/33", "HTTPBadRequest", "is not a valid IP subnet"),
        ("networks?mtu=" + str(10**30), "HTTPBadRequest", "is too large"),
        ("networks?revision_number=" + str(10**20), "HTTPBadRequest", "is too large"),
        ("networks?name=a%00b", "HTTPBadRequest", "NUL"),
        ("networks/a%00b", "HTTPBadRequest", "NUL"),
    ]]
    refused(client, cases)
    # Empty-string filtering still works on UUID attributes; an unknown UUID finds nothing.
    assert client.get("/ports", params={"network_id": str(uuid.uuid4())}).json()["ports"] == []
    assert client.get("/subnets", params={"subnetpool_id": ""}).status_code == 200
    # A malformed id in the path is Neutron's 404, as for any id that matches nothing.
    fault(client.get("/networks/not-a-uuid"), 404, "NetworkNotFound")


# ---------------------------------------------------------------- bodies


def test_malformed_uuids_in_bodies(client: httpx.Client, net: dict) -> None:
    bad = "not-a-uuid"
    router = client.post("/routers", json={"router": {"name": "r"}}).json()["router"]
    group = client.post("/security-groups", json={"security_group": {"name": "g"}}).json()["security_group"]
    refused(client, [
        ("POST", "/ports", {"port": {"network_id": bad}}, "HTTPBadRequest", "Invalid input for network_id"),
        ("POST", "/ports", {"port": {"network_id": net["network"], "security_groups": [group["id"], bad]}},
         "HTTPBadRequest", "Invalid input for security_groups"),
        ("POST", "/ports", {"port": {"network_id": net["network"], "fixed_ips": [{"subnet_id": bad}]}},
         "HTTPBadRequest", "is not a valid UUID"),
        ("POST", "/subnets", {"subnet": {"network_id": 42, "cidr": "10.78.0.0/24", "ip_version": 4}},
         "HTTPBadRequest", "Invalid input for network_id"),
        ("POST", "/routers", {"router": {"external_gateway_info": {"network_id": bad}}}, "HTTPBadRequest"),
        ("POST", "/floatingips", {"floatingip": {"floating_network_id": bad}}, "HTTPBadRequest"),
        ("POST", "/security-group-rules", {"security_group_rule": {"security_group_id": bad, "direction": "ingress"}},
         "HTTPBadRequest", "Invalid input for security_group_id"),
        ("PUT", f"/routers/{router['id']}/add_router_interface", {"subnet_id": bad}, "BadRequest",
         "is not a valid UUID"),
        ("PUT", f"/routers/{router['id']}/remove_router_interface", {"port_id": ""}, "BadRequest"),
    ])


def test_malformed_cidrs_addresses_and_macs(client: httpx.Client, net: dict) -> None:
    def subnet(**attrs: Any) -> dict:
        return {"subnet": {"network_id": net["network"], "ip_version": 4, "cidr": "10.79.0.0/24", **attrs}}

    def port(**attrs: Any) -> dict:
        return {"port": {"network_id": net["network"], **attrs}}

    cases: list[tuple] = [("POST", "/subnets", subnet(cidr=c), BAD_REQUEST) for c in (
        "10.0.0.0/33", "10.0.0.0", "300.1.2.0/24", "10.0.0.0/255.255.255.0", "zzz", "", 10, None, "fe80::/64%eth0")]
    cases += [("POST", "/subnets", subnet(**attrs), BAD_REQUEST) for attrs in (
        {"gateway_ip": "10.79.0.256"}, {"dns_nameservers": ["1.1.1"]}, {"dns_nameservers": "1.1.1.1"},
        {"allocation_pools": [{"start": "10.79.0.10", "end": "x"}]}, {"host_routes": [{"destination": "x"}]},
        {"cidr": "2001:db8::/64"})]
    cases += [("POST", "/ports", port(mac_address=m), "HTTPBadRequest", "is not a valid MAC address") for m in (
        "zz:zz:zz:zz:zz:zz", "fa:16:3e:00:00", "01:00:5e:00:00:01", "00:00:00:00:00:00", "fa163e000001",
        "fa:16:3e:00:00:01\n", 12)]
    cases += [("POST", "/ports", port(**attrs), "HTTPBadRequest") for attrs in (
        {"fixed_ips": [{"ip_address": "10.77.0.999"}]}, {"fixed_ips": [{"ip_address": "01.2.3.4"}]},
        {"allowed_address_pairs": [{"ip_address": "10.0.0.0/99"}]},
        {"allowed_address_pairs": [{"ip_address": "10.0.0.1", "mac_address": "x"}]})]
    cases += [("POST", "/security-group-rules", {"security_group_rule": {
        "security_group_id": str(uuid.uuid4()), "direction": "ingress", "remote_ip_prefix": p}}, "InvalidCIDR")
        for p in ("10.0.0.0/40", "zzz")]
    refused(client, cases)


def test_tag_lists_and_long_tags(client: httpx.Client, net: dict) -> None:
    tags = f"/networks/{net['network']}/tags"
    refused(client, [
        ("POST", "/networks", {"network": {"tags": [f"t{i}" for i in range(1001)]}}, "HTTPBadRequest",
         "exceed the maximum of 1000"),
        ("PUT", tags, {"tags": [f"t{i}" for i in range(1001)]}, "InvalidInput", "exceed the maximum of 1000"),
        ("POST", "/networks", {"network": {"tags": ["x" * 256]}}, "HTTPBadRequest", "exceeds maximum length of 255"),
        ("PUT", tags, {"tags": ["x" * 256]}, "InvalidInput"),
        ("PUT", tags, {"tags": ["a", "b", "a"]}, "InvalidInput", "Duplicate items"),
        ("PUT", tags, {"tags": ["ok", 7]}, "InvalidInput"),
        ("PUT", tags, {"tags": "a,b"}, "InvalidInput"),
        ("PUT", tags, ["a"], "InvalidInput", "Invalid tags body"),
        ("PUT", f"{tags}/{'x' * 256}", None, "InvalidInput"),
        ("GET", f"{tags}/{'x' * 256}", None, "InvalidInput"),
        ("DELETE", f"{tags}/{'x' * 256}", None, "InvalidInput"),
    ])
    # At the limit, and at 255 characters, tags are taken.
    response = client.put(tags, json={"tags": [f"t{i}" for i in range(999)] + ["y" * 255]})
    assert response.status_code == 200 and len(response.json()["tags"]) == 1000


def test_unicode_names_round_trip_and_bad_text_is_refused(client: httpx.Client) -> None:
    for name in ("réseau-網絡-сеть-🚀", "e\u0301\u200dשלום", "é" * 255, "🙂" * 255):
        response = client.post("/networks", json={"network": {"name": name, "description": name}})
        assert response.status_code == 201, response.text
        created = response.json()["network"]
        assert created["name"] == name and created["description"] == name
        assert client.get(f"/networks/{created['id']}").json()["network"]["name"] == name
        assert [n["id"] for n in client.get("/networks", params={"name": name}).json()["networks"]] == [created["id"]]
        assert client.delete(f"/networks/{created['id']}").status_code == 204
    refused(client, [
        ("POST", "/networks", {"network": {"name": "é" * 256}}, "HTTPBadRequest", "exceeds maximum length of 255"),
        ("POST", "/networks", {"network": {"description": "🙂" * 256}}, "HTTPBadRequest"),
        ("POST", "/networks", {"network": {"name": "a\u0000b"}}, "HTTPBadRequest", "NUL"),
        ("POST", "/networks", b'{"network": {"name": "\\ud800"}}', "HTTPBadRequest", "Malformed request body"),
        ("POST", "/networks", b'{"network": {"name": "\xff\xfe"}}', "HTTPBadRequest", "Malformed request body"),
        ("POST", "/networks", b'{"network": {"name": "\xc0\xaf"}}', "HTTPBadRequest", "Malformed request body"),
    ])


def test_wrong_json_types_and_bodies(baryon, client: httpx.Client, net: dict) -> None:
    network = f"/networks/{net['network']}"
    cases: list[tuple] = [("POST", "/networks", {"network": attrs}, BAD_REQUEST) for attrs in (
        {"name": 5}, {"name": ["x"]}, {"name": None}, {"admin_state_up": "maybe"}, {"admin_state_up": 2},
        {"mtu": "abc"}, {"mtu": 1500.5}, {"mtu": True}, {"mtu": 10**30}, {"mtu": -1}, {"shared": []},
        {"availability_zone_hints": "nova"}, {"tags": "red"})]
    cases += [("POST", "/subnets", {"subnet": {"network_id": net["network"], "cidr": "10.80.0.0/24", **attrs}},
               BAD_REQUEST) for attrs in ({"ip_version": "four"}, {"ip_version": True}, {"ip_version": "4.5"},
                                          {"ip_version": 5}, {"ip_version": 4, "enable_dhcp": "yes please"})]
    cases += [("POST", "/ports", {"port": {"network_id": net["network"], **attrs}}, BAD_REQUEST) for attrs in (
        {"fixed_ips": {"ip_address": "10.77.0.5"}}, {"fixed_ips": ["10.77.0.5"]}, {"binding:profile": "x"},
        {"security_groups": "default"}, {"extra_dhcp_opts": [{"opt_value": "x"}]})]
    cases += [("POST", "/networks", body, "HTTPBadRequest") for body in (
        b"not json", b"", b"[1, 2]", b'"network"', b"null", b"5", b'{"network": ', b"[" * 5000 + b"]" * 5000,
        b'{"network": {"mtu": NaN}}', b'{"network": {"name": "x"}, "network": {"name": "y"}, "z": 1}')]
    cases += [("POST", "/networks", body, "HTTPBadRequest") for body in (
        {"network": None}, {"network": [1]}, {"network": "x"}, {"networks": {}}, {"networks": []},
        {"networks": [1]}, {"network": {}, "subnet": {}}, {"netwerk": {}}, {})]
    cases += [("PUT", network, body, "HTTPBadRequest") for body in (
        b"not json", [1], {"network": "x"}, {"network": {"name": 5}}, {"port": {"name": "x"}})]
    refused(client, cases)
    with http(baryon.endpoint) as admin:  # only an admin sets quotas
        refused(client, [("PUT", f"/quotas/{client.headers['x-project-id']}", body, BAD_REQUEST) for body in (
            b"zz", [1], {"quota": {"network": "many"}}, {"quota": {"network": 10**30}}, {"quota": {"network": -2}},
            {"quota": {"colour": 1}})], via=admin)


def test_unknown_attributes(client: httpx.Client, net: dict) -> None:
    refused(client, [
        ("POST", "/networks", {"network": {"name": "x", "colour": "red"}}, "HTTPBadRequest",
         "Unrecognized attribute(s) 'colour'"),
        ("POST", "/networks", {"networks": [{"name": "ok"}, {"name": "x", "colour": "red"}]}, "HTTPBadRequest",
         "Unrecognized attribute(s) 'colour'"),
        ("PUT", f"/networks/{net['network']}", {"network": {"colour": "red"}}, "HTTPBadRequest",
         "Unrecognized attribute(s) 'colour'"),
        ("POST", "/ports", {"port": {"network_id": net["network"], "fixed_ips": [{"subnet_id": net["subnet"],
                                                                                  "colour": "red"}]}},
         "HTTPBadRequest", "Unrecognized attribute(s) 'colour'"),
        ("POST", "/routers", {"router": {"external_gateway_info": {"network_id": net["network"], "colour": 1}}},
         "HTTPBadRequest", "colour"),
        ("PUT", f"/networks/{net['network']}", {"network": {"status": "DOWN"}}, "HTTPBadRequest",
         "Cannot update read-only attribute status"),
        ("POST", "/networks", {"network": {"id": str(uuid.uuid4())}}, "HTTPBadRequest", "not allowed in POST"),
    ])
