"""``GET /v2.0/floatingip-pools``: Neutron's floatingip-pools extension (the L3 router plugin's).

NOTE: the path has a hyphen, the body key an underscore, as Neutron serves it (its extension
translates the collection name: ``translate_name=True``).

``{"floatingip_pools": [...]}`` (see ``service.fippools``); filters ``network_id``, ``subnet_id``,
``subnet_name``, ``cidr`` and ``fields``; ``project_id``/``tenant_id`` are accepted and ignored
(an entry's project is the caller's), as are ``limit``, ``marker``, ``page_reverse``,
``sort_key`` and ``sort_dir``; any other parameter is refused (filter-validation). Read only.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from baryon.api import deps, request as req
from baryon.api.routes.resources import json
from baryon.service.fippools import FILTERS, FloatingIPPools

IGNORED = frozenset({"limit", "marker", "page_reverse", "sort_key", "sort_dir", "project_id", "tenant_id"})


def routes(service: FloatingIPPools) -> list[Route]:
    async def index(request: Request) -> Response:
        ctx = deps.context(request)
        filters, fields = req.plain_query(request.query_params.multi_items(), FILTERS, IGNORED)
        pools = await run_in_threadpool(service.list, ctx, filters)
        if fields:
            pools = [{k: v for k, v in p.items() if k in fields} for p in pools]
        return json({"floatingip_pools": pools})

    return [
        Route("/v2.0/floatingip-pools", index, methods=["GET"]),
        Route("/v2.0/floatingip-pools.json", index, methods=["GET"]),
    ]
