"""Request bodies and query strings -> checked, converted service input (no I/O).

Bodies: ``{"network": {...}}`` (one) or ``{"networks": [...]}`` (bulk, all or nothing; an item may
be wrapped as ``{"network": {...}}`` too); unknown attributes, attributes not allowed in this
method, missing required ones, wrong types and attributes the caller's role may not set are
refused here, before anything changes.
Query strings: filters (converted per attribute), tag filters, sorting, pagination, fields.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from baryon.api.schemas.types import Attr, Invalid, boolean, uuid_str
from baryon.service import errors
from baryon.service.context import Context
from baryon.service.query import ListQuery

RESERVED = {"fields", "sort_key", "sort_dir", "limit", "marker", "page_reverse"}
# NOTE: a database refuses a LIMIT past its integers (SQLite: 2**63-1, and the query may add to it);
# a larger one is refused here (400), not a 500. Past this a limit means no limit anyway.
MAX_LIMIT = 2**31 - 1
TAG_FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")


def bad(msg: str) -> errors.HTTPBadRequest:
    return errors.HTTPBadRequest(msg=msg)


def plain_query(items: list[tuple[str, str]], filters: Collection[str], ignored: Collection[str],
                convert: Callable[[str, str], Any] = lambda _key, value: value,
                ) -> tuple[dict[str, list[Any]], tuple[str, ...]]:
    """The query of a read-only resource without sorting or paging (floating IP pools, IP
    availability): ``(filters, fields)``, each filter's values in order (repeated keys mean "any
    of"), ``convert(key, value)`` giving each value its type (or raising ``bad``); a key neither in
    ``filters``, ``ignored`` nor ``fields`` is refused, as Neutron's filter validation does."""
    found: dict[str, list[Any]] = {}
    fields: list[str] = []
    for key, value in items:
        if "\x00" in key or "\x00" in value:  # PostgreSQL cannot compare with a NUL character
            raise bad(f"{key!r}={value!r}: a query parameter may not contain a NUL character")
        if key == "fields":
            fields += [value] if value else []
        elif key in filters:
            found.setdefault(key, []).append(convert(key, value))
        elif key not in ignored:
            raise bad(f"{key} is invalid attribute for filtering")
    return found, tuple(fields)


def decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise bad("Malformed request body") from None


def _convert(schema: dict[str, Attr], name: str, value: Any) -> Any:
    try:
        return schema[name].convert(value)
    except Invalid as exc:
        raise bad(f"Invalid input for {name}. Reason: {exc.reason}.") from None


def _policy(ctx: Context, action: str, resource: str, attrs: Iterable[str]) -> None:
    for name in attrs:
        raise errors.PolicyNotAuthorized(rule=f"(rule:{action}_{resource} and rule:{action}_{resource}:{name})")


def _unset(value: Any) -> bool:
    return value is None or value is False or value == "" or value == {} or value == []


def check_item(schema: dict[str, Attr], resource: str, item: Any, ctx: Context, *, create: bool) -> dict:
    if not isinstance(item, dict):
        raise bad(f"Invalid input for {resource}. Reason: '{item}' is not a dictionary.")
    unknown = [k for k in item if k not in schema]
    if unknown:
        raise bad(f"Unrecognized attribute(s) '{', '.join(unknown)}'")
    attrs: dict[str, Any] = {}
    for name, value in item.items():
        spec = schema[name]
        if create and not spec.allow_post:
            raise bad(f"Attribute '{name}' not allowed in POST")
        if not create and not spec.allow_put:
            raise bad(f"Cannot update read-only attribute {name}")
        attrs[name] = _convert(schema, name, value)
    if create:
        for name, spec in schema.items():
            if spec.required and name not in attrs:
                raise bad(f"Failed to parse request. Required attribute '{name}' not specified")
    project = attrs.pop("tenant_id", None)
    if "project_id" in attrs:
        if project is not None and project != attrs["project_id"]:
            raise bad("'project_id' and 'tenant_id' do not match")
        project = attrs["project_id"]
    if project is not None:
        # NOTE: as neutron-lib's ``populate_project_id``, before any policy check: a 400, not a 403.
        if not ctx.is_admin and project != ctx.project_id:
            raise bad("Specifying 'project_id' or 'tenant_id' other than the authenticated project in request "
                      "requires admin or advsvc privileges")
        attrs["project_id"] = project
    if not ctx.is_admin:
        forbidden = [n for n, v in attrs.items() if schema[n].admin_write and not _unset(v)]
        if forbidden:
            _policy(ctx, "create" if create else "update", resource, forbidden)
    return attrs


