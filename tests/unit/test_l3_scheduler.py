"""L3 scheduling and L3 views in-process, on a throwaway SQLite database: the pure rules, the
options (``router_auto_schedule``, ``allow_automatic_l3agent_failover``), the migration's column,
and the cost of an L3 view. The API behaviour, on every backend, is in
tests/api/test_l3_scheduling.py."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import event, inspect, update

from baryon.config import load
from baryon.db import migrate, models as m
from baryon.db.engine import Database
from baryon.service.agents import AGENT_TYPE_DHCP, AGENT_TYPE_L3, AGENT_TYPE_OVS
from baryon.service.context import Context
from baryon.service.l3scheduler import Candidate, choose, eligible_mode
from baryon.service.query import ListQuery
from baryon.service.services import Services
from tests.unit.conftest import ServicesFactory

ADMIN = Context.admin("admin-project")


def register(services: Services, host: str, *, ovs: bool = True, **l3: object) -> None:
    if ovs:
        services.agents.report_state(ADMIN, {"agent_type": AGENT_TYPE_OVS, "host": host, "configurations": {
            "tunnel_types": ["vxlan"], "tunneling_ip": "10.0.0.1"}})
    services.agents.report_state(ADMIN, {"agent_type": AGENT_TYPE_L3, "host": host, "start_flag": True, **l3})


def router(services: Services, **attrs: object) -> dict:
    [body] = services.routers.create(ADMIN, [{"name": "r", **attrs}])
    return body


def hosts(services: Services, rtr: dict) -> list[str]:
    return [a["host"] for a in services.agentschedulers.l3_agents_hosting_router(ADMIN, rtr["id"])]


def kill(services: Services, host: str, minutes: int = 10) -> None:
    past = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=minutes)
    services.env.db.write(lambda session: session.execute(update(m.Agent).where(
        m.Agent.agent_type == AGENT_TYPE_L3, m.Agent.host == host).values(heartbeat_timestamp=past)))


def heartbeat(services: Services, host: str) -> None:
    services.agents.report_state(ADMIN, {"agent_type": AGENT_TYPE_L3, "host": host})


# ---------------------------------------------------------------- pure rules


def test_choose_takes_the_least_loaded_then_the_host_name_then_the_id() -> None:
    a, b, c = Candidate("id-a", "a", 3), Candidate("id-b", "b", 1), Candidate("id-c", "c", 1)
    assert choose([a, b, c]) == b
    assert choose([a, c, b]) == b
    assert choose([Candidate("id-2", "h", 0), Candidate("id-1", "h", 0)]) == Candidate("id-1", "h", 0)
    assert choose([]) is None


def test_eligible_modes_are_the_ones_hosting_legacy_routers() -> None:
    assert eligible_mode({}) and eligible_mode({"agent_mode": "legacy"}) and eligible_mode({"agent_mode": "dvr_snat"})
    assert not eligible_mode({"agent_mode": "dvr"}) and not eligible_mode({"agent_mode": "dvr_no_external"})


def test_the_options_are_real_with_neutrons_defaults() -> None:
    defaults = load([], {}).DEFAULT
    assert (defaults.router_auto_schedule, defaults.allow_automatic_l3agent_failover) == (True, False)
    chosen = load([], {"DEFAULT": {"router_auto_schedule": "false", "allow_automatic_l3agent_failover": "true"}})
    assert (chosen.DEFAULT.router_auto_schedule, chosen.DEFAULT.allow_automatic_l3agent_failover) == (False, True)


def test_the_migration_adds_status_reason(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'm.sqlite'}")
    try:
        migrate.upgrade(db)
        columns = {c["name"]: c for c in inspect(db.read_engine).get_columns("routers")}
        assert columns["status_reason"]["nullable"] is True
    finally:
        db.dispose()


# ---------------------------------------------------------------- the options


def test_without_auto_schedule_a_new_agent_takes_nothing(make: ServicesFactory) -> None:
    services = make(router_auto_schedule="false")
    rtr = router(services)
    register(services, "a")
    assert hosts(services, rtr) == []
    assert router(services)["status_reason"] == "waiting for its L3 agent to build the router"  # made after: placed


def test_failover_after_twice_agent_down_time_only_when_allowed(make: ServicesFactory) -> None:
    services = make(allow_automatic_l3agent_failover="true")
    register(services, "a")
    rtr = router(services)
    register(services, "b")
    kill(services, "a", minutes=2)  # dead (75 s), not for long (2 x 75 s): it stays
    heartbeat(services, "b")
    assert hosts(services, rtr) == ["a"]
    kill(services, "a")
    heartbeat(services, "b")
    assert hosts(services, rtr) == ["b"]

    frozen = make()  # Neutron's default
    register(frozen, "a")
    rtr = router(frozen)
    register(frozen, "b")
    kill(frozen, "a")
    heartbeat(frozen, "b")
    assert hosts(frozen, rtr) == ["a"]


# ---------------------------------------------------------------- the L3 view's cost


def statements(services: Services, host: str) -> int:
    count = 0

    def counted(*_args: object) -> None:
        nonlocal count
        count += 1

    engine = services.env.db.read_engine
    event.listen(engine, "before_cursor_execute", counted)
    try:
        services.hostviews.view(ADMIN, host, "l3")
    finally:
        event.remove(engine, "before_cursor_execute", counted)
    return count


def test_l3_view_statements_do_not_grow(make: ServicesFactory) -> None:
    services = make()
    register(services, "a")
    assert statements(services, "a") == 3  # SQLite's BEGIN, the sequence, the routers: none
    [public] = services.networks.create(ADMIN, [{"name": "public", "router:external": True}])
    services.subnets.create(ADMIN, [{"network_id": public["id"], "cidr": "203.0.113.0/24", "ip_version": 4}])
    routers = [router(services, external_gateway_info={"network_id": public["id"]}) for _ in range(2)]
    assert statements(services, "a") == 9  # BEGIN and the 8 SELECTs of l3view.compute
    for i in range(1, 4):
        [net] = services.networks.create(ADMIN, [{"name": f"n{i}"}])
        [sub] = services.subnets.create(ADMIN, [{"network_id": net["id"], "cidr": f"10.{i}.0.0/24",
                                                 "ip_version": 4}])
        services.routers.add_interface(ADMIN, routers[i % 2]["id"], {"subnet_id": sub["id"]})
    routers.append(router(services))
    assert statements(services, "a") == 9
    view = services.hostviews.view(ADMIN, "a", "l3")
    assert sorted(len(r.interfaces) for r in view.routers) == [0, 1, 2]
    assert all(r.gateway is not None and r.enable_snat for r in view.routers if r.id != routers[2]["id"])


@pytest.mark.filterwarnings("error::sqlalchemy.exc.SAWarning")
def test_deleting_bound_routers_networks_and_agents_leaves_the_orm_nothing_to_miss(make: ServicesFactory) -> None:
    """A binding has no ORM relationship to its parent: deleted in the same flush as the parent,
    the database's cascade could take it first and SQLAlchemy would warn of a missed DELETE."""
    services = make()
    register(services, "a")
    services.agents.report_state(ADMIN, {"agent_type": AGENT_TYPE_DHCP, "host": "a", "start_flag": True})
    rtr = router(services)
    assert hosts(services, rtr) == ["a"]
    services.routers.delete(ADMIN, rtr["id"])
    [net] = services.networks.create(ADMIN, [{"name": "n"}])
    services.subnets.create(ADMIN, [{"network_id": net["id"], "cidr": "10.9.0.0/24", "ip_version": 4}])
    assert [a["host"] for a in services.agentschedulers.dhcp_agents_hosting_network(ADMIN, net["id"])] == ["a"]
    services.networks.delete(ADMIN, net["id"])
    [net] = services.networks.create(ADMIN, [{"name": "n2"}])
    services.subnets.create(ADMIN, [{"network_id": net["id"], "cidr": "10.8.0.0/24", "ip_version": 4}])
    rtr = router(services)
    for agent in services.agents.list(ADMIN, ListQuery()):
        services.agents.delete(ADMIN, agent["id"])
    assert hosts(services, rtr) == []
