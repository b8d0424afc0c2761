"""Who a change concerns (model.scope, service.digest, service.viewcache), on the real services.

Soundness, for every kind of change the services make: whenever a host's view (Open vSwitch, DHCP,
L3) differs after the change, the digest of the change-log entries in between touches that view's
scope, read both by a long-lived digest (states carried forward) and by a fresh one (states looked
up in the log). Precision: the agents a change must not concern are not concerned (a port's name
concerns nobody, its admin state only its own host ...). Then the cache: it computes a view only
for the agents a change concerns.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import delete

from baryon.db.models import Change
from baryon.model import scope
from baryon.model.host import AddressGroup, HostView
from baryon.model.scope import ALL
from baryon.service.agents import AGENT_TYPE_DHCP, AGENT_TYPE_L3, AGENT_TYPE_OVS
from baryon.service.context import Context
from baryon.service.digest import ChangeDigest
from baryon.service.portstatus import Report
from baryon.service.services import Services
from tests.unit.conftest import ServicesFactory

ADMIN = Context.admin("admin-project")
HOSTS = ("a", "b", "c", "net")
WATCHED = [("ovs", h) for h in ("a", "b", "c")] + [("dhcp", "net"), ("l3", "net")]


def register(services: Services, host: str, agent_type: str = AGENT_TYPE_OVS, ip: str = "") -> None:
    configurations = {"tunnel_types": ["vxlan"], "tunneling_ip": ip, "bridge_mappings": {}} if ip else {}
    services.agents.report_state(ADMIN, {"agent_type": agent_type, "host": host, "start_flag": True,
                                         "configurations": configurations})


class World:
    """Three computes a, b, c (OVS agents) and a network node ``net`` (DHCP and L3 agents).
    Network n1 has ports on a and b; c has a port on n2 whose group ``watcher`` has a rule naming
    group ``g`` (of a's and b's ports) as its remote group."""

    def __init__(self, services: Services):
        self.s = services
        for i, host in enumerate(("a", "b", "c"), start=1):
            register(services, host, ip=f"10.0.0.{i}")
        register(services, "net", ip="10.0.0.9")  # the DHCP ports are bound on the network node
        register(services, "net", AGENT_TYPE_DHCP)
        register(services, "net", AGENT_TYPE_L3)
        [self.n1, self.n2] = services.networks.create(ADMIN, [{"name": "n1"}, {"name": "n2"}])
        self.sub1 = services.subnets.create(ADMIN, [{"network_id": self.n1["id"], "cidr": "10.1.0.0/24",
                                                     "ip_version": 4}])[0]
        services.subnets.create(ADMIN, [{"network_id": self.n2["id"], "cidr": "10.2.0.0/24", "ip_version": 4}])
        [self.g, self.g2, self.watcher] = services.security_groups.create(
            ADMIN, [{"name": "g"}, {"name": "g2"}, {"name": "watcher"}])
        services.security_group_rules.create(ADMIN, [{"security_group_id": self.watcher["id"],
                                                      "direction": "ingress", "remote_group_id": self.g["id"]}])
        self.pa = self.port(self.n1, "a", self.g)
        self.pb = self.port(self.n1, "b", self.g)
        self.pc = self.port(self.n2, "c", self.watcher)

    def port(self, network: dict, host: str, group: dict, **attrs: object) -> dict:
        return self.s.ports.create(ADMIN, [{"network_id": network["id"], "binding:host_id": host,
                                            "device_owner": "compute:nova", "security_groups": [group["id"]],
                                            **attrs}])[0]

    def seq(self) -> int:
        return self.s.hostviews.last_seq()

    def views(self) -> dict[tuple[str, str], object]:
        return {(kind, host): self.s.hostviews.compute(kind, host) for kind, host in WATCHED}


@pytest.fixture
def world(make: ServicesFactory) -> World:
    return World(make())


def concerned(world: World, change: Callable[[World], object]) -> set[tuple[str, str]]:
    """Apply ``change``; check soundness for every watched view; return the views it concerns."""
    before, seq0 = world.views(), world.seq()
    carried = world.s.hostviews.cache._digest  # noqa: SLF001 - the long-lived digest of the process
    carried.touched(0, seq0)  # it has seen everything before the change
    change(world)
    after, seq1 = world.views(), world.seq()
    touched = carried.touched(seq0, seq1)
    assert touched == ChangeDigest(world.s.env.db.read).touched(seq0, seq1)  # states carried == looked up
    result = set()
    for key, view in before.items():
        hit = scope.concerns(touched, scope.view_scope(view))
        if after[key].etag != view.etag:  # type: ignore[attr-defined]
            assert hit, f"{key} changed but the change {touched} is not in its scope"
        if hit:
            result.add(key)
    return result


OVS = {("ovs", "a"), ("ovs", "b"), ("ovs", "c")}
L3 = {("l3", "net")}  # the L3 view depends on everything


def update_port(port: str, **attrs: object) -> Callable[[World], object]:
    return lambda w: w.s.ports.update(ADMIN, getattr(w, port)["id"], attrs)


@pytest.mark.parametrize(("name", "change", "expected"), [
    ("port name", update_port("pa", name="renamed"), L3),
    ("port description", update_port("pa", description="x"), L3),
    ("port admin state", update_port("pa", admin_state_up=False), {("ovs", "a")} | L3),
    ("port security off", lambda w: w.s.ports.update(ADMIN, w.pa["id"], {"security_groups": [],
                                                                           "port_security_enabled": False}),
     {("ovs", "a"), ("ovs", "c")} | L3),  # c: its rule names a's group g; b has no rule naming g
    ("port status report", lambda w: w.s.status_reports.report(
        ADMIN, "a", Report(AGENT_TYPE_OVS, w.seq(), {w.pa["id"]: "ACTIVE"})), L3),
    ("port fixed IPs", lambda w: w.s.ports.update(ADMIN, w.pa["id"], {"fixed_ips": [
        {"subnet_id": w.sub1["id"], "ip_address": "10.1.0.200"}]}), OVS | {("dhcp", "net")} | L3),
    ("port groups", lambda w: w.s.ports.update(ADMIN, w.pa["id"], {"security_groups": [w.g2["id"]]}),
     {("ovs", "a"), ("ovs", "c")} | L3),
    ("port address pairs", lambda w: w.s.ports.update(ADMIN, w.pa["id"], {"allowed_address_pairs": [
        {"ip_address": "192.0.2.9"}]}), {("ovs", "a"), ("ovs", "c")} | L3),
    ("port moved to c", update_port("pa", **{"binding:host_id": "c"}), OVS | L3),
    ("port DHCP options", update_port("pa", extra_dhcp_opts=[{"opt_name": "mtu", "opt_value": "1400"}]),
     {("ovs", "a"), ("dhcp", "net")} | L3),
    ("port created on c, group g", lambda w: w.port(w.n2, "c", w.g), {("ovs", "c"), ("dhcp", "net")} | L3),
    ("port created on a, n1", lambda w: w.port(w.n1, "a", w.g2), {("ovs", "a"), ("ovs", "b"), ("dhcp", "net")} | L3),
    ("port deleted", lambda w: w.s.ports.delete(ADMIN, w.pb["id"]), OVS | {("dhcp", "net")} | L3),
    ("group rule added", lambda w: w.s.security_group_rules.create(ADMIN, [{
        "security_group_id": w.g["id"], "direction": "ingress", "protocol": "tcp", "port_range_min": 22,
        "port_range_max": 22}]), {("ovs", "a"), ("ovs", "b")} | L3),
    ("group renamed", lambda w: w.s.security_groups.update(ADMIN, w.watcher["id"], {"name": "w2"}), L3),
    ("network MTU", lambda w: w.s.networks.update(ADMIN, w.n1["id"], {"mtu": 1400}),
     {("ovs", "a"), ("ovs", "b"), ("dhcp", "net")} | L3),
    ("network renamed", lambda w: w.s.networks.update(ADMIN, w.n1["id"], {"name": "x"}), L3),
    ("subnet added", lambda w: w.s.subnets.create(ADMIN, [{"network_id": w.n2["id"], "cidr": "10.3.0.0/24",
                                                           "ip_version": 4}]),
     {("dhcp", "net"), ("ovs", "c")} | L3),  # c: the DHCP port on n2 (a remote port of c's) gets an address
    ("agent registered", lambda w: register(w.s, "d", ip="10.0.0.4"), OVS | {("dhcp", "net")} | L3),
    ("agent heartbeat", lambda w: w.s.agents.report_state(ADMIN, {
        "agent_type": AGENT_TYPE_OVS, "host": "a", "configurations": {
            "tunnel_types": ["vxlan"], "tunneling_ip": "10.0.0.1", "bridge_mappings": {}}}), L3),
    ("tunnel endpoint moved", lambda w: register(w.s, "b", ip="10.0.0.22"), OVS | {("dhcp", "net")} | L3),
    ("router created", lambda w: w.s.routers.create(ADMIN, [{"name": "r"}]), L3),
])
def test_a_change_concerns_the_views_it_can_change_and_no_other(world: World, name: str,
                                                                 change: Callable[[World], object],
                                                                 expected: set) -> None:
    assert concerned(world, change) == expected, name


def with_address_group(world: World) -> tuple[dict, dict]:
    """Address group ``ag`` named by a rule of c's group ``watcher``; ``idle``, named by none."""
    [ag, idle] = world.s.address_groups.create(ADMIN, [{"name": "ag", "addresses": ["192.0.2.0/24"]},
                                                       {"name": "idle", "addresses": ["198.51.100.0/24"]}])
    world.s.security_group_rules.create(ADMIN, [{"security_group_id": world.watcher["id"], "direction": "ingress",
                                                 "remote_address_group_id": ag["id"]}])
    return ag, idle


