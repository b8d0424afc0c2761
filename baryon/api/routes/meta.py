"""``GET /`` (versions), ``GET /v2.0/`` (resources) and ``/v2.0/extensions``.

The extension list names only what Baryon implements, so clients that probe for an extension
(the ``openstack`` CLI does) get a truthful answer.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from baryon.api.routes.resources import json
from baryon.service import errors

UPDATED = "2026-11-25T00:00:00-00:00"

# alias -> (name, description)
EXTENSIONS: dict[str, tuple[str, str]] = {
    "provider": ("Provider Network", "Expose mapping of virtual networks to physical networks"),
    "external-net": ("Neutron external network", "Adds external network attribute to network resource."),
    "binding": ("Port Binding", "Expose port bindings of a virtual port to external application"),
    "allowed-address-pairs": ("Allowed Address Pairs", "Provides allowed address pairs"),
    "extra_dhcp_opt": ("Neutron Extra DHCP options", "Extra options configuration for DHCP."),
    "net-mtu": ("Network MTU", "Provides MTU attribute for a network resource."),
    "net-mtu-writable": ("Network MTU (writable)", "Provides a writable MTU attribute for a network resource."),
    "standard-attr-description": ("standard-attr-description", "Extension to add descriptions to standard attributes"),
    "standard-attr-timestamp": ("Resource timestamps", "Adds created_at and updated_at fields to all Neutron resources."),
    "standard-attr-revisions": ("Resource revision numbers", "This extension will display the revision number of neutron resources."),
    "standard-attr-tag": ("Tag support for resources with standard attribute: subnet, trunk, network_segment_range, router, network, policy, subnetpool, port, security_group, floatingip", "Enables to set tag on resources with standard attribute."),
    "tag-creation": ("Tag creation extension", "Allow to set tags on resource creation"),
    "revision-if-match": ("If-Match constraints based on revision_number", "Extension indicating that If-Match based on revision_number is supported."),
    "pagination": ("Pagination support", "Extension that indicates that pagination is enabled."),
    "sorting": ("Sorting support", "Extension that indicates that sorting is enabled."),
    "filter-validation": ("Filter parameters validation", "Provides validation on filter parameters."),
    "project-id": ("project_id field enabled", "Extension that indicates that project_id field is enabled."),
    "network_availability_zone": ("Network Availability Zone", "Availability zone support for network."),
    "ip-substring-filtering": ("IP address substring filtering", "Provides IP address substring filtering when listing ports"),
    "empty-string-filtering": ("Empty String Filtering Extension", "Allow filtering by attributes with empty string value"),
    "port-security": ("Port Security", "Provides port security"),
    "security-group": ("security-group", "The security groups extension."),
    "stateful-security-group": ("Stateful security group", "Indicates if the security group is stateful or not"),
    "security-groups-normalized-cidr": ("Normalized CIDR field for security group rules",
                                        "Add new field with normalized remote_ip_prefix cidr in SG rule"),
    "port-security-groups-filtering": ("Port filtering on security groups",
                                       "Provides security groups filtering when listing ports"),
    "quotas": ("Quota management support", "Expose functions for quotas management per project"),
    "quota_details": ("Quota details management support", "Expose functions for quotas usage statistics per project"),
    "quota-check-limit": ("Quota engine limit check",
                          "Support for checking the resource usage before applying a new quota limit"),
    "quota-check-limit-default": ("Quota engine limit check by default", "By default, the Neutron quota engine "
                                  "checks the resource usage before applying a new quota limit"),
    "agent": ("agent", "The agent management extension."),
    "dhcp_agent_scheduler": ("DHCP Agent Scheduler", "Schedule networks among dhcp agents"),
    "l3_agent_scheduler": ("L3 Agent Scheduler", "Schedule routers among l3 agents"),
    "router": ("Neutron L3 Router", "Router abstraction for basic L3 forwarding between L2 Neutron networks and "
               "access to external networks via a NAT gateway."),
    "ext-gw-mode": ("Neutron L3 Configurable external gateway mode",
                    "Extension of the router abstraction for specifying whether SNAT should occur on the "
                    "external gateway"),
    "extraroute": ("Neutron Extra Route", "Extra routes configuration for L3 router"),
    "extraroute-atomic": ("Atomically add/remove extra routes",
                          "Edit extra routes of a router on server side by atomically adding/removing extra routes"),
    # NOTE: the dvr extension's attribute, ``distributed``, is served (always false; true is a 400:
    # Baryon builds legacy routers only), as by a Neutron whose routers are all centralized.
    "dvr": ("Distributed Virtual Router", "Enables configuration of Distributed Virtual Routers."),
    "fip-port-details": ("Floating IP Port Details Extension", "Add port_details attribute to Floating IP resource"),
    "floatingip-pools": ("Floating IP Pools Extension", "Provides a floating IP pools API."),
    "subnet_allocation": ("Subnet Allocation", "Enables allocation of subnets from a subnet pool"),
    "default-subnetpools": ("Default Subnetpools", "Provides ability to mark and use a subnetpool as the default."),
    "subnetpool-prefix-ops": ("Subnet Pool Prefix Operations", "Provides support for adjusting the prefix list "
                              "of subnet pools"),
    "address-scope": ("Address scope", "Address scopes extension."),
    "network-ip-availability": ("Network IP Availability",
                                "Provides IP availability data for each network and subnet."),
    "network-ip-availability-details": ("Network IP Availability Details Extension",
                                        "Add ip_availability_details attribute to network-ip-availabilities resource."),
    "tag-ports-during-bulk-creation": ("Tag Ports During Bulk Creation", "Allow to tag ports during bulk creation"),
    "port-mac-address-regenerate": ("Neutron Port MAC address regenerate", "Network port MAC address regenerate"),
    "address-group": ("Address group", "Support address group"),
    "security-groups-remote-address-group": ("Remote address group id field for security group rules",
                                             "Add new field of remote address group id in SG rules"),
    "flavors": ("Neutron Service Flavors", "Flavor specification for Neutron advanced services."),
    "service-type": ("Neutron Service Type Management",
                     "API for retrieving service providers for Neutron advanced services"),
    "l3-flavors": ("Router Flavor Extension", "Flavor support for routers."),
    "security-groups-default-rules": ("Default rules for security groups", "Configure set of security group rules "
                                      "used as default rules for every new security group"),
    "subnet-service-types": ("Subnet service types", "Provides ability to set the subnet service_types field"),
    "availability_zone": ("Availability Zone", "The availability zone extension."),
    "availability_zone_filter": ("Availability Zone Filter Extension", "Add filter parameters to AvailabilityZone "
                                 "resource"),
    "router_availability_zone": ("Router Availability Zone", "Availability zone support for router."),
    "auto-allocated-topology": ("Auto Allocated Topology Services", "Auto Allocated Topology Services."),
    "rbac-policies": ("RBAC Policies", "Allows creation and modification of policies that control tenant access "
                      "to resources."),
    "rbac-security-groups": ("Add security_group type to network RBAC", "Add security_group type to network RBAC"),
    "rbac-subnetpool": ("Add subnetpool type to RBAC", "Add subnetpool type to RBAC"),
    "rbac-address-scope": ("Add address_scope type to RBAC", "Add address_scope type to RBAC"),
    "rbac-address-group": ("Add address_group type to RBAC", "Add address_group type to network RBAC"),
}


def _extension(alias: str) -> dict:
    name, description = EXTENSIONS[alias]
    return {"alias": alias, "name": name, "description": description, "updated": UPDATED, "links": []}


def routes(collections: list[tuple[str, str]], port_security: bool) -> list[Route]:
    aliases = [a for a in EXTENSIONS if port_security or a != "port-security"]

    async def versions(request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        return json({"versions": [{"id": "v2.0", "status": "CURRENT",
                                   "links": [{"href": f"{base}/v2.0/", "rel": "self"}]}]})

    async def resources(request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        return json({"resources": [{"name": name, "collection": coll,
                                    "links": [{"href": f"{base}/v2.0/{coll}", "rel": "self"}]}
                                   for name, coll in collections]})

    async def extensions(_request: Request) -> Response:
        return json({"extensions": [_extension(a) for a in aliases]})

    async def extension(request: Request) -> Response:
        alias = request.path_params["alias"]
        if alias not in aliases:
            raise errors.ResourceNotFound()
        return json({"extension": _extension(alias)})

    return [
        Route("/", versions, methods=["GET"]),
        Route("/v2.0", resources, methods=["GET"]),
        Route("/v2.0/", resources, methods=["GET"]),
        Route("/v2.0/extensions", extensions, methods=["GET"]),
        Route("/v2.0/extensions.json", extensions, methods=["GET"]),
        Route("/v2.0/extensions/{alias}", extension, methods=["GET"]),
    ]
