"""``/v2.0/network-ip-availabilities``: Neutron's network-ip-availability extension (list, show).

- ``GET /v2.0/network-ip-availabilities``: ``{"network_ip_availabilities": [...]}``; filters
  ``network_id``, ``network_name``, ``project_id``/``tenant_id`` and ``ip_version`` (repeated
  values mean "any of"), ``fields``. Any other parameter is refused (filter-validation), but
  ``limit``, ``marker``, ``page_reverse``, ``sort_key`` and ``sort_dir``, ignored as by Neutron, whose
  controller for this resource has neither pagination nor sorting.
- ``GET /v2.0/network-ip-availabilities/{network_id}``: ``{"network_ip_availability": {...}}``;
  an unknown network is 404 ``NetworkNotFound``; a non-admin caller gets 404 ``HTTPNotFound``
  (Neutron's show turns a policy refusal into "not found", to give nothing away).

What is computed is in ``service.ipavailability``. NOTE: bodies are encoded with the standard
library's JSON encoder: totals of IPv6 networks pass 64 bits, which orjson refuses.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from baryon.api import deps, request as req
from baryon.service import errors
from baryon.service.ipavailability import FILTERS, IpAvailability

IGNORED = frozenset({"limit", "marker", "page_reverse", "sort_key", "sort_dir"})


def _json(body: Any) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")


def _typed(key: str, value: str) -> Any:
    if key != "ip_version":
        return value
    if value not in ("4", "6"):
        raise req.bad(f"Invalid input for ip_version. Reason: '{value}' is not in [4, 6].")
    return int(value)


def _only(body: dict, fields: tuple[str, ...]) -> dict:
    return {k: v for k, v in body.items() if k in fields} if fields else body


def routes(service: IpAvailability) -> list[Route]:
    async def index(request: Request) -> Response:
        ctx = deps.context(request)
        filters, fields = req.plain_query(request.query_params.multi_items(), FILTERS, IGNORED, _typed)
        found = await run_in_threadpool(service.list, ctx, filters)
        return _json({"network_ip_availabilities": [_only(body, fields) for body in found]})

    async def member(request: Request) -> Response:
        ctx = deps.context(request)
        network_id = request.path_params["id"]
        if "\x00" in network_id:
            raise req.bad(f"{network_id!r} is not a valid id: it contains a NUL character")
        fields = tuple(f for f in request.query_params.getlist("fields") if f)
        try:
            body = await run_in_threadpool(service.get, ctx, network_id)
        except errors.PolicyNotAuthorized:
            raise HTTPException(status_code=404) from None
        return _json({"network_ip_availability": _only(body, fields)})

    prefix = "/v2.0/network-ip-availabilities"
    return [
        Route(prefix, index, methods=["GET"]),
        Route(prefix + ".json", index, methods=["GET"]),
        Route(prefix + "/{id}.json", member, methods=["GET"]),
        Route(prefix + "/{id}", member, methods=["GET"]),
    ]
