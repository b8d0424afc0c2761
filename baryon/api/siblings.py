"""The API workers of one server tell each other of their commits at once (Unix datagrams).

With ``api_workers`` > 1, ``baryon server`` makes a private directory and names it in
``BARYON_SIBLINGS_DIR`` for its workers (``directory``). Each worker binds a datagram socket
there (``<pid>.sock``), reads it on its event loop and rings its own ``ChangeBell`` with the
sequences it receives; after each of its own commits (``ChangeBell.on_commit``) it sends the new
sequence to every other socket of the directory. So an agent long-polling one worker hears of a
change committed through another within a millisecond or so, instead of at the next poll of the
change log (``api.watch.POLL_INTERVAL``), which stays, for the other servers sharing the database
and as the safety net: a lost datagram delays a wake-up, it never loses a change.

Sending never blocks (a full or gone peer is skipped); the directory is listed again at most once
a second, so a worker that starts later is heard from within a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import struct
import time
from pathlib import Path

from baryon.api.envdir import private_dir
from baryon.service.bell import ChangeBell

LOG = logging.getLogger(__name__)
ENV = "BARYON_SIBLINGS_DIR"
RELIST_INTERVAL = 1.0
_SEQ = struct.Struct("!Q")


def directory() -> contextlib.AbstractContextManager[str]:
    """A private, fresh directory for the workers started inside the block (named in ``ENV``,
    which they inherit); removed, and the variable restored, at the end."""
    return private_dir(ENV, "baryon-siblings-")


class Siblings:
    """This worker's socket in ``path``: started and stopped on the worker's event loop."""

    def __init__(self, path: str, bell: ChangeBell, name: str | None = None):
        self.dir = Path(path)
        self.bell = bell
        self.own = self.dir / f"{name or os.getpid()}.sock"
        self._sock: socket.socket | None = None
        self._peers: list[str] = []
        self._listed = 0.0

    def start(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setblocking(False)
        with contextlib.suppress(FileNotFoundError):
            self.own.unlink()
        sock.bind(str(self.own))
        self._sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._receive)
        self.bell.on_commit = self.tell

    def stop(self) -> None:
        self.bell.on_commit = None
        if self._sock is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        with contextlib.suppress(FileNotFoundError):
            self.own.unlink()

    def _receive(self) -> None:
        assert self._sock is not None
        while True:
            try:
                data = self._sock.recv(64)
            except (BlockingIOError, InterruptedError):
                return
            if len(data) == _SEQ.size:
                self.bell.ring(_SEQ.unpack(data)[0])

    def tell(self, seq: int) -> None:
        """Send ``seq`` to every other worker (from any thread; never blocks)."""
        sock = self._sock
        if sock is None:
            return
        now = time.monotonic()
        if now - self._listed >= RELIST_INTERVAL:
            self._peers = [str(p) for p in self.dir.glob("*.sock") if p != self.own]
            self._listed = now
        data = _SEQ.pack(seq)
        for peer in self._peers:
            try:
                sock.sendto(data, peer)
            except OSError:  # gone (its file not yet removed), or its queue full: the poll will tell it
                pass
