"""The demo's summary: the table of checks, the verdict naming failures, the exit status."""

from __future__ import annotations

from baryon.demo.summary import CheckResult, check_line, exit_status, failed, render_summary, step_line

OK = CheckResult("VM <-> VM across the tunnel", True, 0.25, "demo-vm1 -> demo-vm2 10.0.0.7: reply")
BLOCKED = CheckResult("security group blocks tcp 8080", False, 3.0, "connected from 203.0.113.1")


def test_all_passed_exits_zero_and_says_so() -> None:
    text = render_summary([OK], build_seconds=2.04, total_seconds=6.66)
    assert text.splitlines() == [
        "  RESULT  TIME   CHECK                        SEEN",
        "  OK      0.25s  VM <-> VM across the tunnel  demo-vm1 -> demo-vm2 10.0.0.7: reply",
        "  all 1 checks passed (built in 2.0s, 6.7s in all)",
    ]
    assert exit_status([OK]) == 0


def test_a_failed_check_is_named_and_exits_non_zero() -> None:
    results = [OK, BLOCKED]
    text = render_summary(results, 2.0, 9.0)
    assert "  FAIL    3.00s  security group blocks tcp 8080  connected from 203.0.113.1" in text.splitlines()
    assert text.splitlines()[-1] == ("  1/2 checks passed; FAILED: security group blocks tcp 8080 "
                                     "(built in 2.0s, 9.0s in all)")
    assert failed(results) == ["security group blocks tcp 8080"]
    assert exit_status(results) == 1


def test_no_check_is_a_failure() -> None:
    assert exit_status([]) == 1
    assert render_summary([], 1.0, 1.0).splitlines()[-1] == "  no check ran: FAILED"


def test_lines_shown_as_the_demo_goes() -> None:
    assert check_line(OK) == "  OK     0.25s  VM <-> VM across the tunnel: demo-vm1 -> demo-vm2 10.0.0.7: reply"
    assert check_line(BLOCKED).startswith("  FAIL   3.00s  security group blocks tcp 8080: ")
    assert step_line("router demo-router", 0.04, "router 244ac749") == (
        "    0.04s  router demo-router  -> router 244ac749")
