"""Clients for the API tests of ports and conventions, on top of ``tests.api.helpers``.

- ``Api``: an ``httpx`` client on the server, as the noauth admin (no ``X-Project-Id``) or as a
  project member (``X-Project-Id`` + ``X-Roles``), for exact status codes and bodies.
  ``create``/``show``/``update``/``list`` assert the success status and return the resource(s).
- ``fault(response, status, type_)`` asserts a Neutron error body and returns its message.
- ``sdk`` (openstacksdk in noauth mode) comes from ``tests.api.helpers``; ``cli(endpoint, *args)``
  runs the real ``openstack`` CLI there, adding ``-f json`` to create/show/list commands.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.api import helpers
from tests.api.helpers import headers, sdk

__all__ = ["Api", "cli", "fault", "sdk"]


class Api:
    def __init__(self, endpoint: str, project: str | None = None, roles: str = "member"):
        self.endpoint = endpoint
        self.project = project
        self.http = httpx.Client(base_url=endpoint, headers=headers(project, roles), timeout=30)

    def close(self) -> None:
        self.http.close()

    # ---------------------------------------------------------------- raw requests

    def get(self, path: str, params: Any = None, **kw: Any) -> httpx.Response:
        return self.http.get(path, params=params, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return self.http.post(path, json=body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return self.http.put(path, json=body, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.delete(path, **kw)

    # ---------------------------------------------------------------- resources

    def create(self, resource: str, **attrs: Any) -> dict:
        response = self.post(f"/v2.0/{resource}s", {resource: attrs})
        assert response.status_code == 201, response.text
        return response.json()[resource]

    def show(self, resource: str, rid: str, **params: Any) -> dict:
        response = self.get(f"/v2.0/{resource}s/{rid}", params=params or None)
        assert response.status_code == 200, response.text
        return response.json()[resource]

    def update(self, resource: str, rid: str, **attrs: Any) -> dict:
        response = self.put(f"/v2.0/{resource}s/{rid}", {resource: attrs})
        assert response.status_code == 200, response.text
        return response.json()[resource]

    def list(self, collection: str, params: Any = None) -> list[dict]:
        response = self.get(f"/v2.0/{collection}", params=params)
        assert response.status_code == 200, response.text
        return response.json()[collection]

    def network_with_subnet(self, cidr: str = "10.0.0.0/24", **subnet: Any) -> tuple[dict, dict]:
        network = self.create("network", name="net-" + cidr)
        version = 6 if ":" in cidr else 4
        sub = self.create("subnet", network_id=network["id"], cidr=cidr, ip_version=version, **subnet)
        return network, sub



def fault(response: httpx.Response, status: int, type_: str) -> str:
    """Assert a Neutron error: the status and ``{"NeutronError": {"type", "message", "detail"}}``."""
    message = helpers.fault(response, status, type_)["message"]
    assert isinstance(message, str) and message, response.text
    return message


def cli(endpoint: str, *args: str) -> Any:
    """``openstack --os-auth-type none --os-endpoint ENDPOINT ARGS...``, with ``-f json`` (parsed)
    for create, show and list commands."""
    if len(args) > 1 and args[1] in ("create", "show", "list"):
        return helpers.cli(endpoint, *args, "-f", "json")
    return helpers.cli(endpoint, *args)
