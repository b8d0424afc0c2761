"""The planner's flows on a real Open vSwitch, applied by the real drivers (one switch per test; root).

A compute node as Neutron's OVS agent would have it: a vxlan network with two VMs and a DHCP port
here and ports on two other hosts (l2population and the ARP responder on), a flat and a vlan
network on physnet1 through br-ex, and a stray VIF nobody knows (dead VLAN). ``Agent`` plays the
agent's sync step with the real drivers: observe (OVSDB, plus the count of agent flows of every
bridge it has applied flows to), plan, apply (``Ovsdb.apply``, then ``OpenFlow.replace_flows`` per
bridge). VIFs are plugged as os-vif and the DHCP agent do: a qvb/qvo veth pair with the qvo end on
br-int, an internal tap port, Interface ``external_ids`` (iface-id, iface-status, attached-mac).

What is proved here: the flows parse and install; re-planning gives no op; an agent restart
(nothing applied in memory) replaces the flows of every bridge and that changes none of them (no
flow is removed and re-added: durations and packet counters go on, learned MACs stay); a remote
host leaving changes only its own flows; a restarted ovs-vswitchd gets all its flows back.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import pytest

from baryon.agent.drivers.openflow import FlowChanges, OpenFlow
from baryon.agent.drivers.ovsdb import Ovsdb
from baryon.agent.plan.flows import LEARNED_COOKIE
from baryon.agent.plan.ovs import ACTIVE, Plan, plan
from baryon.model.host import HostView, Network, Port, RemotePort, Segment
from baryon.model.ovs import AGENT_COOKIE, DEAD_VLAN, ObservedSwitch, OvsAgentSettings, ReplaceFlows, SetPortTag
from tests.support.ovs import OvsNode

HOST = "compute1"
SETTINGS = OvsAgentSettings(host=HOST, local_ip="10.10.10.2", bridge_mappings=(("physnet1", "br-ex"),),
                            datapath_type="netdev", l2_population=True, arp_responder=True)
BRIDGES = ("br-int", "br-tun", "br-ex")

NET_A = "aaaaaaaa-0000-4000-8000-00000000000a"
NET_F = "ffffffff-0000-4000-8000-00000000000f"
NET_V = "cccccccc-0000-4000-8000-00000000000c"
NETWORKS = (Network(NET_A, Segment("vxlan", 1001, None), 1450),
            Network(NET_F, Segment("flat", None, "physnet1"), 1500),
            Network(NET_V, Segment("vlan", 200, "physnet1"), 1500))


def port(port_id: str, network_id: str, mac: str, ip: str, owner: str = "compute:nova") -> Port:
    return Port(port_id, network_id, mac, (ip,), owner, True, True)


VM_A1 = port("a1000000-0000-4000-8000-000000000001", NET_A, "fa:16:3e:00:00:a1", "192.168.10.11")
VM_A2 = port("a2000000-0000-4000-8000-000000000002", NET_A, "fa:16:3e:00:00:a2", "192.168.10.12")
DHCP_A = port("d0000000-0000-4000-8000-00000000000d", NET_A, "fa:16:3e:00:00:0d", "192.168.10.2", "network:dhcp")
VM_F1 = port("f1000000-0000-4000-8000-000000000001", NET_F, "fa:16:3e:00:00:f1", "203.0.113.11")
VM_V1 = port("c1000000-0000-4000-8000-000000000001", NET_V, "fa:16:3e:00:00:c1", "10.0.200.11")
STRAY = "99999999-0000-4000-8000-000000000009"  # a VIF whose port the server does not bind here

REMOTE_C2 = RemotePort(NET_A, "compute2", "10.10.10.3", "fa:16:3e:00:02:a1", ("192.168.10.21",))
REMOTE_C3 = RemotePort(NET_A, "compute3", "10.10.10.4", "fa:16:3e:00:03:a1", ("192.168.10.31",))
TUNNEL_C2, TUNNEL_C3 = "vxlan-0a0a0a03", "vxlan-0a0a0a04"

VIEW = HostView(host=HOST, ports=tuple(sorted((VM_A1, VM_A2, DHCP_A, VM_F1, VM_V1))), networks=NETWORKS,
                remote_ports=(REMOTE_C2, REMOTE_C3))
Flows = dict[str, tuple[str, ...]]


def qvo(port_id: str) -> str:
    return f"qvo{port_id[:11]}"


def eventually(predicate, timeout: float = 5.0, what: str = "condition"):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)
    return value


@dataclass
class Agent:
    """The agent's sync step with the real drivers; ``applied`` is what a running agent remembers."""

    node: OvsNode
    db: Ovsdb
    of: OpenFlow
    applied: Flows = field(default_factory=dict)

    def observe(self) -> ObservedSwitch:
        seen = self.db.observe()
        bridges = tuple(replace(b, flow_count=self.of.flow_count(b.name) if b.name in self.applied else None)
                        for b in seen.bridges)
        return replace(seen, bridges=bridges)

    def plan(self, view: HostView = VIEW) -> Plan:
        return plan(view, SETTINGS, self.observe(), self.applied)

    def apply(self, result: Plan) -> dict[str, FlowChanges]:
        self.db.apply([op for op in result.ops if not isinstance(op, ReplaceFlows)])
        changes = {}
        for op in result.ops:
            if isinstance(op, ReplaceFlows):
                changes[op.bridge] = self.of.replace_flows(op.bridge, op.flows)
                self.applied[op.bridge] = op.flows
        return changes

    def sync(self, view: HostView = VIEW) -> Plan:
        result = self.plan(view)
        self.apply(result)
        return result

    def restart(self) -> None:
        self.applied = {}

    def ofport(self, name: str) -> int:
        found = self.db.observe().port(name)
        assert found is not None and found.ofport, name
        return found.ofport

    def appctl(self, *args: str) -> str:
        return self.node.run(["ovs-appctl", "-t", str(self.node.rundir / "ovs-vswitchd.ctl"), *args]).stdout


