"""System tests: real labs (namespaces, Open vSwitch, the server), as root.

``hosts_lab`` / ``agents_lab``: one 2-compute lab without agents (the hosts alone) / with its
agents, for a whole module, brought down at the end even when tests fail. ``fresh_lab``: an unstarted 1-compute ``LabCli`` (no agents) whose
finalizer runs ``lab down`` whatever state it is in.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.lab import LabCli


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="system tests build namespaces and Open vSwitch bridges: they need root")
        for item in items:
            if "tests/system/" in str(item.fspath):
                item.add_marker(skip)


def _module_lab(tmp_path_factory: pytest.TempPathFactory, agents: bool) -> Iterator[LabCli]:
    cli = LabCli(tmp_path_factory.mktemp("lab") / "state", computes=2, agents=agents)
    try:
        cli.up()
        yield cli
    finally:
        cli.down()


@pytest.fixture(scope="module")
def hosts_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabCli]:
    yield from _module_lab(tmp_path_factory, agents=False)


@pytest.fixture(scope="module")
def agents_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabCli]:
    yield from _module_lab(tmp_path_factory, agents=True)


@pytest.fixture
def fresh_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabCli]:
    cli = LabCli(tmp_path_factory.mktemp("lab") / "state", computes=1, agents=False)
    try:
        yield cli
    finally:
        cli.run("down", "--prefix", cli.prefix, check=False)
