"""The subnet pool actions (subnetpool-prefix-ops): ``PUT /v2.0/subnetpools/{id}/add_prefixes`` and
``remove_prefixes``, taking ``{"prefixes": [...]}`` (unwrapped, as Neutron) and answering with the
pool's prefixes after the change. CRUD on ``/v2.0/subnetpools`` is the generic collection
(``resources``).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from baryon.api import deps, request as req
from baryon.api.routes.resources import _path_id, json
from baryon.api.schemas import subnetpool as schema
from baryon.api.schemas.types import Invalid
from baryon.service.services import Services


def _prefixes(raw: bytes) -> list[str]:
    body = req.decode(raw)
    if not isinstance(body, dict) or set(body) != {"prefixes"}:
        raise req.bad("Expected a body of the form {'prefixes': [...]}")
    try:
        return schema.PREFIXES(body["prefixes"])
    except Invalid as exc:
        raise req.bad(f"Invalid input for prefixes. Reason: {exc.reason}.") from None


def routes(services: Services) -> list[Route]:
    def action(fn: Callable[..., dict]) -> Callable:
        async def endpoint(request: Request) -> Response:
            ctx = deps.context(request)
            prefixes = _prefixes(await request.body())
            return json(await run_in_threadpool(fn, ctx, _path_id(request), prefixes))

        return endpoint

    prefix = "/v2.0/subnetpools/{id}"
    pools = services.subnetpools
    return [
        Route(prefix + "/add_prefixes", action(pools.add_prefixes), methods=["PUT"]),
        Route(prefix + "/remove_prefixes", action(pools.remove_prefixes), methods=["PUT"]),
    ]
