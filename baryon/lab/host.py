"""What the lab does to the machine: commands, network and mount namespaces, processes.

The only module of the lab (with ``ovs.py``, ``fabric.py`` and ``vms.py`` that call it) that runs
commands. Every function is idempotent and says so in its name: ``ensure_*`` converges,
``remove_*`` succeeds when the thing is already gone.

Processes are stopped by PID only, from pidfiles the lab wrote, and only when the process's
command line names the lab's state directory (a pidfile left behind cannot make the lab kill a
stranger that reused the PID). Nothing here touches the root network namespace: interfaces are
created inside the lab's namespaces (``ip -n NS link add ... peer ... netns OTHER``), never in the
root one and moved.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

NETNS_DIR = Path("/run/netns")


class LabError(RuntimeError):
    """A host operation failed; the message says which command and why."""


def run(argv: Sequence[str], *, check: bool = True, input: str | None = None,
        env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing its output; raise ``LabError`` with its stderr when it fails."""
    try:
        proc = subprocess.run(list(argv), input=input, capture_output=True, text=True, env=env,
                              timeout=timeout, check=False)
    except FileNotFoundError:
        raise LabError(f"{argv[0]}: command not found (run bin/setup --lab to install the lab's packages)") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"{' '.join(argv)}: no answer in {timeout:.0f} s") from None
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        raise LabError(f"{' '.join(argv)}: exit {proc.returncode}: {detail}")
    return proc


# ---------------------------------------------------------------- network namespaces (root's /run/netns)


def netns_path(name: str) -> Path:
    return NETNS_DIR / name


def list_netns(prefix: str) -> list[str]:
    """Names in the root's /run/netns that start with ``prefix``."""
    try:
        return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(prefix))
    except FileNotFoundError:
        return []


def ensure_netns(name: str) -> bool:
    """Create the namespace with its loopback up; True if it was created now."""
    if netns_path(name).exists():
        return False
    run(["ip", "netns", "add", name])
    run(["ip", "-n", name, "link", "set", "lo", "up"])
    return True


def remove_netns(name: str) -> None:
    if netns_path(name).exists():
        run(["ip", "netns", "delete", name], check=False)


def netns_inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except OSError:
        return None


# ---------------------------------------------------------------- per-node mount namespaces


def _mounts_under(directory: Path) -> list[str]:
    """Mount points at or under ``directory`` in our mount namespace, deepest first."""
    root = str(directory)
    points = []
    with open("/proc/self/mountinfo") as info:
        for line in info:
            point = line.split()[4].replace("\\040", " ")
            if point == root or point.startswith(root + "/"):
                points.append(point)
    return sorted(points, key=len, reverse=True)


def ensure_private_dir(directory: Path) -> None:
    """Make ``directory`` a private bind mount of itself: ``unshare --mount=FILE`` needs one."""
    directory.mkdir(parents=True, exist_ok=True)
    if str(directory) not in _mounts_under(directory):
        run(["mount", "--bind", str(directory), str(directory)])
    run(["mount", "--make-private", str(directory)])


def ensure_node_mountns(netns: str, mnt_file: Path) -> bool:
    """A persistent mount namespace for a node, bound to ``mnt_file``; True if created now.

    It gets its own tmpfs on /run/netns (so the ``qdhcp-``/``qrouter-`` namespaces the node's
    agents create are listed by ``ip netns ls`` on that node only) and a sysfs of the node's
    network namespace on /sys (so /sys/class/net shows the node's interfaces, as ``ip netns exec``
    arranges). The root's mounts are untouched: propagation is private.
    """
    if str(mnt_file) in _mounts_under(mnt_file.parent):
        return False
    mnt_file.touch()
    NETNS_DIR.mkdir(parents=True, exist_ok=True)
    run(["nsenter", f"--net={netns_path(netns)}", "--", "unshare", f"--mount={mnt_file}", "--propagation",
         "private", "--", "sh", "-c",
         "mount -t tmpfs -o mode=0755,size=1m baryon-netns /run/netns && mount -t sysfs sysfs /sys"])
    return True


