"""A flavor's bindings to service profiles (flavors): ``POST /v2.0/flavors/{id}/service_profiles``
with ``{"service_profile": {"id": ...}}`` (201, ``{"service_profile": {"id": ...}}``), and
``GET``/``DELETE /v2.0/flavors/{id}/service_profiles/{profile_id}`` (the binding; 204 for a
delete). CRUD on ``/v2.0/flavors`` and ``/v2.0/service_profiles`` is the generic collection
(``resources``).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from baryon.api import deps, request as req
from baryon.api.routes.resources import _path_id, json
from baryon.api.schemas import flavor as schema
from baryon.api.schemas.types import Invalid
from baryon.service.flavors import Flavors


def _profile_id(request: Request) -> str:
    sp_id = request.path_params["sp_id"]
    if "\x00" in sp_id:
        raise req.bad(f"{sp_id!r} is not a valid id: it contains a NUL character")
    return sp_id


def routes(flavors: Flavors) -> list[Route]:
    async def associate(request: Request) -> Response:
        ctx = deps.context(request)
        try:
            sp_id = schema.association(req.decode(await request.body()))
        except Invalid as exc:
            raise req.bad(f"Invalid input for service_profile. Reason: {exc.reason}.") from None
        body = await run_in_threadpool(flavors.associate, ctx, _path_id(request), sp_id)
        return json({"service_profile": body}, 201)

    async def binding(request: Request) -> Response:
        ctx = deps.context(request)
        if request.method == "GET":
            body = await run_in_threadpool(flavors.association, ctx, _path_id(request), _profile_id(request))
            return json({"service_profile": body})
        await run_in_threadpool(flavors.disassociate, ctx, _path_id(request), _profile_id(request))
        return Response(status_code=204)

    prefix = "/v2.0/flavors/{id}/service_profiles"
    return [
        Route(prefix, associate, methods=["POST"]),
        Route(prefix + ".json", associate, methods=["POST"]),
        Route(prefix + "/{sp_id}", binding, methods=["GET", "DELETE"]),
    ]
