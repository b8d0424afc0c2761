#!/usr/bin/env python3
"""Where a port create's time goes: SQL statements, CPU per process, and a py-spy profile.

    .venv/bin/python bench/profile_api.py [--backend mariadb|postgresql|sqlite] [--workers 2]
                                          [--duration 20] [--clients 8] [--ports 1000]
                                          [--statements 50] [--top 25] [--out DIR]
                                          [--source worktree|committed|REV] [--wait-quiet SECONDS]

Starts the same private stack as ``bench/run_api.py`` (database server + ``baryon server``),
puts ``--ports`` ports on a /16 network, then:
1. statements: ``--statements`` port creates, one at a time, traced in-process (the server's own
   ASGI app, built from the server's config file, on the same database, with a SQLAlchemy
   ``before_cursor_execute`` listener): statements per create, grouped by shape. Cross-checked
   against the database's own counters around the same creates on the real server (MariaDB
   ``SHOW GLOBAL STATUS`` ``Questions``/``Com_*``; PostgreSQL ``pg_stat_database``).
2. CPU: ``--clients`` clients create ports for ``--duration`` s (as bench/api.py's throughput
   phase); CPU seconds of the server (all its processes), the database server and this load
   generator, per port created.
3. profile: the same load again under ``py-spy record --subprocesses`` (on-CPU samples, raw
   collapsed stacks in DIR/pyspy.txt, loadable in speedscope); the top functions by self and
   by inclusive samples, and self samples per package.
Needs py-spy in the venv (``.venv/bin/pip install py-spy``) for step 3; skipped without it.
Writes its report to stdout and DIR/report.txt. Stops what it started (by PID); the private
database is thrown away with its temporary directory, so nothing is deleted one by one.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import api  # noqa: E402
import run_api  # noqa: E402

PYSPY = Path(sys.executable).with_name("py-spy")


# --------------------------------------------------------------------------- statements


def shape(statement: str) -> str:
    """A statement with its parameters and IN-lists folded, cut to a readable length."""
    text = re.sub(r"\s+", " ", statement).strip()
    text = re.sub(r"(%\(\w+\)s|%s|\?|\$\d+)(, (%\(\w+\)s|%s|\?|\$\d+))+", "?...", text)
    text = re.sub(r"%\(\w+\)s|%s|\$\d+", "?", text)
    return text[:150]


def trace_statements(stack: run_api.Stack, network_id: str, count: int) -> dict[str, dict]:
    """``count`` port creates, then one list of the network, through the server's app in this
    process; the statements each one sends, by shape."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # starlette's notice about httpx2
        from starlette.testclient import TestClient

    statements: list[str] = []
    snapshot = stack.base / "src"  # run_api.started(source="committed"): trace the code the server runs
    if snapshot.is_dir() and "baryon" not in sys.modules:
        sys.path.insert(0, str(snapshot))
    from baryon import config
    from baryon.api.app import create_app

    def listener(_conn, _cursor, statement, _params, _context, _many) -> None:  # noqa: ANN001
        statements.append(statement)

    def traced(fn: Callable[[], object], times: int) -> dict:
        statements.clear()
        for _ in range(times):
            fn()
        shapes = collections.Counter(shape(s) for s in statements)
        return {"per_request": len(statements) / times, "shapes": {k: v / times for k, v in shapes.most_common()}}

    app = create_app(config.load([str(stack.server.config)]))
    event.listen(Engine, "before_cursor_execute", listener)
    try:
        with TestClient(app) as client:
            def create() -> None:
                api.expect(client.post("/v2.0/ports", json={"port": {"network_id": network_id}}), 201, "create")

            def listing() -> None:
                api.expect(client.get(f"/v2.0/ports?network_id={network_id}"), 200, "list")

            create()  # warm-up
            return {"create port": traced(create, count), "list ports": traced(listing, 1)}
    finally:
        event.remove(Engine, "before_cursor_execute", listener)


