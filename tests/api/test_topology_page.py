"""The topology page (``/topology``), its event stream and its ``baryon debug port`` link.

Over HTTP, on every backend (the shared ``baryon`` servers): ``/topology/events`` streams the
change log filtered to what the caller may see (an admin everything; a project its own resources,
shared and external networks, never another project's bodies nor admin-only fields), resumes after
``Last-Event-ID``, wakes on new changes; ``/topology/debug/port/{id}`` answers 404
``LabNotConfigured`` on a server without a lab.

In a real browser (Debian's headless chromium, driven by Playwright; skipped only when
``/usr/bin/chromium`` is missing), on a SQLite server of the module's own (a flat external network
takes physnet1): the demo's topology is drawn with the right nodes and edges and no console error,
a port created through the API appears without a reload, a member's page shows only its project's
objects, a click shows an object's attributes. A screenshot is kept under ``ARTIFACTS`` (the path
is printed: run pytest with ``-s`` to see it, or look there).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from baryon.api.deps import NOAUTH_PROJECT_ID
from tests.api.helpers import headers, http
from tests.support.server import BaryonServer
from tests.support.wait import eventually

OVS, DHCP, L3 = "Open vSwitch agent", "DHCP agent", "L3 agent"
CHROMIUM = "/usr/bin/chromium"
# The machine's closed network refuses Chromium's background connections: none are made.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(os.environ.get("BARYON_TEST_ARTIFACTS") or Path(tempfile.gettempdir()) / "baryon-test-artifacts")


# ---------------------------------------------------------------- the event stream, over HTTP

Event = tuple[str, int, dict]  # (event, id, data)


def read_events(endpoint: str, until: int, *, params: dict | None = None, hdrs: dict | None = None,
                timeout: float = 10.0, connected: threading.Event | None = None) -> list[Event]:
    """The stream's events up to the first (after ``hello``) whose id is ``until`` or more;
    ``connected`` is set once ``hello`` has come."""
    found: list[Event] = []
    with httpx.stream("GET", endpoint + "/topology/events", params=params, headers=hdrs, timeout=timeout) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        fields: dict[str, str] = {}
        for line in r.iter_lines():
            if line.startswith(":"):
                continue
            if line:
                key, _, value = line.partition(":")
                fields[key] = value.removeprefix(" ")
                continue
            if "data" in fields:
                found.append((fields.get("event", "message"), int(fields["id"]), orjson.loads(fields["data"])))
                if connected is not None and found[-1][0] == "hello":
                    connected.set()
                if found[-1][0] != "hello" and found[-1][1] >= until:
                    return found
            fields = {}
    raise AssertionError(f"the stream ended before seq {until}: {found}")


def seq_now(endpoint: str) -> int:
    return httpx.get(endpoint + "/agent/v1/seq").json()["seq"]


def post(client: httpx.Client, resource: str, **attrs: Any) -> dict:
    response = client.post(f"/{resource}s", json={resource: attrs})
    assert response.status_code == 201, response.text
    return response.json()[resource]


def changes(found: list[Event]) -> dict[str, dict]:
    """id -> the last change event's data."""
    return {data["id"]: data for kind, _, data in found if kind == "change"}


