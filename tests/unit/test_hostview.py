"""baryon.service.hostview in-process, on a throwaway SQLite database: the number of statements a
view costs does not grow with the number of ports (no N+1), and ports move in and out of views
as they are bound, moved and unbound. The contents, on every backend, are in tests/api."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event

from baryon.config import load
from baryon.db import migrate
from baryon.db.engine import Database
from baryon.service.agents import AGENT_TYPE_OVS
from baryon.service.context import Context
from baryon.service.services import Services

ADMIN = Context.admin("admin-project")


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    db = Database(f"sqlite:///{tmp_path / 'baryon.sqlite'}")
    migrate.upgrade(db)
    try:
        yield Services.create(load([]), db)
    finally:
        db.dispose()


def register(services: Services, host: str, tunneling_ip: str) -> None:
    services.agents.report_state(ADMIN, {"agent_type": AGENT_TYPE_OVS, "host": host, "configurations": {
        "tunnel_types": ["vxlan"], "tunneling_ip": tunneling_ip, "bridge_mappings": {}}})


def statements(services: Services, host: str) -> int:
    count = 0

    def counted(*_args: object) -> None:
        nonlocal count
        count += 1

    engine = services.env.db.read_engine
    event.listen(engine, "before_cursor_execute", counted)
    try:
        services.hostviews.view(ADMIN, host)
    finally:
        event.remove(engine, "before_cursor_execute", counted)
    return count


def add_ports(services: Services, network_id: str, host: str, count: int, group: str) -> list[dict]:
    return services.ports.create(ADMIN, [{"network_id": network_id, "binding:host_id": host,
                                          "security_groups": [group],
                                          "allowed_address_pairs": [{"ip_address": f"192.0.2.{i}"}]}
                                         for i in range(count)])


def test_statements_do_not_grow_with_ports(services: Services) -> None:
    register(services, "a", "10.0.0.1")
    register(services, "b", "10.0.0.2")
    [net] = services.networks.create(ADMIN, [{"name": "n"}])
    services.subnets.create(ADMIN, [{"network_id": net["id"], "cidr": "10.1.0.0/16", "ip_version": 4}])
    [group] = services.security_groups.create(ADMIN, [{"name": "g"}])
    services.security_group_rules.create(ADMIN, [{"security_group_id": group["id"], "direction": "ingress",
                                                  "remote_group_id": group["id"]}])
    add_ports(services, net["id"], "a", 1, group["id"])
    add_ports(services, net["id"], "b", 1, group["id"])
    assert statements(services, "a") == 14  # SQLite's BEGIN and the 13 SELECTs of hostview.compute
    add_ports(services, net["id"], "a", 20, group["id"])
    add_ports(services, net["id"], "b", 20, group["id"])
    assert statements(services, "a") == 14

    view = services.hostviews.view(ADMIN, "a")
    assert len(view.ports) == 21 and len(view.remote_ports) == 21
    assert {r.tunnel_ip for r in view.remote_ports} == {"10.0.0.2"}
    [members] = view.group_members
    assert len(members.addresses) == 42 + 20  # every fixed IP, and the pairs' 20 distinct addresses


def test_ports_follow_their_binding(services: Services) -> None:
    register(services, "a", "10.0.0.1")
    [net] = services.networks.create(ADMIN, [{"name": "n"}])
    [port] = services.ports.create(ADMIN, [{"network_id": net["id"], "binding:host_id": "a"}])
    assert [p.id for p in services.hostviews.view(ADMIN, "a").ports] == [port["id"]]
    services.ports.update(ADMIN, port["id"], {"binding:host_id": "nowhere"})
    assert services.hostviews.view(ADMIN, "a").ports == ()
    assert services.hostviews.view(ADMIN, "nowhere").ports == ()  # binding_failed: on no host's view
    services.ports.update(ADMIN, port["id"], {"binding:host_id": "a"})
    assert [p.id for p in services.hostviews.view(ADMIN, "a").ports] == [port["id"]]
    services.ports.update(ADMIN, port["id"], {"binding:host_id": ""})
    unbound = services.hostviews.view(ADMIN, "a")
    assert (unbound.ports, unbound.networks) == ((), ())


def test_address_groups_named_by_the_hosts_rules_come_with_their_addresses(services: Services) -> None:
    register(services, "a", "10.0.0.1")
    [net] = services.networks.create(ADMIN, [{"name": "n"}])
    [group] = services.security_groups.create(ADMIN, [{"name": "g"}])
    [ag, other] = services.address_groups.create(ADMIN, [
        {"name": "ag", "addresses": ["10.7.0.9/24", "2001:db8::1/64"]},
        {"name": "other", "addresses": ["192.0.2.0/24"]}])
    add_ports(services, net["id"], "a", 3, group["id"])
    without = statements(services, "a")
    [rule] = services.security_group_rules.create(ADMIN, [{"security_group_id": group["id"], "direction": "ingress",
                                                           "remote_address_group_id": ag["id"]}])
    assert statements(services, "a") == without + 1  # one SELECT of the addresses, whatever their number
    view = services.hostviews.view(ADMIN, "a")
    assert [(a.id, a.addresses) for a in view.address_groups] == [(ag["id"], ("10.7.0.0/24", "2001:db8::/64"))]
    [named] = [r for g in view.security_groups for r in g.rules if r.id == rule["id"]]
    assert (named.remote_address_group_id, named.remote_group_id, named.remote_ip_prefix) == (ag["id"], None, None)
    assert type(view).from_json(view.to_json()) == view  # what the agent rebuilds from the JSON it gets

    services.address_groups.remove_addresses(ADMIN, ag["id"], ["10.7.0.0/24"])
    after = services.hostviews.view(ADMIN, "a")
    assert after.address_groups[0].addresses == ("2001:db8::/64",) and after.etag != view.etag
    services.address_groups.add_addresses(ADMIN, other["id"], ["198.51.100.1"])  # no rule of a's names it
    assert services.hostviews.view(ADMIN, "a").etag == after.etag
    services.security_group_rules.delete(ADMIN, rule["id"])
    assert services.hostviews.view(ADMIN, "a").address_groups == ()
