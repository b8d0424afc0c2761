"""A read-only collection without paging or sorting: ``GET /v2.0/<path>`` (and ``.json``) answers
``{<key>: [...]}`` from ``list_(ctx, filters)``, run in the thread pool.

Floating IP pools, availability zones and service providers are served this way: filters are the
collection's own (``request.plain_query`` refuses any other parameter but the ``ignored`` ones,
filter-validation), ``fields`` keeps the named keys of each item. Every authenticated caller may
list; what each sees is ``list_``'s business.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from baryon.api import deps, request as req
from baryon.api.routes.resources import json
from baryon.service.context import Context


def routes(path: str, key: str, filters: Collection[str], ignored: Collection[str],
           list_: Callable[[Context, dict], list[dict]],
           convert: Callable[[str, str], Any] = lambda _key, value: value) -> list[Route]:
    async def index(request: Request) -> Response:
        ctx = deps.context(request)
        chosen, fields = req.plain_query(request.query_params.multi_items(), filters, ignored, convert)
        found = await run_in_threadpool(list_, ctx, chosen)
        if fields:
            found = [{k: v for k, v in item.items() if k in fields} for item in found]
        return json({key: found})

    return [
        Route(f"/v2.0/{path}", index, methods=["GET"]),
        Route(f"/v2.0/{path}.json", index, methods=["GET"]),
    ]