def plug_vm(node: OvsNode, vm: Port) -> None:
    """os-vif's hybrid plug: a qvb/qvo veth pair, qvo on br-int with the port's external_ids."""
    name = qvo(vm.id)
    qvb = f"qvb{vm.id[:11]}"
    node.run(["ip", "link", "add", qvb, "type", "veth", "peer", "name", name])
    for dev in (qvb, name):
        node.run(["ip", "link", "set", dev, "up"])
    node.vsctl("--", "--may-exist", "add-port", "br-int", name, "--", "set", "Interface", name,
               f"external_ids:iface-id={vm.id}", "external_ids:iface-status=active",
               f"external_ids:attached-mac={vm.mac_address}", f"external_ids:vm-uuid=vm-{vm.id[:8]}")


def plug_internal(node: OvsNode, dev: str, port_id: str, mac: str) -> None:
    """The DHCP agent's OVS interface driver: an internal port with the port's external_ids."""
    node.vsctl("--", "--may-exist", "add-port", "br-int", dev, "--", "set", "Interface", dev, "type=internal",
               f"external_ids:iface-id={port_id}", "external_ids:iface-status=active",
               f"external_ids:attached-mac={mac}")


@pytest.fixture
def agent(ovs_node: OvsNode) -> Iterator[Agent]:
    """The node after the agent started on an empty switch and the VIFs were plugged, converged."""
    with Ovsdb(ovs_node.connection) as db:
        agent = Agent(ovs_node, db, OpenFlow(ovs_node.rundir))
        first = agent.plan()
        assert agent.db.observe() == ObservedSwitch()  # planned against an empty switch
        changes = agent.apply(first)
        assert [op.bridge for op in first.ops if isinstance(op, ReplaceFlows)] == list(BRIDGES)
        assert {b: len(c.added) for b, c in changes.items()} == {b: len(first.flows[b]) for b in BRIDGES}
        for vm in (VM_A1, VM_A2, VM_F1, VM_V1):
            plug_vm(ovs_node, vm)
        plug_internal(ovs_node, f"tap{DHCP_A.id[:11]}", DHCP_A.id, DHCP_A.mac_address)
        plug_vm(ovs_node, replace(VM_A1, id=STRAY, mac_address="fa:16:3e:00:00:99"))
        second = agent.sync()  # tags the VIFs, drops the stray's traffic
        tags = {op.name: op.tag for op in second.ops if isinstance(op, SetPortTag)}
        assert tags == {qvo(VM_A1.id): 1, qvo(VM_A2.id): 1, f"tap{DHCP_A.id[:11]}": 1, qvo(VM_V1.id): 2,
                        qvo(VM_F1.id): 3, qvo(STRAY): DEAD_VLAN}
        assert second.ops[len(tags):] == (ReplaceFlows("br-int", second.flows["br-int"]),)
        yield agent


