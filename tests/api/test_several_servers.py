"""Several servers, each with several API workers, on one MariaDB or PostgreSQL database.

A second ``baryon server`` (2 workers) beside the backend's shared one (2 workers) on the same
database: an agent long-polling one server hears of a change made through the other at once
(the other server's commit is seen by the change log's poll; the workers of one server tell each
other directly, ``api.siblings``); concurrent creates through both never hand out the same IP or
MAC; both show the same agents, with the same realised sequences.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.api.helpers import fault
from tests.conftest import SHARED_DEFAULTS, UNLIMITED_QUOTAS
from tests.support.server import BaryonServer

OVS = "Open vSwitch agent"


def config(ip: str) -> dict:
    return {"tunnel_types": ["vxlan"], "tunneling_ip": ip, "bridge_mappings": {}}


@pytest.fixture(scope="module")
def other(baryon: BaryonServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BaryonServer]:
    if not baryon.connection:
        pytest.skip("SQLite is one server's embedded database")
    server = BaryonServer(Path(tmp_path_factory.mktemp("baryon-other")), baryon.connection, workers=2,
                          extra=SHARED_DEFAULTS, sections=UNLIMITED_QUOTAS).start()
    try:
        yield server
    finally:
        server.stop()


def client(server: BaryonServer) -> httpx.Client:
    return httpx.Client(base_url=server.endpoint, timeout=httpx.Timeout(60.0, connect=10.0))


def made(response: httpx.Response, key: str) -> dict:
    assert response.status_code == 201, response.text
    return response.json()[key]


def test_a_change_through_one_server_reaches_a_long_poll_on_the_other(baryon: BaryonServer,
                                                                      other: BaryonServer) -> None:
    suffix = str(time.monotonic_ns())
    a, b = f"multi-a-{suffix}", f"multi-b-{suffix}"
    with client(baryon) as one, client(other) as two:
        for host, ip in ((a, "10.31.0.1"), (b, "10.31.0.2")):
            assert one.post("/v2.0/agents/report", json={"agent": {
                "agent_type": OVS, "host": host, "configurations": config(ip)}}).status_code in (200, 201)
        net = made(one.post("/v2.0/networks", json={"network": {"name": "multi"}}), "network")
        made(one.post("/v2.0/subnets", json={"subnet": {"network_id": net["id"], "cidr": "10.32.0.0/24",
                                                           "ip_version": 4}}), "subnet")
        made(one.post("/v2.0/ports", json={"port": {"network_id": net["id"], "binding:host_id": a}}), "port")
        current = two.get(f"/agent/v1/hosts/{a}/ovs").json()
        for attempt in range(3):  # each change through one server, the long-poll on the other
            changed: dict[str, float] = {}

            def change() -> None:
                time.sleep(0.3)
                made(one.post("/v2.0/ports", json={"port": {"network_id": net["id"], "binding:host_id": b}}),
                     "port")
                changed["at"] = time.monotonic()

            writer = threading.Thread(target=change)
            writer.start()
            answer = two.get(f"/agent/v1/hosts/{a}/ovs", params={"etag": current["etag"], "wait": 20}).json()
            answered = time.monotonic()
            writer.join()
            assert "view" in answer and len(answer["view"]["remote_ports"]) == attempt + 1
            assert answered - changed["at"] < 1.0  # the other server's poll of the log: 0.25 s
            current = answer


def test_concurrent_creates_through_both_servers_never_share_an_address(baryon: BaryonServer,
                                                                        other: BaryonServer) -> None:
    with client(baryon) as one, client(other) as two:
        net = made(one.post("/v2.0/networks", json={"network": {"name": "multi-ipam"}}), "network")
        subnet = made(one.post("/v2.0/subnets", json={"subnet": {
            "network_id": net["id"], "cidr": "10.33.0.0/26", "ip_version": 4}}), "subnet")  # 61 addresses

        def create(i: int) -> httpx.Response:
            with client(baryon if i % 2 else other) as c:
                return c.post("/v2.0/ports", json={"port": {"network_id": net["id"], "name": f"p{i}"}})

        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(create, range(70)))
        created = [r.json()["port"] for r in responses if r.status_code == 201]
        refused = [r for r in responses if r.status_code != 201]
        assert len(created) == 61  # every address once, .1 being the gateway
        for response in refused:
            fault(response, 409, "IpAddressGenerationFailure")
        addresses = [ip["ip_address"] for p in created for ip in p["fixed_ips"]]
        assert len(set(addresses)) == len(addresses) == 61
        assert len({p["mac_address"] for p in created}) == 61
        listed = two.get("/v2.0/ports", params={"network_id": net["id"]}).json()["ports"]
        assert sorted(p["id"] for p in listed) == sorted(p["id"] for p in created)
        assert all(ip["subnet_id"] == subnet["id"] for p in listed for ip in p["fixed_ips"])


def test_both_servers_show_an_agent_alike(baryon: BaryonServer, other: BaryonServer) -> None:
    host = f"multi-agent-{time.monotonic_ns()}"
    with client(baryon) as one, client(other) as two:
        agent = one.post("/v2.0/agents/report", json={"agent": {
            "agent_type": OVS, "host": host, "configurations": config("10.31.0.9")}}).json()["agent"]
        view = two.get(f"/agent/v1/hosts/{host}/ovs").json()
        report = {"agent_type": OVS, "seq": view["seq"], "etag": view["etag"]}
        assert two.post(f"/agent/v1/hosts/{host}/status", json=report).status_code == 200
        made(two.post("/v2.0/networks", json={"network": {"name": "multi-unrelated"}}), "network")
        seq = one.get("/agent/v1/seq").json()["seq"]
        shown = [c.get(f"/v2.0/agents/{agent['id']}").json()["agent"] for c in (one, two)]
        assert [s["realised_seq"] for s in shown] == [seq, seq]  # current: nothing since concerned it
        assert shown[0]["alive"] and shown[1]["alive"]


def test_the_supervisor_of_several_workers_stays_small(other: BaryonServer) -> None:
    """The process that starts the API workers migrates in a child and never imports the
    application (77 MiB when it did): its workers are spawned afresh and share nothing with it."""
    assert other.process is not None
    with open(f"/proc/{other.process.pid}/status") as status:
        rss_kib = next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
    with open(f"/proc/{other.process.pid}/maps") as maps:
        mapped = maps.read()
    assert "sqlalchemy" not in mapped  # its compiled modules are mapped once it is imported
    assert rss_kib < 48 * 1024, f"supervisor RSS {rss_kib // 1024} MiB"
