"""``GET /v2.0/service-providers`` (service-type): the providers this server runs
(``service.serviceproviders``), ``{"service_providers": [{"service_type", "name", "default"}]}``.

Every authenticated caller may list them (Neutron's policy). Filters ``service_type``, ``name``
and ``default`` (a boolean) and ``fields``; paging and sorting parameters are accepted and
ignored (the list is a handful of constants); any other parameter is refused (filter-validation).
NOTE: the path has a hyphen, the body key an underscore, as Neutron serves it.
"""

from __future__ import annotations

from starlette.routing import Route

from baryon.api.routes import plainlist
from baryon.api.schemas.types import boolean
from baryon.service import serviceproviders
from baryon.service.context import Context

FILTERS = frozenset({"service_type", "name", "default"})
IGNORED = frozenset({"limit", "marker", "page_reverse", "sort_key", "sort_dir"})


def _convert(key: str, value: str) -> object:
    return boolean(value) if key == "default" else value  # a bad boolean: 400 InvalidInput


def _list(_ctx: Context, filters: dict) -> list[dict]:
    return [serviceproviders.body(p) for p in serviceproviders.providers(filters)]


def routes() -> list[Route]:
    return plainlist.routes("service-providers", "service_providers", FILTERS, IGNORED, _list, _convert)
