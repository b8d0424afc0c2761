"""The OVS agent's drivers on a real Open vSwitch (one per test, in its own namespace; root).

``Ovsdb`` talks to the node's ovsdb-server over its unix socket (the test runs in the root
namespace; tcp:127.0.0.1:6640 is reached from a thread that entered the node's namespace).
``OpenFlow`` drives the node's ovs-vswitchd through the bridges' management sockets.
"""

from __future__ import annotations

import ctypes
import os
import re
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import pytest

from baryon.agent.drivers.openflow import FlowChanges, OpenFlow, OpenFlowError, parse_diff, resolve_ports
from baryon.agent.plan.flows import LEARNED_COOKIE as LEARNED
from baryon.agent.drivers.ovsdb import Ovsdb, OvsdbError
from baryon.model.ovs import (AGENT_COOKIE, DeletePort, EnsureBridge, EnsurePort, ObservedBridge, ObservedPort,
                              ObservedSwitch, SetPortTag)
from tests.support.wait import eventually
from tests.support.ovs import OvsNode

T = TypeVar("T")

PORT_ID = "3f2a6c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"
QVO, QVB = "qvo" + PORT_ID[:11], "qvb" + PORT_ID[:11]
MAC = "fa:16:3e:12:34:56"
VXLAN = "vxlan-0a0a0a0b"
VXLAN_OPTIONS = (("df_default", "true"), ("dst_port", "4789"), ("egress_pkt_mark", "0"), ("in_key", "flow"),
                 ("local_ip", "10.10.10.10"), ("out_key", "flow"), ("remote_ip", "10.10.10.11"))

SWITCH_OPS = [
    EnsureBridge("br-int", "netdev", "secure"),
    EnsureBridge("br-tun", "netdev", "secure"),
    EnsurePort("br-int", "patch-tun", "patch", (("peer", "patch-int"),)),
    EnsurePort("br-tun", "patch-int", "patch", (("peer", "patch-tun"),)),
    EnsurePort("br-tun", VXLAN, "vxlan", VXLAN_OPTIONS),
]

C = f"cookie={AGENT_COOKIE:#x},"
# A few of Neutron's br-tun flows, ports by name, actions in the spelling ovs-vswitchd dumps back
# under OpenFlow 1.4 (see test_replace_flows_readds_flows_in_another_spelling).
TUNNEL_FLOWS = [
    C + "table=0,priority=1,in_port=patch-int,actions=resubmit(,2)",
    C + f"table=0,priority=1,in_port={VXLAN},actions=resubmit(,4)",
    C + "table=0,priority=0,actions=drop",
    C + "table=2,priority=0,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=resubmit(,22)",
    C + "table=4,priority=1,tun_id=0x64,actions=push_vlan:0x8100,set_field:4097->vlan_vid,resubmit(,10)",
    C + "table=10,priority=1,actions=learn(cookie=0xb4771,table=20,hard_timeout=300,priority=1,"
        "NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],"
        "load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:OXM_OF_IN_PORT[]),output:patch-int",
    C + f"table=22,priority=1,dl_vlan=1,actions=pop_vlan,set_field:0x64->tun_id,output:{VXLAN}",
]
# The same two flows in the older spellings (Neutron's): they work, but compare unequal.
LEGACY_FLOWS = [
    C + "table=4,priority=1,tun_id=0x65,actions=mod_vlan_vid:2,resubmit(,10)",
    C + f"table=22,priority=1,dl_vlan=2,actions=strip_vlan,set_tunnel:0x65,output:{VXLAN}",
]


def plug_vif(node: OvsNode) -> None:
    """As os-vif's hybrid plug: a qvb/qvo veth pair in the node, qvo on br-int with its external_ids."""
    node.run(["ip", "link", "add", QVB, "type", "veth", "peer", "name", QVO])
    node.run(["ip", "link", "set", QVB, "up"])
    node.run(["ip", "link", "set", QVO, "up"])
    node.vsctl("--", "--may-exist", "add-port", "br-int", QVO, "--", "set", "Interface", QVO,
               f"external_ids:iface-id={PORT_ID}", "external_ids:iface-status=active",
               f"external_ids:attached-mac={MAC}", "external_ids:vm-uuid=7d1f0e6a-vm")


def vsctl_get(node: OvsNode, table: str, record: str, column: str) -> str:
    return node.vsctl("--if-exists", "get", table, record, column).strip()


