"""The address group actions (address-group): ``PUT /v2.0/address-groups/{id}/add_addresses`` and
``remove_addresses``, taking ``{"addresses": [...]}`` and answering with the group after the
change (``{"address_group": {...}}``, as Neutron). CRUD on ``/v2.0/address-groups`` is the generic
collection (``resources``).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from baryon.api import deps, request as req
from baryon.api.routes.resources import _path_id, json
from baryon.api.schemas import address_group as schema
from baryon.api.schemas.types import Invalid
from baryon.service.services import Services


def _addresses(raw: bytes) -> list[str]:
    body = req.decode(raw)
    if not isinstance(body, dict) or set(body) != {"addresses"}:
        raise req.bad("Expected a body of the form {'addresses': [...]}")
    try:
        return schema.ADDRESSES(body["addresses"])
    except Invalid as exc:
        raise req.bad(f"Invalid input for addresses. Reason: {exc.reason}.") from None


def routes(services: Services) -> list[Route]:
    def action(fn: Callable[..., dict]) -> Callable:
        async def endpoint(request: Request) -> Response:
            ctx = deps.context(request)
            addresses = _addresses(await request.body())
            return json(await run_in_threadpool(fn, ctx, _path_id(request), addresses))

        return endpoint

    prefix = "/v2.0/address-groups/{id}"
    groups = services.address_groups
    return [
        Route(prefix + "/add_addresses", action(groups.add_addresses), methods=["PUT"]),
        Route(prefix + "/remove_addresses", action(groups.remove_addresses), methods=["PUT"]),
    ]
