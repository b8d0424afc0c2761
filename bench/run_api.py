#!/usr/bin/env python3
"""Run bench/api.py against a private Baryon on a private database, and record the result.

    .venv/bin/python bench/run_api.py [--backend mariadb|postgresql|sqlite] [--workers 2]
                                      [--duration 30] [--clients 8] [--ports 1000]
                                      [--results bench/RESULTS.md] [--no-record] [--keep]
                                      [--source worktree|committed|REV] [--wait-quiet SECONDS]
                                      [--retry-busy N]

Starts, in a fresh temporary directory: a private database server (``tests.support.databases``:
loopback only, own data directory and port; none for SQLite), then ``baryon server`` with its
own config file and a free port (``tests.support.server.BaryonServer``), runs ``bench/api.py``
against it with the server's PID, and stops everything it started (by PID, in ``finally``).
Unless ``--no-record``, appends a dated section to ``--results``: the machine, the versions,
the figures next to issue 2's targets and Neutron 29's reference figures, and api.py's table.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.databases import MariaDBServer, PostgreSQLServer  # noqa: E402
from tests.support.server import BaryonServer  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
import api  # noqa: E402

BACKENDS = {"mariadb": ("MariaDB", MariaDBServer), "postgresql": ("PostgreSQL", PostgreSQLServer),
            "sqlite": ("SQLite", None)}
DATABASE = "baryon_bench"
# The run creates ~220 networks and subnets and thousands of ports in one project: above
# Neutron's default quotas (100, 100, 500), as a benchmark deployment of Neutron would set them.
BUSY_OTHERS_PCT = 5.0  # --retry-busy: a run is redone when other processes took more of the CPU
QUOTAS = "[quotas]\nquota_network = -1\nquota_subnet = -1\nquota_port = -1\n"

# Issue 2, "Benchmark": targets on a 2-core machine with MariaDB, and Neutron 29 measured there
# (2 API workers, MariaDB).
TARGET_RATE, TARGET_CREATE_P50_MS, TARGET_LIST_MS = 200.0, 30.0, 200.0
NEUTRON = {"rate": "6", "create": "p50 330 ms", "list": "1.4 s", "rss": "1.3 GiB"}


# --------------------------------------------------------------------------- environment


def machine() -> dict:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:"))
    return {"nproc": os.cpu_count(), "cpu": cpu, "memory_gib": round(mem_kib / 2**20, 1),
            "kernel": platform.release(), "loadavg": Path("/proc/loadavg").read_text().split()[0]}


def database_version(backend: str, url: str) -> str:
    if backend == "sqlite":
        return f"SQLite {sqlite3.sqlite_version}"
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            version = conn.execute(sqlalchemy.text("SELECT version()")).scalar()
    finally:
        engine.dispose()
    name = BACKENDS[backend][0]
    version = str(version).split(" on x86_64", 1)[0].split(" on aarch64", 1)[0]  # PostgreSQL's build details
    return version if version.startswith(name) else f"{name} {version}"


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()


def worktree_revision() -> str:
    revision = git("rev-parse", "--short", "HEAD") or "unknown"
    if git("status", "--porcelain", "--", "baryon"):
        revision += " + uncommitted changes in baryon/"
    return revision


def committed_snapshot(dest: Path, rev: str = "HEAD") -> str:
    """``rev``'s ``baryon/`` exported into ``dest`` (for PYTHONPATH); returns its short hash."""
    revision = git("rev-parse", "--short", "--verify", f"{rev}^{{commit}}")
    if not revision:
        raise SystemExit(f"run_api: {rev!r} is not a commit of {ROOT}")
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", revision, "baryon"], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return revision


def versions(backend: str, url: str, revision: str) -> dict:
    import sqlalchemy

    return {"python": platform.python_version(), "sqlalchemy": sqlalchemy.__version__,
            "database": database_version(backend, url), "baryon": revision}


# --------------------------------------------------------------------------- the run


