"""``GET /v2.0/availability_zones``: Neutron's availability_zone extension (with availability_zone_filter).

``{"availability_zones": [{"name", "resource", "state"}, ...]}`` (see ``service.availabilityzones``);
filters ``name``, ``resource`` (network, router) and ``state`` (available, unavailable), repeated
values meaning "any of", and ``fields``; ``limit``, ``marker``, ``page_reverse``, ``sort_key``,
``sort_dir``, ``project_id`` and ``tenant_id`` are accepted and ignored (zones have neither paging
nor owner); any other parameter is refused (filter-validation). Any caller may list. Read only.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from baryon.api import deps, request as req
from baryon.api.routes.resources import json
from baryon.service.availabilityzones import FILTERS, AvailabilityZones

IGNORED = frozenset({"limit", "marker", "page_reverse", "sort_key", "sort_dir", "project_id", "tenant_id"})


def routes(service: AvailabilityZones) -> list[Route]:
    async def index(request: Request) -> Response:
        ctx = deps.context(request)
        filters, fields = req.plain_query(request.query_params.multi_items(), FILTERS, IGNORED)
        zones = await run_in_threadpool(service.list, ctx, filters)
        if fields:
            zones = [{k: v for k, v in z.items() if k in fields} for z in zones]
        return json({"availability_zones": zones})

    return [
        Route("/v2.0/availability_zones", index, methods=["GET"]),
        Route("/v2.0/availability_zones.json", index, methods=["GET"]),
    ]
