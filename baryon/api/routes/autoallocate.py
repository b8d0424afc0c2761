"""``/v2.0/auto-allocated-topology/{project_id}``: Neutron's auto-allocated-topology extension.

- ``GET``: ``{"auto_allocated_topology": {"id": <network id>, "project_id", "tenant_id"}}``, the
  topology made on the first call; ``?fields=dry-run`` checks the requirements only (``"id":
  "dry-run=pass"``); any other ``fields`` value is a 400, as in Neutron.
- ``DELETE``: 204, whether there was a topology or not.

``project_id`` ``None`` means the caller's. What is made, and the errors: ``service.autoallocate``.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from baryon.api import deps, request as req
from baryon.api.routes.resources import json
from baryon.service.autoallocate import AutoAllocate

PROJECT_LEN = 255  # the project_id column


def _project(request: Request) -> str:
    project = request.path_params["project_id"]
    if "\x00" in project or len(project) > PROJECT_LEN:
        raise req.bad(f"{project!r} is not a valid project id")
    return project


def routes(service: AutoAllocate) -> list[Route]:
    async def show(request: Request) -> Response:
        ctx = deps.context(request)
        fields = tuple(f for f in request.query_params.getlist("fields") if f)
        body = await run_in_threadpool(service.get, ctx, _project(request), fields)
        return json({"auto_allocated_topology": body})

    async def delete(request: Request) -> Response:
        ctx = deps.context(request)
        await run_in_threadpool(service.delete, ctx, _project(request))
        return Response(status_code=204)

    path = "/v2.0/auto-allocated-topology/{project_id}"
    return [Route(path, show, methods=["GET"]), Route(path, delete, methods=["DELETE"])]