def database_counters(stack: run_api.Stack) -> dict[str, int]:
    """The database's own statement/transaction counters (empty for SQLite)."""
    import sqlalchemy

    if stack.database is None:
        return {}
    engine = sqlalchemy.create_engine(stack.url)
    try:
        with engine.connect() as conn:
            if stack.backend == "MariaDB":
                rows = conn.execute(sqlalchemy.text(
                    "SHOW GLOBAL STATUS WHERE Variable_name IN ('Questions', 'Innodb_row_lock_waits', "
                    "'Innodb_row_lock_time') OR Variable_name LIKE 'Com\\_%'"))
            else:
                rows = conn.execute(sqlalchemy.text(
                    "SELECT unnest(ARRAY['xact_commit','xact_rollback','tup_returned','tup_fetched',"
                    "'tup_inserted','tup_updated','tup_deleted']), unnest(ARRAY[xact_commit,xact_rollback,"
                    "tup_returned,tup_fetched,tup_inserted,tup_updated,tup_deleted]) "
                    "FROM pg_stat_database WHERE datname = current_database()"))
            return {str(k): int(v) for k, v in rows}
    finally:
        engine.dispose()


def counted_creates(stack: run_api.Stack, network_id: str, count: int) -> dict[str, float]:
    """Per-create deltas of the database's counters around ``count`` creates on the real server."""
    with api.new_client(stack.server.endpoint, {}) as client:
        api.expect(client.get("/"), 200, "GET /")
        if stack.backend == "PostgreSQL":
            time.sleep(1.0)  # pg_stat_database is flushed by backends at most once a second
        before = database_counters(stack)
        for _ in range(count):
            api.expect(client.post("/v2.0/ports", json={"port": {"network_id": network_id}}), 201, "create")
    if stack.backend == "PostgreSQL":
        time.sleep(1.5)
    after = database_counters(stack)
    deltas = {k: (after[k] - before.get(k, 0)) / count for k in after}
    return {k: round(v, 2) for k, v in deltas.items() if v}


# --------------------------------------------------------------------------- CPU


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def load(stack: run_api.Stack, s: api.Settings, label: str) -> dict:
    bench = api.Bench(s)
    with api.new_client(s.endpoint, {}) as client:
        network_id, _ = bench.create_network(client, f"{label}-load")
        bench.create_subnet(client, network_id, api.LOAD_CIDR, f"{label}-load")
    db_pids = [stack.database.pid] if stack.database is not None and stack.database.pid else []
    server_pids = [stack.server.process.pid]
    counters_before = database_counters(stack)
    before = (api.tree_cpu_seconds(server_pids), api.tree_cpu_seconds(db_pids), own_cpu_seconds())
    result = api.Load(s, network_id, "profile-load").run()
    after = (api.tree_cpu_seconds(server_pids), api.tree_cpu_seconds(db_pids), own_cpu_seconds())
    if stack.backend == "PostgreSQL":
        time.sleep(1.5)  # pg_stat_database is flushed by backends at most once a second
    counters_after = database_counters(stack)
    server_cpu, db_cpu, own_cpu = (a - b for a, b in zip(after, before))
    created, elapsed = max(result["created"], 1), result["elapsed_s"]
    result["cpu"] = {
        "server_s": round(server_cpu, 2), "database_s": round(db_cpu, 2), "load_generator_s": round(own_cpu, 2),
        "server_ms_per_port": round(server_cpu * 1000 / created, 2),
        "database_ms_per_port": round(db_cpu * 1000 / created, 2),
        "load_generator_ms_per_port": round(own_cpu * 1000 / created, 2),
        "machine_busy_pct": round(100 * (server_cpu + db_cpu + own_cpu) / (elapsed * (os.cpu_count() or 1)), 1),
    }
    wanted = ("Questions", "Com_commit", "Com_rollback", "Innodb_row_lock_waits", "Innodb_row_lock_time",
              "xact_commit", "xact_rollback")
    result["database_per_port"] = {k: round((counters_after[k] - counters_before.get(k, 0)) / created, 3)
                                   for k in wanted if k in counters_after}
    return result


# --------------------------------------------------------------------------- py-spy


PROCESS_FRAME = re.compile(r'^process (\d+):"(.*?)";(?=[^;]* \()')


