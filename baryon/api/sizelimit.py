"""``[oslo_middleware] max_request_body_size``: a request body larger than the limit is refused
with 413 ``HTTPRequestEntityTooLarge`` (Neutron's fault body) before any of it is parsed.

An ASGI middleware, around every route:
- a ``Content-Length`` over the limit is answered at once, without reading the body (the server
  discards what the client still sends);
- a body without ``Content-Length`` (chunked) is counted as the route reads it: the read that
  passes the limit raises ``HTTPRequestEntityTooLarge``, so no more is read and nothing is parsed.

NOTE: Baryon's agent API (``/agent/v1``) is exempt: it stands where Neutron's agents use RPC,
which this option does not limit, and an agent's status report grows with the ports of its host.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from baryon.api import faults
from baryon.service import errors

EXEMPT = ("/agent/",)


class HTTPRequestEntityTooLarge(errors.NeutronError):
    status = 413
    message = "Request is too large."


class BodyLimit:
    def __init__(self, app: ASGIApp, max_size: int):
        self.app = app
        self.max_size = max_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(EXEMPT):
            await self.app(scope, receive, send)
            return
        length = next((v for k, v in scope["headers"] if k == b"content-length"), b"")
        if length.isdigit():  # (the HTTP parser refuses a malformed one, and holds the body to it)
            if int(length) > self.max_size:
                refused = HTTPRequestEntityTooLarge()
                await faults.fault(refused.status, refused.type, str(refused))(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_size:
                    raise HTTPRequestEntityTooLarge()
            return message

        await self.app(scope, limited, send)