def run_bench(server: BaryonServer, args: argparse.Namespace, out: Path) -> tuple[dict, str]:
    """bench/api.py as its own process (as it is run against Neutron); returns (JSON, table)."""
    command = [sys.executable, str(ROOT / "bench" / "api.py"), server.endpoint,
               "--clients", str(args.clients), "--duration", str(args.duration), "--ports", str(args.ports),
               "--server-pid", str(server.process.pid), "--json", str(out)]
    budget = 3600 + args.duration  # a generous bound; api.py bounds each request itself
    result = subprocess.run(command, stdout=subprocess.PIPE, text=True, timeout=budget, check=False)
    print(result.stdout, end="")
    if not out.exists():
        raise SystemExit(f"run_api: bench/api.py exited with {result.returncode} and wrote no results")
    return json.loads(out.read_text()), result.stdout.strip()


def children_cpu_seconds() -> float:
    """CPU of this process's finished children (bench/api.py, once waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine_share(before: tuple, after: tuple) -> dict:
    """How busy the machine was during the benchmark, and how much of that was not ours
    (other sessions' tests, for instance): those figures are only comparable on a quiet machine."""
    (busy0, total0), ours0, bench0 = before
    (busy1, total1), ours1, bench1 = after
    total = max(total1 - total0, 1e-9)
    ours = (ours1 - ours0) + (bench1 - bench0)
    return {"busy_pct": round(100 * (busy1 - busy0) / total, 1), "ours_pct": round(100 * ours / total, 1),
            "others_pct": round(max(0.0, 100 * ((busy1 - busy0) - ours) / total), 1)}


def server_log_errors(server: BaryonServer) -> int:
    try:
        text = server.log.read_text(errors="replace")
    except OSError:
        return 0
    return sum(1 for line in text.splitlines() if "ERROR" in line or line.startswith("Traceback"))


@dataclass
class Stack:
    """What ``started`` runs: a database server (None for SQLite) and a Baryon server on it."""

    backend: str  # "MariaDB"
    base: Path
    database: MariaDBServer | PostgreSQLServer | None
    server: BaryonServer
    url: str  # the server's [database] connection
    revision: str  # of the Baryon code the server runs


@contextlib.contextmanager
def started(backend: str, workers: int, keep: bool = False, source: str = "worktree") -> Iterator[Stack]:
    """A private database and ``baryon server`` in a temporary directory; all stopped on exit.

    ``source``: ``worktree`` runs the checkout as it is (other people's unfinished edits
    included); ``committed`` (HEAD) or any git revision runs a snapshot of that commit's
    ``baryon/`` (first on the server's PYTHONPATH, ahead of the editable install)."""
    name, server_class = BACKENDS[backend]
    base = Path(tempfile.mkdtemp(prefix=f"baryon-bench-{backend}-"))
    database = server = None
    saved_pythonpath = os.environ.get("PYTHONPATH")
    try:
        if source != "worktree":
            revision = committed_snapshot(base / "src", "HEAD" if source == "committed" else source)
            os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(base / "src"), saved_pythonpath) if p)
        else:
            revision = worktree_revision()
        url = ""
        if server_class is not None:
            print(f"run_api: starting a private {name} server in {base}", file=sys.stderr, flush=True)
            database = server_class(base / backend)
            database.start()
            url = database.create_database(DATABASE)
        server = BaryonServer(base / "baryon", url, workers=workers, extra=QUOTAS)
        print(f"run_api: starting baryon server ({workers} workers)", file=sys.stderr, flush=True)
        server.start()
        yield Stack(name, base, database, server, url or f"sqlite:///{base / 'baryon' / 'state' / 'baryon.sqlite'}",
                    revision)
    finally:
        if saved_pythonpath is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved_pythonpath
        if server is not None:
            server.stop()
        if database is not None:
            database.stop()
        if keep:
            print(f"run_api: kept {base}", file=sys.stderr)
        else:
            shutil.rmtree(base, ignore_errors=True)


