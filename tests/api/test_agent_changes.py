"""``GET /agent/v1/changes?resource_id=ID``: one resource's entries of the change log (what
``baryon debug port`` builds a port's timeline from), on every backend; admin only."""

from __future__ import annotations

import re
import uuid

import httpx

from tests.api.helpers import fault, headers
from tests.api.test_agent_api import CONFIG, agents, create, host_name, network, port, register, update_port
from tests.support.server import BaryonServer

__all__ = ["agents"]  # the fixture, re-exported for this module
ISO_SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def changes(agents: httpx.Client, resource_id: str) -> list[dict]:
    response = agents.get("/agent/v1/changes", params={"resource_id": resource_id})
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"changes"}
    return response.json()["changes"]


def test_a_ports_changes_in_order_with_what_changed(admin: httpx.Client, agents: httpx.Client) -> None:
    host = host_name()
    register(admin, host, bridge_mappings={}, tunneling_ip=CONFIG["tunneling_ip"])
    net = network(admin, "10.31.0.0/24")
    made = port(admin, net, "")
    update_port(admin, made["id"], **{"binding:host_id": host})
    update_port(admin, made["id"], name="renamed")
    assert admin.delete(f"/ports/{made['id']}").status_code == 204

    entries = changes(agents, made["id"])
    assert [e["action"] for e in entries] == ["create", "update", "update", "delete"]
    seqs = [e["seq"] for e in entries]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4
    assert {e["resource"] for e in entries} == {"port"}
    assert all(set(e) == {"seq", "resource", "action", "revision_number", "created_at", "changed"} for e in entries)
    assert all(ISO_SECONDS.match(e["created_at"]) for e in entries)
    assert [e["created_at"] for e in entries] == sorted(e["created_at"] for e in entries)
    created, bound, renamed, deleted = (e["changed"] for e in entries)
    assert created["id"] == made["id"] and created["binding:vif_type"] == "unbound"
    assert bound["binding:host_id"] == host and bound["binding:vif_type"] == "ovs"
    assert "name" not in bound and "revision_number" not in bound and "updated_at" not in bound
    assert renamed == {"name": "renamed"}
    assert deleted == {}
    assert entries[2]["revision_number"] > entries[1]["revision_number"]


def test_other_resources_and_unknown_ids(admin: httpx.Client, agents: httpx.Client) -> None:
    net = create(admin, "network", name="log-" + uuid.uuid4().hex[:6])
    entries = changes(agents, net["id"])
    assert [(e["resource"], e["action"]) for e in entries] == [("network", "create")]
    assert changes(agents, str(uuid.uuid4())) == []


def test_resource_id_is_required(agents: httpx.Client) -> None:
    fault(agents.get("/agent/v1/changes"), 400, "HTTPBadRequest")
    fault(agents.get("/agent/v1/changes", params={"resource_id": ""}), 400, "HTTPBadRequest")


def test_changes_are_admin_only(baryon: BaryonServer, project: str) -> None:
    with httpx.Client(base_url=baryon.endpoint, headers=headers(project), timeout=30) as member:
        response = member.get("/agent/v1/changes", params={"resource_id": str(uuid.uuid4())})
        assert fault(response, 403, "PolicyNotAuthorized")["message"] == "rule:get_changes is disallowed by policy"