def test_a_project_sees_its_own_changes_and_shared_networks_never_another_projects(
        baryon: BaryonServer, admin: httpx.Client, member: httpx.Client, project: str) -> None:
    since = seq_now(baryon.endpoint)
    other = uuid.uuid4().hex
    with http(baryon.endpoint, other) as stranger:
        theirs = post(stranger, "network", name="theirs")
        their_port = post(stranger, "port", network_id=theirs["id"], name="their-port")
        shared = post(admin, "network", name="shared", shared=True)
        shared_subnet = post(admin, "subnet", network_id=shared["id"], cidr="10.77.0.0/24", ip_version=4)
        external = post(admin, "network", name="ext", **{"router:external": True})
        mine = post(member, "network", name="mine")
        my_subnet = post(member, "subnet", network_id=mine["id"], cidr="10.78.0.0/24", ip_version=4)
        my_port = post(member, "port", network_id=mine["id"], name="my-port")
        my_router = post(member, "router", name="my-router")
        their_router = post(stranger, "router", name="their-router")
        # RBAC entries for this project alone, not for all: shared shows the subnets too; external
        # access shows the network only; an entry for a third project shows nothing.
        to_me = post(stranger, "network", name="shared-with-me")
        to_me_subnet = post(stranger, "subnet", network_id=to_me["id"], cidr="10.79.0.0/24", ip_version=4)
        ext_to_me = post(admin, "network", name="external-to-me")
        ext_subnet = post(admin, "subnet", network_id=ext_to_me["id"], cidr="10.80.0.0/24", ip_version=4)
        to_third = post(stranger, "network", name="shared-with-a-third")
        for client, network, action, target in ((stranger, to_me, "access_as_shared", project),
                                                (admin, ext_to_me, "access_as_external", project),
                                                (stranger, to_third, "access_as_shared", uuid.uuid4().hex)):
            response = client.post("/rbac-policies", json={"rbac_policy": {
                "object_type": "network", "object_id": network["id"], "action": action, "target_tenant": target}})
            assert response.status_code == 201, response.text
    until = seq_now(baryon.endpoint)

    seen = read_events(baryon.endpoint, until, params={"since": since}, hdrs=headers(project))
    assert seen[0][0] == "hello" and seen[0][2] == {"seq": since, "admin": False, "project_id": project}
    assert [i for _, i, _ in seen] == sorted(i for _, i, _ in seen)
    got = changes(seen)
    ids = {shared["id"], shared_subnet["id"], external["id"], mine["id"], my_subnet["id"], my_port["id"],
           my_router["id"], to_me["id"], to_me_subnet["id"], ext_to_me["id"]}
    assert ids <= set(got), ids - set(got)
    assert not {theirs["id"], their_port["id"], their_router["id"], ext_subnet["id"], to_third["id"]} & set(got)
    assert {c["body"]["project_id"] for c in got.values()} == {project, NOAUTH_PROJECT_ID, other}
    port_event = got[my_port["id"]]
    assert (port_event["resource"], port_event["action"]) == ("port", "create")
    assert port_event["body"]["name"] == "my-port" and "binding:host_id" not in port_event["body"]
    # The stream's end is the log's end even when its last entries were somebody else's.
    assert seen[-1][1] == until

    # The same identity by query parameters (what the page's EventSource sends) sees the same.
    by_query = read_events(baryon.endpoint, until, params={"since": since, "project_id": project, "roles": "member"})
    assert changes(by_query).keys() == got.keys()

    # An admin sees everything, admin-only fields included.
    everything = changes(read_events(baryon.endpoint, until, params={"since": since}))
    assert ids | {theirs["id"], their_port["id"], their_router["id"]} <= set(everything)
    assert "binding:host_id" in everything[their_port["id"]]["body"]


def test_the_stream_resumes_after_last_event_id_and_wakes_on_a_new_change(
        baryon: BaryonServer, member: httpx.Client, project: str) -> None:
    first = post(member, "network", name="first")
    resume = seq_now(baryon.endpoint)
    second = post(member, "network", name="second")
    until = seq_now(baryon.endpoint)
    seen = read_events(baryon.endpoint, until, params={"since": 0}, hdrs={**headers(project), "Last-Event-ID": str(resume)})
    assert seen[0][2]["seq"] == resume  # Last-Event-ID wins over since
    assert second["id"] in changes(seen) and first["id"] not in changes(seen)

    # From now (no since): a change made while the stream waits arrives.
    result: list[Event] = []
    connected = threading.Event()
    reader = threading.Thread(target=lambda: result.extend(
        read_events(baryon.endpoint, until + 1, hdrs=headers(project), connected=connected)))
    reader.start()
    assert connected.wait(10)
    third = post(member, "network", name="third")
    reader.join(15)
    assert not reader.is_alive()
    assert third["id"] in changes(result)


def test_bad_sequences_are_refused(baryon: BaryonServer) -> None:
    for params, hdrs in (({"since": "x"}, {}), ({}, {"Last-Event-ID": "-1"})):
        response = httpx.get(baryon.endpoint + "/topology/events", params=params, headers=hdrs)
        assert response.status_code == 400
        assert response.json()["NeutronError"]["type"] == "HTTPBadRequest"


