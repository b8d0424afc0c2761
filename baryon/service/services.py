"""All resource services of one process, wired to one environment."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from baryon.config import Settings
from baryon.db.engine import Database
from baryon.service import (
    dhcpview, floatingips, hostview, l3view, networks, ports, quotas, routers, securitygroups, subnets,
)
from baryon.service import addressscopes, subnetpools
from baryon.service import addressgroups
from baryon.service import flavors
from baryon.service import defaultsgrules
from baryon.service import rbac, rbacpolicies
from baryon.service.agents import Agents, HookChain
from baryon.service.agentschedulers import AgentSchedulers
from baryon.service.base import Env
from baryon.service.dhcpscheduler import DhcpScheduler
from baryon.service.hostview import HostViews
from baryon.service.l3scheduler import L3Scheduler
from baryon.service.portstatus import StatusReports
from baryon.service.tags import Tags, TagTarget


@dataclass
class Services:
    env: Env
    networks: networks.Networks
    subnets: subnets.Subnets
    ports: ports.Ports
    tags: Tags
    agents: Agents
    agentschedulers: AgentSchedulers
    dhcp_scheduler: DhcpScheduler
    l3_scheduler: L3Scheduler
    security_groups: securitygroups.SecurityGroups
    security_group_rules: securitygroups.SecurityGroupRules
    quotas: quotas.Quotas
    routers: routers.Routers
    floatingips: floatingips.FloatingIPs
    hostviews: HostViews
    status_reports: StatusReports
    subnetpools: subnetpools.SubnetPools
    address_scopes: addressscopes.AddressScopes
    address_groups: addressgroups.AddressGroups
    flavors: flavors.Flavors
    service_profiles: flavors.ServiceProfiles
    default_security_group_rules: defaultsgrules.DefaultSecurityGroupRules
    rbac_policies: rbacpolicies.RbacPolicies

    @classmethod
    def create(cls, settings: Settings, db: Database) -> "Services":
        env = Env.create(settings, db)
        nets, subs, prts = networks.Networks(env), subnets.Subnets(env), ports.Ports(env)
        groups = securitygroups.SecurityGroups(env)
        l3 = L3Scheduler(env)
        rtrs, fips = routers.Routers(env, l3), floatingips.FloatingIPs(env)
        pools = subnetpools.SubnetPools(env)
        targets = {
            "networks": TagTarget(networks.load_owned, lambda s, row: nets.render(s, [row])[0]),
            "subnets": TagTarget(subnets.load_owned, lambda s, row: subs.render(s, [row])[0]),
            "ports": TagTarget(ports.load_visible, lambda s, row: prts.render(s, [row])[0]),
            "security_groups": TagTarget(
                lambda s, ctx, gid: securitygroups.load_owned(s, ctx, gid, "update_security_group"),
                lambda s, row: groups.render(s, [row])[0]),
            "routers": TagTarget(routers.load_visible, lambda s, row: rtrs.render(s, [row])[0]),
            "floatingips": TagTarget(floatingips.load_visible, lambda s, row: fips.render(s, [row])[0]),
            "subnetpools": TagTarget(subnetpools.load_owned, lambda s, row: pools.render(s, [row])[0]),
        }
        dhcp = DhcpScheduler(env)
        agents = Agents(env, hooks=HookChain(dhcp, l3))
        schedulers = AgentSchedulers(env, agents, dhcp, l3, nets.render, rtrs.render)
        views = HostViews(env, {"ovs": hostview.compute, "dhcp": functools.partial(
            dhcpview.compute, options=dhcpview.Options.from_settings(settings)), "l3": l3view.compute},
                           refreshes={"ovs": hostview.refresh})
        agents.realised = views.realised
        return cls(env=env, networks=nets, subnets=subs, ports=prts, tags=Tags(env, targets),
                   agents=agents, agentschedulers=schedulers, dhcp_scheduler=dhcp, l3_scheduler=l3,
                   security_groups=groups,
                   security_group_rules=securitygroups.SecurityGroupRules(env, groups),
                   quotas=quotas.Quotas(env), routers=rtrs, floatingips=fips,
                   hostviews=views, status_reports=StatusReports(env, prts),
                   subnetpools=pools, address_scopes=addressscopes.AddressScopes(env),
                   address_groups=addressgroups.AddressGroups(env),
                   flavors=flavors.Flavors(env), service_profiles=flavors.ServiceProfiles(env),
                   default_security_group_rules=defaultsgrules.DefaultSecurityGroupRules(env),
                   rbac_policies=rbacpolicies.RbacPolicies(env, rbac_types(nets, pools, groups)))


def rbac_types(nets: networks.Networks, pools: subnetpools.SubnetPools,
               groups: securitygroups.SecurityGroups) -> dict[str, rbac.ObjectType]:
    """The object types RBAC policies apply to (``rbac.ObjectType``): one entry per type."""
    shared = (rbac.SHARED,)
    types = [
        rbac.ObjectType("network", "networks", (rbac.SHARED, rbac.EXTERNAL),
                        lambda s, ctx, i: networks.load_visible(s, ctx, i, for_update=True),
                        lambda s, row: nets.render(s, [row])[0], networks.rbac_users, networks.rbac_sync,
                        check_removal=networks.rbac_check_removal),
        rbac.ObjectType("subnetpool", "subnetpools", shared,
                        lambda s, ctx, i: subnetpools.load_visible(s, ctx, i, for_update=True),
                        lambda s, row: pools.render(s, [row])[0], subnetpools.rbac_users, subnetpools.rbac_sync,
                        check_target=subnetpools.rbac_check_target),
        rbac.ObjectType("address_scope", "address scopes", shared,
                        lambda s, ctx, i: addressscopes.load_visible(s, ctx, i, for_update=True),
                        lambda s, row: addressscopes.body(row), addressscopes.rbac_users, addressscopes.rbac_sync),
        rbac.ObjectType("security_group", "security groups", shared,
                        lambda s, ctx, i: securitygroups.load_visible(s, ctx, i, for_update=True),
                        lambda s, row: groups.render(s, [row])[0], securitygroups.rbac_users),
        rbac.ObjectType(addressgroups.RBAC_TYPE, "address groups", shared,
                        lambda s, ctx, i: addressgroups.load_visible(s, ctx, i, for_update=True),
                        lambda s, row: addressgroups.body(row), addressgroups.rbac_users),
    ]
    return {t.name: t for t in types}
