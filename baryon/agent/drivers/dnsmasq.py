"""dnsmasq processes and their files (the only code of the DHCP agent that starts, signals or stops
a process, or writes under ``dhcp_confs``).

A dnsmasq is known by its pidfile alone, ``<dhcp_confs>/<network id>/pid``: a process is taken
for that network's dnsmasq only if it is alive (not a zombie) and its command line names that
pidfile (``--pid-file=<pidfile>``), so a PID reused by a stranger is never signalled. Processes
are never looked up or killed by name.

- ``observe(pidfile, netns_inode)`` -> ``ObservedDnsmasq`` (PID, argv from /proc/PID/cmdline,
  whether its network namespace is the given one) or None; ``running(pidfile)`` -> PID or None.
- ``start(op)``: writes the initial lease file (keeping the IPv6 leases and the server DUID of an
  existing one, whose IAIDs cannot be re-derived, as Neutron does), then runs
  ``ip netns exec <namespace> dnsmasq ...``; dnsmasq daemonizes, and its first process exits only
  once the daemon has started (or failed: its error is raised as ``DnsmasqError``), so the pidfile
  is there when ``start`` returns the daemon's PID.
- ``stop(pid, pidfile)``: SIGTERM, SIGKILL after ``timeout``; returns once the process is gone.
- ``reload(pid, pidfile)``: SIGHUP, on which dnsmasq re-reads ``--dhcp-hostsfile``,
  ``--dhcp-optsfile`` and ``--addn-hosts``; False if the process is no longer there.
- ``read_files``, ``write_files`` (each file to a temporary name, then renamed over the old one:
  dnsmasq never reads half a file), ``state_dirs``, ``remove_directory``.

dnsmasq drops its privileges to ``nobody``; it reads the files again on SIGHUP as ``nobody``, so
every directory on their path must be traversable by others: directories are created 0755 and
files 0644 (the agent warns at start when a parent of ``dhcp_confs`` is not traversable).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from baryon.agent.drivers import pidfiles
from baryon.agent.drivers.pidfiles import alive, cmdline
from baryon.agent.plan.dhcp import ObservedDnsmasq, RestartDnsmasq, StartDnsmasq, WriteFiles, is_network_id
from baryon.agent.plan.dnsmasq import LEASES

DEFAULT_TIMEOUT = 5.0  # seconds from SIGTERM to SIGKILL, as Neutron's SIGTERM_TIMEOUT
START_TIMEOUT = 30.0
DIR_MODE, FILE_MODE = 0o755, 0o644


class DnsmasqError(RuntimeError):
    def __init__(self, message: str, *, network_id: str = "", stderr: str = "") -> None:
        super().__init__(message)
        self.network_id = network_id
        self.stderr = stderr


def ours(pid: int, pidfile: str) -> tuple[str, ...] | None:
    """The process's argv if it is alive and its command line names ``pidfile``, else None."""
    if not alive(pid):
        return None
    argv = cmdline(pid)
    return argv if f"--pid-file={pidfile}" in argv else None


class Dnsmasq:
    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout

    # ------------------------------------------------------------ processes

    def running(self, pidfile: str) -> int | None:
        return pidfiles.running(pidfile, ours)

    def observe(self, pidfile: str, netns_inode: int | None) -> ObservedDnsmasq | None:
        found = pidfiles.find(pidfile, ours, netns_inode)
        return ObservedDnsmasq(*found) if found is not None else None

    def start(self, op: StartDnsmasq | RestartDnsmasq) -> int:
        directory = os.path.dirname(op.pidfile)
        _ensure_dir(directory)
        self._write_leases(os.path.join(directory, LEASES), op.leases)
        argv = ["ip", "netns", "exec", op.namespace, *op.argv]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=START_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            raise DnsmasqError(f"network {op.network_id}: dnsmasq did not start in {START_TIMEOUT:g} s",
                               network_id=op.network_id) from None
        if proc.returncode != 0:
            stderr = proc.stderr.strip()
            raise DnsmasqError(f"network {op.network_id}: dnsmasq failed to start (exit {proc.returncode}): {stderr}",
                               network_id=op.network_id, stderr=stderr)
        pid = self.running(op.pidfile)
        if pid is None:
            raise DnsmasqError(f"network {op.network_id}: dnsmasq started but {op.pidfile} names no live dnsmasq",
                               network_id=op.network_id)
        return pid

    def restart(self, op: RestartDnsmasq) -> int:
        self.stop(op.pid, op.pidfile)
        return self.start(op)

    def reload(self, pid: int, pidfile: str) -> bool:
        return pidfiles.reload(pid, pidfile, ours)

    def stop(self, pid: int, pidfile: str) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; only while the process is ``ours``."""
        if not pidfiles.stop(pid, pidfile, ours, self.timeout):
            raise DnsmasqError(f"dnsmasq {pid} ({pidfile}) survived SIGKILL")

    def _write_leases(self, path: str, initial: str) -> None:
        """Neutron's initial lease file: the IPv4 leases given, plus the existing file's server DUID
        and IPv6 leases (their IAIDs cannot be derived)."""
        kept = []
        try:
            with open(path) as old:
                for line in old:
                    fields = line.split()
                    if line.startswith("duid ") or (len(fields) == 5 and ":" in fields[2] and "." not in fields[2]):
                        kept.append(line if line.endswith("\n") else line + "\n")
        except OSError:
            pass
        _atomic_write(path, "".join(kept) + initial)

    # ------------------------------------------------------------ files

    def read_files(self, directory: str, names: Iterable[str]) -> tuple[tuple[str, str], ...]:
        found = []
        for name in names:
            try:
                with open(os.path.join(directory, name)) as f:
                    found.append((name, f.read()))
            except OSError:
                continue
        return tuple(found)

    def write_files(self, op: WriteFiles) -> None:
        _ensure_dir(op.directory)
        for name, content in op.files:
            _atomic_write(os.path.join(op.directory, name), content)

    def state_dirs(self, confs: str) -> set[str]:
        """The network ids that have a state directory under ``confs``."""
        try:
            with os.scandir(confs) as entries:
                return {e.name for e in entries if is_network_id(e.name) and e.is_dir(follow_symlinks=False)}
        except FileNotFoundError:
            return set()

    def remove_directory(self, directory: str) -> None:
        shutil.rmtree(directory, ignore_errors=True)
        if os.path.exists(directory):
            raise DnsmasqError(f"{directory}: could not be removed")


def _ensure_dir(directory: str) -> None:
    missing = []
    path = Path(directory)
    while not path.exists():
        missing.append(path)
        path = path.parent
    for created in reversed(missing):
        created.mkdir(exist_ok=True)
        created.chmod(DIR_MODE)  # whatever the umask: dnsmasq, as nobody, must traverse it


def _atomic_write(path: str, content: str) -> None:
    tmp = f"{os.path.dirname(path)}/.{os.path.basename(path)}.tmp"
    with open(tmp, "w") as f:
        f.write(content)
    os.chmod(tmp, FILE_MODE)
    os.replace(tmp, path)


def untraversable(directory: str) -> str | None:
    """The first existing directory on the path to ``directory`` that others cannot traverse."""
    path = Path(directory).absolute()
    for candidate in (path, *path.parents):
        try:
            mode = candidate.stat().st_mode
        except OSError:
            continue
        if not mode & 0o001:
            return str(candidate)
    return None
