"""The collections of API v2.0: list/create, show/update/delete, and tags, for every resource.

Thin: parse (``api.request``), call the service in a worker thread, present and serialise.
Every resource behaves the same way, so one controller serves them all; what differs (its
attributes, its service, its listing) is in ``Collection``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from baryon.api import deps, memory, request as req
from baryon.api.schemas.types import Attr, Invalid, tag_list
from baryon.service import errors
from baryon.service.query import Listing
from baryon.service.services import Services


def json(body: Any, status: int = 200) -> Response:
    """``body`` encoded; after a large one is sent (a long list), the worker gives the memory its
    building freed back to the system (``api.memory``)."""
    encoded = orjson.dumps(body)
    background = BackgroundTask(memory.trim) if len(encoded) > memory.TRIM_AFTER else None
    return Response(encoded, status_code=status, media_type="application/json", background=background)


@dataclass(frozen=True)
class Collection:
    resource: str  # "network"
    collection: str  # "networks"
    schema: dict[str, Attr]
    service_name: str
    listing: Listing
    path: str = ""  # the URL segment when it differs from the body key: "security-groups"
    updatable: bool = True  # PUT on a member (security group rules have none: 405)
    taggable: bool = True  # the tags sub-resource (standard-attr-tag)
    # False: nothing is created through the API (agents register themselves). As in Neutron, a
    # POST is still parsed (attributes refused as for any resource), then refused: 400 BadRequest.
    allow_create: bool = True

    @property
    def segment(self) -> str:
        return self.path or self.collection


def _links(request: Request, collection: str, items: list[dict], limit: int | None, page_reverse: bool) -> list[dict]:
    """Neutron's pagination links: ``next`` unless a forward page came back short, ``previous``
    unless a backward page did. An empty page has them too, without a marker (as Neutron's
    ``api_common``): its ``previous`` link walks back from the end of the collection."""
    if not limit:
        return []
    base = str(request.url.replace(query="")).rstrip("/")
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("marker", "page_reverse")]
    first = [("marker", items[0]["id"])] if items else []
    last = [("marker", items[-1]["id"])] if items else []
    links = []
    if not (len(items) < limit and not page_reverse):
        links.append({"rel": "next", "href": f"{base}?{urlencode(params + last)}"})
    if not (len(items) < limit and page_reverse):
        links.append({"rel": "previous", "href": f"{base}?{urlencode(params + first + [('page_reverse', 'True')])}"})
    return links


def _tags_input(raw: Any) -> list[str]:
    """The tags sub-resource refuses bad tags with ``InvalidInput``, as Neutron's tagging extension."""
    try:
        return tag_list(raw)
    except Invalid as exc:
        raise errors.InvalidInput(error_message=exc.reason) from None


def _path_id(request: Request) -> str:
    """The ``{id}`` of the URL. NOTE: one with a NUL character is refused (400): no row has one, and
    PostgreSQL fails a query that carries one."""
    rid = request.path_params["id"]
    if "\x00" in rid:
        raise req.bad(f"{rid!r} is not a valid id: it contains a NUL character")
    return rid


def routes(services: Services, collections: list[Collection], max_limit: int, port_security: bool) -> list[Route]:
    result: list[Route] = []
    for c in collections:
        schema = dict(c.schema)
        if not port_security:
            schema.pop("port_security_enabled", None)
        result += _collection_routes(services, c, schema, max_limit)
    return result


def _collection_routes(services: Services, c: Collection, schema: dict[str, Attr], max_limit: int) -> list[Route]:
    service = getattr(services, c.service_name)
    sortable, filterable = c.listing.sortable, c.listing.filterable()

    async def index(request: Request) -> Response:
        ctx = deps.context(request)
        if request.method == "GET":
            parsed = req.parse_list(schema, request.query_params.multi_items(), ctx, sortable, filterable, max_limit)
            items = await run_in_threadpool(service.list, ctx, parsed.query)
            if parsed.query.page_reverse:
                items.reverse()
            body: dict[str, Any] = {c.collection: [req.present(schema, i, ctx, parsed.fields) for i in items]}
            links = _links(request, c.collection, items, parsed.query.limit, parsed.query.page_reverse)
            if links:
                body[f"{c.collection}_links"] = links
            return json(body)
        items, bulk = req.parse_create(schema, c.resource, c.collection, await request.body(), ctx)
        if not c.allow_create:
            raise errors.BadRequest(resource=c.resource, msg=f"{c.collection} cannot be created through the API")
        created = await run_in_threadpool(service.create, ctx, items)
        shown = [req.present(schema, i, ctx) for i in created]
        return json({c.collection: shown} if bulk else {c.resource: shown[0]}, 201)

    async def member(request: Request) -> Response:
        ctx = deps.context(request)
        rid = _path_id(request)
        if request.method == "GET":
            fields = tuple(f for f in request.query_params.getlist("fields") if f)
            return json({c.resource: req.present(schema, await run_in_threadpool(service.get, ctx, rid), ctx, fields)})
        if_match = req.parse_if_match(request.headers.get("if-match"))
        if request.method == "PUT":
            attrs = req.parse_update(schema, c.resource, await request.body(), ctx)
            updated = await run_in_threadpool(service.update, ctx, rid, attrs, if_match)
            return json({c.resource: req.present(schema, updated, ctx)})
        await run_in_threadpool(service.delete, ctx, rid, if_match)
        return Response(status_code=204)

    async def tags(request: Request) -> Response:
        ctx = deps.context(request)
        rid = _path_id(request)
        if request.method == "GET":
            return json({"tags": await run_in_threadpool(services.tags.list, ctx, c.collection, rid)})
        if request.method == "PUT":
            body = req.decode(await request.body())
            if not isinstance(body, dict) or "tags" not in body:
                raise errors.InvalidInput(error_message="Invalid tags body")
            new = _tags_input(body["tags"])
            return json({"tags": await run_in_threadpool(services.tags.replace, ctx, c.collection, rid, new)})
        await run_in_threadpool(services.tags.clear, ctx, c.collection, rid)
        return Response(status_code=204)

    async def tag(request: Request) -> Response:
        ctx = deps.context(request)
        rid, name = _path_id(request), request.path_params["tag"]
        _tags_input([name])  # as Neutron, on every method: a malformed tag is a 400, not a 404
        if request.method == "GET":
            await run_in_threadpool(services.tags.check, ctx, c.collection, rid, name)
            return Response(status_code=204)
        if request.method == "PUT":
            await run_in_threadpool(services.tags.add, ctx, c.collection, rid, name)
            return Response(status_code=201)
        await run_in_threadpool(services.tags.remove, ctx, c.collection, rid, name)
        return Response(status_code=204)

    prefix = f"/v2.0/{c.segment}"
    member_methods = ["GET", "PUT", "DELETE"] if c.updatable else ["GET", "DELETE"]
    tag_routes = [
        Route(prefix + "/{id}/tags", tags, methods=["GET", "PUT", "DELETE"]),
        Route(prefix + "/{id}/tags/{tag}", tag, methods=["GET", "PUT", "DELETE"]),
    ] if c.taggable else []
    return [
        Route(prefix, index, methods=["GET", "POST"]),
        Route(prefix + ".json", index, methods=["GET", "POST"]),
        *tag_routes,
        Route(prefix + "/{id}.json", member, methods=member_methods),
        Route(prefix + "/{id}", member, methods=member_methods),
    ]
