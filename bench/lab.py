#!/usr/bin/env python3
"""Benchmark of the lab: ``lab up`` and ``lab down``, a VM until it answers a ping, the idle lab's CPU.

    .venv/bin/python bench/lab.py [--runs 3] [--vms 3] [--idle 10] [--settle 5]
                                  [--write] [--results bench/RESULTS.md]

Run it as root, on demand (it is not part of the test suite), on an otherwise idle machine. It
drives the real command line (``.venv/bin/baryon lab ...``) as subprocesses, every lab in its own
state directory under one temporary directory in /tmp, with the namespace prefix ``bbench-`` and
the API on 127.0.0.1:9791, so that a user's lab (``blab-``, port 9696) is never touched. It
refuses to start when a ``bbench-`` namespace exists or the port is taken. Every lab it brings
up is taken down in ``finally`` (also on Ctrl-C or SIGTERM), and at the end it checks that no
``bbench-`` namespace, no process naming its directory and no mount under it is left (the rules
bench/labkit.py keeps for every lab benchmark).

What it measures:

1. the wall time of ``lab up`` and of ``lab down`` (the whole command, Python's start-up
   included) with 2 and with 8 computes, ``--runs`` times each, on empty labs (no network,
   no VM); min and median;
2. a VM until it answers: in a 2-compute lab, network ``bench`` with 10.0.0.0/24 through the
   API, VM ``peer`` on compute1, then for each of ``--vms`` VMs on compute1 the time from the
   start of ``vm create`` to the first ``vm exec peer -- ping -c1 -W1 <its address>`` that
   succeeds (the address from ``vm list --json``; each poll is a CLI start, whose floor,
   ``vm exec peer -- true``, is reported). The lab runs its agents: the OVS agent tags the new
   port with the network's local VLAN before br-int carries its traffic (bench/agent.py
   measures that path precisely, in-process, across nodes);
3. idle CPU: that lab with two VMs (``peer`` and the first timed one; the others deleted),
   after ``--settle`` seconds, over ``--idle`` seconds: utime+stime (/proc/PID/stat) of each
   node's ovsdb-server and ovs-vswitchd and of the server (PIDs from ``lab status --json``),
   and of every process inside the lab's namespaces, as % of one core.

``--write`` puts the result in ``--results`` as the section "## Lab (bench/lab.py)", replacing
that section if present (else appending it): date, machine, figures, and the targets of the lab's
issue (``lab up`` with 2 computes under 15 s; the idle lab under 5% of one core).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import labkit
from labkit import DOWN_TIMEOUT, UP_TIMEOUT, BenchError, lab_cli, verdict

PREFIX = "bbench-"
API_PORT = 9791
SECTION = "## Lab (bench/lab.py)"
BENCH = labkit.Bench("bench/lab", PREFIX, API_PORT, SECTION)
say = BENCH.say
CIDR = "10.0.0.0/24"
SIZES = (2, 8)  # computes of the labs whose up and down are timed
TARGET_UP_S = 15.0  # `lab up` with 2 computes
TARGET_IDLE_PCT = 5.0  # the idle lab, % of one core
PING_TIMEOUT = 30.0


# --------------------------------------------------------------------------- the command line


def timed(state_dir: Path, *args: str, timeout: float = labkit.CLI_TIMEOUT) -> tuple[float, str]:
    """(wall seconds, stdout) of one successful ``baryon lab`` command."""
    started = time.monotonic()
    out = lab_cli(state_dir, *args, timeout=timeout).stdout
    return time.monotonic() - started, out


@dataclass
class LabRun:
    state_dir: Path
    computes: int
    up_s: float | None = None
    down_s: float | None = None
    up_steps: list[str] = field(default_factory=list)  # the "[ 1.23s] ..." lines of `lab up`
    down_steps: list[str] = field(default_factory=list)


def _steps(stdout: str) -> list[str]:
    return [line.strip() for line in stdout.splitlines() if line.lstrip().startswith("[")]


@contextlib.contextmanager
def lab(base: Path, name: str, computes: int) -> Iterator[LabRun]:
    """A lab in ``base/name``, ``up`` and ``down`` timed; taken down whatever happens in between."""
    run = LabRun(base / name, computes)
    try:
        run.up_s, out = timed(run.state_dir, "up", "--prefix", PREFIX, "--api-port", str(API_PORT),
                              "--computes", str(computes), timeout=UP_TIMEOUT)
        run.up_steps = _steps(out)
        yield run
        run.down_s, out = timed(run.state_dir, "down", "--prefix", PREFIX, timeout=DOWN_TIMEOUT)
        run.down_steps = _steps(out)
    finally:
        if run.down_s is None:
            BENCH.down_regardless(run.state_dir)


# --------------------------------------------------------------------------- 1. up and down


@dataclass
class UpDown:
    computes: int
    up: list[float] = field(default_factory=list)
    down: list[float] = field(default_factory=list)
    up_steps: list[str] = field(default_factory=list)  # of the last run
    down_steps: list[str] = field(default_factory=list)


def measure_up_down(base: Path, computes: int, runs: int) -> UpDown:
    result = UpDown(computes)
    for i in range(1, runs + 1):
        with lab(base, f"updown-{computes}c-{i}", computes) as run:
            pass
        result.up.append(run.up_s)
        result.down.append(run.down_s)
        result.up_steps, result.down_steps = run.up_steps, run.down_steps
        say(f"{computes} computes, run {i}/{runs}: up {run.up_s:.2f} s, down {run.down_s:.2f} s")
    return result


# --------------------------------------------------------------------------- 2. a VM until it answers


@dataclass
class VmTiming:
    name: str
    address: str
    create_s: float  # the `vm create` command alone
    ping_s: float  # from the start of `vm create` to the end of the first ping that succeeded
    attempts: int  # pings until then


def vm_address(state_dir: Path, name: str) -> str:
    for vm in json.loads(lab_cli(state_dir, "vm", "list", "--json").stdout):
        if vm["name"] == name and vm["addresses"]:
            return vm["addresses"][0].split("/")[0]
    raise BenchError(f"`vm list --json` shows no address for VM {name}")


def ping_until_answered(state_dir: Path, address: str) -> int:
    """``vm exec peer -- ping -c1 -W1 ADDRESS`` until one succeeds; returns the number of pings."""
    pings = []

    def answered() -> bool:
        pings.append(lab_cli(state_dir, "vm", "exec", "peer", "--", "ping", "-c1", "-W1", address, check=False))
        return pings[-1].returncode == 0

    # every 50 ms: ping fails at once when there is no route: do not spin
    if not labkit.poll_until(answered, time.monotonic() + PING_TIMEOUT, 0.05):
        raise BenchError(f"{address} did not answer peer's ping in {PING_TIMEOUT:g} s ({len(pings)} pings): "
                         f"{(pings[-1].stdout + pings[-1].stderr).strip()}")
    return len(pings)


def time_vm(state_dir: Path, name: str) -> VmTiming:
    started = time.monotonic()
    lab_cli(state_dir, "vm", "create", name, "--node", "compute1", "--network", "bench")
    created = time.monotonic() - started
    address = vm_address(state_dir, name)
    attempts = ping_until_answered(state_dir, address)
    return VmTiming(name, address, created, time.monotonic() - started, attempts)


def exec_floor(state_dir: Path, samples: int = 5) -> float:
    """Median wall time of ``vm exec peer -- true``: what one poll costs besides the ping itself."""
    times = []
    for _ in range(samples):
        started = time.monotonic()
        lab_cli(state_dir, "vm", "exec", "peer", "--", "true")
        times.append(time.monotonic() - started)
    return statistics.median(times)


def measure_vms(state_dir: Path, count: int) -> tuple[list[VmTiming], float]:
    """Network, ``peer``, then ``count`` timed VMs on compute1; leaves ``peer`` and ``vm1``."""
    api = labkit.Api(API_PORT)
    with contextlib.closing(api):
        labkit.create_network(api, "bench", CIDR)
    lab_cli(state_dir, "vm", "create", "peer", "--node", "compute1", "--network", "bench")
    timings = []
    for i in range(1, count + 1):
        timings.append(time_vm(state_dir, f"vm{i}"))
        t = timings[-1]
        say(f"{t.name} ({t.address}): vm create {t.create_s:.2f} s, answered after {t.ping_s:.2f} s "
            f"({t.attempts} ping{'s' if t.attempts != 1 else ''})")
    floor = exec_floor(state_dir)
    for timing in timings[1:]:
        lab_cli(state_dir, "vm", "delete", timing.name)
    return timings, floor


# --------------------------------------------------------------------------- 3. idle CPU


@dataclass
class IdleCpu:
    seconds: float
    computes: int
    vms: int
    rows: list[tuple[str, str, int, float]]  # (process, node, PID, % of one core)
    lab_pct: float
    lab_processes: int
    machine_busy_pct: float  # of all the machine's CPUs, everything included


def _ns_inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except OSError:
        return None


def namespace_pids(state_dir: Path) -> set[int]:
    """Processes inside the lab: in one of its network namespaces or its nodes' mount namespaces."""
    net = {_ns_inode(p) for p in BENCH.namespaces()} - {None}
    mnt = {_ns_inode(p) for p in (state_dir / "ns").glob("*.mnt")} - {None}
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.stat(entry / "ns" / "net").st_ino in net or os.stat(entry / "ns" / "mnt").st_ino in mnt:
                found.add(int(entry.name))
        except OSError:
            continue
    return found


