"""Two port extensions through the API, on every backend: tag-ports-during-bulk-creation and
port-mac-address-regenerate.

Tags given per port in a bulk create (and a single one) are stored and shown, a bad tag in one
port refuses the whole request; ``"mac_address": null`` on update gives the port a new MAC from
``base_mac``, refused while the port is bound (as any MAC change) and to non-admins (policy).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest

from tests.api.rest import Api, fault

MAC = re.compile(r"^fa:16:3e(:[0-9a-f]{2}){3}$")
TAGS = [["tag-1", "tag-2", "tag-3"], ["tag-1", "tag-2"], ["tag-1", "tag-3"], []]


@pytest.fixture
def admin(baryon) -> Iterator[Api]:
    api = Api(baryon.endpoint)
    yield api
    api.close()


def test_tags_given_in_a_bulk_create_are_stored_per_port(admin: Api):
    network = admin.create("network", name="bulk-tags")
    ports = [{"network_id": network["id"], "name": "-".join(tags) or "none", "tags": tags} for tags in TAGS]
    response = admin.post("/v2.0/ports", {"ports": ports})
    assert response.status_code == 201, response.text
    made = response.json()["ports"]
    assert [p["tags"] for p in made] == TAGS
    assert [admin.show("port", p["id"])["tags"] for p in made] == TAGS
    tagged = admin.list("ports", {"network_id": network["id"], "tags": "tag-1,tag-3"})
    assert {p["name"] for p in tagged} == {"tag-1-tag-2-tag-3", "tag-1-tag-3"}
    single = admin.create("port", network_id=network["id"], tags=["alone"])
    assert single["tags"] == ["alone"]

    # One bad tag refuses the whole request: nothing is created.
    bad = [{"network_id": network["id"], "tags": ["fine"]}, {"network_id": network["id"], "tags": ["a,b"]}]
    fault(admin.post("/v2.0/ports", {"ports": bad}), 400, "HTTPBadRequest")
    assert len(admin.list("ports", {"network_id": network["id"]})) == len(TAGS) + 1
    aliases = {e["alias"] for e in admin.get("/v2.0/extensions").json()["extensions"]}
    assert {"tag-ports-during-bulk-creation", "port-mac-address-regenerate"} <= aliases


def test_a_null_mac_regenerates_it_when_the_port_is_not_bound(baryon, admin: Api, project: str):
    network = admin.create("network", name="regen", project_id=project)
    port = admin.create("port", network_id=network["id"], project_id=project)
    renewed = admin.update("port", port["id"], mac_address=None)
    assert MAC.match(renewed["mac_address"]) and renewed["mac_address"] != port["mac_address"]
    assert renewed["revision_number"] > port["revision_number"]
    assert admin.show("port", port["id"])["mac_address"] == renewed["mac_address"]
    # Null on create is a generated MAC too (neutron-lib's convert_to_mac_if_none).
    assert MAC.match(admin.create("port", network_id=network["id"], mac_address=None)["mac_address"])

    # A member may not change a MAC, even to a regenerated one (update_port:mac_address).
    member = Api(baryon.endpoint, project)
    try:
        fault(member.put(f"/v2.0/ports/{port['id']}", {"port": {"mac_address": None}}), 403, "PolicyNotAuthorized")
    finally:
        member.close()

    # Bound to a live OVS agent: the MAC stays (PortBound), as for any MAC change.
    host = f"compute-{uuid.uuid4().hex[:10]}"
    report = admin.post("/v2.0/agents/report", {"agent": {"agent_type": "Open vSwitch agent", "host": host,
                                                          "configurations": {"tunnel_types": ["vxlan"],
                                                                             "tunneling_ip": "10.10.10.12"}}})
    assert report.status_code in (200, 201), report.text
    bound = admin.update("port", port["id"], **{"binding:host_id": host})
    assert bound["binding:vif_type"] == "ovs"
    fault(admin.put(f"/v2.0/ports/{port['id']}", {"port": {"mac_address": None}}), 409, "PortBound")
    assert admin.show("port", port["id"])["mac_address"] == renewed["mac_address"]
    # Unbound again, it may change.
    admin.update("port", port["id"], **{"binding:host_id": ""})
    assert admin.update("port", port["id"], mac_address=None)["mac_address"] != renewed["mac_address"]