def parse_create(schema: dict[str, Attr], resource: str, collection: str, raw: bytes,
                 ctx: Context) -> tuple[list[dict], bool]:
    """Returns the items and whether the request was a bulk one."""
    body = decode(raw)
    if not isinstance(body, dict) or not body:
        raise bad("Resource body required")
    if resource in body and len(body) == 1:
        return [check_item(schema, resource, body[resource], ctx, create=True)], False
    if collection in body and len(body) == 1:
        items = body[collection]
        if not isinstance(items, list) or not items:
            raise bad("Resources required")
        # NOTE: as Neutron's ``prepare_request_body``, an item may also come wrapped: {"network": {...}}.
        return [check_item(schema, resource, item[resource] if isinstance(item, dict) and resource in item else item,
                           ctx, create=True) for item in items], True
    raise bad(f"Unable to find '{resource}' in request body")


def parse_update(schema: dict[str, Attr], resource: str, raw: bytes, ctx: Context) -> dict:
    body = decode(raw)
    if not isinstance(body, dict) or resource not in body or len(body) != 1:
        raise bad(f"Unable to find '{resource}' in request body")
    return check_item(schema, resource, body[resource], ctx, create=False)


def parse_if_match(header: str | None) -> int | None:
    if not header:
        return None
    key, _, value = header.partition("=")
    value = value.strip()
    if key.strip() != "revision_number" or not (value.isascii() and value.isdigit()):  # int() refuses "²"
        raise bad(f"If-Match header must be 'revision_number=<N>', not '{header}'")
    return int(value)


@dataclass(frozen=True)
class ListRequest:
    query: ListQuery
    fields: tuple[str, ...]


def parse_list(schema: dict[str, Attr], items: list[tuple[str, str]], ctx: Context, sortable: frozenset[str],
               filterable: frozenset[str], max_limit: int) -> ListRequest:
    filters: dict[str, list[Any]] = {}
    tags: dict[str, list[str]] = {}
    params: dict[str, list[str]] = {}
    for key, value in items:
        if "\x00" in key or "\x00" in value:  # PostgreSQL cannot compare with a NUL character
            raise bad(f"{key!r}={value!r}: a query parameter may not contain a NUL character")
        if key in RESERVED:
            params.setdefault(key, []).append(value)
        elif key in TAG_FILTERS:
            tags.setdefault(key, []).append(value)
        else:
            spec = schema.get(key)
            if spec is None or not spec.filter or key not in filterable:
                raise bad(f"{key} is invalid attribute for filtering")
            if spec.admin_read and not ctx.is_admin:
                continue
            try:
                filters.setdefault(key, []).append(spec.for_filter(value))
            except Invalid as exc:
                raise bad(f"Invalid input for {key}. Reason: {exc.reason}.") from None
    sort_keys, sort_dirs = params.get("sort_key", []), params.get("sort_dir", [])
    for key in sort_keys:
        if key not in sortable:
            raise bad(f"{key} is invalid attribute for sort_key")
    for direction in sort_dirs:
        if direction not in ("asc", "desc"):
            raise bad(f"{direction} is invalid value for sort_dir, valid value is 'asc' and 'desc'")
    if len(sort_dirs) != len(sort_keys):
        raise bad("The number of sort_keys and sort_dirs must be same")
    sorts = tuple((k, sort_dirs[i] == "asc") for i, k in enumerate(sort_keys))
    limit = None
    if "limit" in params:
        raw = params["limit"][-1]
        try:
            limit = int(raw)
            if not 0 <= limit <= MAX_LIMIT:
                raise ValueError
        except ValueError:
            raise bad(f"Limit must be an integer 0 or greater and not '{raw}'") from None
        if limit == 0:
            limit = None
    if max_limit > 0 and (limit is None or limit > max_limit):
        limit = max_limit
    page_reverse = False
    if "page_reverse" in params:
        page_reverse = boolean(params["page_reverse"][-1])
    marker = params.get("marker", [None])[-1]
    if marker is not None:
        try:
            uuid_str(marker)
        except Invalid as exc:
            raise bad(f"Invalid input for marker. Reason: {exc.reason}.") from None
    # NOTE: as in Neutron, a marker only means something with a limit.
    marker = marker if limit is not None else None
    fields = tuple(f for f in params.get("fields", []) if f)
    return ListRequest(ListQuery(filters=filters, tags=tags, sorts=sorts, limit=limit, marker=marker,
                                 page_reverse=page_reverse), fields)


def present(schema: dict[str, Attr], body: dict, ctx: Context, fields: tuple[str, ...] = ()) -> dict:
    """What the caller may see of ``body``, restricted to ``fields`` when given."""
    if not ctx.is_admin:
        body = {k: v for k, v in body.items() if not (k in schema and schema[k].admin_read)}
    if fields:
        body = {k: v for k, v in body.items() if k in fields}
    return body