def measure_idle(state_dir: Path, seconds: float) -> IdleCpu:
    status = labkit.lab_status(state_dir)
    named = [(name, node, pid) for (node, name), pid in labkit.status_pids(status).items()]
    before_pids = namespace_pids(state_dir)
    window = labkit.sample_cpu(before_pids | {pid for _, _, pid in named}, seconds,
                               lambda: namespace_pids(state_dir))

    def pct(pid: int) -> float:
        # A process that appeared meanwhile counts from zero; one that vanished is not counted.
        return window.pct(pid) or 0.0

    lab_all = before_pids | window.joined
    return IdleCpu(window.seconds, status["computes"], len(status["vms"]),
                   [(name, node, pid, pct(pid)) for name, node, pid in named],
                   sum(pct(pid) for pid in lab_all), len(lab_all), window.machine_busy_pct)


# --------------------------------------------------------------------------- the whole run


@dataclass
class Results:
    runs: int
    updown: list[UpDown]
    vms: list[VmTiming]
    exec_floor_s: float
    idle: IdleCpu


def run_all(args: argparse.Namespace, base: Path) -> Results:
    updown = []
    for computes in SIZES:
        say(f"timing lab up / lab down with {computes} computes, {args.runs} runs")
        updown.append(measure_up_down(base, computes, args.runs))
    say(f"a 2-compute lab for VMs ({args.vms} timed) and idle CPU ({args.idle:g} s)")
    with lab(base, "vms-idle", 2) as run:
        timings, floor = measure_vms(run.state_dir, args.vms)
        say(f"letting the lab settle for {args.settle:g} s, then sampling CPU for {args.idle:g} s")
        time.sleep(args.settle)
        idle = measure_idle(run.state_dir, args.idle)
    return Results(args.runs, updown, timings, floor, idle)


