"""Keeping an API worker's resident memory near what it uses (glibc's allocator, when present).

A list of 10,000 ports builds some 60 MiB of short-lived objects and a 7 MiB body. Freed, most of
it stayed resident: glibc gives each thread of the thread pool its own arena (up to 8 per CPU),
keeps freed memory inside them, and after a large block is freed raises its mmap threshold so
that later large blocks come from those arenas too. So each worker:
- caps the arenas at ``ARENAS`` (requests run in threads; two arenas keep lock contention low);
- fixes the mmap threshold at ``MMAP_THRESHOLD``: large blocks (bodies, big lists' arrays) are
  mapped and unmapped on their own, given back to the system when freed;
- after a response of more than ``TRIM_AFTER`` bytes, gives the free pages of its arenas back
  (``malloc_trim(0)``, run once the response is sent).
Elsewhere (musl, macOS) all three do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

LOG = logging.getLogger(__name__)

ARENAS = 2
MMAP_THRESHOLD = 256 * 1024
TRIM_AFTER = 1024 * 1024

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameters (malloc.h)
_M_ARENA_MAX = -8


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # noqa: B018 - glibc only
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _glibc()


def tune() -> bool:
    """Set the arena cap and the fixed mmap threshold for this process; True on glibc."""
    if _LIBC is None:
        return False
    ok = _LIBC.mallopt(_M_ARENA_MAX, ARENAS) == 1 and _LIBC.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    if not ok:
        LOG.warning("mallopt refused the arena cap or the mmap threshold")
    return ok


def trim() -> None:
    """Give the free pages of every arena back to the system."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
