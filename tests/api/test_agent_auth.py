"""The agents' shared secret (``[baryon] agent_shared_secret``) on the agent API, through running servers.

- a server with a secret: every agent-API request without it, with a wrong one, or with it in
  another scheme is a 401 ``HTTPUnauthorized`` in Neutron's format, answered before anything is
  read: no heartbeat, no status, no change in the database; with it (the real agent client,
  ``baryon.agent.client.ServerClient``), the agent registers, watches, reports, as before;
- a server without a secret: open under ``auth_strategy = noauth`` (a warning at start), refused
  under ``keystone``.

One module-scoped SQLite server per configuration (the checks are about HTTP, not the database).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from baryon.agent.client import ServerClient, ServerError
from baryon.model.host import HostView
from tests.api.agentdb import silence
from tests.api.helpers import fault
from tests.api.test_concurrency import change_log, database_url
from tests.support.server import BaryonServer

OVS = "Open vSwitch agent"
SECRET = "Zm9v-bar_" + uuid.uuid4().hex
AGENT = {"agent_type": OVS, "binary": "neutron-openvswitch-agent", "topic": "N/A",
         "configurations": {"tunnel_types": ["vxlan"], "tunneling_ip": "10.46.0.1", "bridge_mappings": {}}}
OPEN_WARNING = "the agent API (/agent/v1) is open to anyone who reaches this server"
KEYSTONE_WARNING = "the agent API (/agent/v1) refuses every request"


def _server(tmp_path_factory: pytest.TempPathFactory, name: str, extra: str = "", sections: str = "",
            ) -> Iterator[BaryonServer]:
    server = BaryonServer(tmp_path_factory.mktemp(name), workers=1, extra=extra, sections=sections)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BaryonServer]:
    yield from _server(tmp_path_factory, "agentauth-secret", sections=f"[baryon]\nagent_shared_secret = {SECRET}\n")


@pytest.fixture(scope="module")
def bound(secured: BaryonServer) -> tuple[str, dict]:
    """A registered OVS agent's host and a port bound there (DOWN: nothing reported yet)."""
    host = f"auth-{uuid.uuid4().hex[:8]}"
    client = ServerClient(secured.endpoint, secret=SECRET)
    try:
        client.report_state({**AGENT, "host": host})
    finally:
        client.close()
    with httpx.Client(base_url=secured.endpoint + "/v2.0", timeout=30) as api:
        net = api.post("/networks", json={"network": {"name": "auth"}}).json()["network"]
        assert api.post("/subnets", json={"subnet": {"network_id": net["id"], "cidr": "10.47.0.0/24",
                                                     "ip_version": 4}}).status_code == 201
        port = api.post("/ports", json={"port": {"network_id": net["id"], "binding:host_id": host}}).json()["port"]
    assert port["status"] == "DOWN"
    return host, port


def agent_api_requests(client: httpx.Client, host: str, port_id: str) -> list[tuple[str, httpx.Response]]:
    """Every agent-API endpoint once, as an agent calls it (a long-poll that would wait 30 s)."""
    return [
        *((f"GET {kind} view", client.get(f"/agent/v1/hosts/{host}/{kind}", params={"etag": "x", "wait": 30}))
          for kind in ("ovs", "dhcp", "l3")),
        ("GET seq", client.get("/agent/v1/seq")),
        ("GET changes", client.get("/agent/v1/changes", params={"resource_id": port_id})),
        ("POST status", client.post(f"/agent/v1/hosts/{host}/status",
                                    json={"agent_type": OVS, "seq": 10**6, "ports": {port_id: "ACTIVE"}})),
        ("POST report", client.post("/agent/v1/report", json={"agent": {**AGENT, "host": host}})),
        ("POST report (new host)", client.post("/agent/v1/report",
                                               json={"agent": {**AGENT, "host": f"new-{uuid.uuid4().hex[:8]}"}})),
    ]


def state(server: BaryonServer) -> tuple[list, list, list]:
    """What an agent's request could change: agents (heartbeat, realised_seq), ports' status, the change log."""
    engine = create_engine(database_url(server))
    try:
        with engine.connect() as conn:
            agents = [tuple(r) for r in conn.execute(text(
                "SELECT host, agent_type, heartbeat_timestamp, realised_seq FROM agents ORDER BY host, agent_type"))]
            ports = [tuple(r) for r in conn.execute(text("SELECT id, status FROM ports ORDER BY id"))]
    finally:
        engine.dispose()
    return agents, ports, change_log(server)