# --------------------------------------------------------------------------- report


def _stats(values: list[float]) -> tuple[float, float, float]:
    return min(values), statistics.median(values), max(values)


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


def _updown_lines(r: Results) -> list[str]:
    lines = [f"{'measure':<28}{'runs':>5}{'min':>10}{'median':>10}{'max':>10}"]
    for size in r.updown:
        for what, values in (("up", size.up), ("down", size.down)):
            low, mid, high = _stats(values)
            lines.append(f"{f'lab {what}, {size.computes} computes':<28}{len(values):>5}"
                         f"{low:>9.2f}s{mid:>9.2f}s{high:>9.2f}s")
    for size in r.updown:
        lines += ["", f"steps of the last `lab up` / `lab down`, {size.computes} computes:"]
        lines += [f"  {step}" for step in size.up_steps] + [f"  {step}" for step in size.down_steps]
    return lines


def _vm_lines(r: Results) -> list[str]:
    lines = ["VMs on compute1 until `vm exec peer -- ping -c1 -W1` (peer on compute1 too) answers.",
             "The OVS agents run: a VM answers once its node's agent has tagged its port.",
             f"{'VM':<8}{'address':<12}{'vm create':>11}{'answered after':>16}{'pings':>7}"]
    for t in r.vms:
        lines.append(f"{t.name:<8}{t.address:<12}{t.create_s:>10.2f}s{t.ping_s:>15.2f}s{t.attempts:>7}")
    lines.append(f"{'median':<20}{statistics.median(t.create_s for t in r.vms):>10.2f}s"
                 f"{statistics.median(t.ping_s for t in r.vms):>15.2f}s")
    lines.append(f"(after `vm create`: one `vm list --json` and one `vm exec` per ping, each a CLI start; "
                 f"`vm exec peer -- true` takes {r.exec_floor_s:.2f} s)")
    return lines