# ---------------------------------------------------------------- OVSDB


def test_observe_an_empty_switch(ovs_node: OvsNode) -> None:
    with Ovsdb(ovs_node.connection) as db:
        assert db.observe() == ObservedSwitch()


def test_apply_builds_the_switch_and_observe_reads_it_back_exactly(ovs_node: OvsNode) -> None:
    ovs_node.run(["ip", "link", "add", "qvo-early", "type", "veth", "peer", "name", "qvb-early"])
    with Ovsdb(ovs_node.connection) as db:
        db.apply([*SWITCH_OPS, EnsurePort("br-int", "qvo-early")])  # one transaction
        plug_vif(ovs_node)  # another client, later: os-vif
        observed = db.observe()

        assert observed.bridges == (ObservedBridge("br-int", "netdev", "secure"),
                                    ObservedBridge("br-tun", "netdev", "secure"))
        ports = {p.name: p for p in observed.ports}
        assert sorted(ports) == sorted(["br-int", "br-tun", "patch-tun", "patch-int", VXLAN, QVO, "qvo-early"])
        assert all(p.ofport and p.ofport > 0 for p in observed.ports), observed.ports
        assert ports["br-int"] == ObservedPort("br-int", "br-int", "internal", ofport=65534)
        assert ports["patch-tun"] == ObservedPort("patch-tun", "br-int", "patch", (("peer", "patch-int"),),
                                                  ofport=ports["patch-tun"].ofport)
        assert ports[VXLAN] == ObservedPort(VXLAN, "br-tun", "vxlan", VXLAN_OPTIONS, ofport=ports[VXLAN].ofport)
        assert ports[QVO] == ObservedPort(
            QVO, "br-int", "", (), (("attached-mac", MAC), ("iface-id", PORT_ID), ("iface-status", "active"),
                                    ("vm-uuid", "7d1f0e6a-vm")), ofport=ports[QVO].ofport)
        assert ports[QVO].iface_id == PORT_ID
        assert ports["qvo-early"].type == "" and ports["qvo-early"].bridge == "br-int"

        only_tun = db.observe(["br-tun"])
        assert [b.name for b in only_tun.bridges] == ["br-tun"]
        assert {p.name for p in only_tun.ports} == {"br-tun", "patch-int", VXLAN}

        uuid = vsctl_get(ovs_node, "Port", "patch-tun", "_uuid")
        db.apply([*SWITCH_OPS, EnsurePort("br-int", QVO)])  # again: nothing changes
        assert db.observe() == observed
        assert vsctl_get(ovs_node, "Port", "patch-tun", "_uuid") == uuid  # not re-created


def test_apply_converges_existing_rows(ovs_node: OvsNode) -> None:
    with Ovsdb(ovs_node.connection) as db:
        db.apply(SWITCH_OPS)
        db.apply([EnsureBridge("br-tun", "netdev", ""),
                  EnsurePort("br-tun", VXLAN, "vxlan", (("key", "flow"), ("remote_ip", "10.10.10.12"))),
                  EnsurePort("br-tun", "patch-tun", "patch", (("peer", "patch-int"),))])  # moves it
        observed = db.observe()
    assert observed.bridge("br-tun").fail_mode == ""
    assert observed.port(VXLAN).options == (("key", "flow"), ("remote_ip", "10.10.10.12"))
    assert observed.port("patch-tun").bridge == "br-tun"
    assert [p.name for p in observed.ports_on("br-int")] == ["br-int"]


def test_set_port_tag_sets_the_tag_and_merges_other_config(ovs_node: OvsNode) -> None:
    with Ovsdb(ovs_node.connection) as db:
        db.apply(SWITCH_OPS)
        plug_vif(ovs_node)
        ovs_node.vsctl("set", "Port", QVO, "other_config:keep=me")
        db.apply([SetPortTag(QVO, 1, (("net_uuid", "n1"), ("network_type", "vxlan"), ("segmentation_id", "100")))])
        db.apply([SetPortTag(QVO, 2, (("segmentation_id", "200"), ("tag", "2")))])
        db.apply([SetPortTag("qvo-unplugged", 3)])  # a VIF that is gone: nothing to do
        port = db.observe().port(QVO)
    assert port.tag == 2
    assert port.other_config == (("keep", "me"), ("net_uuid", "n1"), ("network_type", "vxlan"),
                                 ("segmentation_id", "200"), ("tag", "2"))
    assert port.iface_id == PORT_ID  # os-vif's external_ids untouched


