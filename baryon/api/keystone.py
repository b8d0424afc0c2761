"""``auth_strategy = keystone``: Keystone tokens checked by keystonemiddleware, in front of ``/v2.0``.

``KeystoneAuth`` is an ASGI middleware around keystonemiddleware's ``AuthProtocol`` (a WSGI
filter, the one Neutron puts in its paste pipeline), configured by the ``[keystone_authtoken]``
section of the server's own configuration files, read by oslo.config exactly as Neutron reads it.

For each request under ``/v2.0`` (the version document ``/`` and ``/metrics`` are not its business;
the agent API only in part, below):
- the request's headers go through ``AuthProtocol`` as a WSGI environ, in a worker thread (token
  validation is blocking HTTP to Keystone, cached by the middleware's token cache);
- if the middleware answers by itself (no token, bad or revoked token: 401 with its JSON body and
  ``WWW-Authenticate: Keystone uri=...``; Keystone unreachable: 503), that answer is sent as is,
  as Neutron sends it;
- otherwise the request goes on with the headers the middleware left: every identity header the
  client sent is stripped (``X-Roles``, ``X-Project-Id``, ``X-Identity-Status``...) and the token's
  are set. Only then is the scope marked ``deps.AUTHENTICATED`` (and only for a confirmed user
  token): ``deps.context`` refuses any request under keystone that lacks the mark.

A request to the agent API (``/agent/v1/...``) that carries a token (``X-Auth-Token``: an agent's
Keystone service user, ``baryon.agent.client``) goes through the same ``AuthProtocol``, but the
middleware never answers it: the agent API's ``AgentAuth`` decides, since the agents' shared secret
may let the request in where the token does not. A confirmed token gets the same header rewrite and
``deps.AUTHENTICATED`` mark; any other outcome leaves the headers as sent and records
``AuthProtocol``'s status under ``REFUSED`` (401: refused; 503: Keystone unreachable). An agent-API
request without a token never runs ``AuthProtocol``.

NOTE: keystonemiddleware and oslo.config are imported by ``middleware()`` only when keystone is
configured: a noauth server never loads them (they cost ~25 MiB of resident memory).
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from baryon import config
from baryon.api import deps

GROUP = "keystone_authtoken"
PASSED = "baryon.keystone.passed"  # set in the environ by the inner WSGI app: the token was accepted
# The ASGI scope key of a token ``AuthProtocol`` did not confirm on a path it does not answer
# for (the agent API): its status there, 401 or 503.
REFUSED = "baryon.keystone.refused"
TOKEN_HEADERS = frozenset({"HTTP_X_AUTH_TOKEN", "HTTP_X_STORAGE_TOKEN"})  # where AuthProtocol finds a token

WsgiApp = Callable[[dict, Callable], Iterable[bytes]]


def protects(path: str) -> bool:
    """The paths that need a token: the Networking API, as in Neutron's paste pipeline, and the
    topology page's feeds (``/topology/...``: the same resources; the page itself is static)."""
    return path == "/v2.0" or path.startswith(("/v2.0/", "/topology/"))


def carries_token(scope: Scope) -> bool:
    """The request has a header ``AuthProtocol`` takes a token from, however spelled (``X_Auth_Token``)."""
    return any(_environ_key(name.decode("latin-1")) in TOKEN_HEADERS for name, _ in scope["headers"])