def test_debug_port_needs_a_lab_and_an_admin(baryon: BaryonServer, member: httpx.Client, project: str) -> None:
    network = post(member, "network", name="dbg")
    port = post(member, "port", network_id=network["id"])
    url = f"{baryon.endpoint}/topology/debug/port/{port['id']}"
    response = httpx.get(url)
    assert response.status_code == 404
    error = response.json()["NeutronError"]
    assert error["type"] == "LabNotConfigured" and "lab_state_dir" in error["message"], error
    assert httpx.get(url, headers=headers(project)).json()["NeutronError"]["type"] == "PolicyNotAuthorized"
    missing = httpx.get(f"{baryon.endpoint}/topology/debug/port/{uuid.uuid4()}")
    assert (missing.status_code, missing.json()["NeutronError"]["type"]) == (404, "PortNotFound")


# ---------------------------------------------------------------- the page, in a browser

def _playwright() -> Any:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (Debian's chromium package: bin/setup --test installs it)")
    from playwright.sync_api import sync_playwright  # the test extras (pyproject.toml)
    return sync_playwright


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The demo's deployment, by the API, on a SQLite server of its own: agents on network,
    compute1 and compute2; public (flat, external) with a subnet; demo-net with a subnet;
    demo-router (gateway on public, interface on demo-net); VM ports on compute1 and compute2;
    a floating IP on the first. Also a member project with a network and a port of its own."""
    _playwright()
    server = BaryonServer(tmp_path_factory.mktemp("topology-page"), workers=2).start()
    made: dict = {"server": server, "project": uuid.uuid4().hex}
    try:
        with http(server.endpoint) as admin, http(server.endpoint, made["project"]) as member:
            config = {"tunnel_types": ["vxlan"], "l2_population": True}
            for host, ip in (("network", "10.10.10.1"), ("compute1", "10.10.10.11"), ("compute2", "10.10.10.12")):
                mappings = {"physnet1": "br-ex"} if host == "network" else {}
                response = admin.post("/agents/report", json={"agent": {"agent_type": OVS, "host": host, "configurations": {
                    **config, "tunneling_ip": ip, "bridge_mappings": mappings}}})
                assert response.status_code == 201, response.text
            for agent_type in (DHCP, L3):
                response = admin.post("/agents/report", json={"agent": {"agent_type": agent_type, "host": "network"}})
                assert response.status_code == 201, response.text
            public = post(admin, "network", name="public", **{"router:external": True, "provider:network_type": "flat",
                                                               "provider:physical_network": "physnet1"})
            post(admin, "subnet", network_id=public["id"], cidr="203.0.113.0/24", ip_version=4, enable_dhcp=False,
                 name="public-subnet")
            net = post(admin, "network", name="demo-net")
            subnet = post(admin, "subnet", network_id=net["id"], cidr="10.0.0.0/24", ip_version=4, name="demo-subnet")
            router = post(admin, "router", name="demo-router", external_gateway_info={"network_id": public["id"]})
            response = admin.put(f"/routers/{router['id']}/add_router_interface", json={"subnet_id": subnet["id"]})
            assert response.status_code == 200, response.text
            made["vm_ports"] = [post(admin, "port", network_id=net["id"], name=f"demo-vm{i}", device_owner="compute:nova",
                                     device_id=str(uuid.uuid4()), **{"binding:host_id": f"compute{i}"})
                                for i in (1, 2)]
            made["fip"] = post(admin, "floatingip", floating_network_id=public["id"], port_id=made["vm_ports"][0]["id"])
            mine = post(member, "network", name="member-net")
            post(member, "subnet", network_id=mine["id"], cidr="10.9.0.0/24", ip_version=4, name="member-subnet")
            made["member_port"] = post(member, "port", network_id=mine["id"], name="member-port")
        yield made
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(cloud: dict) -> Iterator[Any]:
    """One headless chromium for the module (Playwright's own browsers are not used), on a fresh profile."""
    profile = Path(tempfile.mkdtemp(prefix="baryon-chromium-"))
    with _playwright()() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1800, "height": 760})
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