def split_stack(line: str) -> tuple[str, list[str], int] | None:
    """One raw (collapsed) py-spy line -> (process label, frames root first, samples)."""
    stack, _, count_text = line.rpartition(" ")
    if not stack or not count_text.isdigit():
        return None
    process = "?"
    while (m := PROCESS_FRAME.match(stack)) is not None:  # --subprocesses: parent;child;frames...
        process = "API worker" if "multiprocessing" in m.group(2) else "server main process"
        stack = stack[m.end():]
    frames = [f for f in stack.split(";") if not f.startswith("thread ")]
    return process, frames, int(count_text)


def frame_name(frame: str) -> str:
    """``func (path/module.py:123)`` -> ``func (path/module.py)``."""
    return re.sub(r":\d+\)$", ")", frame)


def package(frame: str) -> str:
    """The package of a frame, from py-spy's short path: ``baryon.service``, ``sqlalchemy.orm``,
    ``pymysql``, or a stdlib module (``socket``, ``threading``)."""
    m = re.match(r".* \((.*?)(?::\d+)?\)$", frame)
    parts = (m.group(1) if m else frame).split("/")
    if parts[0] in ("baryon", "sqlalchemy") and len(parts) > 2:
        return f"{parts[0]}.{parts[1]}"
    return parts[0].removesuffix(".py")


def analyse(raw: Path, top: int, within: str | None = None) -> str:
    """Top functions of a raw py-spy file; ``within``: only stacks through a frame starting so."""
    self_counts: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    packages: collections.Counter[str] = collections.Counter()
    processes: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()  # inclusive, Baryon's own functions only
    total = 0
    for line in raw.read_text().splitlines():
        parsed = split_stack(line)
        if parsed is None or not parsed[1]:
            continue
        process, frames, count = parsed
        if within is not None and not any(f.startswith(within) for f in frames):
            continue
        total += count
        processes[process] += count
        self_counts[frame_name(frames[-1])] += count
        packages[package(frames[-1])] += count
        for name in {frame_name(f) for f in frames}:
            inclusive[name] += count
            if name.endswith(".py)") and " (baryon/" in name:
                own[name] += count
    if not total:
        return "  (no samples)"

    def block(title: str, counter: collections.Counter[str], n: int = top) -> list[str]:
        return [f" {title}:"] + [f"  {100 * c / total:5.1f}%  {name}" for name, c in counter.most_common(n)]

    lines = [f" {total} samples; by process: " + ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in processes.items())]
    lines += block("self, by package", packages, 12)
    lines += block("self, by function", self_counts)
    lines += block("inclusive, Baryon's functions", own)
    lines += block("inclusive, by function", inclusive)
    return "\n".join(lines)


def spy(stack: run_api.Stack, duration: float, out: Path, name: str, mode: str,
        workload: Callable[[], dict]) -> tuple[dict, Path]:
    """``workload()`` under ``py-spy record --<mode>`` on every server process; (its result, raw file)."""
    raw = out / f"pyspy-{name}.txt"
    command = [str(PYSPY), "record", "--pid", str(stack.server.process.pid), "--subprocesses", "--format", "raw",
               f"--{mode}", "--rate", "100", "--duration", str(int(duration) + 2), "--output", str(raw)]
    with open(out / f"pyspy-{name}.log", "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        time.sleep(1.0)  # py-spy attaches to every process first
        result = workload()
        process.wait(timeout=duration + 60)
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)
    return result, raw


def list_load(s: api.Settings, network_id: str, duration: float) -> dict:
    """One client listing the filled network's ports, back to back, for ``duration`` seconds."""
    samples = []
    with api.new_client(s.endpoint, {}) as client:
        deadline = time.perf_counter() + duration
        while time.perf_counter() < deadline:
            response, seconds = api.timed(client, "GET", f"{api.V2}/ports?network_id={network_id}")
            api.expect(response, 200, "list ports")
            samples.append(seconds)
    return {"lists": len(samples), "latency": api.summary(samples)}