def normalise(dumped: str) -> str:
    """A ``dump-flows --no-stats --names`` line in the planner's syntax."""
    text = dumped.replace('"', "").replace(", ", ",").replace(" actions=", ",actions=")
    return text if ",table=" in text else text.replace(",", ",table=0,", 1)


def ages(of: OpenFlow, bridge: str) -> dict[str, tuple[float, int]]:
    """Each flow of ``bridge`` (dumped without stats) -> (duration in s, n_packets)."""
    stats = [(float(re.search(r"duration=([0-9.]+)s", f).group(1)),  # type: ignore[union-attr]
              int(re.search(r"n_packets=(\d+)", f).group(1)))  # type: ignore[union-attr]
             for f in of.dump_flows(bridge, stats=True)]
    return dict(zip(of.dump_flows(bridge), stats, strict=True))


def arp_request(sender_mac: str, sender_ip: str, target_ip: str) -> str:
    """A broadcast ARP request, as the hex ``packet-out`` takes."""
    mac = sender_mac.replace(":", "")
    ip = "".join(f"{int(b):02x}" for b in sender_ip.split("."))
    target = "".join(f"{int(b):02x}" for b in target_ip.split("."))
    return f"ffffffffffff{mac}0806" f"000108000604" f"0001{mac}{ip}" f"000000000000{target}"


# ---------------------------------------------------------------- the tests


def test_the_planned_flows_install_as_written_and_a_second_plan_is_empty(agent: Agent) -> None:
    again = agent.plan()
    assert again.ops == ()
    assert again.port_status == {p.id: ACTIVE for p in VIEW.ports}
    assert again.local_vlans == {NET_A: 1, NET_V: 2, NET_F: 3}  # in network id order
    seen = agent.db.observe()
    assert seen.port(qvo(STRAY)).tag == DEAD_VLAN and seen.port(qvo(VM_A1.id)).tag == 1
    for bridge in BRIDGES:
        wanted = agent.applied[bridge]
        assert agent.of.flow_count(bridge) == len(wanted), bridge
        assert not agent.of.diff_flows(bridge, wanted), bridge
        # Exactly as the switch reports them back (port names aside): nothing for a diff to re-add.
        assert sorted(normalise(f) for f in agent.of.dump_flows(bridge)) == sorted(wanted), bridge
    assert f"cookie={AGENT_COOKIE:#x},table=0,priority=2,in_port={qvo(STRAY)},actions=drop" in agent.applied["br-int"]
    assert len([f for f in agent.applied["br-tun"] if "table=21,priority=1," in f]) == 2


def test_an_agent_restart_removes_and_readds_no_flow(agent: Agent) -> None:
    # Traffic: A1 asks for a remote port's MAC (the ARP responder answers it), and a frame from
    # compute2's tunnel teaches table 20 a MAC (a learned flow, another cookie).
    request = arp_request(VM_A1.mac_address, "192.168.10.11", "192.168.10.21")
    agent.node.run(["ovs-ofctl", "-O", "OpenFlow14", "packet-out", agent.of.target("br-int"),
                    f"in_port={agent.ofport(qvo(VM_A1.id))},packet={request},actions=table"])
    agent.appctl("ofproto/trace", "br-tun", f"in_port={TUNNEL_C2},tun_id=0x3e9,dl_src=fa:16:3e:00:02:99,"
                 "dl_dst=ff:ff:ff:ff:ff:ff", "-generate")
    responder = [f for f in agent.of.dump_flows("br-tun", stats=True) if "arp_tpa=192.168.10.21" in f]
    assert len(responder) == 1 and "n_packets=1," in responder[0]
    learned = [f for f in agent.of.dump_flows("br-tun") if f.startswith(f"cookie={LEARNED_COOKIE:#x},")]
    assert len(learned) == 1 and "fa:16:3e:00:02:99" in learned[0]
    eventually(lambda: all(min(d for d, _ in ages(agent.of, b).values()) >= 1.0 for b in BRIDGES),
               what="every flow 1 s old")
    before = {b: ages(agent.of, b) for b in BRIDGES}

    agent.restart()
    result = agent.plan()
    assert result.ops == tuple(ReplaceFlows(b, result.flows[b]) for b in BRIDGES)  # no OVSDB op
    changes = agent.apply(result)
    assert changes == {b: FlowChanges() for b in BRIDGES}  # nothing differed, no bundle was sent

    for bridge in BRIDGES:
        after = ages(agent.of, bridge)
        assert after.keys() == before[bridge].keys(), bridge
        for flow, (age, packets) in after.items():
            assert age >= before[bridge][flow][0] and packets >= before[bridge][flow][1], flow
        assert agent.of.flow_count(bridge) == len(result.flows[bridge])
    assert [f for f in agent.of.dump_flows("br-tun") if f.startswith(f"cookie={LEARNED_COOKIE:#x},")] == learned
    assert agent.plan().ops == ()


