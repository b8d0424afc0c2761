"""The last view of each agent, kept per process, and reused while no change concerns it.

``ViewCache.view(kind, host, latest)`` -> the ``kind`` view of ``host`` as of change-log sequence
``latest`` at least: the kept one, its ``seq`` moved on to ``latest``, when no change in
``(kept seq, latest]`` touches its scope (``service.digest`` and ``model.scope``); else the kept one
with only the parts those keys cover read again (``refresh(kind, host, kept, keys)``, the keys of
its scope that were touched), when the kind has such a refresh and it can tell; else one computed
afresh (``compute(kind, host)``). The result is then kept. So a change that concerns one host
costs a view computation for that host's agents only, whatever the number of agents watching; the
others get a sequence-only answer without reading their view again; and a change of a group's
members costs the hosts whose rules name the group a read of that group's members, not of their
whole view.

Correctness rests on the scope rules: a change that can alter a view touches one of the view's
keys (``model.scope``, tested against the views computed before and after each kind of change).
A computed view reflects at least its ``seq`` (it may reflect later changes too, which the digest
then reports as touching it: one more computation, never a missed change). A refreshed view
reflects ``latest`` too: ``latest`` is a sequence already read from the log (sequences commit in
order, so every change up to it has committed), the parts read again are read after it, and the
parts kept are, by the scope rules, the same at ``latest`` as at the kept view's ``seq`` (no key
that covers them was touched in between); its scope is computed again from it.
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


# (kind, host, kept view, the keys of its scope touched since) -> the view with what those keys
# cover read again, or None when a whole computation is needed.
Refresh = Callable[[str, str, Any, frozenset[scope.Key]], Any]


class ViewCache:
    def __init__(self, compute: Callable[[str, str], Any], digest: ChangeDigest, capacity: int = CAPACITY,
                 refresh: Refresh | None = None):
        self._compute = compute
        self._refresh = refresh
        self._digest = digest
        self._capacity = capacity
        self._lock = threading.Lock()
        self._kept: OrderedDict[tuple[str, str], _Kept] = OrderedDict()
        self.computed = 0  # views computed (for tests and benchmarks)
        self.reused = 0  # views answered from the cache
        self.refreshed = 0  # views answered from the cache with some of their parts read again

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
            touched = self._digest.touched(seq, latest)
            if not scope.concerns(touched, kept.scope):
                moved = replace(kept.view, seq=latest)
                self._keep(key, _Kept(moved, kept.scope))
                self.reused += 1
                return moved
            if self._refresh is not None and isinstance(touched, frozenset) and isinstance(kept.scope, frozenset):
                refreshed = self._refresh(kind, host, kept.view, touched & kept.scope)
                if refreshed is not None:
                    refreshed = replace(refreshed, seq=latest)
                    self._keep(key, _Kept(refreshed, scope.view_scope(refreshed)))
                    self.refreshed += 1
                    return refreshed
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
