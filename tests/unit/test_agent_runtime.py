"""The agent runtime's reports (``AgentRuntime._report``) and its loop's sleep (``_timeout``):
what is sent to the server after each run, and that a view already reported never keeps the
loop awake. The server side of the protocol is tested in tests/api/test_agent_runtime.py."""

from __future__ import annotations

from typing import Any

from baryon.agent.runtime import RESYNC_INTERVAL, AgentRuntime, Outcome


class Kind:
    agent_type, binary, topic, view_kind = "Open vSwitch agent", "neutron-openvswitch-agent", "N/A", "ovs"


class Server:
    """Stands for the server's status endpoint: keeps the bodies it was sent."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def report_status(self, host: str, agent_type: str, seq: int, ports: dict, etag: str = "",
                      **others: dict) -> dict:
        self.sent.append({"seq": seq, "etag": etag, "ports": ports, **others})
        return {"seq": seq, "updated": [], "ignored": []}


def runtime() -> tuple[AgentRuntime, Server]:
    server = Server()
    return AgentRuntime(Kind(), server, "h", report_interval=30), server  # type: ignore[arg-type]


def test_a_new_view_is_reported_with_its_etag_and_the_same_view_later_is_not() -> None:
    rt, server = runtime()
    rt.shared.publish("view", 5)
    rt._report(Outcome({"p": "ACTIVE"}), 5, "E1")
    assert server.sent == [{"seq": 5, "etag": "E1", "ports": {"p": "ACTIVE"}}]
    # The same view, known current to a later sequence (a long-poll's end): nothing to say, and
    # the loop sleeps until the next resync (it used to wake again at once, forever).
    rt.shared.publish(None, 9)
    rt._report(Outcome({"p": "ACTIVE"}), 9, "E1")
    assert len(server.sent) == 1
    assert rt._timeout(0) == RESYNC_INTERVAL
    # A new view: its sequence and etag are told (after STATUS_SEQ_INTERVAL, as before).
    rt.reported.at -= 5
    rt._report(Outcome({"p": "ACTIVE"}), 12, "E2")
    assert server.sent[-1] == {"seq": 12, "etag": "E2", "ports": {}}
    # A status change is told at once, whatever the view.
    rt._report(Outcome({"p": "DOWN"}), 12, "E2")
    assert server.sent[-1] == {"seq": 12, "etag": "E2", "ports": {"p": "DOWN"}}


def test_a_late_answer_older_than_a_catch_up_is_dropped() -> None:
    """The watch asked before a network cut; after it, the heartbeat's catch-up published a newer
    view; the watch's late answer (an older seq) must not take the view back in time."""
    from baryon.agent.runtime import Shared

    shared = Shared()
    etag, watch_asked = shared.asking()
    assert (etag, watch_asked) == ("", 0)
    _etag, catch_up_asked = shared.asking()
    shared.publish("view at 7", 7, "e7", catch_up_asked)  # the catch-up answers first
    shared.publish("view at 5", 5, "e5", watch_asked)  # the watch's late answer
    assert shared.take() == ("view at 7", 7)
    assert shared.asking()[0] == "e7"
    # An answer asked after the newest publication is never dropped, whatever it carries.
    _etag, asked = shared.asking()
    shared.publish("view at 9", 9, "e9", asked)
    assert shared.take() == ("view at 9", 9) and shared.asking()[0] == "e9"
    # "Unchanged" (no view) for a request overtaken since: the seq may move on, the etag stays ours.
    _etag, stale = shared.asking()
    shared.publish("view at 10", 10, "e10", stale)
    shared.publish(None, 10, "e-old", stale)
    assert shared.take() == ("view at 10", 10) and shared.asking()[0] == "e10"