def test_delete_port_removes_port_and_interface_and_succeeds_when_gone(ovs_node: OvsNode) -> None:
    with Ovsdb(ovs_node.connection) as db:
        db.apply(SWITCH_OPS)
        db.apply([DeletePort("br-tun", VXLAN), DeletePort("br-int", "patch-int")])  # wrong bridge: no-op
        db.apply([DeletePort("br-tun", VXLAN)])
        observed = db.observe()
    assert observed.port(VXLAN) is None and observed.port("patch-int").bridge == "br-tun"
    names = ovs_node.vsctl("--bare", "--columns=name", "list", "Interface").split()
    assert VXLAN not in names and "patch-int" in names  # unreferenced rows are collected


def test_apply_is_one_transaction_and_an_error_changes_nothing(ovs_node: OvsNode) -> None:
    with Ovsdb(ovs_node.connection) as db:
        bad = SetPortTag("p-ok", 5000)
        with pytest.raises(OvsdbError, match="5000 is not in the valid range") as info:
            db.apply([EnsureBridge("br-a", "netdev"), EnsurePort("br-a", "p-ok", "internal"), bad])
        assert info.value.op == bad and info.value.error == "constraint violation"
        with pytest.raises(OvsdbError, match="bridge br-missing does not exist"):
            db.apply([EnsurePort("br-missing", "p1", "internal")])
        assert db.observe() == ObservedSwitch()


def test_apply_rebuilds_when_another_client_changes_the_switch_meanwhile(ovs_node: OvsNode) -> None:
    with Ovsdb(ovs_node.connection) as db:
        db.apply([EnsureBridge("br-int", "netdev")])
        real, sent = db.transact, []

        def transact(*operations: dict) -> list:
            sent.append(operations)
            if len(sent) == 2:  # after apply's read, before its write: another client adds the port
                ovs_node.vsctl("add-port", "br-int", "p0", "--", "set", "Interface", "p0", "type=internal")
            return real(*operations)

        db.transact = transact  # type: ignore[method-assign]
        db.apply([EnsurePort("br-int", "p0", "internal", (("k", "v"),))])
        db.transact = real  # type: ignore[method-assign]
        port = db.observe().port("p0")
    assert port is not None and port.options == (("k", "v"),)
    writes = [ops for ops in sent if any(op["op"] != "select" and op["op"] != "wait" for op in ops)]
    assert len(writes) == 2  # the first, built on a stale read, was aborted by its guard


def test_apply_returns_as_soon_as_cur_cfg_passes_its_number_even_skipping_it(ovs_node: OvsNode) -> None:
    """ovs-vswitchd applies several clients' bumps at once and writes only the last: the wait
    must end at that write, not at a timeout. Here the test plays ovs-vswitchd."""
    ovs_node.stop_daemon("ovs-vswitchd")
    bumped = int(ovs_node.vsctl("get", "Open_vSwitch", ".", "next_cfg")) + 1  # the apply's own next_cfg

    def skip() -> None:
        eventually(lambda: int(ovs_node.vsctl("get", "Open_vSwitch", ".", "next_cfg")) >= bumped, timeout=5,
                   what="the apply's bump")
        time.sleep(0.3)
        ovs_node.vsctl("--no-wait", "set", "Open_vSwitch", ".", f"next_cfg={bumped + 1}", f"cur_cfg={bumped + 1}")

    player = threading.Thread(target=skip)
    with Ovsdb(ovs_node.connection, timeout=5) as db:
        player.start()
        started = time.monotonic()
        db.apply([EnsureBridge("br-int", "netdev", "secure")])
        waited = time.monotonic() - started
    player.join()
    assert 0.3 <= waited < 0.9, waited  # the write woke it (a 1 s server-side wait would have run out)


def test_ovsdb_over_tcp_inside_the_namespace(ovs_node: OvsNode) -> None:
    def observe_over_tcp() -> ObservedSwitch:
        with Ovsdb(ovs_node.tcp, timeout=5) as db:
            db.apply([EnsureBridge("br-int", "netdev")])
            return db.observe()

    observed = in_netns(ovs_node.netns, observe_over_tcp)
    assert [b.name for b in observed.bridges] == ["br-int"]


