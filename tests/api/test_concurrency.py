"""Concurrent writers on every database backend, and the change log they leave behind.

8 clients (threads, each its own HTTP connection) create ports at once on one network, as
members of a project that has no default security group yet (so they also race to create it):
every answer is a 201, no IP or MAC is given twice, and the list afterwards holds exactly the
created ports. 8 concurrent network creates get 8 distinct VNIs. Then the change log, read
straight from the server's database: its sequence is 1..N without a gap, and every created
port and network has its ``create`` entry.
"""

from __future__ import annotations

import configparser
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.api.rest import Api
from tests.support.server import BaryonServer

CLIENTS = 8
PORTS_EACH = 25


def all_at_once(endpoint: str, work: Callable[[httpx.Client, int], list[Any]], headers: dict[str, str]) -> list[Any]:
    """Run ``work(client, index)`` in CLIENTS threads released together; results concatenated."""
    barrier = threading.Barrier(CLIENTS)

    def run(index: int) -> list[Any]:
        with httpx.Client(base_url=endpoint, headers=headers, timeout=120) as client:
            client.get("/")  # connect before the start line
            barrier.wait(timeout=60)
            return work(client, index)

    with ThreadPoolExecutor(CLIENTS) as pool:
        chunks = list(pool.map(run, range(CLIENTS)))
    return [item for chunk in chunks for item in chunk]


def database_url(server: BaryonServer) -> str:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(server.config)
    connection = parser.get("database", "connection", fallback="").strip()
    return connection or f"sqlite:///{server.base_dir / 'state' / 'baryon.sqlite'}"


def change_log(server: BaryonServer) -> list[tuple[int, str, str, str]]:
    engine = create_engine(database_url(server))
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT seq, resource_type, resource_id, action FROM changes ORDER BY seq"))
            return [tuple(row) for row in rows]
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def created(baryon: BaryonServer) -> dict[str, Any]:
    """The concurrent run, once per backend: ports on one /24 network, then networks."""
    project = uuid.uuid4().hex
    admin = Api(baryon.endpoint)
    try:
        network = admin.create("network", name="race", project_id=project)
        subnet = admin.create("subnet", network_id=network["id"], cidr="10.77.0.0/24", ip_version=4)
    finally:
        admin.close()
    member = {"X-Project-Id": project, "X-Roles": "member"}

    def create_ports(client: httpx.Client, index: int) -> list[httpx.Response]:
        return [client.post("/v2.0/ports",
                            json={"port": {"network_id": network["id"], "name": f"c{index}-{i}"}})
                for i in range(PORTS_EACH)]

    def create_network(client: httpx.Client, index: int) -> list[httpx.Response]:
        return [client.post("/v2.0/networks",
                            json={"network": {"name": f"race-{index}", "project_id": project}})]

    port_responses = all_at_once(baryon.endpoint, create_ports, member)
    network_responses = all_at_once(baryon.endpoint, create_network, {})
    return {"network": network, "subnet": subnet, "ports": port_responses, "networks": network_responses}


def test_concurrent_port_creates_never_share_an_address_or_a_mac(baryon: BaryonServer, created: dict):
    responses = created["ports"]
    assert len(responses) == CLIENTS * PORTS_EACH
    failures = [(r.status_code, r.text) for r in responses if r.status_code != 201]
    assert failures == []
    ports = [r.json()["port"] for r in responses]
    addresses = [f["ip_address"] for p in ports for f in p["fixed_ips"]]
    assert len(addresses) == len(ports) and len(set(addresses)) == len(ports)
    assert all(f["subnet_id"] == created["subnet"]["id"] for p in ports for f in p["fixed_ips"])
    assert "10.77.0.1" not in addresses
    macs = [p["mac_address"] for p in ports]
    assert len(set(macs)) == len(ports)
    # Racing for the project's first port, they still share one default security group.
    assert len({tuple(p["security_groups"]) for p in ports}) == 1 and len(ports[0]["security_groups"]) == 1
    admin = Api(baryon.endpoint)
    try:
        listed = admin.list("ports", {"network_id": created["network"]["id"]})
    finally:
        admin.close()
    assert sorted(p["id"] for p in listed) == sorted(p["id"] for p in ports)
    assert sorted((p["fixed_ips"][0]["ip_address"], p["mac_address"]) for p in listed) == sorted(
        (p["fixed_ips"][0]["ip_address"], p["mac_address"]) for p in ports)


def test_concurrent_network_creates_get_distinct_vnis(created: dict):
    responses = created["networks"]
    assert [r.status_code for r in responses] == [201] * CLIENTS, [r.text for r in responses]
    networks = [r.json()["network"] for r in responses]
    assert {n["provider:network_type"] for n in networks} == {"vxlan"}
    vnis = [n["provider:segmentation_id"] for n in networks]
    assert len(set(vnis)) == CLIENTS and all(isinstance(v, int) and v > 0 for v in vnis)


def test_change_log_is_gap_free_and_records_every_create(baryon: BaryonServer, created: dict):
    log = change_log(baryon)
    seqs = [seq for seq, *_ in log]
    assert seqs == list(range(1, len(log) + 1))
    creates = {(rtype, rid) for _, rtype, rid, action in log if action == "create"}
    ports = [r.json()["port"]["id"] for r in created["ports"]]
    networks = [r.json()["network"]["id"] for r in created["networks"]]
    assert {("port", p) for p in ports} <= creates
    assert {("network", n) for n in networks} <= creates
    assert ("subnet", created["subnet"]["id"]) in creates
    # One create per port, in the order the log gives: no port logged twice.
    port_creates = [rid for _, rtype, rid, action in log if rtype == "port" and action == "create" and rid in set(ports)]
    assert sorted(port_creates) == sorted(ports)
