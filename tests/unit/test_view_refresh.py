"""A kept host view brought up to date by reading again only the parts a change touched
(``service.hostview.refresh`` through ``service.viewcache``), checked against the whole view.

For every kind of change the services make, each Open vSwitch agent's view that the cache answers
after it (refreshed, computed or kept) equals, etag included, the view computed whole at that
moment; and a change of a group's members on another host is answered by a refresh, not by a
computation, for the hosts whose rules name the group.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from baryon.model.host import GroupMembers, HostView
from baryon.service import hostview
from tests.unit.test_view_relevance import ADMIN, World, register, update_port, with_address_group, world  # noqa: F401

OVS_HOSTS = ("a", "b", "c")


def answered(w: World) -> dict[str, HostView]:
    """The cache's answer for each OVS host's agent, as of the log's latest sequence."""
    latest = w.seq()
    return {h: w.s.hostviews.watched(ADMIN, h, "ovs", latest) for h in OVS_HOSTS}


def check_after(w: World, change: Callable[[World], object]) -> tuple[int, int]:
    """Keep every view, apply ``change``, then compare each answer with a whole computation.
    Returns how many views the cache refreshed and computed for the change."""
    cache = w.s.hostviews.cache
    answered(w)
    refreshed, computed = cache.refreshed, cache.computed
    change(w)
    latest = w.seq()
    for host, view in answered(w).items():
        whole = w.s.hostviews.compute("ovs", host)
        assert view == whole, host  # every part, and seq: the log's latest
        assert view.etag == whole.etag, host
        assert view.seq == latest, host
    return cache.refreshed - refreshed, cache.computed - computed


def join(port: str, *groups: str) -> Callable[[World], object]:
    return lambda w: w.s.ports.update(ADMIN, getattr(w, port)["id"],
                                      {"security_groups": [getattr(w, g)["id"] for g in groups]})


CHANGES: list[tuple[str, Callable[[World], object], int]] = [
    # (name, change, the least number of views refreshed: c's rule names g, a's and b's group)
    ("a's port leaves g", join("pa", "g2"), 1),
    ("a's port joins g again", lambda w: (join("pa", "g2")(w), join("pa", "g", "g2")(w)), 1),
    ("b's port fixed IPs", lambda w: w.s.ports.update(ADMIN, w.pb["id"], {"fixed_ips": [
        {"subnet_id": w.sub1["id"], "ip_address": "10.1.0.201"}]}), 1),
    ("a's port address pairs", update_port("pa", allowed_address_pairs=[{"ip_address": "192.0.2.9"}]), 1),
    ("port created on a in g", lambda w: w.port(w.n1, "a", w.g), 1),
    ("port created on b in g2", lambda w: w.port(w.n1, "b", w.g2), 0),
    ("b's port deleted", lambda w: w.s.ports.delete(ADMIN, w.pb["id"]), 1),
    ("a's port security off", lambda w: w.s.ports.update(ADMIN, w.pa["id"], {
        "security_groups": [], "port_security_enabled": False}), 1),
    ("a's port moved to c", update_port("pa", **{"binding:host_id": "c"}), 0),
    ("a's port admin state", update_port("pa", admin_state_up=False), 0),
    ("port created on c, in g", lambda w: w.port(w.n2, "c", w.g), 0),
    ("rule added to g", lambda w: w.s.security_group_rules.create(ADMIN, [{
        "security_group_id": w.g["id"], "direction": "ingress", "remote_group_id": w.g2["id"]}]), 0),
    ("network MTU", lambda w: w.s.networks.update(ADMIN, w.n1["id"], {"mtu": 1400}), 0),
    ("tunnel endpoint moved", lambda w: register(w.s, "b", ip="10.0.0.22"), 0),
    ("a's port joins g, then b's port renamed", lambda w: (join("pa", "g", "g2")(w),
                                                          update_port("pb", name="x")(w)), 1),
    ("a's port leaves g, then rule added to watcher", lambda w: (join("pa", "g2")(w), w.s.security_group_rules.create(
        ADMIN, [{"security_group_id": w.watcher["id"], "direction": "egress", "remote_group_id": w.g2["id"]}])), 0),
]


@pytest.mark.parametrize(("name", "change", "least"), CHANGES, ids=[c[0] for c in CHANGES])
def test_a_refreshed_view_is_the_whole_view(world: World, name: str,  # noqa: F811
                                            change: Callable[[World], object], least: int) -> None:
    refreshed, _computed = check_after(world, change)
    assert refreshed >= least, name


def test_a_membership_change_on_another_host_is_a_refresh(world: World) -> None:  # noqa: F811
    """c's rule names g: a's port leaving g changes c's view by g's members only; a's view is
    computed (its own port changed), b's is kept (nothing of it changed)."""
    cache = world.s.hostviews.cache
    before = answered(world)
    refreshed, computed = cache.refreshed, cache.computed
    join("pa", "g2")(world)
    after = answered(world)
    assert (cache.refreshed - refreshed, cache.computed - computed) == (1, 1)
    assert after["c"].ports is before["c"].ports and after["c"].remote_ports is before["c"].remote_ports
    assert after["c"].group_members != before["c"].group_members
    assert after["b"].etag == before["b"].etag


def test_address_group_changes_are_refreshes(world: World) -> None:  # noqa: F811
    ag, _idle = with_address_group(world)
    refreshed, computed = check_after(world, lambda w: w.s.address_groups.add_addresses(ADMIN, ag["id"],
                                                                                         ["203.0.113.7"]))
    assert (refreshed, computed) == (1, 0)
    refreshed, computed = check_after(world, lambda w: w.s.address_groups.remove_addresses(ADMIN, ag["id"],
                                                                                            ["192.0.2.0/24"]))
    assert (refreshed, computed) == (1, 0)


def test_refresh_refuses_any_other_key(world: World) -> None:  # noqa: F811
    view = world.s.hostviews.compute("ovs", "c")
    with world.s.env.db.read() as session:
        for key in (("host", "c"), ("l2", world.n2["id"]), ("sg", world.watcher["id"]), ("agents",),
                    ("net", world.n2["id"])):
            assert hostview.refresh(session, view, frozenset({key, ("members", world.g["id"])})) is None
        stale = HostView("c", group_members=(GroupMembers(world.g["id"], ("198.51.100.1",)),))
        fresh = hostview.refresh(session, stale, frozenset({("members", world.g["id"])}))
    assert fresh is not None and fresh.group_members[0].addresses == tuple(sorted(
        [world.pa["fixed_ips"][0]["ip_address"], world.pb["fixed_ips"][0]["ip_address"]]))
    assert fresh.etag == fresh.with_etag().etag != stale.etag
