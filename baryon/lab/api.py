"""A small client of the Networking API for the lab (what Nova does with Neutron, and no more).

Standard library only: the lab's commands run before and beside the server, and need just a few
JSON requests. Errors come back as ``ApiError`` carrying Neutron's message.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class ApiError(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Api:
    def __init__(self, url: str, timeout: float = 30, agent_secret: str = "") -> None:
        """``agent_secret``: the lab's agent secret (``configs.lab_secret``), sent for the tools that
        read the agent API (``/agent/v1``: ``baryon debug port``); empty: none sent."""
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if agent_secret:
            self.headers["Authorization"] = f"Bearer {agent_secret}"

    def request(self, method: str, path: str, body: dict | None = None) -> Any:  # noqa: ANN401
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=self.headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                fault = json.loads(raw)["NeutronError"]["message"]
            except (ValueError, KeyError, TypeError):
                fault = raw.decode(errors="replace").strip() or exc.reason
            raise ApiError(exc.code, f"{method} {path}: {exc.code} {fault}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiError(0, f"{method} {path}: the server at {self.url} does not answer ({reason}); "
                              "is the lab up (`baryon lab up`)?") from None
        return json.loads(raw) if raw else None

    def get(self, path: str, **query: str) -> Any:  # noqa: ANN401
        return self.request("GET", path + ("?" + urllib.parse.urlencode(query) if query else ""))
