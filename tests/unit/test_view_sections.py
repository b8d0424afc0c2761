"""What the Open vSwitch agent reuses from one view to the next: the sections of a view that came
unchanged (``HostView.from_json`` with the previous view), and the switch plan, which reads only the
view's ports, networks and remote ports (``OvsAgent``'s ``LastPlan``).
"""

from __future__ import annotations

from dataclasses import fields, replace

import orjson
import pytest

from baryon.agent.ovs_agent import LastPlan
from baryon.agent.plan.ovs import plan
from baryon.model.host import (AddressGroup, AddressPair, GroupMembers, HostView, Rule, SecurityGroup)
from baryon.model.ovs import ObservedBridge, ObservedPort, ObservedSwitch
from tests.unit.test_plan_ovs import (NET_A, NET_B, NETWORKS, PORT_A1, PORT_A2, PORT_B1, REMOTE_A_C2, REMOTE_B_C2,
                                      SETTINGS)

G = "99999999-0000-4000-8000-000000000009"
RULE = Rule("r1", "ingress", "IPv4", None, None, None, None, G)
BASE = HostView(
    "compute1", seq=7, ports=(replace(PORT_A1, security_groups=(G,)), PORT_A2, PORT_B1),
    networks=(NETWORKS[NET_A], NETWORKS[NET_B]), remote_ports=(REMOTE_A_C2, REMOTE_B_C2),
    security_groups=(SecurityGroup(G, (RULE,)),), group_members=(GroupMembers(G, ("192.168.10.11",)),),
    address_groups=(AddressGroup("ag", ("192.0.2.0/24",)),)).with_etag()
SECTIONS = ("ports", "networks", "remote_ports", "security_groups", "group_members", "address_groups")


def wire(view: HostView) -> dict:
    """The view as the agent receives it."""
    return orjson.loads(orjson.dumps(view))


CHANGES = [
    ("members", replace(BASE, group_members=(GroupMembers(G, ("192.168.10.11", "192.168.10.99")),))),
    ("address group", replace(BASE, address_groups=(AddressGroup("ag", ()),))),
    ("rule", replace(BASE, security_groups=(SecurityGroup(G, (replace(RULE, protocol="tcp"),)),))),
    ("a port's pairs", replace(BASE, ports=(replace(BASE.ports[0], allowed_address_pairs=(
        AddressPair("192.0.2.1", "fa:16:3e:00:00:01"),)), *BASE.ports[1:]))),
    ("a port gone", replace(BASE, ports=BASE.ports[1:])),
    ("a remote port gone", replace(BASE, remote_ports=BASE.remote_ports[:1])),
    ("an MTU", replace(BASE, networks=(replace(NETWORKS[NET_A], mtu=1400), NETWORKS[NET_B]))),
    ("nothing", BASE),
    ("everything", HostView("compute1")),
]


@pytest.mark.parametrize(("name", "after"), CHANGES, ids=[c[0] for c in CHANGES])
def test_a_view_built_with_the_previous_one_is_the_view_built_alone(name: str, after: HostView) -> None:
    first = wire(BASE)
    previous = HostView.from_json(first)
    data = wire(replace(after, seq=8).with_etag())
    built = HostView.from_json(data, (first, previous))
    alone = HostView.from_json(data)
    assert built == alone and built.etag == alone.etag == replace(after, seq=8).with_etag().etag
    for section in SECTIONS:
        same = getattr(after, section) == getattr(BASE, section)
        assert (getattr(built, section) is getattr(previous, section)) == same, (name, section)
    assert {f.name for f in fields(HostView)} == {"host", "seq", "etag", *SECTIONS}  # every section covered


OBSERVED = ObservedSwitch(
    tuple(ObservedBridge(b, "netdev", "secure") for b in ("br-int", "br-tun", "br-ex")),
    (ObservedPort("qvoa1000000-00", "br-int", external_ids=(("iface-id", PORT_A1.id),), ofport=5),))


@pytest.mark.parametrize(("name", "after"), CHANGES, ids=[c[0] for c in CHANGES])
def test_the_switch_plan_is_reused_exactly_when_it_would_be_the_same(name: str, after: HostView) -> None:
    """``LastPlan``'s inputs are all ``plan`` reads: views with equal inputs have equal plans (a
    change of groups, rules or members reaches the firewall only), other views need planning."""
    applied = {"br-int": ("x",)}
    before, now = plan(BASE, SETTINGS, OBSERVED, applied), plan(after, SETTINGS, OBSERVED, applied)
    same_inputs = LastPlan.inputs_of(BASE, OBSERVED, applied) == LastPlan.inputs_of(after, OBSERVED, applied)
    assert same_inputs == (name in ("members", "address group", "rule", "nothing"))
    if same_inputs:
        assert now == before  # else planned again: whether the plan differs does not matter
    assert LastPlan.inputs_of(BASE, OBSERVED, applied) != LastPlan.inputs_of(BASE, OBSERVED, {"br-int": ("y",)})
    assert LastPlan.inputs_of(BASE, OBSERVED, applied) != LastPlan.inputs_of(BASE, ObservedSwitch(), applied)
