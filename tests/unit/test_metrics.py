"""The metrics' pure parts: route-template labels, the request middleware on a real Starlette app,
the database gauges of one scrape, the port-to-wire clock, the agents' options and the lab's."""

from __future__ import annotations

import asyncio
import datetime as dt
import os

import httpx

import pytest
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from baryon.agent.metrics import WireClock
from baryon.api import metrics
from baryon.config.agent import load_agent
from baryon.lab import configs, topology
from baryon.service.metrics import AgentProgress, families


@pytest.mark.parametrize(("template", "resource"), [
    ("/v2.0/ports", "ports"),
    ("/v2.0/ports/{id}", "ports"),
    ("/v2.0/ports.json", "ports"),
    ("/v2.0/ports/{id}.json", "ports"),
    ("/v2.0/networks/{id}/tags/{tag}", "networks"),
    ("/v2.0/security-groups/{id}", "security-groups"),
    ("/v2.0/security-group-rules", "security-group-rules"),
    ("/v2.0/routers/{id}/add_router_interface", "routers"),
    ("/v2.0/floatingips/{id}", "floatingips"),
    ("/v2.0/agents/report", "agents"),
    ("/v2.0/agents/{id}/dhcp-networks", "agents"),
    ("/v2.0/quotas/{project_id}/default", "quotas"),
    ("/agent/v1/hosts/{host}/ovs", "agent-api"),
    ("/agent/v1/seq", "agent-api"),
    ("/", "versions"),
    ("/v2.0", "index"),
    ("/v2.0/", "index"),
    ("/metrics", "metrics"),
    ("/{anything}", "other"),
    (None, "unmatched"),
])
def test_the_resource_label_comes_from_the_route_template(template: str | None, resource: str) -> None:
    assert metrics.resource_of(template) == resource


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_the_middleware_labels_requests_by_template_never_by_path() -> None:
    async def show(request: Request) -> JSONResponse:
        if request.path_params["id"] == "missing":
            raise HTTPException(404)
        return JSONResponse({"id": request.path_params["id"]})

    async def broken(_request: Request) -> JSONResponse:
        raise RuntimeError("boom")

    app = Starlette(routes=[Route("/v2.0/widgets/{id}", show, methods=["GET"]),
                            Route("/v2.0/gadgets", broken, methods=["GET"])],
                    middleware=[Middleware(metrics.RequestMetrics)])
    requests = "baryon_api_requests_total"
    before = {key: sample(requests, resource="widgets", method=key[0], status=key[1])
              for key in [("GET", "200"), ("GET", "404"), ("DELETE", "405")]}
    before_broken = sample(requests, resource="gadgets", method="GET", status="500")
    before_unmatched = sample(requests, resource="unmatched", method="GET", status="404")
    before_count = sample("baryon_api_request_seconds_count", resource="widgets", method="GET")

    async def run() -> list[int]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return [(await client.request(method, path)).status_code for method, path in [
                ("GET", "/v2.0/widgets/a1"), ("GET", "/v2.0/widgets/b2"), ("GET", "/v2.0/widgets/missing"),
                ("DELETE", "/v2.0/widgets/a1"), ("GET", "/v2.0/gadgets"), ("GET", "/v2.0/nothing/here")]]

    assert asyncio.run(run()) == [200, 200, 404, 405, 500, 404]
    assert sample(requests, resource="widgets", method="GET", status="200") - before[("GET", "200")] == 2
    assert sample(requests, resource="widgets", method="GET", status="404") - before[("GET", "404")] == 1
    assert sample(requests, resource="widgets", method="DELETE", status="405") - before[("DELETE", "405")] == 1
    assert sample(requests, resource="gadgets", method="GET", status="500") - before_broken == 1
    assert sample(requests, resource="unmatched", method="GET", status="404") - before_unmatched == 1
    assert sample("baryon_api_request_seconds_count", resource="widgets", method="GET") - before_count == 3
    labels = {s.labels.get("resource") for family in REGISTRY.collect() for s in family.samples}
    assert not labels & {"a1", "b2", "missing", "nothing", "here"}


