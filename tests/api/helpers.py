"""Small helpers for the API tests: the three real clients a user would reach Baryon with.

- ``sdk(endpoint, project)``: an openstacksdk ``Connection`` in noauth mode (a keystoneauth
  ``NoAuth`` session, the network endpoint overridden). Without ``project`` it is the noauth admin;
  with it, every request carries ``X-Project-Id`` and ``X-Roles`` (Baryon scopes by them).
- ``http(endpoint, project)``: an httpx client on ``/v2.0`` with the same headers, for exact status
  codes and Neutron's fault body.
- ``cli(endpoint, *args)``: the ``openstack`` command (python-openstackclient) with
  ``--os-auth-type none``; JSON output parsed.
- ``fault(response, status, type_)``: asserts a Neutron fault and returns its ``NeutronError``.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
from keystoneauth1 import noauth, session as ks_session
from openstack import connection

OPENSTACK = str(Path(sys.executable).with_name("openstack"))
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def headers(project: str | None, roles: str = "member") -> dict[str, str]:
    return {"X-Project-Id": project, "X-Roles": roles} if project else {}


def sdk(endpoint: str, project: str | None = None, roles: str = "member") -> connection.Connection:
    session = ks_session.Session(auth=noauth.NoAuth(), additional_headers=headers(project, roles))
    return connection.Connection(session=session, network_endpoint_override=endpoint)


def http(endpoint: str, project: str | None = None, roles: str = "member") -> httpx.Client:
    return httpx.Client(base_url=endpoint + "/v2.0", headers=headers(project, roles), timeout=30)


def cli(endpoint: str, *args: str) -> Any:
    """Run ``openstack ARGS`` against the endpoint; parsed JSON for ``-f json`` commands, else the text."""
    command = [OPENSTACK, "--os-auth-type", "none", "--os-endpoint", endpoint, *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{' '.join(args)} exited {done.returncode}:\n{done.stderr}"
    return json.loads(done.stdout) if "json" in args else done.stdout


def fault(response: httpx.Response, status: int, type_: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"NeutronError"}, body
    error = body["NeutronError"]
    assert set(error) == {"type", "message", "detail"}, error
    assert error["type"] == type_, error
    return error


def timestamp(value: str) -> dt.datetime:
    """A ``created_at``/``updated_at`` value, which must be Neutron's ``YYYY-MM-DDTHH:MM:SSZ``."""
    return dt.datetime.strptime(value, TIME_FORMAT)


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