def in_netns(netns: str, fn: Callable[[], T]) -> T:
    """``fn()`` in a thread that entered ``netns`` (a thread's network namespace is its own)."""
    libc = ctypes.CDLL(None, use_errno=True)
    result: dict[str, object] = {}

    def target() -> None:
        fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
        try:
            if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
                raise OSError(ctypes.get_errno(), "setns")
            result["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            result["error"] = exc
        finally:
            os.close(fd)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(30)
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return result["value"]  # type: ignore[return-value]


# ---------------------------------------------------------------- the watch


def test_watch_fires_on_changes_and_after_ovsdb_server_restarts(ovs_node: OvsNode) -> None:
    calls: list[float] = []
    with Ovsdb(ovs_node.connection, timeout=5) as db:
        db.apply(SWITCH_OPS)
        watch = db.watch(lambda: calls.append(time.monotonic()))
        assert calls == []  # not for the initial contents

        start = time.monotonic()
        ovs_node.vsctl("--no-wait", "add-port", "br-int", "p1", "--", "set", "Interface", "p1", "type=internal")
        eventually(lambda: calls, timeout=1, what="a callback for another client's add-port")
        assert calls[0] - start < 1

        before = len(calls)
        old_pid = ovs_node.pid("ovsdb-server")
        ovs_node.stop_daemon("ovsdb-server")
        ovs_node.start_ovsdb()  # same database file, same socket
        assert ovs_node.pid("ovsdb-server") not in (None, old_pid)
        eventually(lambda: len(calls) > before and watch.connections == 2, timeout=5,
                   what="a callback after the watch reconnected")

        before = len(calls)
        ovs_node.vsctl("--no-wait", "set", "Port", "p1", "tag=7")  # not watched: the agent's own column
        ovs_node.vsctl("--no-wait", "set", "Interface", "p1", "external_ids:iface-id=x")
        eventually(lambda: len(calls) > before, timeout=1, what="a callback on the new connection")
        assert db.observe().port("p1").tag == 7  # the client's own connection recovered too
    assert not watch.running
    assert not [t for t in threading.enumerate() if t.name.startswith("ovsdb-watch")]


def test_a_replicating_watch_observes_what_a_read_does_own_writes_included(ovs_node: OvsNode) -> None:
    calls: list[float] = []
    with Ovsdb(ovs_node.connection, timeout=5) as db, Ovsdb(ovs_node.connection, timeout=5) as reader:
        db.apply(SWITCH_OPS)
        watch = db.watch(lambda: calls.append(time.monotonic()), replicate=True)
        assert watch.observe() == db.observe() == reader.observe()  # reader: no watch, it reads the tables
        assert calls == []  # not for the initial contents

        plug_vif(ovs_node)  # another client's VIF: it wakes, and the replica follows
        eventually(lambda: calls, timeout=1, what="a callback for the VIF plugged")
        assert watch.observe() == reader.observe()
        assert watch.observe().port(QVO).ofport

        woken = len(calls)
        db.apply([SetPortTag(QVO, 5, (("net_uuid", "n1"),))])  # built on the replica; then seen at once ...
        observed = db.observe()
        assert observed.port(QVO).tag == 5 and dict(observed.port(QVO).other_config) == {"net_uuid": "n1"}
        assert len(calls) == woken  # ... without waking anyone
        other_remote = tuple((k, "10.10.10.12" if k == "remote_ip" else v) for k, v in VXLAN_OPTIONS)
        db.apply([DeletePort("br-tun", VXLAN), EnsurePort("br-tun", "vxlan-0a0a0a0c", "vxlan", other_remote)])
        assert db.observe() == reader.observe()
        assert db.observe(["br-tun"]) == reader.observe(["br-tun"])

        ovs_node.stop_daemon("ovsdb-server")
        eventually(lambda: not watch.connected, what="the watch to lose its server")
        assert watch.observe() is None and watch.existing() is None  # the client reads the tables meanwhile
        ovs_node.start_ovsdb()
        assert db.observe() == reader.observe()
        eventually(lambda: watch.connections == 2, timeout=5, what="the watch to reconnect")
        ovs_node.vsctl("--no-wait", "set", "Port", QVO, "tag=9")  # the new monitor keeps following
        assert watch.observe() == reader.observe()
        assert watch.observe().port(QVO).tag == 9


def test_watch_stops_cleanly_while_the_server_is_down(ovs_node: OvsNode) -> None:
    with Ovsdb(ovs_node.connection, timeout=5) as db:
        watch = db.watch(lambda: None)
        ovs_node.stop_daemon("ovsdb-server")
        eventually(lambda: not watch.connected, what="the watch to lose its server")
        started = time.monotonic()
        watch.stop()
        assert not watch.running and time.monotonic() - started < 1


# ---------------------------------------------------------------- OpenFlow


def durations(flows: list[str]) -> list[float]:
    return [float(re.search(r"duration=([0-9.]+)s", f).group(1)) for f in flows]  # type: ignore[union-attr]


def ages(of: OpenFlow, bridge: str) -> dict[str, float]:
    """Each flow (as dumped without stats) -> its duration in seconds."""
    return dict(zip(of.dump_flows(bridge), durations(of.dump_flows(bridge, stats=True)), strict=True))


def rules(flows: tuple[str, ...]) -> list[str]:
    """Flows as ``FlowChanges`` holds them, without their actions."""
    return [flow.split(" actions=")[0] for flow in flows]


def learn_a_mac(node: OvsNode, mac: str = MAC) -> str:
    """A packet from the tunnel through table 10: its learn() adds a table-20 flow (cookie 0xb4771)."""
    node.run(["ovs-appctl", "-t", str(node.rundir / "ovs-vswitchd.ctl"), "ofproto/trace", "br-tun",
              f"in_port={VXLAN},tun_id=0x64,dl_src={mac},dl_dst=ff:ff:ff:ff:ff:ff", "-generate"])
    return f"dl_dst={mac}"


def learned(of: OpenFlow) -> list[str]:
    return [f for f in of.dump_flows("br-tun") if f.startswith(f"cookie={LEARNED:#x},")]


def commands(of: OpenFlow) -> list[str]:
    """Record the ovs-ofctl commands ``of`` runs from now on (they still run)."""
    ran: list[str] = []
    real = of._run

    def spy(bridge: str, command: str, *args: str, **kwargs: object):  # noqa: ANN202
        ran.append(command)
        return real(bridge, command, *args, **kwargs)  # type: ignore[arg-type]

    of._run = spy  # type: ignore[method-assign]
    return ran


@pytest.fixture
def of(ovs_node: OvsNode) -> OpenFlow:
    """br-int and br-tun with their patch ports and a vxlan port; their flow tables empty."""
    with Ovsdb(ovs_node.connection) as db:
        db.apply(SWITCH_OPS)
    return OpenFlow(ovs_node.rundir)


def test_replace_flows_leaves_unchanged_flows_alone(of: OpenFlow) -> None:
    changes = of.replace_flows("br-tun", TUNNEL_FLOWS)
    assert len(changes.added) == len(TUNNEL_FLOWS) and changes.deleted == ()
    installed = of.dump_flows("br-tun")
    assert len(installed) == len(TUNNEL_FLOWS) == of.flow_count("br-tun")
    assert any('in_port="patch-int"' in f for f in installed)  # names resolved, and shown
    assert any("table=4" in f and "tun_id=0x64" in f for f in installed)
    assert any("learn(table=20" in f for f in installed)

    eventually(lambda: min(durations(of.dump_flows("br-tun", stats=True))) >= 0.5, what="flows 0.5 s old")
    ran = commands(of)
    assert not of.replace_flows("br-tun", TUNNEL_FLOWS)  # identical: no change ...
    assert "add-flows" not in ran  # ... and no bundle sent
    assert min(durations(of.dump_flows("br-tun", stats=True))) >= 0.5
    assert of.dump_flows("br-tun") == installed

    changed = [*TUNNEL_FLOWS[:-1], C + f"table=22,priority=1,dl_vlan=2,actions=pop_vlan,set_field:0x65->tun_id,"
               f"output:{VXLAN}"]
    changes = of.replace_flows("br-tun", changed)
    assert rules(changes.added) == [f"table=22 priority=1,dl_vlan=2 cookie={AGENT_COOKIE:#x}"]
    assert rules(changes.deleted) == [f"table=22 priority=1,dl_vlan=1 cookie={AGENT_COOKIE:#x}"]
    after = ages(of, "br-tun")
    assert [age for flow, age in after.items() if "dl_vlan=2" in flow][0] < 0.5  # the new one
    assert min(age for flow, age in after.items() if "dl_vlan=2" not in flow) >= 0.5  # the others, untouched
    assert not any("dl_vlan=1" in flow for flow in after) and of.flow_count("br-tun") == len(changed)


def test_replace_flows_modifies_a_flow_whose_actions_changed_in_place(of: OpenFlow) -> None:
    of.replace_flows("br-tun", TUNNEL_FLOWS)
    changed = [f.replace("output:patch-int", "output:patch-int,output:" + VXLAN) if "table=10," in f else f
               for f in TUNNEL_FLOWS]
    changes = of.replace_flows("br-tun", changed)
    assert len(changes.added) == 1 and changes.deleted == ()  # one add replaces the flow of the same rule
    assert of.flow_count("br-tun") == len(TUNNEL_FLOWS)
    assert [f for f in of.dump_flows("br-tun") if "table=10" in f][0].endswith(f'output:"patch-int",output:"{VXLAN}"')
    assert not of.diff_flows("br-tun", changed)


def test_replace_flows_readds_flows_in_another_spelling(of: OpenFlow) -> None:
    """Flows are compared as parsed, not as the switch encodes them: ``mod_vlan_vid``, ``strip_vlan``,
    ``set_tunnel``, ``mod_dl_src``, ``load:...->NXM_...`` come back from an OpenFlow 1.4 switch as
    ``push_vlan``/``set_field``/``pop_vlan`` and never compare equal, so each replace re-adds them
    (harmless to traffic, but counters and durations restart): the planner must not write them."""
    of.replace_flows("br-tun", TUNNEL_FLOWS + LEGACY_FLOWS)
    eventually(lambda: min(ages(of, "br-tun").values()) >= 0.5, what="flows 0.5 s old")
    changes = of.replace_flows("br-tun", TUNNEL_FLOWS + LEGACY_FLOWS)
    assert len(changes.added) == len(LEGACY_FLOWS) and changes.deleted == ()
    after = ages(of, "br-tun")
    assert sorted(flow for flow, age in after.items() if age < 0.5) == sorted(
        flow for flow in after if "dl_vlan=2" in flow or "tun_id=0x65" in flow)
    assert len(after) == len(TUNNEL_FLOWS + LEGACY_FLOWS)


def test_replace_flows_leaves_learned_and_foreign_flows_alone(ovs_node: OvsNode, of: OpenFlow) -> None:
    of.replace_flows("br-tun", TUNNEL_FLOWS)
    mac = learn_a_mac(ovs_node)
    assert len(learned(of)) == 1 and "table=20" in learned(of)[0] and mac in learned(of)[0]
    # Someone else's flow, with a rule of its own and a cookie that is not ours.
    of._run("br-tun", "add-flow", "cookie=0x42,table=30,priority=7,ip,actions=drop")
    # A flow of ours that the agent no longer wants (a crash between two replaces, an older agent).
    of._run("br-tun", "add-flow", C + "table=20,priority=2,dl_vlan=9,dl_dst=fa:16:3e:99:99:99,actions=drop")
    assert of.flow_count("br-tun") == len(TUNNEL_FLOWS) + 1
    learned_before = learned(of)

    changed = [f.replace("resubmit(,22)", "resubmit(,21)") for f in TUNNEL_FLOWS]  # changes table 2's flow
    changes = of.replace_flows("br-tun", changed)
    assert len(changes.added) == 1 and len(changes.deleted) == 1 and "dl_vlan=9" in changes.deleted[0]
    assert learned(of) == learned_before  # the learned MAC is still there
    assert any(f.startswith("cookie=0x42,") and "table=30" in f for f in of.dump_flows("br-tun"))
    assert of.flow_count("br-tun") == len(changed)

    of.replace_flows("br-tun", [])  # every flow of ours goes; the others stay
    assert of.flow_count("br-tun") == 0
    assert sorted(f.split(",")[0] for f in of.dump_flows("br-tun")) == ["cookie=0x42", f"cookie={LEARNED:#x}"]


def test_flow_count_counts_only_the_agent_cookie(ovs_node: OvsNode, of: OpenFlow) -> None:
    of.replace_flows("br-tun", TUNNEL_FLOWS)
    learn_a_mac(ovs_node)
    assert len(of.dump_flows("br-tun")) == len(TUNNEL_FLOWS) + 1
    assert of.flow_count("br-tun") == len(TUNNEL_FLOWS)


def test_openflow_errors_carry_ovs_ofctl_message_and_change_nothing(ovs_node: OvsNode, of: OpenFlow) -> None:
    of.replace_flows("br-tun", TUNNEL_FLOWS)
    learn_a_mac(ovs_node)
    before = of.dump_flows("br-tun")
    changed = [f.replace("resubmit(,22)", "resubmit(,21)") for f in TUNNEL_FLOWS[1:]]  # one delete, one change
    with pytest.raises(OpenFlowError, match="unknown keyword foo") as info:
        of.replace_flows("br-tun", [*changed, C + "table=1,foo=1,actions=drop"])
    assert info.value.bridge == "br-tun" and "foo" in info.value.stderr
    assert "table=1,foo=1" in str(info.value)  # names the flow, not only its line number
    with pytest.raises(OpenFlowError, match="nope: output to unknown port"):
        of.replace_flows("br-tun", [*changed, C + "table=1,actions=output:nope"])
    # Rejected by the switch, not by ovs-ofctl: the bundle (a delete, adds) is rolled back as a whole.
    with pytest.raises(OpenFlowError, match="OFPBAC_BAD_OUT_GROUP"):
        of.replace_flows("br-tun", [*changed, C + "table=1,priority=9,actions=drop", C + "table=1,actions=group:7"])
    with pytest.raises(OpenFlowError, match="without cookie=0xb4770"):  # the driver's own rule
        of.replace_flows("br-tun", [*changed, "cookie=0x42,table=1,actions=drop"])
    assert of.dump_flows("br-tun") == before
    with pytest.raises(OpenFlowError, match="br-nope.mgmt"):
        of.flow_count("br-nope")


def test_a_thousand_flows(of: OpenFlow) -> None:
    flows = [C + f"table=20,priority=2,dl_vlan={i % 100 + 1},dl_dst=fa:16:3e:00:{i >> 8:02x}:{i & 255:02x},"
             f"actions=pop_vlan,set_field:0x64->tun_id,output:{VXLAN}" for i in range(1000)]
    assert len(of.replace_flows("br-tun", flows).added) == 1000
    assert not of.replace_flows("br-tun", flows)
    flows[500] = flows[500].replace("0x64->", "0x65->")
    changes = of.replace_flows("br-tun", flows)
    assert len(changes.added) == 1 and not changes.deleted and of.flow_count("br-tun") == 1000


# ---------------------------------------------------------------- OpenFlow text (pure)


def test_resolve_ports_only_in_port_and_output_names_it_knows() -> None:
    numbers = {"patch-int": "1", "vxlan-0a0a0a0b": "2", "br-tun": "LOCAL"}
    text = (C + "table=10,priority=1,in_port=patch-int,actions=learn(table=20,output:NXM_OF_IN_PORT[]),"
            "output:patch-int,output:vxlan-0a0a0a0b,output:br-tun,output:NORMAL,output:7,output:nope\n"
            + C + "table=21,priority=0,actions=IN_PORT\n")
    assert resolve_ports(text, numbers) == (
        C + "table=10,priority=1,in_port=1,actions=learn(table=20,output:NXM_OF_IN_PORT[]),"
        "output:1,output:2,output:LOCAL,output:NORMAL,output:7,output:nope\n"
        + C + "table=21,priority=0,actions=IN_PORT\n")


def test_parse_diff_adds_wanted_flows_and_deletes_only_ours() -> None:
    out = ("-priority=0 cookie=0xb4770 actions=drop\n"
           "-table=20 priority=1,dl_vlan=1,dl_dst=fa:16:3e:12:34:56 cookie=0xb4771 hard_timeout=300 actions=output:2\n"
           "-table=21 priority=0 cookie=0xb4770 actions=resubmit(,22)\n"
           "+table=21 priority=0 cookie=0xb4770 actions=drop\n"
           "-table=30 priority=7,ip actions=drop\n"
           "+table=23 priority=0 cookie=0xb4770 actions=drop\n")
    changes = parse_diff(out)
    assert changes == FlowChanges(
        added=("table=21 priority=0 cookie=0xb4770 actions=drop", "table=23 priority=0 cookie=0xb4770 actions=drop"),
        deleted=("priority=0 cookie=0xb4770 actions=drop",))
    assert changes.bundle() == ("delete_strict table=0 priority=0 cookie=0xb4770/-1\n"  # table 0 explicit
                                "add table=21 priority=0 cookie=0xb4770 actions=drop\n"
                                "add table=23 priority=0 cookie=0xb4770 actions=drop\n")
    assert not parse_diff("")
