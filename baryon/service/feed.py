"""The change log: every committed change, in one gap-free global sequence.

Writers call ``record(session, ...)`` as they change a resource; ``Unit.commit`` in
``baryon.service.unit`` calls ``flush(session)`` as the very last step of the transaction: it locks
the single ``change_counter`` row by moving it on (an ``UPDATE`` that returns the new value;
SQLite already serialises writers), numbers the pending changes and inserts them. Because the
lock is held until commit, a transaction that got sequence N+1 commits after the one that got
N: a reader of the log never sees N+1 without N. Agents (a later part) list the state, then watch the log from a sequence.
"""

from __future__ import annotations

import datetime as dt

import orjson
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from baryon.db.models import Change, ChangeCounter

PENDING = "baryon.changes"


def record(session: Session, resource_type: str, action: str, body: dict, *, resource_id: str | None = None) -> None:
    """Queue a change of ``resource_type`` (``create``/``update``/``delete``); ``body`` is the
    resource as an admin sees it after the change (before it, for a delete)."""
    session.info.setdefault(PENDING, []).append((resource_type, action, resource_id or body["id"], body))


def flush(session: Session) -> int | None:
    """Number and insert the queued changes; returns the last sequence, or None if none."""
    pending = session.info.pop(PENDING, [])
    if not pending:
        return None
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    bodies = [orjson.dumps(body).decode() for _type, _action, _id, body in pending]  # before the lock
    last = _advance(session, len(pending))
    seq = last - len(pending)
    rows = []
    for (resource_type, action, resource_id, body), encoded in zip(pending, bodies):
        seq += 1
        rows.append({
            "seq": seq, "resource_type": resource_type, "resource_id": resource_id, "action": action,
            "revision_number": body.get("revision_number", 0), "project_id": body.get("project_id") or "",
            "created_at": now, "body": encoded,
        })
    session.execute(Change.__table__.insert(), rows)
    return last


def _advance(session: Session, count: int) -> int:
    """Move the counter on by ``count`` and return its new value, in one statement that also
    takes the row's lock (held to commit): every round trip under that lock is one every other
    writer waits for. MariaDB/MySQL has no UPDATE ... RETURNING: ``LAST_INSERT_ID(expr)`` sets
    the value the server sends back with the update's answer."""
    if session.get_bind().dialect.name == "mysql":
        result = session.execute(text("UPDATE change_counter SET seq = LAST_INSERT_ID(seq + :n) WHERE id = 1"),
                                 {"n": count})
        return int(result.lastrowid)  # type: ignore[attr-defined]
    return session.execute(update(ChangeCounter).where(ChangeCounter.id == 1)
                           .values(seq=ChangeCounter.seq + count).returning(ChangeCounter.seq)).scalar_one()


def changes_since(session: Session, seq: int, limit: int = 1000) -> list[dict]:
    rows = session.execute(select(Change).where(Change.seq > seq).order_by(Change.seq).limit(limit)).scalars()
    return [{"seq": c.seq, "resource": c.resource_type, "id": c.resource_id, "action": c.action,
             "revision_number": c.revision_number, "project_id": c.project_id,
             "body": orjson.loads(c.body) if c.body else None} for c in rows]


def last_seq(session: Session) -> int:
    return session.execute(select(ChangeCounter.seq).where(ChangeCounter.id == 1)).scalar_one()


# Fields that move on every write and say nothing of their own (left out of ``changed``).
_VOLATILE = frozenset({"revision_number", "updated_at"})


def changes_of(session: Session, resource_id: str, limit: int = 1000) -> list[dict]:
    """The log's entries for one resource, oldest first: ``seq``, ``resource``, ``action``,
    ``revision_number``, ``created_at`` (UTC, ISO 8601, whole seconds) and ``changed``: for a
    create, the whole body; for an update, the fields whose value differs from the previous entry
    of the resource (``revision_number`` and ``updated_at`` aside); for a delete, nothing."""
    rows = session.execute(select(Change).where(Change.resource_id == resource_id)
                           .order_by(Change.seq).limit(limit)).scalars()
    entries, previous_of = [], {}
    for row in rows:
        # NOTE: by type: a network's DHCP agent binding is logged under the network's id.
        previous = previous_of.get(row.resource_type)
        body = orjson.loads(row.body) if row.body else {}
        if row.action == "create" or previous is None:
            changed = body if row.action != "delete" else {}
        elif row.action == "delete":
            changed = {}
        else:
            changed = {key: value for key, value in body.items()
                       if key not in _VOLATILE and previous.get(key) != value}
        previous_of[row.resource_type] = body
        entries.append({"seq": row.seq, "resource": row.resource_type, "action": row.action,
                        "revision_number": row.revision_number,
                        "created_at": row.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"), "changed": changed})
    return entries
