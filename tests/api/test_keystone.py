"""``auth_strategy = keystone`` against a real Keystone (PyPI's, on loopback: tests.support.keystone).

One Keystone and one Baryon for the module. Keystone holds two projects, ``baryon-a`` (a member
and a reader) and ``baryon-b`` (a member), the bootstrap admin, and the ``neutron`` service user
named in Baryon's ``[keystone_authtoken]``; Baryon is the catalog's ``network`` endpoint, so the
``openstack`` CLI reaches it with nothing but password authentication. Status codes are checked
with httpx and real tokens: 401 (keystonemiddleware's own answer, as Neutron gives it) without a
valid token, 404 across projects, 403 for what Neutron's default policy keeps from members and
readers; identity headers a client sends are never believed.

The agent API under keystone (at the end): Baryon also has an agents' shared secret, and Keystone
a ``baryon-agent`` service user (role ``service`` in project ``service``). The real agent client,
configured by an ``[agent_auth]`` section, registers, watches and reports with that user's token
alone, and gets a new token when Keystone has revoked its own; a member's or a reader's token is a
403, no credential or a bad token a 401, and either credential is enough when both are sent.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from baryon.agent.client import ServerClient
from baryon.config.agent import keystone_session, load_agent
from baryon.model.host import HostView
from tests.api.helpers import OPENSTACK, fault
from tests.api.test_agent_auth import AGENT, OVS, agent_api_requests, state
from tests.support.keystone import PASSWORD, Keystone, ensure_venv
from tests.support.server import BaryonServer, free_port

UNAUTHORIZED = {"error": {"code": 401, "title": "Unauthorized",
                          "message": "The request you have made requires authentication."}}
AGENT_SECRET = "agents-" + os.urandom(12).hex()


@dataclass(frozen=True)
class Cloud:
    keystone: Keystone
    baryon: BaryonServer
    project_a: str
    project_b: str
    tokens: dict[str, str]  # "admin", "a-member", "a-reader", "b-member"

    def client(self, who: str | None, **headers: str) -> httpx.Client:
        if who is not None:
            headers["X-Auth-Token"] = self.tokens[who]
        return httpx.Client(base_url=self.baryon.endpoint + "/v2.0", headers=headers, timeout=30)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    ensure_venv()
    keystone = Keystone(tmp_path_factory.mktemp("keystone"))
    try:
        keystone.start()
        service = keystone.project("service")
        keystone.user("neutron", service, "service")  # what keystone's policy asks to validate tokens
        keystone.user("baryon-agent", service, "service")  # the agents' service user
        project_a, project_b = keystone.project("baryon-a"), keystone.project("baryon-b")
        keystone.user("a-member", project_a, "member")
        keystone.user("a-reader", project_a, "reader")
        keystone.user("b-member", project_b, "member")
        baryon = BaryonServer(tmp_path_factory.mktemp("baryon-keystone"), extra="auth_strategy = keystone",
                              sections=keystone.authtoken_section("neutron", "service")
                              + f"[baryon]\nagent_shared_secret = {AGENT_SECRET}\n")
        try:
            baryon.start()
            keystone.register("network", "neutron", baryon.endpoint)
            tokens = {"admin": keystone.admin_token(), "a-member": keystone.token("a-member", "baryon-a"),
                      "a-reader": keystone.token("a-reader", "baryon-a"),
                      "b-member": keystone.token("b-member", "baryon-b")}
            yield Cloud(keystone, baryon, project_a, project_b, tokens)
        finally:
            baryon.stop()
    finally:
        keystone.stop()


def openstack(cloud: Cloud, user: str, project: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(OS_AUTH_URL=cloud.keystone.base, OS_AUTH_TYPE="password", OS_USERNAME=user, OS_PASSWORD=PASSWORD,
               OS_PROJECT_NAME=project, OS_USER_DOMAIN_NAME="Default", OS_PROJECT_DOMAIN_NAME="Default",
               OS_REGION_NAME="RegionOne", OS_IDENTITY_API_VERSION="3", OS_INTERFACE="public")
    return subprocess.run([OPENSTACK, *args], capture_output=True, text=True, timeout=60, env=env)


def unauthorized(response: httpx.Response, cloud: Cloud) -> None:
    assert response.status_code == 401, response.text
    assert response.json() == UNAUTHORIZED
    assert response.headers["WWW-Authenticate"] == f'Keystone uri="{cloud.keystone.base}"'


def network_ids(client: httpx.Client) -> set[str]:
    response = client.get("/networks")
    assert response.status_code == 200, response.text
    return {n["id"] for n in response.json()["networks"]}


def test_the_openstack_cli_with_password_authentication(cloud: Cloud) -> None:
    done = openstack(cloud, "a-member", "baryon-a", "network", "create", "cli-net", "-f", "json")
    assert done.returncode == 0, done.stderr
    network = json.loads(done.stdout)
    assert network["project_id"] == cloud.project_a
    done = openstack(cloud, "a-reader", "baryon-a", "network", "list", "-f", "json")
    assert done.returncode == 0, done.stderr
    assert network["id"] in {n["ID"] for n in json.loads(done.stdout)}
    done = openstack(cloud, "b-member", "baryon-b", "network", "show", network["id"], "-f", "json")
    assert done.returncode != 0 and "No Network found" in done.stderr, (done.stdout, done.stderr)


def test_no_token_a_bad_token_and_a_revoked_token_are_401(cloud: Cloud) -> None:
    with cloud.client("a-member") as member:
        before = network_ids(member)
    # Identity headers without a token are not believed: noauth's admin is never the fallback.
    with cloud.client(None, **{"X-Project-Id": cloud.project_a, "X-Roles": "admin"}) as anonymous:
        unauthorized(anonymous.get("/networks"), cloud)
        unauthorized(anonymous.post("/networks", json={"network": {"name": "anonymous"}}), cloud)
        unauthorized(anonymous.get("/"), cloud)
    with cloud.client(None, **{"X-Auth-Token": "not-a-token"}) as bad:
        unauthorized(bad.get("/networks"), cloud)
    revoked = cloud.keystone.token("a-member", "baryon-a")  # never shown to Baryon: nothing cached
    cloud.keystone.revoke(revoked)
    with cloud.client(None, **{"X-Auth-Token": revoked}) as stale:
        unauthorized(stale.post("/networks", json={"network": {"name": "revoked"}}), cloud)
    with cloud.client("a-member") as member:
        assert network_ids(member) == before
    # The topology page's feeds show the same resources: no token, no answer, whatever the query says.
    for path in ("/topology/events?admin=1&project_id=" + cloud.project_a,
                 "/topology/debug/port/00000000-0000-0000-0000-000000000000?admin=1&project_id=x"):
        assert httpx.get(cloud.baryon.endpoint + path, timeout=30).status_code == 401, path
    # The version document and the metrics stay open, as in Neutron.
    assert httpx.get(cloud.baryon.endpoint + "/", timeout=30).status_code == 200
    assert httpx.get(cloud.baryon.endpoint + "/metrics", timeout=30).status_code == 200


def test_another_projects_resources_are_404(cloud: Cloud) -> None:
    with cloud.client("a-member") as a, cloud.client("b-member") as b:
        created = a.post("/networks", json={"network": {"name": "a-private"}})
        assert created.status_code == 201, created.text
        net = created.json()["network"]
        assert net["project_id"] == cloud.project_a
        fault(b.get(f"/networks/{net['id']}"), 404, "NetworkNotFound")
        fault(b.put(f"/networks/{net['id']}", json={"network": {"name": "mine"}}), 404, "NetworkNotFound")
        fault(b.delete(f"/networks/{net['id']}"), 404, "NetworkNotFound")
        assert net["id"] not in network_ids(b)
        assert a.get(f"/networks/{net['id']}").json()["network"]["name"] == "a-private"


def test_identity_headers_from_the_client_are_replaced_by_the_tokens(cloud: Cloud) -> None:
    spoofed = {"X-Project-Id": cloud.project_b, "X-Tenant-Id": cloud.project_b, "X-Roles": "admin",
               "X-Identity-Status": "Confirmed", "X-Is-Admin-Project": "True"}
    with cloud.client("a-reader", **spoofed) as reader:
        fault(reader.post("/networks", json={"network": {"name": "spoof"}}), 403, "PolicyNotAuthorized")
    with cloud.client("a-member", **spoofed) as member:
        created = member.post("/networks", json={"network": {"name": "spoof"}})
        assert created.status_code == 201, created.text
        assert created.json()["network"]["project_id"] == cloud.project_a
        fault(member.post("/networks", json={"network": {"name": "x", "shared": True}}), 403, "PolicyNotAuthorized")


def test_a_member_may_not_create_provider_networks_nor_bind_ports(cloud: Cloud) -> None:
    with cloud.client("a-member") as member, cloud.client("admin") as admin:
        error = fault(member.post("/networks", json={"network": {"name": "p", "provider:network_type": "vxlan"}}),
                      403, "PolicyNotAuthorized")
        assert "create_network:provider:network_type" in error["message"]
        net = member.post("/networks", json={"network": {"name": "bind"}}).json()["network"]
        body = {"port": {"network_id": net["id"], "binding:host_id": "compute-1"}}
        error = fault(member.post("/ports", json=body), 403, "PolicyNotAuthorized")
        assert "create_port:binding:host_id" in error["message"]
        port = member.post("/ports", json={"port": {"network_id": net["id"]}}).json()["port"]
        fault(member.put(f"/ports/{port['id']}", json={"port": {"binding:host_id": "compute-1"}}),
              403, "PolicyNotAuthorized")
        # The admin may: the same requests with the admin's token.
        bound = admin.put(f"/ports/{port['id']}", json={"port": {"binding:host_id": "compute-1"}})
        assert bound.status_code == 200, bound.text
        assert bound.json()["port"]["binding:host_id"] == "compute-1"
        provider = admin.post("/networks", json={"network": {"name": "p", "provider:network_type": "vxlan"}})
        assert provider.status_code == 201, provider.text


def test_a_reader_reads_but_may_not_write(cloud: Cloud) -> None:
    with cloud.client("a-member") as member, cloud.client("a-reader") as reader:
        net = member.post("/networks", json={"network": {"name": "read-me"}}).json()["network"]
        shown = reader.get(f"/networks/{net['id']}")
        assert shown.status_code == 200 and shown.json()["network"]["id"] == net["id"]
        assert net["id"] in network_ids(reader)
        fault(reader.post("/networks", json={"network": {"name": "r"}}), 403, "PolicyNotAuthorized")
        fault(reader.put(f"/networks/{net['id']}", json={"network": {"name": "r"}}), 403, "PolicyNotAuthorized")
        fault(reader.delete(f"/networks/{net['id']}"), 403, "PolicyNotAuthorized")
        fault(reader.post("/ports", json={"port": {"network_id": net["id"]}}), 403, "PolicyNotAuthorized")
        assert member.get(f"/networks/{net['id']}").json()["network"]["name"] == "read-me"


# ---------------------------------------------------------------- the agent API under keystone


def agent_client(cloud: Cloud, tmp_path: Path) -> ServerClient:
    """The agent client as ``baryon agent`` builds it from an ``[agent_auth]`` section: no secret."""
    conf = tmp_path / "neutron.conf"
    conf.write_text(f"[DEFAULT]\nhost = ks-agent\n[baryon]\nserver_url = {cloud.baryon.endpoint}\n"
                    f"[agent_auth]\nauth_type = password\nauth_url = {cloud.keystone.base}\n"
                    f"username = baryon-agent\npassword = {PASSWORD}\nproject_name = service\n"
                    f"user_domain_name = Default\nproject_domain_name = Default\n")
    settings = load_agent([str(conf)])
    assert settings.warnings == ()
    return ServerClient(settings.baryon.server_url, keystone=keystone_session(settings))


def test_an_agent_with_a_keystone_service_user_registers_watches_and_reports(cloud: Cloud, tmp_path: Path) -> None:
    host = f"ks-{uuid.uuid4().hex[:8]}"
    client = agent_client(cloud, tmp_path)
    try:
        assert client.report_state({**AGENT, "host": host})["alive"] is True
        with cloud.client("admin") as admin:  # a port bound to the agent's host
            net = admin.post("/networks", json={"network": {"name": "agent-ks"}}).json()["network"]
            assert admin.post("/subnets", json={"subnet": {"network_id": net["id"], "cidr": "10.48.0.0/24",
                                                           "ip_version": 4}}).status_code == 201
            port = admin.post("/ports", json={"port": {"network_id": net["id"],
                                                       "binding:host_id": host}}).json()["port"]
        watched = client.watch(host, "ovs", "", 0, HostView.from_json)
        assert port["id"] in {p.id for p in watched.view.ports}
        assert port["id"] in client.report_status(host, OVS, watched.seq, {port["id"]: "ACTIVE"},
                                                  etag=watched.etag)["updated"]
        # Keystone revokes the agent's token (a new one, that Baryon's token cache has not seen): the
        # server refuses it, the client gets another and the request goes through.
        client.token.session.invalidate()  # type: ignore[union-attr]
        revoked = client.token.session.get_token()  # type: ignore[union-attr]
        cloud.keystone.revoke(revoked)
        assert client.report_state({**AGENT, "host": host})["alive"] is True
        assert client.token.session.get_token() != revoked  # type: ignore[union-attr]
    finally:
        client.close()
    with cloud.client("admin") as admin:
        assert admin.get(f"/ports/{port['id']}").json()["port"]["status"] == "ACTIVE"
        assert [a["alive"] for a in admin.get("/agents", params={"host": host}).json()["agents"]] == [True]


def test_the_agent_api_takes_a_service_token_or_the_secret_and_nothing_else(cloud: Cloud) -> None:
    host, port_id = f"ks-{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
    before = state(cloud.baryon)
    spoofed = {"X-Roles": "service,admin", "X-Identity-Status": "Confirmed", "X-Project-Id": cloud.project_a}
    refusals = [
        # Confirmed tokens without the admin or service role, identity headers or not: 403.
        ({"X-Auth-Token": cloud.tokens["a-member"], **spoofed}, 403, "PolicyNotAuthorized", "role:service"),
        ({"X-Auth-Token": cloud.tokens["a-reader"]}, 403, "PolicyNotAuthorized", "role:service"),
        ({"X-Auth-Token": cloud.tokens["a-member"], "Authorization": "Bearer wrong"}, 403, "PolicyNotAuthorized",
         "role:service"),
        # No credential, a bad token, a wrong secret: 401.
        (spoofed, 401, "HTTPUnauthorized", "X-Auth-Token"),
        ({"X-Auth-Token": "not-a-token"}, 401, "HTTPUnauthorized", "Keystone refused the token"),
        ({"Authorization": "Bearer wrong"}, 401, "HTTPUnauthorized", "does not match"),
    ]
    for headers, status, kind, says in refusals:
        with httpx.Client(base_url=cloud.baryon.endpoint, timeout=30, headers=headers) as client:
            for what, response in agent_api_requests(client, host, port_id):
                assert says in fault(response, status, kind)["message"], (headers, what)
    assert state(cloud.baryon) == before  # nothing registered, reported or logged
    # Either credential is enough: the admin's token, the secret beside a refused token, a member's
    # token beside the secret.
    for headers in ({"X-Auth-Token": cloud.tokens["admin"]},
                    {"X-Auth-Token": "not-a-token", "Authorization": f"Bearer {AGENT_SECRET}"},
                    {"X-Auth-Token": cloud.tokens["a-member"], "Authorization": f"Bearer {AGENT_SECRET}"}):
        response = httpx.get(cloud.baryon.endpoint + "/agent/v1/seq", headers=headers, timeout=30)
        assert response.status_code == 200 and response.json()["seq"] >= 0, (headers, response.text)
    # The Networking API takes no agent secret: /v2.0 wants a token.
    unauthorized(httpx.get(cloud.baryon.endpoint + "/v2.0/agents", headers={"Authorization": f"Bearer {AGENT_SECRET}"},
                           timeout=30), cloud)


def test_keystone_out_of_reach_is_a_503_for_a_token_and_the_secret_still_works(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """A server whose Keystone does not answer: an agent's token cannot be checked (503, nothing
    recorded; its runtime retries), while the shared secret needs no Keystone."""
    dead = f"http://127.0.0.1:{free_port()}"
    sections = (f"[keystone_authtoken]\nwww_authenticate_uri = {dead}\nauth_url = {dead}\nauth_type = password\n"
                f"username = neutron\npassword = {PASSWORD}\nproject_name = service\n"
                f"[baryon]\nagent_shared_secret = {AGENT_SECRET}\n")
    server = BaryonServer(tmp_path_factory.mktemp("baryon-no-keystone"), extra="auth_strategy = keystone",
                          sections=sections)
    try:
        server.start()
        with httpx.Client(base_url=server.endpoint, timeout=30, headers={"X-Auth-Token": "a-token"}) as client:
            for what, response in agent_api_requests(client, "somehost", str(uuid.uuid4())):
                fault(response, 503, "KeystoneUnavailable")
            assert state(server)[0] == []
            response = client.get("/agent/v1/seq", headers={"Authorization": f"Bearer {AGENT_SECRET}"})
            assert response.status_code == 200, response.text
    finally:
        server.stop()
