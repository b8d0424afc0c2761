"""api.siblings: the API workers of one server wake each other's long-polls at their commits."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from baryon.api import siblings
from baryon.service.bell import ChangeBell


def test_a_commit_in_one_worker_rings_the_bells_of_the_others(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, int, int, list[str]]:
        bells = [ChangeBell() for _ in range(3)]
        workers = [siblings.Siblings(str(tmp_path), bell, name=f"w{i}") for i, bell in enumerate(bells)]
        for worker in workers:
            worker.start()
        try:
            bells[0].committed(7)  # worker 0 committed sequence 7
            heard = await asyncio.gather(*(bell.wait(0, 5.0) for bell in bells[1:]))
            bells[2].committed(5)  # an older sequence changes nothing
            await asyncio.sleep(0.05)
            return bells[0].seq, heard[0], heard[1], sorted(os.listdir(tmp_path))
        finally:
            for worker in workers:
                worker.stop()

    assert asyncio.run(scenario()) == (7, 7, 7, ["w0.sock", "w1.sock", "w2.sock"])
    assert os.listdir(tmp_path) == []  # each removes its socket


def test_a_worker_gone_or_alone_is_no_error(tmp_path: Path) -> None:
    async def scenario() -> int:
        bell = ChangeBell()
        worker = siblings.Siblings(str(tmp_path), bell, name="w0")
        (tmp_path / "gone.sock").touch()  # a worker that died without removing its socket
        worker.start()
        try:
            bell.committed(3)
            return bell.seq
        finally:
            worker.stop()

    assert asyncio.run(scenario()) == 3


def test_the_directory_is_private_and_removed() -> None:
    with siblings.directory() as path:
        assert os.environ[siblings.ENV] == path and os.path.isdir(path)
    assert not os.path.exists(path) and siblings.ENV not in os.environ