def test_a_remote_host_leaving_changes_only_its_own_flows(agent: Agent) -> None:
    agent.appctl("ofproto/trace", "br-tun", f"in_port={TUNNEL_C2},tun_id=0x3e9,dl_src=fa:16:3e:00:02:99,"
                 "dl_dst=ff:ff:ff:ff:ff:ff", "-generate")
    eventually(lambda: min(d for d, _ in ages(agent.of, "br-tun").values()) >= 1.0, what="br-tun's flows 1 s old")
    before = ages(agent.of, "br-tun")

    ofport_c3 = agent.ofport(TUNNEL_C3)  # diff-flows prints ports by number
    without_c3 = replace(VIEW, remote_ports=(REMOTE_C2,))
    result = agent.plan(without_c3)
    assert [type(op).__name__ for op in result.ops] == ["DeletePort", "ReplaceFlows"]
    changes = agent.apply(result)
    assert [f.split(" actions=")[0] for f in changes["br-tun"].deleted] == [
        f"priority=1,in_port={ofport_c3} cookie={AGENT_COOKIE:#x}",
        f"table=20 priority=2,dl_vlan=1,dl_dst=fa:16:3e:00:03:a1 cookie={AGENT_COOKIE:#x}",
        f"table=21 priority=1,arp,dl_vlan=1,arp_tpa=192.168.10.31 cookie={AGENT_COOKIE:#x}",
    ]
    assert [f.split(" actions=")[0] for f in changes["br-tun"].added] == [  # flooding now to compute2 only
        f"table=22 priority=1,dl_vlan=1 cookie={AGENT_COOKIE:#x}"]

    after = ages(agent.of, "br-tun")
    assert not [f for f in after if TUNNEL_C3 in f or "fa:16:3e:00:03:a1" in f or "192.168.10.31" in f]
    untouched = [f for f in after if "table=22, priority=1," not in f]
    assert len(untouched) == len(after) - 1 and all(after[f][0] >= before[f][0] for f in untouched)
    assert any(f.startswith(f"cookie={LEARNED_COOKIE:#x},") for f in untouched)  # the learned MAC stayed
    assert agent.of.flow_count("br-tun") == len(result.flows["br-tun"])
    assert agent.plan(without_c3).ops == ()


def test_a_restarted_ovs_vswitchd_gets_every_flow_back(agent: Agent) -> None:
    wanted = dict(agent.applied)
    agent.node.stop_daemon("ovs-vswitchd")
    agent.node.start_vswitchd()
    eventually(lambda: all(p.ofport for p in agent.db.observe().ports), timeout=10, what="every port back")
    assert all(agent.of.flow_count(b) == 0 for b in BRIDGES)  # flows are not persistent

    result = agent.plan()
    assert result.ops == tuple(ReplaceFlows(b, wanted[b]) for b in BRIDGES)  # the counts told it
    agent.apply(result)
    assert agent.plan().ops == ()
    assert all(agent.of.flow_count(b) == len(wanted[b]) and not agent.of.diff_flows(b, wanted[b]) for b in BRIDGES)
