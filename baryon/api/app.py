"""The ASGI application: routes, error mapping, and the services behind them.

Routes: the Networking API v2.0 (``/v2.0/...``) and Baryon's agent API (``/agent/v1/...``, see
``routes.agentapi``), whose long-polls end when the process gets SIGTERM or SIGINT (``watch``).

``create_app(settings)`` builds one app over one ``Database``; ``worker_app()`` is the factory each
API worker process calls (the settings come from the config files named in ``BARYON_CONFIG_FILES``,
set by ``baryon server`` before it forks its workers).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from baryon import config
from baryon.api import faults, keystone, memory, metrics, openapi, siblings, sizelimit
from baryon.api.routes import agentapi, agents as agent_routes, meta, quotas as quota_routes, resources
from baryon.api.routes import routers as router_routes
from baryon.api.routes import subnetpools as subnetpool_routes
from baryon.api.routes import topology as topology_routes
from baryon.api.routes import ipavailability as ipavailability_routes
from baryon.api.routes import fippools as fippool_routes
from baryon.api.routes import addressgroups as addressgroup_routes
from baryon.api.routes import availabilityzones as az_routes
from baryon.api.routes import autoallocate as autoallocate_routes
from baryon.api.schemas import agent, floatingip, network, port, router, security_group, subnet
from baryon.api.schemas import address_scope, subnetpool
from baryon.api.schemas import address_group
from baryon.api.routes import flavors as flavor_routes, serviceproviders as serviceprovider_routes
from baryon.api.schemas import flavor
from baryon.api.schemas import default_security_group_rule
from baryon.api.schemas import rbac_policy
from baryon.api.watch import SeqWatch, stop_waits_on_exit_signals
from baryon.db.engine import Database
from baryon.service import agents as agents_service
from baryon.service import networks as networks_service, ports as ports_service, subnets as subnets_service
from baryon.service import securitygroups as sg_service
from baryon.service import floatingips as floatingips_service, routers as routers_service
from baryon.service import addressscopes as addressscopes_service, subnetpools as subnetpools_service
from baryon.service import addressgroups as addressgroups_service
from baryon.service import flavors as flavors_service
from baryon.service import defaultsgrules as defaultsgrules_service
from baryon.service import rbacpolicies as rbacpolicies_service
from baryon.service.fippools import FloatingIPPools
from baryon.service.availabilityzones import AvailabilityZones
from baryon.service.autoallocate import AutoAllocate
from baryon.service.ipavailability import IpAvailability
from baryon.service.metrics import StateCollector
from baryon.service.services import Services

COLLECTIONS = [
    resources.Collection("network", "networks", network.ATTRS, "networks", networks_service.LISTING),
    resources.Collection("subnet", "subnets", subnet.ATTRS, "subnets", subnets_service.LISTING),
    resources.Collection("port", "ports", port.ATTRS, "ports", ports_service.LISTING),
    resources.Collection("agent", "agents", agent.ATTRS, "agents", agents_service.LISTING,
                         allow_create=False, taggable=False),
    resources.Collection("security_group", "security_groups", security_group.GROUP_ATTRS, "security_groups",
                         sg_service.GROUP_LISTING, path="security-groups"),
    resources.Collection("security_group_rule", "security_group_rules", security_group.RULE_ATTRS,
                         "security_group_rules", sg_service.RULE_LISTING, path="security-group-rules",
                         updatable=False, taggable=False),
    resources.Collection("router", "routers", router.ATTRS, "routers", routers_service.LISTING),
    resources.Collection("floatingip", "floatingips", floatingip.ATTRS, "floatingips", floatingips_service.LISTING),
    resources.Collection("subnetpool", "subnetpools", subnetpool.ATTRS, "subnetpools", subnetpools_service.LISTING),
    resources.Collection("address_scope", "address_scopes", address_scope.ATTRS, "address_scopes",
                         addressscopes_service.LISTING, path="address-scopes", taggable=False),
    resources.Collection("address_group", "address_groups", address_group.ATTRS, "address_groups",
                         addressgroups_service.LISTING, path="address-groups", taggable=False),
    resources.Collection("flavor", "flavors", flavor.FLAVOR_ATTRS, "flavors", flavors_service.FLAVOR_LISTING,
                         taggable=False),
    resources.Collection("service_profile", "service_profiles", flavor.SERVICE_PROFILE_ATTRS, "service_profiles",
                         flavors_service.PROFILE_LISTING, taggable=False),
    resources.Collection("default_security_group_rule", "default_security_group_rules",
                         default_security_group_rule.ATTRS, "default_security_group_rules",
                         defaultsgrules_service.LISTING, path="default-security-group-rules", updatable=False,
                         taggable=False),
    resources.Collection("rbac_policy", "rbac_policies", rbac_policy.ATTRS, "rbac_policies",
                         rbacpolicies_service.LISTING, path="rbac-policies", taggable=False),
]


def create_app(settings: config.Settings, db: Database | None = None) -> Starlette:
    db = db or Database(settings.database_url, pool_size=settings.database.max_pool_size,
                        max_overflow=settings.database.max_overflow, pool_timeout=settings.database.pool_timeout)
    services = Services.create(settings, db)
    memory.tune()  # before the thread pool's threads make their own arenas
    port_security = services.env.port_security
    routes = meta.routes([(c.resource, c.segment) for c in COLLECTIONS], port_security)
    routes += agent_routes.routes(services)
    routes += quota_routes.routes(services)
    routes += router_routes.routes(services)
    routes += subnetpool_routes.routes(services)  # subnetpool-prefix-ops
    routes += ipavailability_routes.routes(IpAvailability(services.env))  # network-ip-availability
    routes += fippool_routes.routes(FloatingIPPools(services.env))  # floatingip-pools
    routes += addressgroup_routes.routes(services)  # address-group's add_addresses / remove_addresses
    routes += flavor_routes.routes(services.flavors)  # flavors: a flavor's service profile bindings
    routes += serviceprovider_routes.routes()  # service-type
    routes += az_routes.routes(AvailabilityZones(services.env))  # availability_zone
    routes += autoallocate_routes.routes(AutoAllocate(services.env, services.networks, services.subnets,
                                                      services.routers))  # auto-allocated-topology
    routes += agentapi.routes(services, SeqWatch(services.env.bell, services.hostviews.last_seq))
    routes += metrics.routes(StateCollector(services.env, services.hostviews.realised))  # GET /metrics, unauthenticated (api.metrics)
    routes += topology_routes.routes(services, SeqWatch(services.env.bell, services.hostviews.last_seq), COLLECTIONS)
    routes += resources.routes(services, COLLECTIONS, settings.DEFAULT.pagination_max_limit, port_security)
    routes += openapi.routes(COLLECTIONS, port_security)  # GET /openapi.json, unauthenticated (api.openapi)
    handlers = {**faults.HANDLERS, HTTPException: faults.http_error, Exception: faults.unexpected}
    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        undo = stop_waits_on_exit_signals(services.env.bell)  # long-polls end when the server stops
        sibling_dir = os.environ.get(siblings.ENV)
        peers = siblings.Siblings(sibling_dir, services.env.bell) if sibling_dir else None
        if peers is not None:
            peers.start()  # commits of the other workers wake this one's long-polls at once
        try:
            yield
        finally:
            if peers is not None:
                peers.stop()
            undo()
            db.dispose()

    app = Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan,  # type: ignore[arg-type]
                    middleware=[Middleware(metrics.RequestMetrics),
                                # [oslo_middleware] max_request_body_size: 413 before a body is parsed
                                Middleware(sizelimit.BodyLimit,
                                           max_size=settings.oslo_middleware.max_request_body_size),
                                *keystone.middleware(settings)])  # auth_strategy = keystone: tokens on /v2.0
    app.state.services = services
    app.state.auth_strategy = settings.DEFAULT.auth_strategy  # deps.context: keystone never falls back to noauth
    return app


def worker_app() -> Starlette:
    files = [f for f in os.environ.get(config.FILES_ENV, "").split(os.pathsep) if f]
    return create_app(config.load(files))