@pytest.mark.parametrize(("name", "change", "expected"), [
    ("addresses added", lambda w, ag, _: w.s.address_groups.add_addresses(ADMIN, ag["id"], ["203.0.113.7"]),
     {("ovs", "c")} | L3),
    ("addresses removed", lambda w, ag, _: w.s.address_groups.remove_addresses(ADMIN, ag["id"], ["192.0.2.0/24"]),
     {("ovs", "c")} | L3),
    ("group renamed", lambda w, ag, _: w.s.address_groups.update(ADMIN, ag["id"], {"name": "x", "description": "y"}),
     L3),
    ("unused group's addresses", lambda w, _, idle: w.s.address_groups.add_addresses(ADMIN, idle["id"], ["::/0"]),
     L3),
    ("unused group deleted", lambda w, _, idle: w.s.address_groups.delete(ADMIN, idle["id"]), L3),
    ("a rule of a's and b's group names it", lambda w, ag, _: w.s.security_group_rules.create(ADMIN, [{
        "security_group_id": w.g["id"], "direction": "ingress", "remote_address_group_id": ag["id"]}]),
     {("ovs", "a"), ("ovs", "b")} | L3),
])
def test_an_address_group_change_concerns_the_hosts_whose_rules_name_it(world: World, name: str,
                                                                        change: Callable, expected: set) -> None:
    ag, idle = with_address_group(world)
    assert concerned(world, lambda w: change(w, ag, idle)) == expected, name


