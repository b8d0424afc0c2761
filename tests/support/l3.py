"""What the lab tests of routing share: API calls that must succeed, the lab's external network,
and TCP probes between the lab's namespaces (``baryon.lab.probes``, as the demo's checks)."""

from __future__ import annotations

import httpx

from baryon.lab import probes
from baryon.lab.lab import Lab
from tests.support.lab import LabCli

EXTERNAL_HOST = "203.0.113.1"  # the lab's external node: the external subnet's gateway


def post(api: httpx.Client, path: str, key: str, body: dict) -> dict:
    response = api.post(path, json={key: body})
    assert response.status_code == 201, response.text
    return response.json()[key]


def put(api: httpx.Client, path: str, key: str, body: dict) -> dict:
    response = api.put(path, json={key: body})
    assert response.status_code == 200, response.text
    return response.json()[key]


def external_network(api: httpx.Client) -> dict:
    """Network ``ext``: flat on physnet1, ``router:external``, 203.0.113.0/24 with the external node
    as its gateway and addresses from .100 to .199 for gateways and floating IPs."""
    ext = post(api, "/networks", "network", {"name": "ext", "router:external": True, "provider:network_type": "flat",
                                             "provider:physical_network": "physnet1"})
    post(api, "/subnets", "subnet", {"network_id": ext["id"], "cidr": "203.0.113.0/24", "ip_version": 4,
                                     "gateway_ip": EXTERNAL_HOST, "enable_dhcp": False,
                                     "allocation_pools": [{"start": "203.0.113.100", "end": "203.0.113.199"}]})
    return ext


def tcp_peer(lab: LabCli, client: str, server: str, target: str, port: int) -> str | None:
    """Connect from ``client`` to ``target``:``port`` where ``server`` listens (``vm:NAME`` or a node):
    the source address the server saw, None when nothing arrived."""
    return probes.tcp_peer(Lab.open(lab.state_dir), client, server, target, port)
