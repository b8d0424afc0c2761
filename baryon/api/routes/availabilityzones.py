"""``GET /v2.0/availability_zones``: Neutron's availability_zone extension (with availability_zone_filter).

``{"availability_zones": [{"name", "resource", "state"}, ...]}`` (see ``service.availabilityzones``);
filters ``name``, ``resource`` (network, router) and ``state`` (available, unavailable), repeated
values meaning "any of", and ``fields``; ``limit``, ``marker``, ``page_reverse``, ``sort_key``,
``sort_dir``, ``project_id`` and ``tenant_id`` are accepted and ignored (zones have neither paging
nor owner); any other parameter is refused (filter-validation). Any caller may list. Read only.
"""

from __future__ import annotations

from starlette.routing import Route

from baryon.api.routes import plainlist
from baryon.service.availabilityzones import FILTERS, AvailabilityZones

IGNORED = frozenset({"limit", "marker", "page_reverse", "sort_key", "sort_dir", "project_id", "tenant_id"})


def routes(service: AvailabilityZones) -> list[Route]:
    return plainlist.routes("availability_zones", "availability_zones", FILTERS, IGNORED, service.list)
