"""What every resource service shares: the environment, time and ids, revisions, visibility.

``Env`` is built once per process from the settings. ``Env.write`` runs a unit of work: the
callable does its reads and writes and queues its changes (``feed.record``); the change log is
numbered and written last, in the same transaction (``feed.flush``), and the whole is retried on
transient conflicts (``Database.write``). Once a transaction that logged changes has committed,
``Env.bell`` rings with its last sequence, waking this process's long-polls (``service.bell``).
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy.orm import Session

from baryon.config import Settings
from baryon.db.engine import Database
from baryon.service import errors, feed
from baryon.service.bell import ChangeBell
from baryon.service.context import Context
from baryon.service.ml2 import TypeDrivers

T = TypeVar("T")


@dataclass
class Env:
    db: Database
    settings: Settings
    drivers: TypeDrivers
    rng: random.Random
    bell: ChangeBell = field(default_factory=ChangeBell)

    @classmethod
    def create(cls, settings: Settings, db: Database) -> "Env":
        return cls(db=db, settings=settings, drivers=TypeDrivers.from_settings(settings), rng=random.SystemRandom())

    @property
    def port_security(self) -> bool:
        return "port_security" in self.settings.ml2.extension_drivers

    def write(self, fn: Callable[[Session], T]) -> T:
        flushed: list[int | None] = [None]

        def unit(session: Session) -> T:
            session.info.pop(feed.PENDING, None)  # a retried attempt starts with an empty queue
            flushed[0] = None
            result = fn(session)
            session.flush()
            flushed[0] = feed.flush(session)  # kept from the attempt that commits (the last one)
            return result

        result = self.db.write(unit)
        if flushed[0] is not None:
            self.bell.committed(flushed[0])
        return result


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def new_id() -> str:
    return str(uuid.uuid4())


def stamp_new(row: object, ctx_project: str, attrs: dict) -> None:
    """Fill the standard attributes of a new row."""
    moment = now()
    row.id = attrs.get("id") or new_id()  # type: ignore[attr-defined]
    row.project_id = attrs.get("project_id") or ctx_project  # type: ignore[attr-defined]
    row.name = attrs.get("name", "")  # type: ignore[attr-defined]
    row.description = attrs.get("description", "")  # type: ignore[attr-defined]
    row.created_at = row.updated_at = moment  # type: ignore[attr-defined]
    row.revision_number = 1  # type: ignore[attr-defined]


def bump(row: object) -> None:
    """A change of the resource's representation: new revision, new updated_at."""
    row.revision_number += 1  # type: ignore[attr-defined]
    row.updated_at = now()  # type: ignore[attr-defined]


def record_update(session: Session, resource: str, row: object, before: dict,
                  render_one: Callable[[object], dict]) -> dict:
    """End of an update: if the resource's representation changed, bump its revision and log
    it; return what the client sees. ``before`` is ``render_one(row)`` taken before the change."""
    session.flush()
    body = render_one(row)
    if body != before:
        bump(row)
        session.flush()
        body = render_one(row)
        feed.record(session, resource, "update", body)
    return body


def check_revision(row: object, if_match: int | None) -> None:
    if if_match is not None and row.revision_number != if_match:  # type: ignore[attr-defined]
        raise errors.RevisionNumberConstraintFailed(expected=if_match, current=row.revision_number)  # type: ignore[attr-defined]


def require_write(ctx: Context, action: str) -> None:
    if not ctx.can_write:
        raise errors.PolicyNotAuthorized(rule=f"rule:{action}")
