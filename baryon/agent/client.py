"""The agent's side of the agent API: registration, the host view watch, status reports.

One keep-alive HTTP connection pool per agent (httpx). Every call raises ``ServerError`` on
failure (unreachable, timeout, an error status); the runtime retries with backoff, keeping the
host as it is meanwhile (traffic flows while the server is away).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx


class ServerError(RuntimeError):
    """The server could not be reached or refused a request."""


@dataclass(frozen=True)
class Watched:
    """One answer of the watch: the view (None when unchanged since ``etag``) as of ``seq``."""

    seq: int
    etag: str
    view: Any | None  # the agent kind's view type (HostView, DhcpView ...)


class ServerClient:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._http = httpx.Client(base_url=self.url, timeout=timeout, headers={"Accept": "application/json"})

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, *, timeout: float | None = None, **kwargs: Any) -> Any:  # noqa: ANN401
        try:
            response = self._http.request(method, path, timeout=timeout or self.timeout, **kwargs)
        except httpx.HTTPError as exc:
            raise ServerError(f"{method} {self.url}{path}: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 400:
            try:
                message = response.json()["NeutronError"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text.strip()[:300]
            raise ServerError(f"{method} {self.url}{path}: {response.status_code} {message}")
        return response.json() if response.content else None

    def report_state(self, state: dict) -> dict:
        """Register or heartbeat (``POST /v2.0/agents/report``); returns the agent as the server has it."""
        return self._call("POST", "/v2.0/agents/report", json={"agent": state})["agent"]

    def watch(self, host: str, kind: str, etag: str, wait: float, parse: Callable[[dict], Any]) -> Watched:
        """The host's view of ``kind`` (built by ``parse``) if it differs from ``etag``, else (after up
        to ``wait`` s) the seq it is current to."""
        params: dict[str, Any] = {"etag": etag, "wait": int(wait)}
        body = self._call("GET", f"/agent/v1/hosts/{host}/{kind}", params=params,
                          timeout=wait + self.timeout)
        view = parse(body["view"]) if body.get("view") is not None else None
        return Watched(seq=int(body["seq"]), etag=body["etag"], view=view)

    def report_status(self, host: str, agent_type: str, seq: int, ports: dict[str, str], etag: str = "",
                      **others: dict) -> dict:
        """``etag``: of the view realised at ``seq`` (sent when given); ``others``: the other kinds of
        statuses (``routers``, ``floatingips``), sent when given."""
        body = {"agent_type": agent_type, "seq": seq, "ports": ports, **others}
        if etag:
            body["etag"] = etag
        return self._call("POST", f"/agent/v1/hosts/{host}/status", json=body)