def _accepted(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """The application behind ``AuthProtocol``: reached only for a request it lets through."""
    environ[PASSED] = True
    start_response("204 No Content", [])
    return [b""]


def auth_protocol(settings: config.Settings) -> WsgiApp:
    """keystonemiddleware's ``AuthProtocol`` over the ``[keystone_authtoken]`` of the settings' files."""
    from keystonemiddleware import auth_token
    from oslo_config import cfg

    conf = cfg.ConfigOpts()
    # NOTE: no command line and no default search path: only the files the server was given,
    # in their order (a later file overrides an earlier one, as for the rest of the settings).
    conf([], project="neutron", default_config_files=list(settings.config_files), default_config_dirs=[],
         validate_default_values=True)
    return auth_token.AuthProtocol(_accepted, {"oslo_config_config": conf})


def _environ_key(name: str) -> str:
    key = name.upper().replace("-", "_")
    return key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key


def environ_of(scope: Scope) -> dict[str, Any]:
    """A WSGI environ carrying the request line and headers (no body: the middleware reads none)."""
    server = scope.get("server") or ("127.0.0.1", 80)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"], "SCRIPT_NAME": "", "PATH_INFO": scope["path"],
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]), "SERVER_PORT": str(server[1]), "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.version": (1, 0), "wsgi.url_scheme": scope.get("scheme", "http"), "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": True, "wsgi.run_once": False,
    }
    client = scope.get("client")
    if client:
        environ["REMOTE_ADDR"] = str(client[0])
    for raw_name, raw_value in scope["headers"]:
        key, value = _environ_key(raw_name.decode("latin-1")), raw_value.decode("latin-1")
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


def _encode(value: str) -> bytes:
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:  # a role or project name beyond latin-1
        return value.encode("utf-8")


def rewrite_headers(headers: list[tuple[bytes, bytes]], before: dict[str, Any],
                    after: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    """The request's headers once ``AuthProtocol`` has run: those it removed or changed (whatever
    their spelling, ``X-Roles`` or ``X_Roles``) replaced by what it left in the environ."""
    changed = {k for k in before.keys() | after.keys()
               if k.startswith("HTTP_") and isinstance(after.get(k, ""), str) and before.get(k) != after.get(k)}
    kept = [(n, v) for n, v in headers if _environ_key(n.decode("latin-1")) not in changed]
    added = [(k[5:].replace("_", "-").lower().encode("latin-1"), _encode(after[k]))
             for k in sorted(changed) if k in after]
    return kept + added


class KeystoneAuth:
    """ASGI middleware: ``/v2.0`` requests pass only with a token ``auth`` (a WSGI ``AuthProtocol``) accepts;
    requests under one of ``deferred`` (path prefixes) that carry a token are checked and marked, never answered."""

    def __init__(self, app: ASGIApp, auth: WsgiApp, deferred: tuple[str, ...] = ()) -> None:
        self.app = app
        self.auth = auth
        self.deferred = deferred

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        guarded = scope["type"] == "http" and protects(scope["path"])
        deferred = (scope["type"] == "http" and not guarded and scope["path"].startswith(self.deferred)
                    and carries_token(scope))
        if not guarded and not deferred:
            await self.app(scope, receive, send)
            return
        before = environ_of(scope)
        after = dict(before)
        status, headers, body = await run_in_threadpool(self._validate, after)
        if not after.get(PASSED) and deferred:
            await self.app(dict(scope, **{REFUSED: status}), receive, send)
            return
        if not after.get(PASSED):
            await send({"type": "http.response.start", "status": status,
                        "headers": [(n.lower().encode("latin-1"), _encode(v)) for n, v in headers]})
            await send({"type": "http.response.body", "body": body})
            return
        scope = dict(scope, headers=rewrite_headers(scope["headers"], before, after))
        if after.get("HTTP_X_IDENTITY_STATUS") == "Confirmed":
            scope[deps.AUTHENTICATED] = True
        elif deferred:  # delay_auth_decision let an invalid token through: refused all the same
            scope[REFUSED] = 401
        await self.app(scope, receive, send)

    def _validate(self, environ: dict) -> tuple[int, list[tuple[str, str]], bytes]:
        answer: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            answer[:] = [int(status.split(" ", 1)[0]), headers]

        chunks = self.auth(environ, start_response)
        try:
            body = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        return answer[0], answer[1], body


def middleware(settings: config.Settings) -> list[Middleware]:
    """The middleware list ``create_app`` adds: empty unless ``auth_strategy = keystone``."""
    if settings.DEFAULT.auth_strategy != "keystone":
        return []
    # NOTE: imported here: the agent API's module reads this one's REFUSED.
    from baryon.api.routes.agentapi import PREFIX as AGENT_API

    return [Middleware(KeystoneAuth, auth=auth_protocol(settings), deferred=(AGENT_API + "/",))]