class Page:
    """A page with its console errors and uncaught exceptions collected."""

    def __init__(self, context: Any, url: str):
        self.errors: list[str] = []
        self.page = context.new_page()
        self.page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.goto(url)
        self.page.wait_for_selector('body[data-state="live"]', timeout=10_000)

    def count(self, selector: str) -> int:
        return self.page.locator(selector).count()

    def counts(self, kind: str) -> dict[str, int]:
        return self.page.evaluate("""kind => {
            const counts = {};
            for (const e of document.querySelectorAll(kind)) counts[e.dataset.kind] = (counts[e.dataset.kind] || 0) + 1;
            return counts; }""", kind)


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    print(f"\nscreenshot of the topology page: {path}")
    return path


ADMIN_NODES = {"network": 3, "subnet": 3, "router": 1, "port": 3, "vm": 2, "fip": 1, "host": 3}
ADMIN_EDGES = {"gateway": 1, "interface": 1, "attachment": 3, "vm": 2, "fip": 1, "host": 2, "l3": 1, "dhcp": 2}


def test_the_admin_page_draws_the_demo_and_follows_the_change_log(cloud: dict, browser: Any) -> None:
    server: BaryonServer = cloud["server"]
    page = Page(browser, server.endpoint + "/topology")
    eventually(lambda: page.counts("svg .edge").get("l3") and page.counts("svg .edge").get("dhcp"), 5,
               "the hosting of the router and the DHCP namespaces")
    assert page.counts("svg [data-kind]:not(.edge)") == ADMIN_NODES
    assert page.counts("svg .edge") == ADMIN_EDGES
    vm1 = cloud["vm_ports"][0]
    assert page.count(f'svg .edge[data-kind="fip"][data-to="port:{vm1["id"]}"]') == 1
    assert page.count(f'svg .edge[data-kind="host"][data-from="vm:{vm1["device_id"]}"][data-to="host:compute1"]') == 1
    assert page.count('svg [data-kind="host"][data-alive="true"]') == 3
    assert page.count('svg [data-kind="network"][data-external="true"]') == 1

    # A port created through the API appears without a reload, from the change feed.
    with http(server.endpoint) as admin:
        network = admin.get("/networks", params={"name": "demo-net"}).json()["networks"][0]
        port = post(admin, "port", network_id=network["id"], name="late-port")
    page.page.wait_for_selector(f'svg [data-kind="port"][data-id="{port["id"]}"]', timeout=5_000)
    assert page.counts("svg .edge")["attachment"] == ADMIN_EDGES["attachment"] + 1
    assert int(page.page.evaluate("document.body.dataset.seq")) >= seq_now(server.endpoint) - 1
    screenshot(page.page, "topology-admin.png")
    assert page.errors == []


def test_a_member_sees_only_its_project_and_the_external_network(cloud: dict, browser: Any) -> None:
    server: BaryonServer = cloud["server"]
    page = Page(browser, f"{server.endpoint}/topology?project_id={cloud['project']}")
    nodes = page.counts("svg [data-kind]:not(.edge)")
    assert nodes == {"network": 2, "subnet": 1, "port": 1}, nodes  # member-net and public (external)
    assert page.count(f'svg [data-kind="port"][data-id="{cloud["member_port"]["id"]}"]') == 1
    assert page.count('svg [data-kind="network"][data-external="true"]') == 1
    assert page.errors == []


def test_clicking_a_port_shows_its_attributes(cloud: dict, browser: Any) -> None:
    server: BaryonServer = cloud["server"]
    page = Page(browser, server.endpoint + "/topology")
    vm2 = cloud["vm_ports"][1]
    page.page.click(f'svg [data-kind="port"][data-id="{vm2["id"]}"]')
    shown = orjson.loads(page.page.locator("#panel pre.attributes").text_content() or "{}")
    assert shown["id"] == vm2["id"] and shown["binding:host_id"] == "compute2" and shown["name"] == "demo-vm2"
    link = page.page.locator('#panel a[data-action="debug-port"]')
    assert link.get_attribute("href") == f"/topology/debug/port/{vm2['id']}"
    assert page.errors == []