def test_a_port_on_a_host_that_joins_a_network_of_another(world: World) -> None:
    """c had no port on n1: a port of c on n1 concerns a and b (l2population) and c itself."""
    assert concerned(world, lambda w: w.port(w.n1, "c", w.g2)) == OVS | {("dhcp", "net")} | L3


def test_an_update_whose_previous_state_is_not_in_the_log_concerns_everybody(world: World) -> None:
    seq0 = world.seq()
    world.s.ports.update(ADMIN, world.pa["id"], {"name": "x"})
    assert ChangeDigest(world.s.env.db.read).touched(seq0, world.seq()) == frozenset()
    # The log loses the port's earlier entries (as a compaction would): its previous state is unknown.
    world.s.env.write(lambda session: session.execute(delete(Change).where(Change.seq <= seq0)))
    assert ChangeDigest(world.s.env.db.read).touched(seq0, world.seq()) is ALL
    assert ChangeDigest(world.s.env.db.read).touched(seq0 - 1, world.seq()) is ALL  # a missing sequence


def test_the_cache_computes_only_the_views_a_change_concerns(world: World) -> None:
    views, cache = world.s.hostviews, world.s.hostviews.cache
    first = {h: views.watched(ADMIN, h, "ovs", world.seq()) for h in ("a", "b", "c")}
    computed = cache.computed
    world.s.ports.update(ADMIN, world.pa["id"], {"admin_state_up": False})
    latest = world.seq()
    again = {h: views.watched(ADMIN, h, "ovs", latest) for h in ("a", "b", "c")}
    assert cache.computed == computed + 1  # a's view only
    assert again["a"].etag != first["a"].etag
    for h in ("b", "c"):
        assert (again[h].etag, again[h].seq) == (first[h].etag, latest)
        assert again[h] == views.compute("ovs", h)  # the kept view is the view of the moment
    assert views.watched(ADMIN, "a", "ovs", latest) is again["a"]  # nothing new: the same object