@pytest.mark.parametrize("authorization", [None, f"Bearer {SECRET}x", f"Bearer {SECRET[:-1]}", "Bearer",
                                           f"Token {SECRET}", f"Basic {SECRET}", f"Bearer s\u00e9same"],
                         ids=["none", "longer", "shorter", "no-token", "other-scheme", "basic", "latin-1"])
def test_without_the_secret_every_agent_request_is_refused_and_nothing_recorded(
        secured: BaryonServer, bound: tuple[str, dict], authorization: str | None) -> None:
    host, port = bound
    silence(secured, OVS, host)  # dead: a refused heartbeat must leave it so
    before = state(secured)
    headers = {"Authorization": authorization.encode("latin-1")} if authorization is not None else {}
    with httpx.Client(base_url=secured.endpoint, timeout=10, headers=headers) as client:
        for what, response in agent_api_requests(client, host, port["id"]):
            error = fault(response, 401, "HTTPUnauthorized")
            assert "agent_shared_secret" in error["message"], what
            assert response.headers["www-authenticate"].startswith("Bearer"), what
    assert state(secured) == before
    with httpx.Client(base_url=secured.endpoint + "/v2.0", timeout=10) as api:
        agent = api.get("/agents", params={"host": host}).json()["agents"]
        assert [a["alive"] for a in agent] == [False]
        assert api.get(f"/ports/{port['id']}").json()["port"]["status"] == "DOWN"


def test_the_agent_client_with_the_secret_registers_watches_and_reports(
        secured: BaryonServer, bound: tuple[str, dict]) -> None:
    host, port = bound
    client = ServerClient(secured.endpoint, secret=SECRET)
    try:
        agent = client.report_state({**AGENT, "host": host})
        assert agent["alive"] is True
        watched = client.watch(host, "ovs", "", 0, HostView.from_json)
        assert port["id"] in {p.id for p in watched.view.ports}
        answer = client.report_status(host, OVS, watched.seq, {port["id"]: "ACTIVE"}, etag=watched.etag)
        assert port["id"] in answer["updated"]
    finally:
        client.close()
    with httpx.Client(base_url=secured.endpoint, timeout=10, headers={"Authorization": f"Bearer {SECRET}"}) as raw:
        assert raw.get("/agent/v1/seq").json()["seq"] >= watched.seq
        assert raw.get("/agent/v1/changes", params={"resource_id": port["id"]}).json()["changes"]
    with httpx.Client(base_url=secured.endpoint + "/v2.0", timeout=10) as api:
        assert api.get(f"/ports/{port['id']}").json()["port"]["status"] == "ACTIVE"
    # The same client with a wrong secret: a ServerError naming the 401, as the runtime retries it.
    wrong = ServerClient(secured.endpoint, secret=SECRET + "x")
    try:
        with pytest.raises(ServerError, match="401 Authentication failed"):
            wrong.report_state({**AGENT, "host": host})
    finally:
        wrong.close()
    assert OPEN_WARNING not in secured.log.read_text()


def test_without_a_secret_noauth_leaves_the_agent_api_open(tmp_path_factory: pytest.TempPathFactory) -> None:
    for server in _server(tmp_path_factory, "agentauth-open"):
        host = f"open-{uuid.uuid4().hex[:8]}"
        client = ServerClient(server.endpoint)  # no secret: no header
        try:
            assert client.report_state({**AGENT, "host": host})["alive"] is True
            assert client.watch(host, "ovs", "", 0, HostView.from_json).view is not None
        finally:
            client.close()
        # A header the server has no secret for is ignored, as before secrets existed.
        assert httpx.get(server.endpoint + "/agent/v1/seq", headers={"Authorization": "Bearer x"}).status_code == 200
        assert server.log.read_text().count(OPEN_WARNING) == 1


def test_without_a_secret_keystone_refuses_the_agent_api(tmp_path_factory: pytest.TempPathFactory) -> None:
    for server in _server(tmp_path_factory, "agentauth-keystone", extra="auth_strategy = keystone"):
        with httpx.Client(base_url=server.endpoint, timeout=10, headers={"Authorization": "Bearer x"}) as client:
            for what, response in agent_api_requests(client, "somehost", str(uuid.uuid4())):
                error = fault(response, 401, "HTTPUnauthorized")
                assert "auth_strategy = keystone" in error["message"], what
        assert state(server)[0] == []  # no agent registered
        assert KEYSTONE_WARNING in server.log.read_text()


def test_the_configured_secret_is_not_in_the_servers_log(secured: BaryonServer) -> None:
    assert SECRET not in Path(secured.log).read_text()
