"""``GET /v2.0/service-providers`` (service-type): the providers this server runs
(``service.serviceproviders``), ``{"service_providers": [{"service_type", "name", "default"}]}``.

Every authenticated caller may list them (Neutron's policy). Filters ``service_type``, ``name``
and ``default`` (a boolean) and ``fields``; paging and sorting parameters are accepted and
ignored (the list is a handful of constants); any other parameter is refused (filter-validation).
NOTE: the path has a hyphen, the body key an underscore, as Neutron serves it.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from baryon.api import deps, request as req
from baryon.api.routes.resources import json
from baryon.api.schemas.types import boolean
from baryon.service import serviceproviders

FILTERS = frozenset({"service_type", "name", "default"})
IGNORED = frozenset({"limit", "marker", "page_reverse", "sort_key", "sort_dir"})


def _convert(key: str, value: str) -> object:
    return boolean(value) if key == "default" else value  # a bad boolean: 400 InvalidInput


def routes() -> list[Route]:
    async def index(request: Request) -> Response:
        deps.context(request)  # authenticated, any role
        filters, fields = req.plain_query(request.query_params.multi_items(), FILTERS, IGNORED, _convert)
        found = [serviceproviders.body(p) for p in serviceproviders.providers(filters)]
        if fields:
            found = [{k: v for k, v in p.items() if k in fields} for p in found]
        return json({"service_providers": found})

    return [
        Route("/v2.0/service-providers", index, methods=["GET"]),
        Route("/v2.0/service-providers.json", index, methods=["GET"]),
    ]
