"""The last view of each agent, kept per process, and reused while no change concerns it.

``ViewCache.view(kind, host, latest)`` -> the ``kind`` view of ``host`` as of change-log sequence
``latest`` at least: the kept one, its ``seq`` moved on to ``latest``, when no change in
``(kept seq, latest]`` touches its scope (``service.digest`` and ``model.scope``); else one computed
afresh (``compute(kind, host)``), which is then kept. So a change that concerns one host costs a
view computation for that host's agents only, whatever the number of agents watching; the others
get a sequence-only answer without reading their view again.

Correctness rests on the scope rules: a change that can alter a view touches one of the view's
keys (``model.scope``, tested against the views computed before and after each kind of change).
A computed view reflects at least its ``seq`` (it may reflect later changes too, which the digest
then reports as touching it: one more computation, never a missed change).
At most ``capacity`` views are kept (least recently used dropped first). Thread-safe.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from baryon.model import scope
from baryon.service.digest import ChangeDigest

CAPACITY = 1024  # views: one per agent of this server, typically


@dataclass(frozen=True)
class _Kept:
    view: Any
    scope: scope.Keys


class ViewCache:
    def __init__(self, compute: Callable[[str, str], Any], digest: ChangeDigest, capacity: int = CAPACITY):
        self._compute = compute
        self._digest = digest
        self._capacity = capacity
        self._lock = threading.Lock()
        self._kept: OrderedDict[tuple[str, str], _Kept] = OrderedDict()
        self.computed = 0  # views computed (for tests and benchmarks)
        self.reused = 0  # views answered from the cache

    def view(self, kind: str, host: str, latest: int) -> Any:  # noqa: ANN401 - any agent view
        key = (kind, host)
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None:
                self._kept.move_to_end(key)
        if kept is not None:
            seq = kept.view.seq
            if seq >= latest:
                self.reused += 1
                return kept.view
            if not scope.concerns(self._digest.touched(seq, latest), kept.scope):
                moved = replace(kept.view, seq=latest)
                self._keep(key, _Kept(moved, kept.scope))
                self.reused += 1
                return moved
        fresh = self._compute(kind, host)
        self.computed += 1
        self._keep(key, _Kept(fresh, scope.view_scope(fresh)))
        return fresh

    def _keep(self, key: tuple[str, str], kept: _Kept) -> None:
        with self._lock:
            current = self._kept.get(key)
            if current is None or current.view.seq <= kept.view.seq:  # never replace a newer view
                self._kept[key] = kept
                self._kept.move_to_end(key)
            while len(self._kept) > self._capacity:
                self._kept.popitem(last=False)
