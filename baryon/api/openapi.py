"""The Networking API as an OpenAPI 3.1 document, served at ``GET /openapi.json`` (unauthenticated,
like the version document ``GET /``).

Generated, never written by hand: every request and response body comes from the attribute specs
the server checks requests with (``api.schemas``: each converter states what it accepts,
``types.schema_of``), every list's query parameters from the collection's filterable and sortable
attributes, so the document cannot drift from what the server does. It covers the collections of
``api.routes.resources`` that can be created through the API (networks, subnets, ports, routers,
floating IPs, security groups and their rules: agents register themselves), their tags, the router
actions and the quotas. Every error is Neutron's fault body (``components.schemas.NeutronError``).

Pure: ``document(collections, port_security)`` -> dict; ``routes`` serves it, encoded once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from baryon.api.request import MAX_LIMIT, RESERVED, TAG_FILTERS
from baryon.api.routes.resources import Collection
from baryon.api.schemas import quota, router
from baryon.api.schemas.types import Attr, schema_of, tag, tag_list

PATH = "/openapi.json"
OPENAPI_VERSION = "3.1.0"
ERROR_REF = {"$ref": "#/components/responses/Error"}
ID_PARAM = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
ERRORS = {
    400: "Bad request: malformed body or query, or a value Neutron refuses",
    401: "Authentication required (auth_strategy = keystone)",
    403: "Not allowed by policy",
    404: "No such resource (or not visible to the caller)",
    409: "Conflict with the current state",
    412: "If-Match: revision_number differs",
    413: "Body larger than [oslo_middleware] max_request_body_size",
    503: "Temporarily unavailable",
}

NEUTRON_ERROR = {
    "type": "object", "required": ["NeutronError"], "additionalProperties": False,
    "properties": {"NeutronError": {
        "type": "object", "required": ["type", "message", "detail"], "additionalProperties": False,
        "properties": {"type": {"type": "string"}, "message": {"type": "string"}, "detail": {"type": "string"}},
    }},
}
LINKS = {"type": "array", "items": {"type": "object", "properties": {"rel": {"type": "string"},
                                                                       "href": {"type": "string"}}}}


# ---------------------------------------------------------------- pieces


def _object(properties: dict[str, Any], required: Iterable[str] = (), closed: bool = True) -> dict:
    result: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        result["required"] = list(required)
    if closed:
        result["additionalProperties"] = False
    return result


def _input(schema: dict[str, Attr], *, create: bool) -> dict:
    """What a POST (``create``) or PUT may carry for one resource; other attributes are a 400."""
    allowed = {name: spec for name, spec in schema.items() if (spec.allow_post if create else spec.allow_put)}
    required = [name for name, spec in allowed.items() if create and spec.required]
    return _object({name: schema_of(spec.convert) for name, spec in allowed.items()}, required)


def _shown(schema: dict[str, Attr]) -> dict:
    """A resource as shown: any of its attributes (``fields=`` and policy select which)."""
    return _object({name: schema_of(spec.convert) for name, spec in schema.items()}, closed=False)


def _scalar(schema: dict) -> dict:
    """A query-string value's schema: the attribute's without null; a list, an object or anything
    (``{}``) is given as a string there."""
    if "anyOf" in schema and "type" not in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"]
        if len(options) == 1:
            return _scalar(options[0])
        schema = {"anyOf": options}
    if not schema or schema.get("type") in ("array", "object") or any(
            s.get("type") in ("array", "object") for s in schema.get("anyOf", [])):
        return {"type": "string"}
    return schema


def _body(schema: dict, required: bool = True) -> dict:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def _ok(description: str, schema: dict | None = None) -> dict:
    if schema is None:
        return {"description": description}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _operation(op_id: str, summary: str, responses: dict[int, dict], errors: Iterable[int],
               parameters: list[dict] | None = None, body: dict | None = None) -> dict:
    result: dict[str, Any] = {"operationId": op_id, "summary": summary,
                              "responses": {str(k): v for k, v in responses.items()}}
    result["responses"].update({str(code): ERROR_REF for code in sorted({401, 403, *errors})})
    if parameters:
        result["parameters"] = parameters
    if body is not None:
        result["requestBody"] = body
    return result


def _list_parameters(c: Collection, schema: dict[str, Attr]) -> list[dict]:
    filterable = c.listing.filterable()
    params = [{"name": name, "in": "query", "required": False,
               "schema": _scalar(schema_of(spec.filter_convert or spec.convert))}
              for name, spec in schema.items() if spec.filter and name in filterable]
    reserved = {  # api.request.RESERVED
        "fields": {"type": "string", "enum": list(schema)},
        "sort_key": {"type": "string", "enum": sorted(c.listing.sortable)},
        "sort_dir": {"enum": ["asc", "desc"]},
        "limit": {"type": "integer", "minimum": 0, "maximum": MAX_LIMIT},
        "marker": {"type": "string", "format": "uuid"},
        "page_reverse": {"type": "boolean"},
    }
    assert set(reserved) == RESERVED
    params += [{"name": name, "in": "query", "required": False, "schema": value} for name, value in reserved.items()
               if value.get("enum") != []]
    if c.taggable:
        params += [{"name": name, "in": "query", "required": False, "schema": {"type": "string"},
                    "description": "comma-separated tags"} for name in TAG_FILTERS]
    return params


# ---------------------------------------------------------------- paths


def _collection_paths(c: Collection, schema: dict[str, Attr]) -> dict[str, dict]:
    r, coll, prefix = c.resource, c.collection, f"/v2.0/{c.segment}"
    shown = _shown(schema)
    item = _input(schema, create=True)
    one = _object({r: shown}, [r])
    create = {"oneOf": [_object({r: item}, [r]),
                        _object({coll: {"type": "array", "items": item, "minItems": 1}}, [coll])]}
    paths: dict[str, dict] = {
        prefix: {
            "get": _operation(f"list_{coll}", f"List {coll}", {
                200: _ok(f"The {coll} the caller may see", _object(
                    {coll: {"type": "array", "items": shown}, f"{coll}_links": LINKS}, [coll], closed=False))},
                [400], _list_parameters(c, schema)),
            "post": _operation(f"create_{r}", f"Create a {r}, or several in bulk (all or nothing)", {
                201: _ok(f"The {r} created (or the {coll})", {"oneOf": [one, _object(
                    {coll: {"type": "array", "items": shown}}, [coll])]})}, [400, 404, 409, 413, 503],
                body=_body(create)),
        },
    }
    member: dict[str, dict] = {
        "get": _operation(f"show_{r}", f"Show a {r}", {200: _ok(f"The {r}", one)}, [404], [ID_PARAM, {
            "name": "fields", "in": "query", "required": False, "schema": {"type": "string", "enum": list(schema)}}]),
        "delete": _operation(f"delete_{r}", f"Delete a {r}", {204: _ok("Deleted")}, [400, 404, 409, 412],
                             [ID_PARAM]),
    }
    if c.updatable:
        member["put"] = _operation(f"update_{r}", f"Update a {r}", {200: _ok(f"The {r} updated", one)},
                                   [400, 404, 409, 412, 413], [ID_PARAM],
                                   _body(_object({r: _input(schema, create=False)}, [r])))
    paths[prefix + "/{id}"] = member
    if c.taggable:
        tags = _object({"tags": schema_of(tag_list)}, ["tags"])
        tag_param = {"name": "tag", "in": "path", "required": True, "schema": schema_of(tag)}
        paths[prefix + "/{id}/tags"] = {
            "get": _operation(f"list_{r}_tags", f"The tags of a {r}", {200: _ok("Its tags", tags)}, [404],
                              [ID_PARAM]),
            "put": _operation(f"replace_{r}_tags", f"Replace the tags of a {r}", {200: _ok("Its tags", tags)},
                              [400, 404, 409, 413], [ID_PARAM], _body(tags)),
            "delete": _operation(f"clear_{r}_tags", f"Remove every tag of a {r}", {204: _ok("Removed")}, [404],
                                 [ID_PARAM]),
        }
        paths[prefix + "/{id}/tags/{tag}"] = {
            "get": _operation(f"check_{r}_tag", f"Whether a {r} has a tag", {204: _ok("It has")}, [400, 404],
                              [ID_PARAM, tag_param]),
            "put": _operation(f"add_{r}_tag", f"Add a tag to a {r}", {201: _ok("Added")}, [400, 404, 409],
                              [ID_PARAM, tag_param]),
            "delete": _operation(f"remove_{r}_tag", f"Remove a tag from a {r}", {204: _ok("Removed")}, [400, 404],
                                 [ID_PARAM, tag_param]),
        }
    return paths


def _router_action_paths() -> dict[str, dict]:
    interface = _object({key: schema_of(convert) for key, convert in router.INTERFACE_KEYS.items()})
    interface["minProperties"] = 1
    info = _object({"id": {"type": "string"}, "tenant_id": {"type": "string"}, "project_id": {"type": "string"},
                    "port_id": {"type": "string"}, "subnet_id": {"type": "string"},
                    "subnet_ids": {"type": "array", "items": {"type": "string"}}}, closed=False)
    routes = _object({"router": _object({"routes": schema_of(router.ATTRS["routes"].convert)}, ["routes"])},
                     ["router"])
    shown = _object({"router": _shown(router.ATTRS)}, ["router"])
    paths = {}
    for action, what in (("add_router_interface", "Attach a subnet or port to a router"),
                         ("remove_router_interface", "Detach a subnet or port from a router")):
        paths[f"/v2.0/routers/{{id}}/{action}"] = {"put": _operation(
            action, what, {200: _ok("The interface", info)}, [400, 404, 409, 413], [ID_PARAM], _body(interface))}
    for action, what in (("add_extraroutes", "Add extra routes to a router"),
                         ("remove_extraroutes", "Remove extra routes from a router")):
        paths[f"/v2.0/routers/{{id}}/{action}"] = {"put": _operation(
            action, what, {200: _ok("The router", shown)}, [400, 404, 409, 413], [ID_PARAM], _body(routes))}
    return paths


def _quota_paths() -> dict[str, dict]:
    project = {"name": "project_id", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 255}}
    limits = _object({name: schema_of(spec.convert) for name, spec in quota.ATTRS.items()
                      if name not in ("force", "check_limit")}, closed=False)
    one = _object({"quota": limits}, ["quota"])
    return {
        "/v2.0/quotas": {"get": _operation("list_quotas", "The projects whose quotas are not the defaults",
                                           {200: _ok("Their quotas", _object({"quotas": {"type": "array"}},
                                                                               ["quotas"], closed=False))}, [])},
        "/v2.0/quotas/{project_id}": {
            "get": _operation("show_quota", "A project's quotas", {200: _ok("Its quotas", one)}, [404], [project]),
            "put": _operation("update_quota", "Set a project's quotas", {200: _ok("Its quotas", one)},
                              [400, 409, 413], [project], _body(_object({"quota": _input(quota.ATTRS, create=False)},
                                                                        ["quota"]))),
            "delete": _operation("reset_quota", "Reset a project's quotas to the defaults", {204: _ok("Reset")},
                                 [404], [project]),
        },
        "/v2.0/quotas/{project_id}/default": {"get": _operation(
            "show_quota_default", "The default quotas", {200: _ok("The defaults", one)}, [], [project])},
        "/v2.0/quotas/{project_id}/details": {"get": _operation(
            "show_quota_details", "A project's quotas with usage", {200: _ok("Limits, used and reserved", _object(
                {"quota": {"type": "object"}}, ["quota"], closed=False))}, [404], [project])},
    }


def document(collections: list[Collection], port_security: bool) -> dict:
    paths: dict[str, dict] = {}
    for c in collections:
        if not c.allow_create:
            continue  # agents register themselves: not part of the documented API
        schema = dict(c.schema)
        if not port_security:
            schema.pop("port_security_enabled", None)
        paths.update(_collection_paths(c, schema))
    paths.update(_router_action_paths())
    paths.update(_quota_paths())
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "Baryon: OpenStack Networking API v2.0", "version": "2.0",
                 "description": "Generated from the attribute definitions the server checks requests with."},
        "paths": paths,
        "components": {
            "schemas": {"NeutronError": NEUTRON_ERROR},
            "responses": {"Error": {"description": "; ".join(f"{k}: {v}" for k, v in ERRORS.items()),
                                    "content": {"application/json": {"schema": {
                                        "$ref": "#/components/schemas/NeutronError"}}}}},
            "securitySchemes": {"keystone": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"}},
        },
        # NOTE: noauth (no token) or keystone (a token), as the server's auth_strategy says.
        "security": [{}, {"keystone": []}],
    }


def routes(collections: list[Collection], port_security: bool) -> list[Route]:
    encoded = orjson.dumps(document(collections, port_security))

    async def openapi(_request: Request) -> Response:
        return Response(encoded, media_type="application/json")

    return [Route(PATH, openapi, methods=["GET"])]
