"""System tests: real labs (namespaces, Open vSwitch, the server), as root.

``hosts_lab`` / ``agents_lab``: one 2-compute lab without agents (the hosts alone) / with its
agents, for a whole module, brought down at the end even when tests fail. ``fresh_lab``: an unstarted 1-compute ``LabCli`` (no agents) whose
finalizer runs ``lab down`` whatever state it is in.

Labs live in a directory of their own under /tmp, not under pytest's (mode 0700): dnsmasq drops
its privileges to nobody and must reach its files there, as under /var/lib/baryon/lab.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.lab import LabCli


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="system tests build namespaces and Open vSwitch bridges: they need root")
        for item in items:
            if "tests/system/" in str(item.fspath):
                item.add_marker(skip)


@pytest.fixture(scope="module")
def lab_dirs() -> Iterator[list[Path]]:
    """Traversable directories for labs (0755), removed at the end of the module."""
    made: list[Path] = []
    yield made
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


def _new_dir(made: list[Path]) -> Path:
    path = Path(tempfile.mkdtemp(prefix="baryon-lab-test-", dir="/tmp"))
    path.chmod(0o755)
    made.append(path)
    return path / "state"


def _module_lab(made: list[Path], agents: bool) -> Iterator[LabCli]:
    cli = LabCli(_new_dir(made), computes=2, agents=agents)
    try:
        cli.up()
        yield cli
    finally:
        cli.down()
    # Nothing of the lab may outlive its down: not its agents' processes either (dnsmasq).
    assert cli.processes() == [], [Path(f"/proc/{pid}/cmdline").read_bytes()[:200] for pid in cli.processes()]
    assert cli.namespaces() == []


@pytest.fixture(scope="module")
def hosts_lab(lab_dirs: list[Path]) -> Iterator[LabCli]:
    yield from _module_lab(lab_dirs, agents=False)


@pytest.fixture(scope="module")
def agents_lab(lab_dirs: list[Path]) -> Iterator[LabCli]:
    yield from _module_lab(lab_dirs, agents=True)


@pytest.fixture
def fresh_lab() -> Iterator[LabCli]:
    made: list[Path] = []
    cli = LabCli(_new_dir(made), computes=1, agents=False)
    try:
        yield cli
    finally:
        cli.run("down", "--prefix", cli.prefix, check=False)
        for path in made:
            shutil.rmtree(path, ignore_errors=True)
