"""A real ``baryon server`` process for API tests: own config file, free port, own state dir.

Started with ``subprocess`` (the same command an operator runs), waited for by polling its
HTTP port, stopped by its PID (SIGTERM, then SIGKILL after a deadline), also when a test fails.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BARYON = str(Path(sys.executable).with_name("baryon"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_group(process: subprocess.Popen, timeout: float) -> None:
    """SIGTERM to the process group ``process`` leads (started with ``start_new_session``), SIGKILL
    after ``timeout`` seconds; waits for the leader either way."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout)


class BaryonServer:
    def __init__(self, base_dir: Path, connection: str = "", workers: int = 1, extra: str = "",
                 sections: str = ""):
        """``extra``: more [DEFAULT] lines; ``sections``: more INI sections, appended as given."""
        self.base_dir = base_dir
        self.connection = connection  # "": the embedded SQLite database under state_path
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.config = base_dir / "neutron.conf"
        self.log = base_dir / "server.log"
        base_dir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            f"[DEFAULT]\nbind_host = 127.0.0.1\nbind_port = {self.port}\napi_workers = {workers}\n"
            f"state_path = {base_dir / 'state'}\n{extra}\n[database]\nconnection = {connection}\n{sections}\n")
        self.process: subprocess.Popen | None = None
        self.start_args: list[str] = []  # more --config-file arguments, after the generated one
        self.pass_fds: tuple[int, ...] = ()  # descriptors the server inherits (e.g. for --listen-fd)

    def start(self, timeout: float = 60.0) -> "BaryonServer":
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([BARYON, "server", "--config-file", str(self.config), *self.start_args],
                                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True, pass_fds=self.pass_fds)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"baryon server exited with {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.endpoint + "/", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"baryon server did not answer in {timeout}s:\n{self.log.read_text()[-3000:]}")

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        # The server's own process group (start_new_session): its API workers go with it.
        stop_group(self.process, timeout)
