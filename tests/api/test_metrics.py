"""``GET /metrics`` on a running server (two API workers), on every backend: the numbers move as
the workload says.

The shared server runs the tests one at a time, so a counter's rise between two scrapes is this
test's own. Requests go on fresh connections (``Connection: close``) so that both workers serve
them: the counts must add up across workers (multiprocess mode), whichever answers the scrape.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.agentdb import silence
from tests.api.helpers import fault
from tests.support.server import BaryonServer

OVS = "Open vSwitch agent"
CLOSE = {"Connection": "close"}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def root(baryon: BaryonServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=baryon.endpoint, timeout=30) as client:
        yield client


def scrape(root: httpx.Client) -> Samples:
    response = root.get("/metrics", headers=CLOSE)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def agent_value(samples: Samples, name: str, host: str) -> float:
    return samples[(name, frozenset({"agent_type": OVS, "host": host}.items()))]


def test_ten_port_creates_count_ten_in_the_counter_and_the_histogram(root: httpx.Client,
                                                                      admin: httpx.Client) -> None:
    network = admin.post("/networks", json={"network": {"name": "metrics"}}).json()["network"]
    before = scrape(root)
    for _ in range(10):
        created = admin.post("/ports", json={"port": {"network_id": network["id"]}}, headers=CLOSE)
        assert created.status_code == 201, created.text
    after = scrape(root)

    def rise(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert rise("baryon_api_requests_total", resource="ports", method="POST", status="201") == 10
    assert rise("baryon_api_request_seconds_count", resource="ports", method="POST") == 10
    assert rise("baryon_api_request_seconds_bucket", resource="ports", method="POST", le="+Inf") == 10
    assert rise("baryon_api_request_seconds_sum", resource="ports", method="POST") > 0
    assert rise("baryon_change_log_seq") >= 10  # a change each (and the project's default group, if new)
    assert rise("baryon_db_transaction_seconds_count", kind="write") >= 10
    assert rise("baryon_db_transaction_seconds_count", kind="read") >= 1  # the scrape's own read at least
    # The labels are route templates: no port id ever becomes a label.
    assert not any(dict(labels).get("resource", "").count("-") == 4 for _, labels in after)


def test_a_404_counts_once_under_its_fault_type(root: httpx.Client, admin: httpx.Client) -> None:
    before = scrape(root)
    fault(admin.get(f"/networks/{uuid.uuid4()}", headers=CLOSE), 404, "NetworkNotFound")
    fault(admin.get("/no-such-collection", headers=CLOSE), 404, "HTTPNotFound")
    after = scrape(root)

    def rise(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert rise("baryon_api_errors_total", type="NetworkNotFound", status="404") == 1
    assert rise("baryon_api_errors_total", type="HTTPNotFound", status="404") == 1
    assert rise("baryon_api_requests_total", resource="networks", method="GET", status="404") == 1
    assert rise("baryon_api_requests_total", resource="unmatched", method="GET", status="404") == 1
    assert rise("baryon_api_errors_total", type="PortNotFound", status="404") == 0


def test_an_agent_that_never_reports_status_falls_behind_and_a_silent_one_is_dead(
        baryon: BaryonServer, root: httpx.Client, admin: httpx.Client) -> None:
    host = f"metrics-{uuid.uuid4().hex[:8]}"
    before = scrape(root)
    for start_flag in (True, False):
        reported = admin.post("/agents/report", json={"agent": {
            "agent_type": OVS, "host": host, "start_flag": start_flag,
            "configurations": {"bridge_mappings": {}, "tunnel_types": []}}})
        assert reported.status_code in (200, 201), reported.text
    agent_id = reported.json()["agent"]["id"]
    try:
        registered = scrape(root)
        assert (value(registered, "baryon_agent_heartbeats_received_total", agent_type=OVS)
                - value(before, "baryon_agent_heartbeats_received_total", agent_type=OVS)) == 2
        assert agent_value(registered, "baryon_agent_alive", host) == 1
        assert 0 <= agent_value(registered, "baryon_agent_heartbeat_age_seconds", host) < 60
        assert agent_value(registered, "baryon_agent_realised_seq", host) == 0
        seq = value(registered, "baryon_change_log_seq")
        assert agent_value(registered, "baryon_agent_seq_lag", host) == seq

        # The agent realises everything so far: no lag. Then changes it never reports: its lag grows.
        status = root.post(f"/agent/v1/hosts/{host}/status", json={"agent_type": OVS, "seq": int(seq)})
        assert status.status_code == 200, status.text
        caught_up = scrape(root)
        assert agent_value(caught_up, "baryon_agent_realised_seq", host) == seq
        assert agent_value(caught_up, "baryon_agent_seq_lag", host) == value(caught_up, "baryon_change_log_seq") - seq
        for index in range(3):
            admin.post("/networks", json={"network": {"name": f"lag-{index}"}}).raise_for_status()
        behind = scrape(root)
        assert agent_value(behind, "baryon_agent_seq_lag", host) == value(behind, "baryon_change_log_seq") - seq
        assert (agent_value(behind, "baryon_agent_seq_lag", host)
                >= agent_value(caught_up, "baryon_agent_seq_lag", host) + 3)

        # Its heartbeats stop (the last one 10 minutes ago): dead, and the age says since when.
        silence(baryon, OVS, host)
        stopped = scrape(root)
        assert agent_value(stopped, "baryon_agent_alive", host) == 0
        assert agent_value(stopped, "baryon_agent_heartbeat_age_seconds", host) >= 600
    finally:
        admin.delete(f"/agents/{agent_id}")
    assert not any(dict(labels).get("host") == host for _, labels in scrape(root))