def profile(stack: run_api.Stack, s: api.Settings, network_id: str, out: Path, top: int) -> str:
    """py-spy over three workloads: the create load with ``--gil`` (where the server's Python CPU
    goes: only the thread holding the GIL is sampled), the create load with ``--idle`` (wall
    clock of the port-create request threads, waits included: database round trips, row locks,
    GIL), and back-to-back lists of the filled network with ``--gil``."""
    if not PYSPY.exists():
        return f"py-spy: not installed ({PYSPY}); `.venv/bin/pip install py-spy` to profile"
    list_seconds = min(s.duration, 15.0)
    runs = [
        ("create-cpu", "gil", "port creates, CPU (py-spy --gil)", None, s.duration,
         lambda: load(stack, s, "pyspy-gil")),
        ("create-wall", "idle", "port creates, wall clock of the request threads (py-spy --idle)",
         "Ports.create (", s.duration, lambda: load(stack, s, "pyspy-idle")),
        ("list-cpu", "gil", "list of the filled network, one client, CPU (py-spy --gil)", None, list_seconds,
         lambda: list_load(s, network_id, list_seconds)),
    ]
    lines = []
    for name, mode, title, within, duration, workload in runs:
        print(f"profile: {title}", file=sys.stderr, flush=True)
        result, raw = spy(stack, duration, out, name, mode, workload)
        meanwhile = (f"{result['ports_per_s']} ports/s, p50 {result['latency'].get('p50_ms')} ms" if "ports_per_s" in result
                     else f"{result['lists']} lists, p50 {result['latency'].get('p50_ms')} ms")
        lines += [f"{title}; meanwhile {meanwhile}; raw stacks: {raw}",
                  analyse(raw, top, within) if raw.exists() else f"  py-spy wrote nothing; see its log in {out}", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- the run


def fill(s: api.Settings, ports: int) -> str:
    bench = api.Bench(s)
    with api.new_client(s.endpoint, {}) as client:
        network_id, _ = bench.create_network(client, "profile")
        bench.create_subnet(client, network_id, api.LIST_CIDR, "profile")
    api.run_parallel(s, lambda c, _i: bench.create_port(c, network_id), ports)
    return network_id


def report(args: argparse.Namespace, stack: run_api.Stack, out: Path) -> str:
    s = api.Settings(stack.server.endpoint, args.clients, args.duration, args.ports, 0, 0, 0,
                     [stack.server.process.pid], {})
    print(f"profile: filling a network with {args.ports} ports", file=sys.stderr, flush=True)
    network_id = fill(s, args.ports)
    lines = [f"backend {stack.backend}, {args.workers} API workers, Baryon {stack.revision}, "
             f"{args.ports} ports on the traced network", ""]
    print("profile: tracing statements", file=sys.stderr, flush=True)
    for what, traced in trace_statements(stack, network_id, args.statements).items():
        lines.append(f"statements per {what} (in-process trace): {traced['per_request']:.1f}")
        lines += [f"  {n:5.2f}  {text}" for text, n in traced["shapes"].items()]
    counted = counted_creates(stack, network_id, args.statements)
    if counted:
        lines.append(f"database counters per port create (real server, {args.statements} creates): {counted}")
    print(f"profile: load, {args.clients} clients for {args.duration:g} s", file=sys.stderr, flush=True)
    result = load(stack, s, "cpu")
    lines += ["", f"load: {result['ports_per_s']} ports/s ({result['created']} created, {result['errors']} errors), "
                  f"latency p50 {result['latency'].get('p50_ms')} ms p95 {result['latency'].get('p95_ms')} ms",
              f"CPU during the load: {result['cpu']}",
              f"database counters per port created during the load: {result.get('database_per_port')}", ""]
    lines.append(profile(stack, s, network_id, out, args.top))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=sorted(run_api.BACKENDS), default="mariadb")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--duration", type=float, default=20.0)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--ports", type=int, default=1000)
    p.add_argument("--statements", type=int, default=50, help="port creates traced for statement counts")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--source", default="worktree", metavar="worktree|committed|REV",
                   help="the Baryon code the server (and the in-process statement trace) runs, as run_api.py's")
    p.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                   help="first wait up to this long for the machine to be under 15%% busy (a shared machine)")
    p.add_argument("--out", type=Path, help="directory for report.txt and pyspy.txt (default: a new temp dir)")
    args = p.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="baryon-profile-"))
    out.mkdir(parents=True, exist_ok=True)
    with run_api.started(args.backend, args.workers, source=args.source) as stack:
        if args.wait_quiet:
            run_api.wait_quiet(args.wait_quiet)
        text = report(args, stack, out)
    (out / "report.txt").write_text(text + "\n")
    print(text)
    print(f"profile: report in {out / 'report.txt'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
