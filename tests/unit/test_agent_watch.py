"""The long-poll machinery without a server: the change bell, SeqWatch, until_changed, and the
agent API's query and body parsing."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import replace

import pytest

from baryon.api.routes.agentapi import parse_report, parse_seq, parse_wait
from baryon.api.watch import SeqWatch, until_changed
from baryon.model.host import HostView, RemotePort
from baryon.service import errors
from baryon.service.bell import ChangeBell
from baryon.service.portstatus import Report, RouterStatus


def run(coro):  # noqa: ANN001, ANN201
    return asyncio.run(asyncio.wait_for(coro, 10))


# ---------------------------------------------------------------- the bell


def test_wait_returns_at_once_when_the_bell_is_past() -> None:
    bell = ChangeBell()
    bell.ring(5)
    bell.ring(3)  # never backwards
    assert bell.seq == 5
    assert run(bell.wait(4, 5.0)) == 5


def test_wait_times_out() -> None:
    bell = ChangeBell()
    started = time.monotonic()
    assert run(bell.wait(0, 0.05)) == 0
    assert time.monotonic() - started >= 0.05


def test_ring_from_another_thread_wakes_the_waiter_promptly() -> None:
    bell = ChangeBell()

    async def scenario() -> tuple[int, float]:
        timer = threading.Timer(0.05, bell.ring, args=(7,))
        started = time.monotonic()
        timer.start()
        seq = await bell.wait(0, 5.0)
        return seq, time.monotonic() - started

    seq, elapsed = run(scenario())
    assert seq == 7 and elapsed < 1.0


def test_close_wakes_every_waiter_now_and_later() -> None:
    bell = ChangeBell()

    async def scenario() -> list[int]:
        waiters = [asyncio.ensure_future(bell.wait(0, 5.0)) for _ in range(3)]
        await asyncio.sleep(0.01)
        bell.close()
        return await asyncio.gather(*waiters, bell.wait(0, 5.0))

    assert run(scenario()) == [0, 0, 0, 0]
    assert bell.closed


# ---------------------------------------------------------------- the fallback poll


def test_seq_watch_sees_what_only_the_database_knows() -> None:
    """Another process's commit: nothing rings the bell but the poll of the sequence."""
    database = {"seq": 10}
    watch = SeqWatch(ChangeBell(), lambda: database["seq"], interval=0.01)

    async def scenario() -> tuple[int, int]:
        first = await watch.wait_past(10, 0.05)  # nothing new: times out
        asyncio.get_running_loop().call_later(0.05, database.update, {"seq": 12})
        return first, await watch.wait_past(10, 5.0)

    assert run(scenario()) == (10, 12)


# ---------------------------------------------------------------- until_changed


class Views:
    """A fake host: ``compute`` answers its current view; ``change`` commits a change."""

    def __init__(self, bell: ChangeBell):
        self.bell = bell
        self.view = HostView(host="h", seq=1).with_etag()
        self.computed = 0

    def compute(self, latest: int) -> HostView:
        self.computed += 1
        return self.view

    def change(self, relevant: bool) -> None:
        """A commit: the next sequence; a new remote port when ``relevant``."""
        seq = self.view.seq + 1
        content = self.view
        if relevant:
            content = replace(content, remote_ports=(*content.remote_ports,
                                                     RemotePort("net", "h2", "10.0.0.2", f"fa:16:3e:00:00:{seq:02x}")))
        self.view = replace(content, seq=seq).with_etag()
        self.bell.ring(seq)


async def connected() -> bool:
    return False


def test_a_different_etag_answers_at_once() -> None:
    bell = ChangeBell()
    views = Views(bell)
    watch = SeqWatch(bell, lambda: bell.seq)
    assert run(until_changed(views.compute, None, 30, watch, connected)) == views.view
    assert run(until_changed(views.compute, "stale", 30, watch, connected)) == views.view
    assert views.computed == 2


def test_an_irrelevant_change_keeps_waiting_and_a_relevant_one_answers() -> None:
    bell = ChangeBell()
    views = Views(bell)
    watch = SeqWatch(bell, lambda: bell.seq)
    etag = views.view.etag

    async def scenario() -> tuple[HostView, float]:
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, views.change, False)
        loop.call_later(0.15, views.change, True)
        started = time.monotonic()
        view = await until_changed(views.compute, etag, 30, watch, connected)
        return view, time.monotonic() - started

    view, elapsed = run(scenario())
    assert view.etag != etag and view.seq == 3
    assert elapsed < 1.0
    assert views.computed == 3  # the first look, then once per change


def test_the_wait_ends_with_a_fresh_look_and_the_same_etag() -> None:
    bell = ChangeBell()
    views = Views(bell)
    watch = SeqWatch(bell, lambda: bell.seq, interval=0.01)
    etag = views.view.etag

    async def scenario() -> HostView:
        asyncio.get_running_loop().call_later(0.02, views.change, False)
        return await until_changed(views.compute, etag, 0.1, watch, connected)

    view = run(scenario())
    assert (view.etag, view.seq) == (etag, 2)  # "unchanged up to seq 2"


