"""The agent runtime (``baryon.agent.runtime``) against a running server: an agent that no change
concerns stays idle and is shown current; one that a change concerns runs once and reports it.

The reconciler is an Open vSwitch agent kind that touches no host: it counts its runs and says
every port of its view is ACTIVE. What is checked is the runtime's protocol with the server.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from baryon.agent.client import ServerClient
from baryon.agent.runtime import AgentRuntime, Outcome
from baryon.model.host import HostView
from tests.support.server import BaryonServer
from tests.support.wait import eventually

OVS = "Open vSwitch agent"


class Counting:
    """An OVS agent kind that wires nothing: it counts runs and reports its ports ACTIVE."""

    agent_type, binary, topic, view_kind = OVS, "neutron-openvswitch-agent", "N/A", "ovs"

    def __init__(self, ip: str) -> None:
        self.ip = ip
        self.runs = 0

    def parse_view(self, data: dict) -> HostView:
        return HostView.from_json(data)

    def start(self, wake: Callable[[], None]) -> None:
        pass

    def stop(self) -> None:
        pass

    def configurations(self) -> dict:
        return {"tunnel_types": ["vxlan"], "tunneling_ip": self.ip, "bridge_mappings": {}}

    def reconcile(self, view: Any) -> Outcome:  # noqa: ANN401
        self.runs += 1
        return Outcome({p.id: "ACTIVE" if p.admin_state_up else "DOWN" for p in view.ports})


@pytest.fixture
def running(baryon: BaryonServer) -> Iterator[tuple[str, Counting]]:
    host = f"runtime-{uuid.uuid4().hex[:8]}"
    kind = Counting("10.44.0.1")
    runtime = AgentRuntime(kind, ServerClient(baryon.endpoint), host, report_interval=30)
    thread = threading.Thread(target=runtime.run, daemon=True)
    thread.start()
    try:
        yield host, kind
    finally:
        runtime.stop()
        thread.join(10)


def test_changes_that_do_not_concern_an_agent_leave_it_idle_and_current(baryon: BaryonServer,
                                                                        running: tuple[str, Counting]) -> None:
    host, kind = running
    with httpx.Client(base_url=baryon.endpoint + "/v2.0", timeout=30) as api:
        def agent() -> dict | None:
            agents = api.get("/agents", params={"host": host}).json()["agents"]
            return agents[0] if agents else None

        eventually(agent, 10, "the agent registered")
        net = api.post("/networks", json={"network": {"name": "runtime"}}).json()["network"]
        api.post("/subnets", json={"subnet": {"network_id": net["id"], "cidr": "10.45.0.0/24", "ip_version": 4}})
        port = api.post("/ports", json={"port": {"network_id": net["id"], "binding:host_id": host}}).json()["port"]
        eventually(lambda: api.get(f"/ports/{port['id']}").json()["port"]["status"] == "ACTIVE", 10,
                   "the port reported ACTIVE")
        time.sleep(1.0)  # the report's own log entry and any follow-up have passed
        runs = kind.runs
        for i in range(5):  # changes of nothing this host's view holds
            api.put(f"/ports/{port['id']}", json={"port": {"name": f"renamed-{i}"}})
            api.post("/networks", json={"network": {"name": f"elsewhere-{i}"}})
        time.sleep(1.5)
        assert kind.runs == runs  # no run: the watch was not answered, nothing was due
        seq = httpx.get(baryon.endpoint + "/agent/v1/seq").json()["seq"]
        assert agent()["realised_seq"] == seq  # current without a report

        api.put(f"/ports/{port['id']}", json={"port": {"admin_state_up": False}})  # in its view
        eventually(lambda: api.get(f"/ports/{port['id']}").json()["port"]["status"] == "DOWN", 10,
                   "the port reported DOWN")
        time.sleep(1.0)
        assert kind.runs <= runs + 3  # a run for the view (and the report's follow-up): no busy loop
