"""The agent's side of the agent API: registration, the host view watch, status reports.

One keep-alive HTTP connection pool per agent (httpx). Every call raises ``ServerError`` on
failure (unreachable, timeout, an error status); the runtime retries with backoff, keeping the
host as it is meanwhile (traffic flows while the server is away).

Every call goes to the agent API (``/agent/v1``, ``baryon.api.routes.agentapi``) and carries the
agents' shared secret (``[baryon] agent_shared_secret``), when one is configured, as
``Authorization: Bearer <secret>`` (``auth_headers``), and the token of its Keystone service user,
when one is configured (``[agent_auth]``, ``config.agent.keystone_session``), as ``X-Auth-Token``
(``KeystoneToken``). A wrong or missing credential is a 401: a ``ServerError`` like any other,
retried with backoff, so an agent started before its server's secret was set recovers once both
agree. A 401 to a request that carried a token first forgets the token (Keystone may have revoked
it, or the server restarted with other keys) and sends the request once more with a new one;
keystoneauth1 also gets a new token before the old one expires.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

LOG = logging.getLogger(__name__)


class ServerError(RuntimeError):
    """The server could not be reached or refused a request."""


@dataclass(frozen=True)
class Watched:
    """One answer of the watch: the view (None when unchanged since ``etag``) as of ``seq``."""

    seq: int
    etag: str
    view: Any | None  # the agent kind's view type (HostView, DhcpView ...)


def auth_headers(secret: str) -> dict[str, str]:
    """The header that authenticates an agent-API request (none without a secret)."""
    return {"Authorization": f"Bearer {secret}"} if secret else {}


class KeystoneToken:
    """The agent's Keystone service user: the token of a keystoneauth1 ``Session``, got when first
    needed and again when near its expiry (keystoneauth1's own rule) or when ``refused``.

    keystoneauth1 is imported by the methods only: an agent without ``[agent_auth]`` never loads it.
    """

    def __init__(self, session: Any) -> None:  # noqa: ANN401 (a keystoneauth1.session.Session)
        self.session = session

    def headers(self) -> dict[str, str]:
        """``{"X-Auth-Token": token}``; ``ServerError`` when Keystone cannot be reached or refuses the user."""
        from keystoneauth1 import exceptions

        try:
            return dict(self.session.get_auth_headers() or {})
        except exceptions.ClientException as exc:
            raise ServerError(f"Keystone: cannot get a token for the agent's service user ([agent_auth]): "
                              f"{type(exc).__name__}: {exc}") from None

    def refused(self, sent: dict[str, str]) -> None:
        """The server answered 401 to ``sent``: forget that token (unless another thread already did)."""
        auth_ref = getattr(self.session.auth, "auth_ref", None)
        current = getattr(auth_ref, "auth_token", None)
        if current is None or current == sent.get("X-Auth-Token"):
            LOG.info("the server refused the agent's Keystone token: getting a new one")
            self.session.invalidate()


class ServerClient:
    def __init__(self, url: str, timeout: float = 10.0, secret: str = "", keystone: Any = None) -> None:  # noqa: ANN401
        """``secret``: the agents' shared secret, sent with every request (empty: none sent);
        ``keystone``: a keystoneauth1 ``Session`` whose token is sent with every request (None: none)."""
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.token = KeystoneToken(keystone) if keystone is not None else None
        self._http = httpx.Client(base_url=self.url, timeout=timeout,
                                  headers={"Accept": "application/json", **auth_headers(secret)})

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, path: str, timeout: float, kwargs: dict[str, Any]) -> httpx.Response:
        """One request with the current token; once more with a new token if the server refused it."""
        if self.token is None:
            return self._http.request(method, path, timeout=timeout, **kwargs)
        sent = self.token.headers()
        response = self._http.request(method, path, timeout=timeout, headers=sent, **kwargs)
        if response.status_code == 401:  # NOTE: refused before anything was read: safe to send again
            self.token.refused(sent)
            response = self._http.request(method, path, timeout=timeout, headers=self.token.headers(), **kwargs)
        return response

    def _call(self, method: str, path: str, *, timeout: float | None = None, **kwargs: Any) -> Any:  # noqa: ANN401
        try:
            response = self._send(method, path, timeout or self.timeout, kwargs)
        except httpx.HTTPError as exc:
            raise ServerError(f"{method} {self.url}{path}: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 400:
            try:
                message = response.json()["NeutronError"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text.strip()[:300]
            raise ServerError(f"{method} {self.url}{path}: {response.status_code} {message}")
        # NOTE: orjson: a view of 1,000 ports is ~400 KiB, which the standard library's decoder
        # took a third of the watcher's time to read, on the way from the server to the loop.
        return orjson.loads(response.content) if response.content else None

    def report_state(self, state: dict) -> dict:
        """Register or heartbeat (``POST /agent/v1/report``, the agent API's twin of the admin's
        ``/v2.0/agents/report``); returns the agent as the server has it."""
        return self._call("POST", "/agent/v1/report", json={"agent": state})["agent"]

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
