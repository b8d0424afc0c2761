"""Drive a real lab through the ``baryon lab`` command, and observe the root namespace.

``LabCli`` runs the CLI as a user would (subprocesses, its own state directory, a unique
namespace prefix and a free API port, so a test lab never meets a user's). ``root_snapshot``
records what must never change in the machine's root network namespace.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import httpx

from tests.support.server import free_port

BARYON = [sys.executable, "-m", "baryon"]


class LabCli:
    def __init__(self, state_dir: Path, computes: int = 2, agents: bool = True) -> None:
        self.state_dir = state_dir
        self.agents = agents
        self.prefix = "bt" + uuid.uuid4().hex[:6] + "-"
        self.computes = computes
        self.api_port = free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"

    def run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([*BARYON, "lab", "--state-dir", str(self.state_dir), *args], capture_output=True,
                              text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"baryon lab {' '.join(args)}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    def up_args(self) -> list[str]:
        args = ["up", "--computes", str(self.computes), "--api-port", str(self.api_port), "--prefix", self.prefix]
        return args if self.agents else [*args, "--no-agents"]

    def up(self) -> subprocess.CompletedProcess[str]:
        return self.run(*self.up_args())

    def down(self) -> subprocess.CompletedProcess[str]:
        return self.run("down", "--prefix", self.prefix)

    def status(self) -> dict:
        return json.loads(self.run("status", "--json", check=False).stdout)

    def pids(self) -> dict[tuple[str, str], int | None]:
        return {(n["name"], p["name"]): p["pid"] for n in self.status()["nodes"] for p in n["processes"]}

    def exec(self, node: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("exec", node, "--", *cmd, check=check)

    def vm_exec(self, vm: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("vm", "exec", vm, "--", *cmd, check=check)

    def vms(self) -> dict[str, dict]:
        return {vm["name"]: vm for vm in json.loads(self.run("vm", "list", "--json").stdout)}

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.api_url + "/v2.0", timeout=30)

    def namespaces(self) -> list[str]:
        return sorted(p.name for p in Path("/run/netns").glob(self.prefix + "*"))

    def processes(self) -> list[int]:
        """PIDs of live processes whose command line names this lab's state directory."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    line = (entry / "cmdline").read_bytes().decode(errors="replace")
                except OSError:
                    continue
                if str(self.state_dir) in line and int(entry.name) != os.getpid():
                    found.append(int(entry.name))
        return found

    def mounts(self) -> list[str]:
        return [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if str(self.state_dir) in line]


def _out(argv: list[str]) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    return f"$ {' '.join(argv)} -> {proc.returncode}\n{proc.stdout}{proc.stderr}"


def root_snapshot() -> str:
    """The root namespace's interfaces, addresses, routes, rules, netfilter rules and forwarding sysctls."""
    parts = [_out(cmd) for cmd in (
        ["ip", "-d", "link", "show"], ["ip", "address", "show"], ["ip", "-4", "route", "show", "table", "all"],
        ["ip", "-6", "route", "show", "table", "all"], ["ip", "-4", "rule"], ["ip", "-6", "rule"],
        ["iptables-save"], ["ip6tables-save"], ["nft", "list", "ruleset"],
        ["sysctl", "net.ipv4.ip_forward", "net.ipv4.conf.all.forwarding", "net.ipv6.conf.all.forwarding"])]
    text = "\n".join(parts)
    return re.sub(r"^# (Generated|Completed) .*$", "# (timestamp)", text, flags=re.M)
