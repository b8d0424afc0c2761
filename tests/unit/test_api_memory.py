"""api.memory: after a burst of allocations in threads, trim() gives the freed pages back.

Run in a child interpreter (its own heap): threads allocate ~96 MiB of 2 KiB blocks (glibc's,
not pymalloc's) and free all but one in 64, so the free memory sits in holes that glibc does not
give back by itself; ``trim()`` must return most of it to the system.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from baryon.api import memory

CHILD = textwrap.dedent("""
    import threading
    from baryon.api import memory

    def rss_mib():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) // 1024

    assert memory.tune()
    kept = []

    def burst():
        blocks = [bytes(2048) for _ in range(12_000)]
        kept.extend(blocks[::64])

    threads = [threading.Thread(target=burst) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    before = rss_mib()
    memory.trim()
    print(before, rss_mib())
""")


@pytest.mark.skipif(memory._LIBC is None, reason="glibc only")
def test_trim_gives_back_the_memory_threads_freed() -> None:
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True).stdout
    before, after = map(int, out.split())
    assert before - after >= 40, (before, after)
