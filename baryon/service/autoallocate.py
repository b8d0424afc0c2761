"""Auto-allocated topology ("get me a network"): Neutron's auto-allocated-topology extension
(``services/auto_allocate/db.py``).

``get(project)`` returns the project's network, making it on the first call: a network
(``auto_allocated_network``), one subnet from each default subnet pool (``auto_allocated_subnet_v4``,
``_v6``: the pools' default prefix length), and a router (``auto_allocated_router``) with its
gateway on the default external network (``is_default``, see ``networks``) and an interface on each
subnet; the resources belong to the project. Idempotent: later calls return the same network.
``?fields=dry-run`` only checks that a topology could be made. ``delete(project)`` removes what was
made (nothing to remove: done). A caller acts on its own project (``None`` in the path means it);
an admin on any, another project is 403 ``NotAuthorized``.

Errors, as Neutron's (409 ``AutoAllocationFailure``, "Deployment error: <reason>."): no default
external network; no default subnet pool (dry-run: "No default subnetpools defined"; a real
request: "Unable to provide tenant private network", as for a pool that cannot give a subnet);
the router refused ("Unable to provide external connectivity"). A quota exceeded is its own 409.

Consistency: everything is made in one transaction (the one-row steps of the network, subnet and
router services, composed), unlike Neutron's steps and clean-ups: a failure or a crash leaves
nothing behind. The project's ``auto_allocated_topologies`` row is
written right after the network, so of two concurrent first calls one commits and the other
collides on the project's key, is retried (``Database.write``) and returns the committed network.
A delete goes through the ordinary API operations (interfaces, router, network: each its own
transaction, each tolerating what is already gone), so it can be repeated until it completes; the
row goes with the network.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from baryon.db import models as m
from baryon.service import errors, feed, networks as networks_service, quotas, router_interfaces, securitygroups
from baryon.service.base import Env, require_write
from baryon.service.context import Context
from baryon.service.networks import Networks
from baryon.service.routers import Routers
from baryon.service.dhcpscheduler import DhcpScheduler
from baryon.service.subnets import Subnets

DRY_RUN = "dry-run"
NETWORK, ROUTER, SUBNET = "auto_allocated_network", "auto_allocated_router", "auto_allocated_subnet_v%d"
NO_EXTERNAL = "No default router:external network"
NO_POOLS = "No default subnetpools defined"
NO_PRIVATE = "Unable to provide tenant private network"
NO_UPLINK = "Unable to provide external connectivity"


def default_pools(session: Session) -> list[m.SubnetPool]:
    """The default subnet pool of each IP version (4 first), those that exist."""
    found = {}
    for pool in session.execute(select(m.SubnetPool).where(m.SubnetPool.is_default.is_(True))
                                .order_by(m.SubnetPool.ip_version, m.SubnetPool.id)).scalars():
        found.setdefault(pool.ip_version, pool)
    return [found[v] for v in sorted(found)]


def _answer(network_id: str, project_id: str) -> dict:
    return {"id": network_id, "tenant_id": project_id, "project_id": project_id}


class AutoAllocate:
    def __init__(self, env: Env, networks: Networks, subnets: Subnets, routers: Routers):
        self.env = env
        self.networks, self.subnets, self.routers = networks, subnets, routers

    @staticmethod
    def _project(ctx: Context, project_id: str) -> str:
        project = ctx.project_id if project_id == "None" else project_id
        if not ctx.is_admin and project != ctx.project_id:
            raise errors.NotAuthorized()
        return project

    # ---------------------------------------------------------------- read, make

    def get(self, ctx: Context, project_id: str, fields: tuple[str, ...] = ()) -> dict:
        project = self._project(ctx, project_id)
        if DRY_RUN in fields:
            with self.env.db.read() as session:
                self._external(session)
                if not default_pools(session):
                    raise errors.AutoAllocationFailure(reason=NO_POOLS)
            return _answer("dry-run=pass", project)
        if fields:
            raise errors.BadRequest(resource="auto_allocate", msg="Unrecognized field")
        with self.env.db.read() as session:
            found = session.get(m.AutoAllocatedTopology, project)
            if found is not None:
                return _answer(found.network_id, project)
        require_write(ctx, "get_auto_allocated_topology")
        return _answer(self.env.write(lambda session: self._make(session, ctx, project)), project)

    @staticmethod
    def _external(session: Session) -> str:
        external = networks_service.default_external(session)
        if external is None:
            raise errors.AutoAllocationFailure(reason=NO_EXTERNAL)
        return external

    def _make(self, session: Session, ctx: Context, project: str) -> str:
        found = session.get(m.AutoAllocatedTopology, project)
        if found is not None:  # made meanwhile (this is the retry after a collision)
            return found.network_id
        external = self._external(session)
        pools = default_pools(session)
        if not pools:
            raise errors.AutoAllocationFailure(reason=NO_PRIVATE)
        quotas.check(session, self.env, project, "network")
        quotas.check(session, self.env, project, "subnet", len(pools))
        quotas.check(session, self.env, project, "router")
        securitygroups.ensure_default(session, project)
        network = self.networks._create_one(session, ctx, {"name": NETWORK, "project_id": project,
                                                           "admin_state_up": True, "shared": False})
        session.flush()
        topology = m.AutoAllocatedTopology(project_id=project, network_id=network.id, router_id=None)
        session.add(topology)
        session.flush()  # a concurrent first call collides here, before the rest is made
        try:
            subnets = []
            for pool in pools:
                subnets.append(self.subnets._create_one(session, ctx, {
                    "name": SUBNET % pool.ip_version, "network_id": network.id, "project_id": project,
                    "ip_version": pool.ip_version, "subnetpool_id": pool.id}))
                session.flush()
        except (errors.BadRequest, errors.NotFound, errors.SubnetAllocationError):
            raise errors.AutoAllocationFailure(reason=NO_PRIVATE) from None
        try:
            router = self.routers._create_one(session, ctx, {
                "name": ROUTER, "project_id": project, "admin_state_up": True,
                "external_gateway_info": {"network_id": external}})
            session.flush()
            scheduler = self.routers.scheduler
            for subnet in subnets:
                host = scheduler.host_of(session, router.id)
                router_interfaces.add(self.env, session, ctx, router, {"subnet_id": subnet.id}, host=host)
                scheduler.schedule(session, router, host=host)
        except errors.BadRequest:
            raise errors.AutoAllocationFailure(reason=NO_UPLINK) from None
        topology.router_id = router.id
        session.flush()
        for body in self.networks.render(session, [network]):
            feed.record(session, "network", "create", body)
        for body in self.subnets.render(session, subnets):
            feed.record(session, "subnet", "create", body)
        for body in self.routers.render(session, [router]):
            feed.record(session, "router", "create", body)
        DhcpScheduler(self.env).settle(session, network.id)
        return network.id

    # ---------------------------------------------------------------- delete

    def delete(self, ctx: Context, project_id: str) -> None:
        project = self._project(ctx, project_id)
        require_write(ctx, "delete_auto_allocated_topology")
        with self.env.db.read() as session:
            found = session.get(m.AutoAllocatedTopology, project)
            if found is None:
                return
            network_id, router_id = found.network_id, found.router_id
            subnet_ids = list(session.execute(select(m.Subnet.id).where(m.Subnet.network_id == network_id)
                                              .order_by(m.Subnet.created_at, m.Subnet.id)).scalars())
        if router_id is not None:
            for subnet_id in subnet_ids:
                try:
                    self.routers.remove_interface(ctx, router_id, {"subnet_id": subnet_id})
                except (errors.NotFound, errors.BadRequest):
                    pass  # not (or no longer) attached: a delete repeated, or a change by hand
            try:
                self.routers.delete(ctx, router_id)
            except errors.RouterNotFound:
                pass
        try:
            self.networks.delete(ctx, network_id)  # the topology's row goes with it (ON DELETE CASCADE)
        except errors.NetworkNotFound:
            pass
