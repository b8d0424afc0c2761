"""The Baryon server on the lab's controller node.

It runs inside the controller's namespaces and listens there on the management network
(``10.20.0.2:9696``), where the nodes' agents reach it as they would across real hosts. Clients on
the machine reach it at ``http://127.0.0.1:<api-port>``: the lab opens that listener in the root
namespace (a loopback socket, nothing else changes there) and hands it to the server
(``--listen-fd``), so there is no proxy in between.

The lab also hands the server descriptors of the machine's network and mount namespaces (the
environment's ``BARYON_MACHINE_NS_FDS = "NET,MNT"``): the topology page's ``baryon debug port``
link runs the debug tool, which only reads, where the lab's namespaces and loopback API are
(``baryon.service.topology``); from the controller's namespaces neither is reachable.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from baryon.lab import host

MACHINE_NS_ENV = "BARYON_MACHINE_NS_FDS"  # read by baryon.service.topology
from baryon.lab.state import LabPaths
from baryon.lab.topology import Topology

NODE = "controller"


def pidfile(paths: LabPaths) -> Path:
    return paths.run(NODE) / "baryon-server.pid"


def pid(paths: LabPaths) -> int | None:
    return host.running(pidfile(paths), paths.marker)


def healthy(api_url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(api_url + "/", timeout=timeout) as response:
            return response.status == 200 and "versions" in json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return False


def _loopback_listener(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        raise host.LabError(f"cannot listen on 127.0.0.1:{port} for the lab's API ({exc.strerror}); "
                            "choose another with --api-port") from None
    sock.listen(256)
    return sock


def ensure_running(topology: Topology, paths: LabPaths, timeout: float = 60) -> int:
    """Start the server unless it runs; wait until it answers on the loopback URL. Returns its PID."""
    current = pid(paths)
    if current is not None:
        host.wait_for(lambda: healthy(topology.api_url), timeout, f"the server (PID {current}) to answer at "
                      f"{topology.api_url}")
        return current
    etc, log = paths.etc(NODE), paths.log(NODE)
    log.mkdir(parents=True, exist_ok=True)
    paths.run(NODE).mkdir(parents=True, exist_ok=True)
    listener = _loopback_listener(topology.api_port)
    place = host.Place(topology.node(NODE).netns, paths.mnt_file(NODE))
    argv = place.argv([sys.executable, "-m", "baryon", "server", "--config-file", str(etc / "neutron.conf"),
                       "--config-file", str(etc / "ml2_conf.ini"), "--listen-fd", str(listener.fileno())])
    machine = [os.open(f"/proc/self/ns/{kind}", os.O_RDONLY) for kind in ("net", "mnt")]
    try:
        with open(log / "baryon-server.log", "ab") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    pass_fds=(listener.fileno(), *machine), start_new_session=True,
                                    env={**os.environ, MACHINE_NS_ENV: ",".join(map(str, machine))})
    finally:
        listener.close()
        for fd in machine:
            os.close(fd)
    pidfile(paths).write_text(f"{proc.pid}\n")  # nsenter execs the server: same PID

    def up() -> bool:
        if proc.poll() is not None:
            tail = (log / "baryon-server.log").read_text(errors="replace").splitlines()[-15:]
            raise host.LabError(f"the server exited with status {proc.returncode}:\n  " + "\n  ".join(tail))
        return healthy(topology.api_url)

    host.wait_for(up, timeout, f"the server to answer at {topology.api_url}", interval=0.05)
    return proc.pid


def stop(paths: LabPaths) -> None:
    current = host.read_pid(pidfile(paths))
    if current is not None:
        host.stop_pid(current, paths.marker)