def wait_quiet(max_seconds: float, busy_pct: float = 15.0, window: float = 5.0, windows: int = 3) -> None:
    """Wait (at most ``max_seconds``) until the machine is under ``busy_pct`` busy for ``windows``
    consecutive windows of ``window`` seconds."""
    deadline = time.monotonic() + max_seconds
    quiet = 0
    while quiet < windows:
        busy0, total0 = api.machine_cpu_seconds()
        time.sleep(window)
        busy1, total1 = api.machine_cpu_seconds()
        busy = 100 * (busy1 - busy0) / max(total1 - total0, 1e-9)
        quiet = quiet + 1 if busy < busy_pct else 0
        if time.monotonic() > deadline:
            print(f"run_api: machine still {busy:.0f}% busy; running anyway", file=sys.stderr, flush=True)
            return
        if not quiet:
            print(f"run_api: machine {busy:.0f}% busy; waiting for it to be quiet", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> dict:
    with started(args.backend, args.workers, args.keep, args.source) as stack:
        if args.wait_quiet:
            wait_quiet(args.wait_quiet)
        record = {"date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "backend": stack.backend,
                  "workers": args.workers, "machine": machine(), "versions": versions(args.backend, stack.url, stack.revision)}
        ours = [stack.server.process.pid] + ([stack.database.pid] if stack.database and stack.database.pid else [])
        cpu_before = (api.machine_cpu_seconds(), api.tree_cpu_seconds(ours), children_cpu_seconds())
        record["results"], record["table"] = run_bench(stack.server, args, stack.base / "results.json")
        cpu_after = (api.machine_cpu_seconds(), api.tree_cpu_seconds(ours), children_cpu_seconds())
        record["machine_cpu"] = machine_share(cpu_before, cpu_after)
        record["server_log_errors"] = server_log_errors(stack.server)
        if stack.database is not None and stack.database.pid:
            record["database_rss"] = api.tree_rss([stack.database.pid])
        return record


# --------------------------------------------------------------------------- RESULTS.md

HEADER = """# Benchmark results

Appended by `bench/run_api.py` (one section per run, newest last); the benchmark is
`bench/api.py`, described in issue 2 ("Benchmark"). The load generator runs on the same machine
as the server and the database, so all three share its CPUs.
"""


def _ms(stat: dict | None) -> str:
    if not stat or not stat.get("n"):
        return "-"
    return f"{stat['p50_ms']:.1f} ms / {stat['p95_ms']:.1f} ms"


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def section(record: dict, args: argparse.Namespace) -> str:
    r = record["results"]
    lat, load, rss = r["latency"], r.get("throughput") or {}, r.get("rss") or {}
    m, v, cpu = record["machine"], record["versions"], record["machine_cpu"]
    create, listing = lat.get("create port") or {}, lat.get("list ports") or {}
    rate = load.get("ports_per_s", 0.0)
    target_note = "" if record["backend"] == "MariaDB" else " (the targets are stated for MariaDB)"

    def rss_mib(key: str) -> str:
        value = rss.get(key)
        value = value["bytes"] if isinstance(value, dict) else value
        return api.mib(value)

    rows = [
        ("port creates/s, {} clients, {:g} s".format(load.get("clients", args.clients), args.duration),
         f"{rate:.1f} ({load.get('created', 0)} created, {load.get('errors', '-')} errors)",
         f">= {TARGET_RATE:g}: {_verdict(rate >= TARGET_RATE)}", NEUTRON["rate"]),
        ("create port p50 / p95", _ms(create),
         f"p50 < {TARGET_CREATE_P50_MS:g} ms: {_verdict(create.get('p50_ms', 1e9) < TARGET_CREATE_P50_MS)}",
         NEUTRON["create"]),
        (f"list {listing.get('ports_returned', args.ports):,} ports p50 / p95", _ms(listing),
         f"< {TARGET_LIST_MS:g} ms: {_verdict(listing.get('p50_ms', 1e9) < TARGET_LIST_MS)}", NEUTRON["list"]),
        ("create network p50 / p95", _ms(lat.get("create network")), "", ""),
        ("create subnet p50 / p95", _ms(lat.get("create subnet")), "", ""),
        ("show port p50 / p95", _ms(lat.get("show port")), "", ""),
        ("create port under load p50 / p95", _ms(load.get("latency")), "", ""),
        *[(f"{name} p50 / p95", _ms(lat.get(name)), "", "") for name in api.L3_LATENCIES if lat.get(name)],
        ("server RSS before / after load / peak", f"{rss_mib('before')} / {rss_mib('after_load')} / "
                                                   f"{rss_mib('peak_during_load')}", "", NEUTRON["rss"]),
    ]
    if record.get("database_rss"):
        rows.append(("database server RSS at the end (sum over its processes)", api.mib(record["database_rss"]["bytes"]), "", ""))
    command = (f".venv/bin/python bench/run_api.py --backend {args.backend} --workers {args.workers} "
               f"--duration {args.duration:g}")
    if (args.clients, args.ports) != (8, 1000):
        command += f" --clients {args.clients} --ports {args.ports}"
    if args.source != "worktree":
        command += f" --source {args.source}"
    lines = [
        f"## {record['date']}: {record['backend']}, {record['workers']} API workers", "",
        f"- machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory_gib']} GiB RAM, Linux {m['kernel']}; "
        f"1-minute load average when the run started: {m['loadavg']}",
        f"- versions: Python {v['python']}, SQLAlchemy {v['sqlalchemy']}, {v['database']}; Baryon {v['baryon']}",
        f"- command: `{command}`",
        f"- CPU during the benchmark: machine {cpu['busy_pct']}% busy, of which this run (server, database, "
        f"load generator) {cpu['ours_pct']}% and other processes {cpu['others_pct']}%"
        + (f" (earlier attempts discarded, other processes took {record['discarded']}%)" if record.get("discarded") else ""),
        f"- server log: {record['server_log_errors']} error lines" + (f"; run failed: {r['error']}" if r.get("error") else ""),
        "", f"| measure | Baryon | issue 2 target{target_note} | Neutron 29 (MariaDB, 2 workers) |",
        "|---|---|---|---|",
        *[f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows],
        "", "```", record["table"], "```", "",
    ]
    return "\n".join(lines)


def append(path: Path, text: str) -> None:
    existing = path.read_text() if path.exists() else HEADER
    path.write_text(existing.rstrip("\n") + "\n\n" + text)


# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=sorted(BACKENDS), default="mariadb")
    p.add_argument("--workers", type=int, default=2, help="[DEFAULT] api_workers of the server")
    p.add_argument("--duration", type=float, default=30.0, help="seconds of the throughput phase")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--ports", type=int, default=1000)
    p.add_argument("--results", type=Path, default=ROOT / "bench" / "RESULTS.md")
    p.add_argument("--no-record", action="store_true", help="do not append to --results")
    p.add_argument("--source", default="worktree", metavar="worktree|committed|REV",
                   help="the Baryon code the server runs: the checkout as it is (default), HEAD's committed "
                        "baryon/, or that of a git revision (to compare commits on the same machine)")
    p.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                   help="first wait up to this long for the machine to be under 15%% busy (a shared machine)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, results.json)")
    p.add_argument("--retry-busy", type=int, default=0, metavar="N",
                   help="run again (up to N times) when other processes took over 5%% of the machine's CPU")
    args = p.parse_args(argv)
    discarded: list[float] = []
    while True:
        record = run(args)
        others = record["machine_cpu"]["others_pct"]
        if others <= BUSY_OTHERS_PCT or len(discarded) >= args.retry_busy:
            break
        discarded.append(others)
        print(f"run_api: other processes took {others}% of the CPU; running again", file=sys.stderr, flush=True)
    record["discarded"] = discarded
    text = section(record, args)
    if not args.no_record:
        append(args.results, text)
        print(f"run_api: appended to {args.results}", file=sys.stderr)
    else:
        print(text)
    failed = record["results"].get("error") or record["results"].get("cleanup", {}).get("failures")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
