"""Check results, the lines shown as the demo goes, the summary table and the exit status. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class CheckResult:
    name: str  # "VM <-> VM across the tunnel"
    ok: bool
    seconds: float
    detail: str  # what was seen: "demo-vm1 10.0.0.5 -> demo-vm2 10.0.0.7: reply" / why it failed


def check_line(result: CheckResult) -> str:
    return f"  {'OK  ' if result.ok else 'FAIL'} {result.seconds:6.2f}s  {result.name}: {result.detail}"


def step_line(title: str, seconds: float, outcome: str) -> str:
    return f"  {seconds:6.2f}s  {title}" + (f"  -> {outcome}" if outcome else "")


def failed(results: Sequence[CheckResult]) -> list[str]:
    return [r.name for r in results if not r.ok]


def exit_status(results: Sequence[CheckResult]) -> int:
    """0 when every check passed (and there was at least one), else 1."""
    return 0 if results and not failed(results) else 1


def render_summary(results: Sequence[CheckResult], build_seconds: float, total_seconds: float) -> str:
    """The table of checks (result, time, name, what was seen) and a verdict naming the failures."""
    rows = [("RESULT", "TIME", "CHECK", "SEEN")]
    rows += [("OK" if r.ok else "FAIL", f"{r.seconds:.2f}s", r.name, r.detail) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  " + "  ".join([*(cell.ljust(w) for cell, w in zip(row[:3], widths)), row[3]]).rstrip()
             for row in rows]
    bad = failed(results)
    passed = len(results) - len(bad)
    timing = f"built in {build_seconds:.1f}s, {total_seconds:.1f}s in all"
    if not results:
        lines.append("  no check ran: FAILED")
    elif bad:
        lines.append(f"  {passed}/{len(results)} checks passed; FAILED: {', '.join(bad)} ({timing})")
    else:
        lines.append(f"  all {len(results)} checks passed ({timing})")
    return "\n".join(lines)
