"""What the change log's entries touch (``baryon.model.scope``), read once per process for every watcher.

``ChangeDigest.touched(after, upto)`` -> the keys touched by the changes with sequence in
``(after, upto]`` (``scope.ALL`` when it cannot be told). Each entry is read from the database
once per process, whatever the number of agents watching: the first watcher to ask reads the new
entries (one query), the others find them digested. Per entry it keeps only its keys; per
resource, the last state seen (its body less the cosmetic fields), so that an update is compared
with the state before it. A resource whose previous entry is not at hand is looked up in the log
(one query per batch, through the index on ``(resource_id, seq)``); an update whose previous
entry is not in the log at all, or a sequence missing from the log, touches ``ALL``.

Memory is bounded: ``capacity`` sequences of keys and ``states`` resource states (least recently
seen dropped first); asking about sequences older than that reads them again.
Thread-safe (the long-polls compute views in the thread pool); one database read at a time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from baryon.db.models import Change
from baryon.model import scope

CAPACITY = 20_000  # sequences whose keys are kept
STATES = 20_000  # resources whose last state is kept
IN_CHUNK = 500  # ids per IN (...) list

State = dict[str, Any] | None  # a resource's body less cosmetic fields; None: deleted (or absent)
_UNKNOWN: Any = object()  # the state of a resource whose previous entry is not in the log
Reader = Callable[[], AbstractContextManager[Session]]


def _state(action: str, body: dict | None) -> State:
    if action == "delete" or body is None:
        return None
    return {k: v for k, v in body.items() if k not in scope.COSMETIC}


class ChangeDigest:
    def __init__(self, read: Reader, capacity: int = CAPACITY, states: int = STATES):
        self._read = read
        self._capacity = capacity
        self._states_max = states
        self._lock = threading.Lock()
        self._keys: dict[int, scope.Keys] = {}  # seq -> keys, for every seq in (floor, top]
        self._floor = self._top = -1  # nothing digested yet
        # (resource type, id) -> state as of ``_top``. NOTE: by type too: the log's entries of a
        # network's DHCP agent binding carry the network's id.
        self._states: OrderedDict[tuple[str, str], State] = OrderedDict()

    def touched(self, after: int, upto: int) -> scope.Keys:
        if upto <= after:
            return frozenset()
        if upto - after > self._capacity:
            return scope.ALL
        with self._lock:
            if (self._top < 0 or after - self._top > self._capacity
                    or self._floor - upto > self._capacity):
                self._restart(after)
            if upto > self._top:
                self._digest(self._top, upto, forward=True)
            if after < self._floor:
                self._digest(after, self._floor, forward=False)
            parts = [self._keys.get(s, scope.ALL) for s in range(after + 1, upto + 1)]
            self._trim()
        return scope.union(parts)

    # ------------------------------------------------------------------ internals (under the lock)

    def _restart(self, at: int) -> None:
        self._keys.clear()
        self._states.clear()
        self._floor = self._top = at

    def _trim(self) -> None:
        while self._top - self._floor > self._capacity:
            self._keys.pop(self._floor + 1, None)
            self._floor += 1
        while len(self._states) > self._states_max:
            self._states.popitem(last=False)

    def _digest(self, after: int, upto: int, forward: bool) -> None:
        """Digest the entries in ``(after, upto]``. ``forward``: they follow ``_top``, so the kept
        states are the states before them, and are moved on; else (older entries, read back) the
        states before them come from the log and the kept ones are left alone."""
        kept = self._states if forward else {}
        with self._read() as session:
            rows = session.execute(
                select(Change.seq, Change.resource_type, Change.resource_id, Change.action, Change.body)
                .where(Change.seq > after, Change.seq <= upto).order_by(Change.seq)).all()
            first: dict[tuple[str, str], str] = {}  # resource -> the action of its first entry here
            for row in rows:
                first.setdefault((row.resource_type, row.resource_id), row.action)
            missing = sorted(r for r, action in first.items() if action == "update" and r not in kept)
            looked_up = dict(self._previous(session, missing, after))
        # The state of each resource before these entries (only an update's matters).
        states: dict[tuple[str, str], Any] = {r: kept[r] if r in kept else looked_up.get(r, _UNKNOWN) for r in first}
        digested = set()
        for row in rows:
            body = orjson.loads(row.body) if row.body else None
            resource = (row.resource_type, row.resource_id)
            was, now = states[resource], _state(row.action, body)
            if row.action == "delete":  # NOTE: a delete logs the body as it was
                keys = scope.touches(row.resource_type, "delete", _state("", body), None)
            elif row.action == "update" and was is _UNKNOWN:
                keys = scope.ALL
            else:
                keys = scope.touches(row.resource_type, row.action, None if was is _UNKNOWN else was, now)
            self._keys[row.seq] = keys
            digested.add(row.seq)
            states[resource] = now
        for seq in range(after + 1, upto + 1):  # a sequence missing from the log: who knows
            if seq not in digested:
                self._keys[seq] = scope.ALL
        if forward:
            for resource, state in states.items():
                self._states[resource] = state
                self._states.move_to_end(resource)
            self._top = upto
        else:
            self._floor = after

    @staticmethod
    def _previous(session: Session, resources: list[tuple[str, str]],
                  upto: int) -> Iterator[tuple[tuple[str, str], State]]:
        """For each resource (type, id): its state at its last entry up to ``upto`` (none: absent)."""
        wanted = set(resources)
        ids = sorted({rid for _, rid in resources})
        for start in range(0, len(ids), IN_CHUNK):
            chunk = ids[start:start + IN_CHUNK]
            last = (select(Change.resource_type, Change.resource_id, func.max(Change.seq).label("seq"))
                    .where(Change.resource_id.in_(chunk), Change.seq <= upto)
                    .group_by(Change.resource_type, Change.resource_id).subquery())
            for kind, resource_id, action, body in session.execute(
                    select(Change.resource_type, Change.resource_id, Change.action, Change.body)
                    .join(last, Change.seq == last.c.seq)):
                if (kind, resource_id) in wanted:
                    yield (kind, resource_id), _state(action, orjson.loads(body) if body else None)
