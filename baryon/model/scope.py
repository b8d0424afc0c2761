"""Who a change concerns: the keys a logged change touches and the keys an agent's view depends on.

Pure, no I/O. The server's long-polls (``baryon.api.watch``) use it so that a change costs work
only for the agents it concerns: a view is recomputed when a change in the log since it was
computed touches one of its keys, and only then (``ALL``: recompute whatever the view). Neutron's
server does the same by hand, notifying only the agents a change concerns (l2population, the
security group RPC); here it is one table of rules, checked by exhaustive unit tests.

A change is seen as ``(resource, action, before, after)``: ``before`` is the resource's body at its
previous entry in the log (None for a create, or when that entry is unknown: then an update
touches ``ALL``), ``after`` the body logged with the change (None for a delete, whose logged body is
``before``). Only the fields that differ count; cosmetic fields (names, descriptions, tags, the
status an agent reports) never do.

Keys (tuples):
- ``("host", H)``: a port bound to host H changed in a way its own host's Open vSwitch agent sees
  (any field but cosmetic ones: its addresses, admin state, groups, binding ...);
- ``("l2", N)``: a port of network N changed what l2population tells other hosts (MAC, fixed IPs,
  binding host, VIF type, network);
- ``("members", G)``: the addresses of security group G's members changed (a member's fixed IPs or
  allowed address pairs, or a port joined or left G);
- ``("sg", G)``: group G or its rules changed (a group in use cannot be deleted: its members
  change only through port changes);
- ``("net", N)``: network N changed (MTU, segments, admin state ...);
- ``("dhcp", N)``: a port of network N changed what the DHCP agent serves;
- ``("dhcp-any",)``: a subnet or a network changed (which networks a DHCP agent serves can change);
- ``("dhcp-host", H)``: a network was bound to or unbound from host H's DHCP agent;
- ``("agents",)``: an agent appeared, went or changed its tunnel endpoint or bridge mappings;
- ``("ag", A)``: the addresses of address group A changed (its name or description never count;
  a group a rule uses cannot be deleted, and a rule naming it comes as a change of its group).

A view depends on (``host_view_scope``, ``dhcp_view_scope``): the keys above that can change it.
The L3 agent's view depends on everything (``ALL``): there are few L3 agents (network nodes), and
its view reads routers, floating IPs, ports and subnets alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from baryon.model import dhcp as dm
from baryon.model import host as hm


class _All:
    """Every key: a change that may concern any view (or a view that any change may concern)."""

    def __repr__(self) -> str:
        return "ALL"


ALL: Final = _All()
Key = tuple[str, ...]
Keys = frozenset[Key] | _All

# Fields that never reach a view: the log's bookkeeping, names, and statuses agents report.
COSMETIC = frozenset({"name", "description", "tags", "status", "revision_number", "created_at", "updated_at",
                      "project_id", "tenant_id", "status_reason"})

# A port's fields by who sees them (a changed field outside every set is seen by all of them).
PORT_L2 = frozenset({"mac_address", "fixed_ips", "binding:host_id", "binding:vif_type", "network_id"})
PORT_MEMBERS = frozenset({"fixed_ips", "allowed_address_pairs", "security_groups"})
PORT_DHCP = frozenset({"mac_address", "fixed_ips", "device_owner", "device_id", "extra_dhcp_opts", "dns_name",
                       "dns_assignment", "dns_domain", "network_id"})
PORT_HOST_ONLY = frozenset({"admin_state_up", "port_security_enabled", "binding:vif_details", "binding:profile",
                            "binding:vnic_type", "device_owner"})
PORT_KNOWN = PORT_L2 | PORT_MEMBERS | PORT_DHCP | PORT_HOST_ONLY
# Fields of a port the DHCP agent never reads (beside the cosmetic ones).
PORT_NOT_DHCP = PORT_KNOWN - PORT_DHCP
# A network's fields no view reads: its subnets come as subnet changes.
NETWORK_IGNORED = frozenset({"subnets"})
AGENT_SEEN = frozenset({"host", "agent_type"})
# An agent's configurations that views read (tunnel endpoints); not ``devices`` and the like,
# which move with every port its host plugs.
AGENT_VIEW_CONFIG = ("tunneling_ip", "tunnel_types", "bridge_mappings")

# The change log's resource names (``baryon.service.bindings.DHCP`` / ``L3``).
DHCP_BINDING = "network_dhcp_agent_binding"
L3_BINDING = "router_l3_agent_binding"
# Resources no Open vSwitch or DHCP view reads (the L3 view depends on everything anyway): a
# subnet pool or an address scope reaches agents only through the subnets made from it; flavors
# and service profiles, through nothing (a router only shows its flavor_id); an RBAC policy changes
# who may use an object, which no agent's view holds (a network's own change, logged with it, says
# what agents need).
UNSEEN = frozenset({"router", "floatingip", L3_BINDING, "subnetpool", "address_scope", "flavor", "service_profile",
                    "rbac_policy"})
ADDRESS_GROUP = "address_group"


def changed_fields(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> frozenset[str]:
    """The non-cosmetic fields whose values differ (every field of the body that exists when the
    other is None)."""
    if before is None or after is None:
        body = before if after is None else after
        return frozenset(body or ()) - COSMETIC
    names = (set(before) | set(after)) - COSMETIC
    return frozenset(k for k in names if before.get(k) != after.get(k))


def _ids(values: Iterable[Any]) -> list[str]:
    return [v for v in values if isinstance(v, str) and v]


def _port_keys(bodies: list[Mapping[str, Any]], changed: frozenset[str]) -> frozenset[Key]:
    unknown = bool(changed - PORT_KNOWN)
    keys: set[Key] = set()
    for body in bodies:
        host, network = body.get("binding:host_id"), body.get("network_id")
        if host:  # every non-cosmetic field of a port is seen by its own host's agent
            keys.add(("host", host))
        if network and (unknown or changed & PORT_L2):
            keys.add(("l2", network))
        if network and (unknown or changed - PORT_NOT_DHCP):
            keys.add(("dhcp", network))
        if unknown or changed & PORT_MEMBERS:
            keys.update(("members", g) for g in _ids(body.get("security_groups") or ()))
    return frozenset(keys)


def touches(resource: str, action: str, before: Mapping[str, Any] | None,
            after: Mapping[str, Any] | None) -> Keys:
    """The keys a logged change touches (see the module doc); ``ALL`` when it cannot be told."""
    if action == "update" and (before is None or after is None):
        return ALL  # the previous state is unknown: who the change concerns cannot be told
    if resource in UNSEEN:
        return frozenset()
    changed = changed_fields(before, after)
    if not changed:
        return frozenset()
    bodies = [b for b in (before, after) if b is not None]
    if resource == "port":
        return _port_keys(bodies, changed)
    if resource == "network":
        if not changed - NETWORK_IGNORED:
            return frozenset()
        return frozenset({("dhcp-any",)} | {("net", b["id"]) for b in bodies if b.get("id")})
    if resource == "subnet":
        return frozenset({("dhcp-any",)})
    if resource == "security_group":  # NOTE: its members change as port changes, never as its own
        return frozenset(("sg", g) for g in _ids(b.get("id") for b in bodies))
    if resource == "security_group_rule":
        return frozenset(("sg", g) for g in _ids(b.get("security_group_id") for b in bodies))
    if resource == "agent":
        return frozenset({("agents",)}) if action != "update" or _agent_seen(before, after, changed) else frozenset()
    if resource == DHCP_BINDING:
        return frozenset(("dhcp-host", h) for h in _ids(b.get("host") for b in bodies))
    if resource == ADDRESS_GROUP:
        return frozenset(("ag", a) for a in _ids(b.get("id") for b in bodies))
    return ALL  # a resource this table does not know


def _agent_seen(before: Mapping[str, Any], after: Mapping[str, Any], changed: frozenset[str]) -> bool:
    if changed & AGENT_SEEN:
        return True
    if "configurations" not in changed:
        return False
    was, now = before.get("configurations") or {}, after.get("configurations") or {}
    if not isinstance(was, dict) or not isinstance(now, dict):
        return True
    return any(was.get(k) != now.get(k) for k in AGENT_VIEW_CONFIG)


def union(parts: Iterable[Keys]) -> Keys:
    """The keys of several changes together (``ALL`` if any is)."""
    keys: set[Key] = set()
    for part in parts:
        if isinstance(part, _All):
            return ALL
        keys |= part
    return frozenset(keys)


def concerns(touched: Keys, scope: Keys) -> bool:
    """Whether changes that touched ``touched`` may change a view of ``scope``."""
    if isinstance(touched, _All) or isinstance(scope, _All):
        return True
    return not touched.isdisjoint(scope)


def host_view_scope(view: hm.HostView) -> frozenset[Key]:
    """What an Open vSwitch agent's view depends on: its host's ports, its networks' ports as
    l2population sees them and the networks themselves, its ports' groups, the members of the
    groups their rules name and the addresses of the address groups they name, and the agents
    (tunnel endpoints)."""
    networks = {n.id for n in view.networks}
    keys: set[Key] = {("host", view.host), ("agents",)}
    keys.update(("net", n) for n in networks)
    keys.update(("l2", n) for n in networks)
    keys.update(("sg", g.id) for g in view.security_groups)
    keys.update(("sg", g) for p in view.ports for g in p.security_groups)
    keys.update(("members", m.security_group_id) for m in view.group_members)
    keys.update(("ag", a.id) for a in view.address_groups)
    return frozenset(keys)


def dhcp_view_scope(view: dm.DhcpView) -> frozenset[Key]:
    """What a DHCP agent's view depends on: the bindings of its host, subnets and networks (which
    networks it serves), and the ports of the networks it serves."""
    keys: set[Key] = {("dhcp-host", view.host), ("dhcp-any",), ("agents",)}
    keys.update(("dhcp", n.id) for n in view.networks)
    return frozenset(keys)


def view_scope(view: Any) -> Keys:  # noqa: ANN401 - any agent view
    """The scope of any agent view: ``ALL`` for a kind this module has no rule for (the L3 view)."""
    if isinstance(view, hm.HostView):
        return host_view_scope(view)
    if isinstance(view, dm.DhcpView):
        return dhcp_view_scope(view)
    return ALL