def test_one_scrape_of_the_database_gauges() -> None:
    moment = dt.datetime(2025, 1, 1, 12, 0, 0)
    agents = [AgentProgress("Open vSwitch agent", "compute1", 40, moment - dt.timedelta(seconds=3)),
              AgentProgress("DHCP agent", "network", 45, moment - dt.timedelta(seconds=100))]
    found = {family.name: {tuple(s.labels.values()): s.value for s in family.samples}
             for family in families(50, agents, 75, moment)}
    assert found["baryon_change_log_seq"] == {(): 50}
    assert found["baryon_agent_realised_seq"] == {("Open vSwitch agent", "compute1"): 40, ("DHCP agent", "network"): 45}
    assert found["baryon_agent_seq_lag"] == {("Open vSwitch agent", "compute1"): 10, ("DHCP agent", "network"): 5}
    assert found["baryon_agent_alive"] == {("Open vSwitch agent", "compute1"): 1, ("DHCP agent", "network"): 0}
    assert found["baryon_agent_heartbeat_age_seconds"] == {("Open vSwitch agent", "compute1"): 3.0,
                                                           ("DHCP agent", "network"): 100.0}
    # An agent ahead of a sequence read a moment earlier has no negative lag.
    ahead = {f.name: f for f in families(10, agents, 75, moment)}["baryon_agent_seq_lag"]
    assert [s.value for s in ahead.samples] == [0, 0]


def test_the_wire_clock_times_ports_from_their_first_view_to_their_first_active_run() -> None:
    clock = WireClock()
    clock.saw(["old"], at=0.0)  # the first view: there before the agent, not timed
    assert clock.wired({"old": "ACTIVE"}, at=1.0) == []
    clock.saw(["old", "new"], at=10.0)
    clock.saw(["old", "new"], at=11.0)  # a later view: "new" keeps its first moment
    assert clock.wired({"old": "ACTIVE", "new": "DOWN"}, at=12.0) == []  # not plugged yet
    assert clock.wired({"old": "ACTIVE", "new": "ACTIVE"}, at=13.5) == [3.5]
    assert clock.wired({"new": "ACTIVE"}, at=20.0) == []  # once
    clock.saw(["old"], at=21.0)  # "new" leaves the view ...
    clock.saw(["old", "new"], at=30.0)  # ... and comes back: timed again
    assert clock.wired({"new": "ACTIVE"}, at=30.25) == [0.25]
    clock.saw(["old", "gone"], at=40.0)
    clock.saw(["old"], at=41.0)  # a port deleted before it was wired is forgotten
    assert clock.wired({"gone": "ACTIVE"}, at=42.0) == []


def test_the_agents_metrics_options(tmp_path: os.PathLike) -> None:
    default = load_agent([])
    assert default.baryon.metrics_host == "127.0.0.1"
    assert [default.baryon.metrics_port(kind) for kind in ("ovs", "dhcp", "l3")] == [0, 0, 0]
    conf = tmp_path / "neutron.conf"  # type: ignore[operator]
    conf.write_text("[baryon]\nmetrics_host = 10.20.0.3\novs_metrics_port = 9101\nl3_metrics_port = 9103\n")
    settings = load_agent([str(conf)])
    assert settings.baryon.metrics_host == "10.20.0.3"
    assert [settings.baryon.metrics_port(kind) for kind in ("ovs", "dhcp", "l3")] == [9101, 0, 9103]
    conf.write_text("[baryon]\novs_metrics_port = 70000\n")
    with pytest.raises(Exception, match="70000"):
        load_agent([str(conf)])


def test_the_lab_gives_each_agent_kind_its_own_metrics_port_on_the_nodes_management_address() -> None:
    lab = topology.describe(computes=1)
    node = next(n for n in lab.nodes if n.name == "network")
    text = configs.node_neutron_conf(lab, node, "/tmp/state")
    assert f"metrics_host = {node.mgmt_ip}\n" in text
    assert "ovs_metrics_port = 9101\ndhcp_metrics_port = 9102\nl3_metrics_port = 9103\n" in text


def test_the_multiprocess_directory_is_private_and_goes_away() -> None:
    previous = os.environ.get(metrics.MULTIPROC_ENV)
    with metrics.multiprocess_dir() as path:
        assert os.environ[metrics.MULTIPROC_ENV] == path
        assert os.path.isdir(path) and os.listdir(path) == []
        assert os.stat(path).st_mode & 0o077 == 0
    assert not os.path.exists(path)
    assert os.environ.get(metrics.MULTIPROC_ENV) == previous
