"""Helpers for the router and floating IP tests: resources made over plain HTTP (``helpers.http``
clients, base ``/v2.0``), and the change log read straight from the server's database."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import create_engine, text

from tests.api.helpers import name
from tests.api.test_concurrency import database_url
from tests.support.server import BaryonServer


def create(client: httpx.Client, resource: str, **attrs: Any) -> dict:
    response = client.post(f"/{resource}s", json={resource: attrs})
    assert response.status_code == 201, response.text
    return response.json()[resource]


def show(client: httpx.Client, resource: str, rid: str) -> dict:
    response = client.get(f"/{resource}s/{rid}")
    assert response.status_code == 200, response.text
    return response.json()[resource]


def update(client: httpx.Client, resource: str, rid: str, **attrs: Any) -> dict:
    response = client.put(f"/{resource}s/{rid}", json={resource: attrs})
    assert response.status_code == 200, response.text
    return response.json()[resource]


def listed(client: httpx.Client, collection: str, **params: Any) -> list[dict]:
    response = client.get(f"/{collection}", params=params)
    assert response.status_code == 200, response.text
    return response.json()[collection]


def external(admin: httpx.Client, cidr: str = "203.0.113.0/24", **subnet: Any) -> tuple[dict, dict]:
    """An external network (admin's, vxlan: no physnet is taken on the shared server) and its subnet."""
    network = create(admin, "network", name=name("public"), **{"router:external": True})
    sub = create(admin, "subnet", network_id=network["id"], cidr=cidr, ip_version=4, enable_dhcp=False,
                 name=name("public-subnet"), **subnet)
    return network, sub


def private(client: httpx.Client, cidr: str = "10.0.0.0/24", **subnet: Any) -> tuple[dict, dict]:
    network = create(client, "network", name=name("private"))
    version = 6 if ":" in cidr else 4
    sub = create(client, "subnet", network_id=network["id"], cidr=cidr, ip_version=version,
                 name=name("private-subnet"), **subnet)
    return network, sub


def interface(client: httpx.Client, router_id: str, action: str = "add", **info: str) -> httpx.Response:
    return client.put(f"/routers/{router_id}/{action}_router_interface", json=info)


def add_interface(client: httpx.Client, router_id: str, **info: str) -> dict:
    response = interface(client, router_id, **info)
    assert response.status_code == 200, response.text
    return response.json()


def last_seq(server: BaryonServer) -> int:
    engine = create_engine(database_url(server))
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT COALESCE(MAX(seq), 0) FROM changes")).scalar_one()
    finally:
        engine.dispose()


def changes_since(server: BaryonServer, seq: int) -> list[tuple[int, str, str, str]]:
    """(seq, resource_type, resource_id, action) of the change log after ``seq``."""
    engine = create_engine(database_url(server))
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT seq, resource_type, resource_id, action FROM changes "
                                     "WHERE seq > :seq ORDER BY seq"), {"seq": seq})
            return [tuple(row) for row in rows]
    finally:
        engine.dispose()
