"""List queries as Neutron serves them: filters, tag filters, sorting and keyset pagination.

Input is a ``ListQuery`` whose filter values the API has already converted to the attribute's
type; each resource gives a ``Listing`` (its model, the columns an attribute filters and sorts
on, and special filters). Output is a SELECT of the visible rows, in order.

Contract, following Neutron's API:
- repeated values of one filter mean "any of"; different filters combine with AND;
- ``tags``/``not-tags`` take comma-separated tags that must all (not) be present; ``tags-any``/
  ``not-tags-any`` any of them;
- sort keys are applied in order, ``id`` last so the order is total; ``page_reverse`` walks
  backwards from the marker and the page is returned in forward order;
- ``marker`` is the id of the last row of the previous page; a marker that does not exist
  (or is not visible) is a 404, as in Neutron.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_, select, true
from sqlalchemy.orm import InstrumentedAttribute, Session

from baryon.db.models import Tag

FilterFn = Callable[[list[Any]], ColumnElement[bool]]


@dataclass(frozen=True)
class ListQuery:
    filters: dict[str, list[Any]] = field(default_factory=dict)
    tags: dict[str, list[str]] = field(default_factory=dict)  # tags, tags-any, not-tags, not-tags-any
    sorts: tuple[tuple[str, bool], ...] = ()  # (attribute, ascending)
    limit: int | None = None
    marker: str | None = None
    page_reverse: bool = False


@dataclass(frozen=True)
class Listing:
    model: type
    columns: dict[str, InstrumentedAttribute]  # attribute -> column, for plain filters and sorting
    special: dict[str, FilterFn] = field(default_factory=dict)  # attribute -> clause builder
    sortable: frozenset[str] = frozenset()
    options: tuple = ()  # loader options for the rows a list returns (e.g. selectinload)

    def filterable(self) -> frozenset[str]:
        return frozenset(self.columns) | frozenset(self.special)


def _tag_clauses(model: type, tags: dict[str, list[str]]) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    rid = model.id  # type: ignore[attr-defined]

    def has(tag: str) -> ColumnElement[bool]:
        return rid.in_(select(Tag.resource_id).where(Tag.tag == tag))

    for key, values in tags.items():
        names = [t for v in values for t in v.split(",") if t]
        if not names:
            continue
        if key == "tags":
            clauses.extend(has(t) for t in names)
        elif key == "tags-any":
            clauses.append(rid.in_(select(Tag.resource_id).where(Tag.tag.in_(names))))
        elif key == "not-tags":
            clauses.append(~and_(*(has(t) for t in names)))
        elif key == "not-tags-any":
            clauses.append(~rid.in_(select(Tag.resource_id).where(Tag.tag.in_(names))))
    return clauses


def build(session: Session, listing: Listing, visible: ColumnElement[bool] | None, q: ListQuery,
          marker_missing: Callable[[str], Exception], entity: Any = None) -> Select:
    """``entity``: what to select, the model (ORM objects, the default) or its table (plain rows)."""
    model = listing.model
    stmt = select(model).options(*listing.options) if entity is None else select(entity)
    clauses: list[ColumnElement[bool]] = [visible] if visible is not None else []
    for attr, values in q.filters.items():
        if attr in listing.special:
            clauses.append(listing.special[attr](values))
        else:
            column = listing.columns[attr]
            clauses.append(column.in_(values) if len(values) != 1 or values[0] is not None
                           else column.is_(None))
    clauses.extend(_tag_clauses(model, q.tags))
    keys: list[tuple[InstrumentedAttribute, bool]] = [(listing.columns[a], asc) for a, asc in q.sorts]
    if not any(col is model.id for col, _ in keys):  # type: ignore[attr-defined]
        keys.append((model.id, True))  # type: ignore[attr-defined]
    forward = not q.page_reverse
    if q.marker is not None:
        marker_row = session.execute(
            select(*[col for col, _ in keys]).where(model.id == q.marker, visible if visible is not None else true())
        ).first()
        if marker_row is None:
            raise marker_missing(q.marker)
        clauses.append(_after(keys, tuple(marker_row), forward))
    if clauses:
        stmt = stmt.where(and_(*clauses))
    stmt = stmt.order_by(*[(col.asc() if asc == forward else col.desc()) for col, asc in keys])
    if q.limit is not None:
        stmt = stmt.limit(q.limit)
    return stmt


def _after(keys: Sequence[tuple[InstrumentedAttribute, bool]], values: tuple, forward: bool) -> ColumnElement[bool]:
    """Rows strictly after ``values`` in the (possibly reversed) sort order: the keyset predicate
    (k1 > v1) OR (k1 = v1 AND k2 > v2) OR ..."""
    ors = []
    for i, (col, asc) in enumerate(keys):
        equal = [keys[j][0] == values[j] for j in range(i)]
        beyond = col > values[i] if asc == forward else col < values[i]
        ors.append(and_(*equal, beyond))
    return or_(*ors)
