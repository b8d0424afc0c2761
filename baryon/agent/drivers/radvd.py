"""radvd processes of the router namespaces and their state directories (the only code of the L3
agent that starts, signals or stops a process, or writes under ``ra_confs``).

A radvd is known by its pidfile alone, ``<ra_confs>/<router id>/radvd.pid``: a process is taken
for that router's radvd only if it is alive (not a zombie) and its command line has ``-p
<pidfile>``, so a PID reused by a stranger is never signalled (radvd, once it has dropped its
privileges, cannot remove its pidfile: a stale one is normal). Processes are never looked up or
killed by name.

- ``observe(pidfile, netns_inode)`` -> ``ObservedRadvd`` or None; ``running(pidfile)`` -> PID.
- ``start(op)``: ``nsenter --net=<namespace> radvd ...``; radvd daemonizes; returns once the
  pidfile names the daemon (``RadvdError`` if it does not within ``START_TIMEOUT``).
- ``reload(pid, pidfile)``: SIGHUP (radvd re-reads its config); ``stop(pid, pidfile)``: SIGTERM,
  SIGKILL after ``timeout``.
- ``read_conf(directory)``, ``state_dirs(ra_confs)``; files are written and directories removed
  with the DHCP agent's file helpers (``Dnsmasq.write_files``: atomic, 0644 in 0755 directories).
- ``user_exists(name)``: whether radvd can be given ``-u name``.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import time

from baryon.agent.drivers import pidfiles
from baryon.agent.drivers.pidfiles import alive, cmdline
from baryon.agent.plan.dhcp import is_network_id
from baryon.agent.plan.l3 import ObservedRadvd, StartRadvd
from baryon.agent.plan.radvd import CONF

DEFAULT_TIMEOUT = 5.0
START_TIMEOUT = 10.0


class RadvdError(RuntimeError):
    pass


def ours(pid: int, pidfile: str) -> tuple[str, ...] | None:
    """The process's argv if it is alive and its command line has ``-p <pidfile>``, else None."""
    if not alive(pid):
        return None
    argv = cmdline(pid)
    return argv if any(a == "-p" and b == pidfile for a, b in zip(argv, argv[1:])) else None


def user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


class Radvd:
    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout

    def running(self, pidfile: str) -> int | None:
        return pidfiles.running(pidfile, ours)

    def observe(self, pidfile: str, netns_inode: int | None) -> ObservedRadvd | None:
        found = pidfiles.find(pidfile, ours, netns_inode)
        return ObservedRadvd(*found) if found is not None else None

    def start(self, op: StartRadvd) -> int:
        argv = ["nsenter", f"--net=/run/netns/{op.namespace}", "--", *op.argv]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=START_TIMEOUT, check=False)
        except FileNotFoundError:
            raise RadvdError("nsenter: command not found") from None
        except subprocess.TimeoutExpired:
            raise RadvdError(f"router {op.router_id}: radvd did not start in {START_TIMEOUT:g} s") from None
        if proc.returncode != 0:
            raise RadvdError(f"router {op.router_id}: radvd failed to start (exit {proc.returncode}): "
                             f"{proc.stderr.strip()}")
        deadline = time.monotonic() + START_TIMEOUT
        while (pid := self.running(op.pidfile)) is None:
            if time.monotonic() > deadline:
                raise RadvdError(f"router {op.router_id}: radvd started but {op.pidfile} names no live radvd")
            time.sleep(0.01)
        return pid

    def reload(self, pid: int, pidfile: str) -> bool:
        return pidfiles.reload(pid, pidfile, ours)

    def stop(self, pid: int, pidfile: str) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; only while the process is ``ours``."""
        if not pidfiles.stop(pid, pidfile, ours, self.timeout):
            raise RadvdError(f"radvd {pid} ({pidfile}) survived SIGKILL")

    @staticmethod
    def read_conf(directory: str) -> str | None:
        try:
            with open(os.path.join(directory, CONF)) as f:
                return f.read()
        except OSError:
            return None

    @staticmethod
    def state_dirs(ra_confs: str) -> set[str]:
        """The router ids that have a state directory under ``ra_confs``."""
        try:
            with os.scandir(ra_confs) as entries:
                return {e.name for e in entries if is_network_id(e.name) and e.is_dir(follow_symlinks=False)}
        except FileNotFoundError:
            return set()
