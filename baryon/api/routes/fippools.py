"""``GET /v2.0/floatingip-pools``: Neutron's floatingip-pools extension (the L3 router plugin's).

NOTE: the path has a hyphen, the body key an underscore, as Neutron serves it (its extension
translates the collection name: ``translate_name=True``).

``{"floatingip_pools": [...]}`` (see ``service.fippools``); filters ``network_id``, ``subnet_id``,
``subnet_name``, ``cidr`` and ``fields``; ``project_id``/``tenant_id`` are accepted and ignored
(an entry's project is the caller's), as are ``limit``, ``marker``, ``page_reverse``,
``sort_key`` and ``sort_dir``; any other parameter is refused (filter-validation). Read only.
"""

from __future__ import annotations

from starlette.routing import Route

from baryon.api.routes import plainlist
from baryon.service.fippools import FILTERS, FloatingIPPools

IGNORED = frozenset({"limit", "marker", "page_reverse", "sort_key", "sort_dir", "project_id", "tenant_id"})


def routes(service: FloatingIPPools) -> list[Route]:
    return plainlist.routes("floatingip-pools", "floatingip_pools", FILTERS, IGNORED, service.list)
