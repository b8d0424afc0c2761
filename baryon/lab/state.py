"""Where the lab keeps what it made: the state directory's layout and ``lab.json``.

One directory holds everything of one lab (default ``/var/lib/baryon/lab``, or
``$BARYON_LAB_DIR``, or ``--state-dir``): ``lab.json`` (the parameters ``up`` was given, written
before anything is built, so that ``down`` after a crash knows what to remove), ``ns/`` (a
private bind mount holding each node's mount-namespace file), ``nodes/<node>/`` (configuration in
``etc/``, OVS database in ``db/``, sockets and pidfiles in ``run/``, logs in ``log/``, agent state
in ``lib/``), ``server/`` (the embedded SQLite database) and ``vms/<name>.json``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_STATE_DIR = "/var/lib/baryon/lab"
STATE_ENV = "BARYON_LAB_DIR"


def default_state_dir() -> Path:
    return Path(os.environ.get(STATE_ENV) or DEFAULT_STATE_DIR)


@dataclass(frozen=True)
class LabParams:
    """What ``lab up`` was asked for; the topology is derived from these alone."""

    prefix: str
    computes: int
    api_port: int
    agents: bool = True  # start the agents (False: the hosts alone, `lab up --no-agents`)


@dataclass(frozen=True)
class LabPaths:
    root: Path

    @property
    def lab_json(self) -> Path:
        return self.root / "lab.json"

    @property
    def ns_dir(self) -> Path:
        return self.root / "ns"

    def mnt_file(self, node: str) -> Path:
        return self.ns_dir / f"{node}.mnt"

    def node(self, node: str) -> Path:
        return self.root / "nodes" / node

    def etc(self, node: str) -> Path:
        return self.node(node) / "etc"

    def run(self, node: str) -> Path:
        return self.node(node) / "run"

    def db(self, node: str) -> Path:
        return self.node(node) / "db"

    def log(self, node: str) -> Path:
        return self.node(node) / "log"

    def lib(self, node: str) -> Path:
        return self.node(node) / "lib"

    @property
    def vms(self) -> Path:
        return self.root / "vms"

    def vm(self, name: str) -> Path:
        return self.vms / f"{name}.json"

    @property
    def marker(self) -> str:
        """The string every process the lab starts carries in its command line (see host.ours)."""
        return str(self.root)

    def read_params(self) -> LabParams | None:
        try:
            return LabParams(**json.loads(self.lab_json.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def write_params(self, params: LabParams) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        write_json(self.lab_json, asdict(params))


def write_json(path: Path, data: object) -> None:
    """Write atomically (temporary file + rename): a crash never leaves half a record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