def test_a_closed_bell_ends_the_wait() -> None:
    bell = ChangeBell()
    views = Views(bell)
    watch = SeqWatch(bell, lambda: bell.seq)

    async def scenario() -> float:
        asyncio.get_running_loop().call_later(0.05, bell.close)
        started = time.monotonic()
        await until_changed(views.compute, views.view.etag, 30, watch, connected)
        return time.monotonic() - started

    assert run(scenario()) < 1.0


# ---------------------------------------------------------------- parsing


def test_parse_wait() -> None:
    assert parse_wait(None) == parse_wait("") == 0.0
    assert parse_wait("2.5") == 2.5
    assert parse_wait("600") == 60.0
    for raw in ("-1", "soon", "nan", "inf"):
        with pytest.raises(errors.HTTPBadRequest):
            parse_wait(raw)


def test_parse_report() -> None:
    body = b'{"agent_type": "Open vSwitch agent", "seq": 7, "ports": {"p1": "ACTIVE", "p2": "DOWN"}}'
    assert parse_report(body) == Report("Open vSwitch agent", 7, {"p1": "ACTIVE", "p2": "DOWN"})
    assert parse_report(b'{"agent_type": "Open vSwitch agent", "seq": 0}') == Report("Open vSwitch agent", 0)
    assert parse_report(b'{"agent_type": "x", "seq": 3, "etag": "abc"}') == Report("x", 3, etag="abc")
    l3 = (b'{"agent_type": "L3 agent", "seq": 9, "routers": {"r1": {"status": "ACTIVE"}, "r2": {"status": "ERROR", '
          b'"reason": "no qg- device"}, "r3": {"status": "ERROR", "reason": ""}}, "floatingips": {"f1": "ACTIVE", '
          b'"f2": "DOWN", "f3": "ERROR"}}')
    assert parse_report(l3) == Report(
        "L3 agent", 9, routers={"r1": RouterStatus("ACTIVE"), "r2": RouterStatus("ERROR", "no qg- device"),
                                "r3": RouterStatus("ERROR")},
        floatingips={"f1": "ACTIVE", "f2": "DOWN", "f3": "ERROR"})
    for raw, message in (
        (b"[]", "not a JSON object"), (b"{", "Malformed request body"),
        (b'{"seq": 1}', "Required attribute 'agent_type' not specified"),
        (b'{"agent_type": "x"}', "Required attribute 'seq' not specified"),
        (b'{"agent_type": "x", "seq": -1}', "seq"), (b'{"agent_type": "x", "seq": true}', "seq"),
        (b'{"agent_type": "x", "seq": "3"}', "seq"), (b'{"agent_type": " ", "seq": 3}', "agent_type"),
        (b'{"agent_type": "x", "seq": 3, "ports": []}', "ports"),
        (b'{"agent_type": "x", "seq": 3, "ports": {"p": "UP"}}', "status 'UP' of port p"),
        (b'{"agent_type": "x", "seq": 3, "colour": 1}', "Unrecognized attribute(s) 'colour'"),
        (b'{"agent_type": "x", "seq": 3, "routers": []}', "routers"),
        (b'{"agent_type": "x", "seq": 3, "routers": {"r": "ACTIVE"}}', "of router r is not a dictionary"),
        (b'{"agent_type": "x", "seq": 3, "routers": {"r": {"status": "DOWN"}}}', "status 'DOWN' of router r"),
        (b'{"agent_type": "x", "seq": 3, "routers": {"r": {}}}', "status 'None' of router r"),
        (b'{"agent_type": "x", "seq": 3, "routers": {"r": {"status": "ERROR", "reason": 5}}}', "reason '5'"),
        (b'{"agent_type": "x", "seq": 3, "routers": {"r": {"status": "ACTIVE", "why": "x"}}}', "router r"),
        (b'{"agent_type": "x", "seq": 3, "floatingips": {"f": "BUILD"}}', "status 'BUILD' of floating IP f"),
        (b'{"agent_type": "x", "seq": 3, "floatingips": "f"}', "floatingips"),
        (b'{"agent_type": "x", "seq": 3, "etag": 5}', "etag"), (b'{"agent_type": "x", "seq": 3, "etag": ""}', "etag"),
    ):
        with pytest.raises(errors.HTTPBadRequest) as info:
            parse_report(raw)
        assert message in str(info.value), (raw, str(info.value))


def test_irrelevant_moves_of_the_log_do_not_end_the_wait() -> None:
    """Changes that leave the view as it was cost the agent nothing: no early answer to report on
    (the server counts it current by its etag); the answer at the end says how far it is current."""
    bell = ChangeBell()
    views = Views(bell)
    watch = SeqWatch(bell, lambda: bell.seq, interval=0.01)
    etag = views.view.etag

    async def scenario() -> tuple[HostView, float]:
        loop = asyncio.get_running_loop()
        for delay in (0.05, 0.1, 0.15):
            loop.call_later(delay, views.change, False)
        started = time.monotonic()
        view = await until_changed(views.compute, etag, 1.5, watch, connected)
        return view, time.monotonic() - started

    view, elapsed = run(scenario())
    assert (view.etag, view.seq) == (etag, 4) and elapsed >= 1.5


def test_parse_seq() -> None:
    assert parse_seq(None) is None and parse_seq("") is None and parse_seq("42") == 42
    for bad in ("-1", "x", "1.5"):
        with pytest.raises(errors.BadRequest):
            parse_seq(bad)