def _idle_lines(r: Results, settle: float) -> list[str]:
    i = r.idle
    lines = [f"idle CPU over {i.seconds:.1f} s ({_plural(i.computes, 'compute')}, {_plural(i.vms, 'VM')}, "
             f"after {settle:g} s of settling), % of one core:",
             f"{'process':<16}{'node':<12}{'PID':>8}{'CPU':>9}"]
    lines += [f"{name:<16}{node:<12}{pid:>8}{pct:>8.2f}%" for name, node, pid, pct in i.rows]
    whole = f"the whole lab ({_plural(i.lab_processes, 'process', 'processes')})"
    lines.append(f"{whole:<36}{i.lab_pct:>8.2f}%")
    lines.append(f"machine busy during the sample: {i.machine_busy_pct:.1f}% of {os.cpu_count()} CPUs "
                 "(every process on the machine)")
    return lines


def targets(r: Results) -> tuple[str, str]:
    up2 = statistics.median(next(s for s in r.updown if s.computes == 2).up)
    return (f"`lab up` with 2 computes under {TARGET_UP_S:g} s: median {up2:.2f} s, {verdict(up2 < TARGET_UP_S)}",
            f"the idle lab under {TARGET_IDLE_PCT:g}% of one core: {r.idle.lab_pct:.2f}%, "
            f"{verdict(r.idle.lab_pct < TARGET_IDLE_PCT)}")


def report(r: Results, args: argparse.Namespace) -> str:
    lines = [f"Lab benchmark: prefix {PREFIX}, API {BENCH.api_url}, {_plural(r.runs, 'run')} per size", ""]
    lines += _updown_lines(r) + [""] + _vm_lines(r) + [""] + _idle_lines(r, args.settle) + [""]
    lines += ["targets: " + "; ".join(t.replace("**", "") for t in targets(r))]
    return "\n".join(lines)


# --------------------------------------------------------------------------- RESULTS.md


def section(r: Results, args: argparse.Namespace, m: dict, text: str) -> str:
    rows = []
    for size in r.updown:
        for what, values in (("up", size.up), ("down", size.down)):
            low, mid, _ = _stats(values)
            target = (f"under {TARGET_UP_S:g} s (median): {verdict(mid < TARGET_UP_S)}"
                      if (what, size.computes) == ("up", 2) else "")
            rows.append((f"`lab {what}`, {size.computes} computes: min / median of {len(values)}",
                         f"{low:.2f} s / {mid:.2f} s", target))
    rows.append((f"`vm create` until it answers a ping (same node), median of {len(r.vms)}",
                 f"{statistics.median(t.ping_s for t in r.vms):.2f} s (the command alone "
                 f"{statistics.median(t.create_s for t in r.vms):.2f} s)", ""))
    i = r.idle
    rows.append((f"idle lab ({i.computes} computes, {i.vms} VMs), all {i.lab_processes} processes, "
                 f"{i.seconds:.0f} s", f"{i.lab_pct:.2f}% of one core",
                 f"under {TARGET_IDLE_PCT:g}%: {verdict(i.lab_pct < TARGET_IDLE_PCT)}"))
    command = labkit.command_line("bench/lab.py", args, parse_args([]), ("vms", "idle", "settle"), always=("runs",))
    targets = (f"Targets from the lab's issue: `lab up` with 2 computes under {TARGET_UP_S:g} s; the idle lab "
               f"under {TARGET_IDLE_PCT:g}% of one core.")
    busy = f"- machine busy during the idle sample: {i.machine_busy_pct:.1f}% of its CPUs (everything on it)"
    return labkit.section(SECTION, "bench/lab.py", targets, m, command,
                          [busy, "", *labkit.table(("measure", "result", "target"), rows)], text)


# --------------------------------------------------------------------------- command line


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3, help="lab up/down cycles per size (2 and 8 computes)")
    p.add_argument("--vms", type=int, default=3, help="VMs timed from vm create to an answered ping")
    p.add_argument("--idle", type=float, default=10.0, help="seconds of the idle CPU sample")
    p.add_argument("--settle", type=float, default=5.0, help="seconds of quiet before the idle sample")
    BENCH.add_write_options(p)
    args = p.parse_args(argv)
    if args.runs < 1 or args.vms < 1 or args.idle <= 0 or args.settle < 0:
        p.error("--runs and --vms must be at least 1, --idle positive, --settle not negative")
    return args


def main(argv: list[str] | None = None) -> int:
    return BENCH.main(parse_args(argv), run_all, report, section, what="state directories",
                      interrupted="interrupted; the lab in progress was taken down")


if __name__ == "__main__":
    sys.exit(main())
