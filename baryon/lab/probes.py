"""Traffic between the lab's own namespaces: pings and TCP connections to a one-shot listener.

A place is a VM (``vm:NAME``: its namespace) or a node (``NAME``: its namespaces, as ``lab exec``).
The listener and the client are one-line Python programs run with this interpreter; the listener
reports the source address of what it accepted, so a probe tells not only whether a connection
got through but with which address it arrived (SNAT, DNAT).
"""

from __future__ import annotations

import select
import subprocess
import sys
import time
import uuid

from baryon.lab import host, vms
from baryon.lab.lab import Lab

# Prints "ready" once listening, then the peer's address and what it sent (or nothing on timeout).
LISTENER = ("import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
            "s.bind(('0.0.0.0', int(sys.argv[1]))); s.listen(1); print('ready', flush=True); "
            "s.settimeout(float(sys.argv[2])); c, a = s.accept(); c.settimeout(3); "
            "print(a[0], c.recv(100).decode(), flush=True)")
CLIENT = ("import socket,sys; c=socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[4])); "
          "c.sendall(sys.argv[3].encode()); c.close()")


def where(lab: Lab, place: str) -> list[str]:
    """The argv prefix that runs a command in ``place``."""
    if place.startswith("vm:"):
        return vms.exec_argv(lab, place[3:], [])
    return lab.place(lab.topology.node(place)).argv([])


def ping(lab: Lab, place: str, target: str, count: int = 1) -> bool:
    proc = host.run([*where(lab, place), "ping", "-n", "-c", str(count), "-W", "1", target], check=False,
                    timeout=count + 10)
    return proc.returncode == 0


def ping_within(lab: Lab, place: str, target: str, timeout: float) -> bool:
    """Ping until a reply comes (a path can need a moment after its ports went ACTIVE), or ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        if ping(lab, place, target):
            return True
        if time.monotonic() >= deadline:
            return False


def tcp_peer(lab: Lab, client: str, server: str, target: str, port: int, connect_timeout: float = 3) -> str | None:
    """Connect from ``client`` to ``target``:``port`` while ``server`` listens on ``port``: the source
    address the listener saw, or None when no connection arrived within ``connect_timeout``."""
    token = uuid.uuid4().hex[:10]
    listener = subprocess.Popen([*where(lab, server), sys.executable, "-c", LISTENER, str(port),
                                 str(connect_timeout + 1)],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        ready, _, _ = select.select([listener.stdout], [], [], 10)
        if not ready or listener.stdout.readline().strip() != "ready":  # type: ignore[union-attr]
            raise host.LabError(f"no listener on port {port} in {server}")
        host.run([*where(lab, client), sys.executable, "-c", CLIENT, target, str(port), token,
                  str(connect_timeout)], check=False, timeout=connect_timeout + 10)
        try:
            out, _ = listener.communicate(timeout=connect_timeout + 5)
        except subprocess.TimeoutExpired:
            return None
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.wait()
    words = out.split()
    return words[0] if len(words) == 2 and words[1] == token else None
