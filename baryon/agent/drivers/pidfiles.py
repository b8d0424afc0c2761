"""Daemons known by their pidfile (dnsmasq, radvd): read, signal and stop them safely.

A daemon is identified by its pidfile alone: a PID is taken for the daemon only while the process
is alive (not a zombie) and its command line names that pidfile (each driver's ``ours``: dnsmasq
has ``--pid-file=PATH``, radvd ``-p PATH``), so a PID reused by a stranger is never signalled and
nothing is ever looked up or killed by name.

- ``read_pid(pidfile)``, ``cmdline(pid)``, ``alive(pid)``;
- ``running(pidfile, ours)``: the daemon's PID, None when none runs;
- ``find(pidfile, ours, netns_inode)``: (PID, argv, whether it runs in the network namespace of
  that inode), None when none runs;
- ``reload(pid, pidfile, ours)``: SIGHUP while ours; False when it was gone;
- ``stop(pid, pidfile, ours, timeout)``: SIGTERM, then SIGKILL after ``timeout``, while ours;
  False only when it survived SIGKILL.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

Ours = Callable[[int, str], "tuple[str, ...] | None"]  # (pid, pidfile) -> its argv when it is that daemon


def read_pid(pidfile: str) -> int | None:
    try:
        return int(Path(pidfile).read_text().strip())
    except (OSError, ValueError):
        return None


def cmdline(pid: int) -> tuple[str, ...]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ()
    return tuple(arg.decode(errors="replace") for arg in raw.rstrip(b"\0").split(b"\0")) if raw else ()


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def running(pidfile: str, ours: Ours) -> int | None:
    pid = read_pid(pidfile)
    return pid if pid is not None and ours(pid, pidfile) is not None else None


def find(pidfile: str, ours: Ours, netns_inode: int | None) -> tuple[int, tuple[str, ...], bool] | None:
    pid = read_pid(pidfile)
    argv = ours(pid, pidfile) if pid is not None else None
    if pid is None or argv is None:
        return None
    try:
        inode = os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None  # exited meanwhile
    return pid, argv, netns_inode is not None and inode == netns_inode


def reload(pid: int, pidfile: str, ours: Ours) -> bool:
    if ours(pid, pidfile) is None:
        return False
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        return False
    return True


def stop(pid: int, pidfile: str, ours: Ours, timeout: float) -> bool:
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 2.0)):
        if ours(pid, pidfile) is None:
            return True
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not alive(pid):
                return True
            time.sleep(0.01)
    return not alive(pid)