def test_scope_rules_on_bodies() -> None:
    port = {"id": "p", "network_id": "n", "binding:host_id": "h", "security_groups": ["g"], "name": "x",
            "mac_address": "m", "fixed_ips": [], "admin_state_up": True}
    assert scope.touches("port", "update", port, {**port, "name": "y"}) == frozenset()
    assert scope.touches("port", "update", port, {**port, "admin_state_up": False}) == {("host", "h")}
    assert scope.touches("port", "update", port, {**port, "colour": "blue"}) == {
        ("host", "h"), ("l2", "n"), ("dhcp", "n"), ("members", "g")}  # a field no rule knows: everyone
    assert scope.touches("port", "update", port, None) is ALL
    assert scope.touches("port", "delete", port, None) == {("host", "h"), ("l2", "n"), ("dhcp", "n"),
                                                          ("members", "g")}
    assert scope.touches("widget", "create", None, {"id": "w"}) is ALL
    agent = {"id": "a", "host": "h", "agent_type": "Open vSwitch agent", "alive": True,
             "configurations": {"tunneling_ip": "10.0.0.1", "devices": 3}}
    assert scope.touches("agent", "update", agent, {**agent, "alive": False}) == frozenset()
    assert scope.touches("agent", "update", agent, {**agent, "configurations": {
        "tunneling_ip": "10.0.0.1", "devices": 4}}) == frozenset()  # a port more on its host: no view reads it
    assert scope.touches("agent", "update", agent, {**agent, "configurations": {
        "tunneling_ip": "10.0.0.2", "devices": 3}}) == {("agents",)}
    assert scope.touches("floatingip", "create", None, {"id": "f"}) == frozenset()
    assert scope.touches("subnetpool", "update", {"id": "s", "prefixes": ["10.0.0.0/8"]},
                         {"id": "s", "prefixes": ["10.0.0.0/8", "172.16.0.0/12"]}) == frozenset()
    assert scope.touches("address_scope", "create", None, {"id": "a"}) == frozenset()
    group = {"id": "x", "name": "n", "description": "", "addresses": ["10.0.0.0/8"], "revision_number": 1}
    assert scope.touches("address_group", "create", None, group) == {("ag", "x")}
    assert scope.touches("address_group", "update", group, {**group, "name": "m", "revision_number": 2}) == frozenset()
    assert scope.touches("address_group", "update", group, {**group, "addresses": []}) == {("ag", "x")}
    assert scope.touches("address_group", "update", group, None) is ALL
    assert scope.touches("address_group", "delete", group, None) == {("ag", "x")}
    view = HostView("h", address_groups=(AddressGroup("x", ("10.0.0.0/8",)),))
    assert ("ag", "x") in scope.host_view_scope(view) and ("ag", "y") not in scope.host_view_scope(view)
    assert scope.concerns(frozenset({("ag", "x")}), scope.host_view_scope(view))
    assert not scope.concerns(frozenset({("ag", "y")}), scope.host_view_scope(view))
    assert scope.union([frozenset({("a",)}), frozenset({("b",)})]) == {("a",), ("b",)}
    assert scope.union([frozenset({("a",)}), ALL]) is ALL
    assert scope.concerns(frozenset(), ALL) and not scope.concerns(frozenset(), frozenset({("a",)}))


def test_flavors_and_service_profiles_concern_no_view() -> None:
    flavor = {"id": "f", "service_type": "L3_ROUTER_NAT", "enabled": True, "service_profiles": []}
    assert scope.touches("flavor", "update", flavor, {**flavor, "service_profiles": ["s"]}) == frozenset()
    assert scope.touches("service_profile", "delete", {"id": "s", "driver": ""}, None) == frozenset()
