"""New rows inserted with Core statements, without the ORM's unit of work.

``insert_new(session, row)`` inserts a new (transient) mapped object and the objects of its
one-to-many collections that are set on it: one ``INSERT`` for the row, then one per child
table (all the children of a table in one statement), in the session's transaction. The
children's foreign keys are set from the row first, as a flush would. Each object's unset
columns take their Python-side scalar defaults, on the object too, so the object reads as a
flushed one would (``render`` reads it afterwards).

Why: a port create's ORM flush (dependency sort, per-object state, history, identity map) was
the largest single part of the server's CPU per create; the same three ``INSERT`` statements
issued from Core cost a fraction of it.

Contract: the objects are NOT added to the session: nothing in the transaction may later load
them expecting the identity map to hold them, or change them expecting a flush. Rows they refer
to (foreign keys) must already be in the database (flush the session first). A duplicate key
raises ``IntegrityError`` exactly as the flush would (``Database.write`` retries it).
"""

from __future__ import annotations

from sqlalchemy import inspect
from sqlalchemy.orm import Session


def _values(obj: object) -> dict:
    state = inspect(obj)
    values = {}
    for prop in state.mapper.column_attrs:
        column = prop.columns[0]
        if prop.key in state.dict:
            value = state.dict[prop.key]
        elif column.default is not None and column.default.is_scalar:
            value = column.default.arg
            setattr(obj, prop.key, value)
        elif column.server_default is not None:
            continue
        else:
            value = None
            setattr(obj, prop.key, value)
        values[column.key] = value
    return values


def insert_new(session: Session, row: object) -> None:
    state = inspect(row)
    mapper = state.mapper
    session.execute(mapper.local_table.insert(), [_values(row)])
    for rel in mapper.relationships:
        if not rel.uselist or rel.key not in state.dict or rel.secondary is not None:
            continue
        children = list(state.dict[rel.key])
        if not children:
            continue
        child_mapper = rel.mapper
        for child in children:
            for local, remote in rel.local_remote_pairs:
                setattr(child, child_mapper.get_property_by_column(remote).key,
                        getattr(row, mapper.get_property_by_column(local).key))
        session.execute(child_mapper.local_table.insert(), [_values(child) for child in children])