def remove_mounts(directory: Path) -> None:
    """Unmount everything at or under ``directory`` (mount namespace files, the private bind)."""
    for point in _mounts_under(directory):
        run(["umount", "--lazy", point], check=False)


# ---------------------------------------------------------------- commands inside a node


@dataclass(frozen=True)
class Place:
    """Where a command runs: a network namespace, optionally a node's mount namespace and env."""

    netns: str
    mnt_file: Path | None = None
    env: tuple[tuple[str, str], ...] = ()

    def argv(self, command: Sequence[str]) -> list[str]:
        head = ["nsenter", f"--net={netns_path(self.netns)}"]
        if self.mnt_file is not None:
            head.append(f"--mount={self.mnt_file}")
        head.append("--")
        if self.env:
            head += ["env", *(f"{k}={v}" for k, v in self.env)]
        return head + list(command)

    def run(self, command: Sequence[str], **kwargs) -> subprocess.CompletedProcess[str]:  # noqa: ANN003
        return run(self.argv(command), **kwargs)

    def batch_ip(self, lines: Iterable[str]) -> None:
        """Several ``ip`` commands in one process (``ip -b -``): ~3x faster than one each."""
        text = "".join(line + "\n" for line in lines)
        if text:
            run(["ip", "-n", self.netns, "-b", "-"], input=text)


# ---------------------------------------------------------------- processes


def read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def ours(pid: int, marker: str) -> bool:
    """The process exists, is not a zombie, and its command line mentions ``marker`` (the state dir)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[1].split()[0] == "Z":
        return False
    return marker in cmdline(pid)


def running(pidfile: Path, marker: str) -> int | None:
    """The PID in ``pidfile`` if that process is alive and ours, else None."""
    pid = read_pid(pidfile)
    return pid if pid is not None and ours(pid, marker) else None


def stop_pid(pid: int, marker: str, timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout``; only if the process is ours."""
    stop_pids([pid], marker, timeout)


def stop_pids(pids: Iterable[int], marker: str, timeout: float = 5.0) -> None:
    """``stop_pid`` for several processes at once: SIGTERM to all, then wait, then SIGKILL the rest."""
    _terminate([pid for pid in pids if ours(pid, marker)], lambda pid: ours(pid, marker), timeout)


def _terminate(pids: list[int], alive: Callable[[int], bool], timeout: float) -> None:
    """SIGTERM ``pids``; after ``timeout`` SIGKILL those still ``alive``; wait (briefly) for them to go."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 2.0)):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while pids and time.monotonic() < deadline:
            pids = [pid for pid in pids if alive(pid)]
            if pids:
                time.sleep(0.02)
        if not pids:
            return


def pids_naming(marker: str) -> list[int]:
    """PIDs of live processes whose command line mentions ``marker`` (the lab's state directory):
    the lab's daemons and agents, and what the agents started (dnsmasq names its pidfile there)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid() and ours(int(entry.name), marker):
            found.append(int(entry.name))
    return found


def pids_in_namespaces(ns_inodes: set[int], kind: str = "net") -> list[int]:
    """PIDs of processes whose ``kind`` namespace is one of ``ns_inodes`` (e.g. a VM's ``udhcpc``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            inode = os.stat(entry / "ns" / kind).st_ino
        except OSError:
            continue
        if inode in ns_inodes and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


def kill_pids(pids: Iterable[int], timeout: float = 3.0) -> None:
    """Stop processes found inside the lab's own namespaces (they are ours by place)."""
    _terminate(list(pids), lambda pid: Path(f"/proc/{pid}").exists() and not _zombie(pid), timeout)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def wait_for(predicate, timeout: float, what: str, interval: float = 0.02):  # noqa: ANN001, ANN201
    """Poll ``predicate`` until it returns a truthy value; raise ``LabError`` naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise LabError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
