"""Bringing labs up and down: nothing left behind, the root namespace untouched, crashes recovered."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from tests.support.lab import BARYON, LabCli, root_snapshot

pytestmark = pytest.mark.lab


def _assert_nothing_left(lab: LabCli) -> None:
    assert lab.namespaces() == []
    assert lab.processes() == []
    assert lab.mounts() == []
    assert not lab.state_dir.exists()


def test_up_then_down_leaves_the_root_namespace_byte_for_byte_unchanged(fresh_lab: LabCli) -> None:
    before = root_snapshot()
    fresh_lab.up()
    with fresh_lab.api() as api:
        net = api.post("/networks", json={"network": {"name": "n"}}).json()["network"]
        api.post("/subnets", json={"subnet": {"network_id": net["id"], "cidr": "10.1.0.0/24",
                                              "ip_version": 4}}).raise_for_status()
    fresh_lab.run("vm", "create", "v1", "--node", "compute1", "--network", "n")
    fresh_lab.exec("network", "ip", "netns", "add", "qrouter-lifecycle")  # as an agent would
    assert fresh_lab.namespaces()
    assert fresh_lab.processes()
    out = fresh_lab.down().stdout
    assert "removed" in out
    _assert_nothing_left(fresh_lab)
    assert root_snapshot() == before
    # down is idempotent
    fresh_lab.down()
    _assert_nothing_left(fresh_lab)


def test_a_killed_up_is_recovered_by_the_next_up_and_cleaned_by_down(fresh_lab: LabCli) -> None:
    before = root_snapshot()
    proc = subprocess.Popen([*BARYON, "lab", "--state-dir", str(fresh_lab.state_dir), *fresh_lab.up_args()],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "nodes:" in line:  # namespaces and links made, OVS and the server not yet
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert fresh_lab.namespaces()
    fresh_lab.up()
    status = fresh_lab.status()
    assert status["up"] is True
    assert all(p["pid"] for n in status["nodes"] for p in n["processes"])
    fresh_lab.exec("compute1", "ping", "-c", "1", "-W", "2", "10.10.10.1")
    # Now a crash of everything: every daemon killed, the record of the lab gone; down still cleans up.
    for pid in fresh_lab.processes():
        os.kill(pid, signal.SIGKILL)
    (fresh_lab.state_dir / "lab.json").unlink()
    fresh_lab.down()
    _assert_nothing_left(fresh_lab)
    assert root_snapshot() == before


def test_up_refuses_a_port_in_use_and_leaves_a_clean_down(fresh_lab: LabCli) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", fresh_lab.api_port))
        busy.listen(1)
        proc = fresh_lab.run(*fresh_lab.up_args(), check=False)
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{fresh_lab.api_port}" in proc.stderr
    fresh_lab.down()
    _assert_nothing_left(fresh_lab)


def test_a_second_lab_never_adopts_or_removes_another_labs_namespaces(fresh_lab: LabCli, tmp_path) -> None:  # noqa: ANN001
    fresh_lab.up()
    pids = fresh_lab.pids()
    other = LabCli(tmp_path / "other-state", computes=1)
    other.prefix = fresh_lab.prefix  # the same prefix, another state directory
    proc = other.run(*other.up_args(), check=False)
    assert proc.returncode == 1
    assert "not this lab's" in proc.stderr
    # Its down, without lab.json and without --prefix, leaves namespaces it cannot know are its own.
    other.run("down")
    assert fresh_lab.pids() == pids
    assert fresh_lab.status()["up"] is True
    assert fresh_lab.namespaces()
