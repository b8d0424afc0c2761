"""The API fuzzed from its own OpenAPI document (``GET /openapi.json``) with schemathesis, against
a running server (SQLite, a server of its own).

Every operation of the document gets ``EXAMPLES`` cases that fit the schema and ``EXAMPLES`` that
do not (schemathesis' positive and negative generation), and every operation on one resource
(``/{id}``, its tags, the router actions) ``EXAMPLES`` more aimed at a resource that exists.
Hypothesis runs derandomized (``derandomize=True``, no example database): the same cases on
every run. Checked on every case:
- never a 5xx;
- every 4xx is Neutron's fault body ``{"NeutronError": {"type", "message", "detail"}}``;
- a refused write changes nothing: every resource, the quotas and the change log's sequence are
  the same after it as before.
The number of cases run is printed at the end (and with a failure, the failing requests as curl).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.support.server import BaryonServer

EXAMPLES = 3  # cases per operation and kind: 682 cases, 30-70 s on 2 loaded cores
COLLECTIONS = ("networks", "subnets", "ports", "routers", "security-groups", "security-group-rules", "floatingips")
QUOTAS = "[quotas]\n" + "".join(f"quota_{r} = -1\n" for r in (
    "network", "subnet", "port", "router", "floatingip", "security_group", "security_group_rule"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BaryonServer]:
    server = BaryonServer(tmp_path_factory.mktemp("fuzz"), workers=1, sections=QUOTAS)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def http(server: BaryonServer) -> Iterator[requests.Session]:
    with requests.Session() as session:  # the noauth admin
        yield session


def seed(http: requests.Session, endpoint: str) -> dict[str, str]:
    """One resource of each kind; segment -> its id."""
    def create(segment: str, resource: str, **attrs: Any) -> str:
        response = http.post(f"{endpoint}/v2.0/{segment}", json={resource: attrs})
        assert response.status_code == 201, response.text
        return response.json()[resource]["id"]

    network = create("networks", "network", name="fuzz")
    subnet = create("subnets", "subnet", network_id=network, cidr="10.99.0.0/24", ip_version=4)
    external = create("networks", "network", name="fuzz-ext", **{"router:external": True})
    create("subnets", "subnet", network_id=external, cidr="192.0.2.0/24", ip_version=4)
    group = create("security-groups", "security_group", name="fuzz")
    return {
        "networks": network, "subnets": subnet, "ports": create("ports", "port", network_id=network),
        "routers": create("routers", "router", name="fuzz"), "security-groups": group,
        "security-group-rules": create("security-group-rules", "security_group_rule", security_group_id=group,
                                       direction="ingress", protocol="tcp"),
        "floatingips": create("floatingips", "floatingip", floating_network_id=external),
    }


def snapshot(http: requests.Session, endpoint: str) -> dict[str, Any]:
    """Everything in the database a client can see: every resource, the quotas, the change log's sequence."""
    state: dict[str, Any] = {}
    for segment in COLLECTIONS:
        state[segment] = http.get(f"{endpoint}/v2.0/{segment}").json()[segment.replace("-", "_")]
    state["quotas"] = http.get(f"{endpoint}/v2.0/quotas").json()
    state["seq"] = http.get(f"{endpoint}/agent/v1/seq").json()
    return state


def neutron_fault(response: requests.Response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    error = body.get("NeutronError") if isinstance(body, dict) and set(body) == {"NeutronError"} else None
    return (isinstance(error, dict) and set(error) == {"type", "message", "detail"}
            and all(isinstance(v, str) for v in error.values()))


def test_document_is_served_and_generated_from_the_schemas(server: BaryonServer, http: requests.Session) -> None:
    response = requests.get(server.endpoint + "/openapi.json", timeout=30)  # no identity headers at all
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    document = response.json()
    assert document["openapi"].startswith("3.")
    for segment in COLLECTIONS:
        assert {f"/v2.0/{segment}", f"/v2.0/{segment}/{{id}}"} <= set(document["paths"])
    assert {"/v2.0/routers/{id}/add_router_interface", "/v2.0/routers/{id}/remove_router_interface",
            "/v2.0/networks/{id}/tags", "/v2.0/ports/{id}/tags/{tag}", "/v2.0/quotas/{project_id}"} <= set(
        document["paths"])
    create = document["paths"]["/v2.0/ports"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    port = create["oneOf"][0]["properties"]["port"]
    assert port["required"] == ["network_id"] and port["additionalProperties"] is False
    assert port["properties"]["name"] == {"type": "string", "maxLength": 255}
    assert "status" not in port["properties"]  # read-only: not in a request body
    assert document["paths"]["/v2.0/networks"]["get"]["responses"]["400"] == {"$ref": "#/components/responses/Error"}


def test_fuzzed_requests_never_fail_and_refusals_change_nothing(
        server: BaryonServer, http: requests.Session, capsys: pytest.CaptureFixture[str]) -> None:
    endpoint = server.endpoint
    schema = schemathesis.openapi.from_url(endpoint + "/openapi.json")
    seeded = seed(http, endpoint)
    counts: collections.Counter[str] = collections.Counter()
    failures: list[str] = []
    started = time.monotonic()

    def check(case: Any) -> None:
        writes = case.method.upper() != "GET"
        before = snapshot(http, endpoint) if writes else None
        response = case.call(base_url=endpoint, session=http)
        counts[f"{response.status_code // 100}xx"] += 1
        problem = None
        if response.status_code >= 500:
            problem = "server error"
        elif response.status_code >= 400 and not neutron_fault(response):
            problem = "not Neutron's fault body"
        elif response.status_code >= 400 and writes and snapshot(http, endpoint) != before:
            problem = "refused, yet the database changed"
        if problem:
            failures.append(f"{problem}: {response.status_code} {response.text[:300]}\n  {case.as_curl_command()}")

    def run(strategy: Any) -> None:
        @given(case=strategy)
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def cases(case: Any) -> None:
            counts["cases"] += 1
            check(case)

        try:
            cases()
        except Unsatisfiable:
            pass  # nothing of that kind to generate (an operation without parameters has no negative case)

    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            run(operation.as_strategy(generation_mode=mode))
        segment = operation.path.split("/")[2]
        if "{id}" in operation.path and operation.method.upper() != "DELETE" and segment in seeded:
            run(operation.as_strategy(path_parameters={"id": seeded[segment]}))

    statuses = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if k != "cases")
    summary = (f"openapi fuzz: {counts['cases']} cases ({statuses}) in {time.monotonic() - started:.1f} s, "
               f"{len(failures)} failures")
    with capsys.disabled():
        print(f"\n{summary}")
    assert counts["cases"] >= 400, summary
    assert not failures, "\n".join([summary, *failures[:20]])
