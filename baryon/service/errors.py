"""Domain errors: typed, carrying their fields; Neutron's names, messages and status codes.

The class name is what clients see as ``NeutronError.type``; ``status`` is the HTTP status the
API's fault mapper (``baryon.api.faults``) answers with. Messages follow neutron-lib's wording so
that clients and operators recognise them.
"""

from __future__ import annotations


class NeutronError(Exception):
    status = 500
    message = "An unknown exception occurred."

    def __init__(self, **fields: object) -> None:
        self.fields = fields
        try:
            text = self.message % fields
        except (KeyError, TypeError, ValueError):
            text = self.message
        super().__init__(text)

    @property
    def type(self) -> str:
        return type(self).__name__


class BadRequest(NeutronError):
    status = 400
    message = "Bad %(resource)s request: %(msg)s."


class NotFound(NeutronError):
    status = 404
    message = "An unknown exception occurred."


class Conflict(NeutronError):
    status = 409
    message = "An unknown exception occurred."


class NotAuthorized(NeutronError):
    status = 403
    message = "Not authorized."


class ServiceUnavailable(NeutronError):
    status = 503
    message = "The service is unavailable."


# ---------------------------------------------------------------- input


class HTTPBadRequest(BadRequest):
    """Malformed request (unknown attributes, wrong types): the message is given whole."""

    message = "%(msg)s"


class InvalidInput(BadRequest):
    message = "Invalid input for operation: %(error_message)s."


class HTTPForbidden(NotAuthorized):
    message = "%(msg)s"


class PolicyNotAuthorized(NotAuthorized):
    message = "%(rule)s is disallowed by policy"  # compound rules come parenthesised, as oslo.policy


class PreconditionFailed(NeutronError):
    status = 412
    message = "%(msg)s"


class RevisionNumberConstraintFailed(NeutronError):
    status = 412
    message = "Constrained to %(expected)s, but current revision is %(current)s"


# ---------------------------------------------------------------- not found


class NetworkNotFound(NotFound):
    message = "Network %(net_id)s could not be found."


class SubnetNotFound(NotFound):
    message = "Subnet %(subnet_id)s could not be found."


class PortNotFound(NotFound):
    message = "Port %(port_id)s could not be found."


class SecurityGroupNotFound(NotFound):
    message = "Security group %(id)s does not exist"


class TagNotFound(NotFound):
    message = "Tag %(tag)s could not be found."


class ResourceNotFound(NotFound):
    message = "The resource could not be found."


class LabNotConfigured(NotFound):
    message = ("This server runs beside no lab ([baryon] lab_state_dir is not set): it cannot reach the "
               "nodes to run baryon debug port %(port_id)s. Run it where the lab runs: "
               "baryon debug --state-dir <lab state dir> port %(port_id)s.")


# ---------------------------------------------------------------- conflicts


class NetworkInUse(Conflict):
    message = ("Unable to complete operation on network %(net_id)s. "
               "There are one or more ports still in use on the network.")


class SubnetInUse(Conflict):
    message = "Unable to complete operation on subnet %(subnet_id)s: %(reason)s."

    def __init__(self, **fields: object) -> None:
        fields.setdefault("reason", "One or more ports have an IP allocation from this subnet")
        super().__init__(**fields)


class MacAddressInUse(Conflict):
    message = "Unable to complete operation for network %(net_id)s. The mac address %(mac)s is in use."


class IpAddressAlreadyAllocated(Conflict):
    message = "IP address %(ip)s already allocated in subnet %(subnet_id)s"


class IpAddressGenerationFailure(Conflict):
    message = "No more IP addresses available on network %(net_id)s."


class FlatNetworkInUse(Conflict):
    message = "Unable to create the flat network. Physical network %(physical_network)s is in use."


class VlanIdInUse(Conflict):
    message = ("Unable to create the network. The VLAN %(vlan_id)s on physical network "
               "%(physical_network)s is in use.")


class TunnelIdInUse(Conflict):
    message = "Unable to create the network. The tunnel ID %(tunnel_id)s is in use."


class NoNetworkAvailable(ServiceUnavailable):
    message = "Unable to create the network. No tenant network is available for allocation."


class InvalidSharedSetting(Conflict):
    message = ("Unable to reconfigure sharing settings for network %(network)s. "
               "Multiple tenants are using it.")


class PortSecurityPortHasSecurityGroup(Conflict):
    message = ("Port has security group associated. Cannot disable port security or IP address "
               "until security group is removed")


class AddressPairAndPortSecurityRequired(Conflict):
    message = "Port Security must be enabled in order to have allowed address pairs on a port."


class PortBound(Conflict):
    message = "Unable to complete operation on port %(port_id)s, port is already bound."


class OverQuota(Conflict):
    message = "Quota exceeded for resources: %(overs)s."


class ConcurrentWriteConflict(Conflict):
    message = "The request conflicted with concurrent changes; retry it."


# ---------------------------------------------------------------- subnets and ports (400)


class InvalidAllocationPool(BadRequest):
    message = "The allocation pool %(pool)s is not valid."


class OutOfBoundsAllocationPool(BadRequest):
    message = "The allocation pool %(pool)s spans beyond the subnet cidr %(subnet_cidr)s."


class OverlappingAllocationPools(Conflict):
    message = "Found overlapping allocation pools: %(pool_1)s %(pool_2)s for subnet %(subnet_cidr)s."


class GatewayConflictWithAllocationPools(Conflict):
    message = "Gateway ip %(ip_address)s conflicts with allocation pool %(pool)s."


class InvalidIpForSubnet(BadRequest):
    message = "IP address %(ip_address)s is not a valid IP for the specified subnet."


class InvalidIpForNetwork(BadRequest):
    message = "IP address %(ip_address)s is not a valid IP for any of the subnets on the specified network."


class DNSNameServersExhausted(BadRequest):
    message = ("Unable to complete operation for %(subnet_id)s. "
               "The number of DNS nameservers exceeds the limit %(quota)s.")


class HostRoutesExhausted(BadRequest):
    message = ("Unable to complete operation for %(subnet_id)s. "
               "The number of host routes exceeds the limit %(quota)s.")


class PortSecurityAndIPRequiredForSecurityGroups(BadRequest):
    message = ("Port security must be enabled and port must have an IP address in order to use "
               "security groups.")


class DuplicateAddressPairInRequest(BadRequest):
    message = ("Request contains duplicate address pair: mac_address %(mac_address)s "
               "ip_address %(ip_address)s.")


class AllowedAddressPairExhausted(BadRequest):
    message = "The number of allowed address pair exceeds the maximum %(quota)s."


# ---------------------------------------------------------------- agents and their scheduling


class AgentNotFound(NotFound):
    message = "Agent %(id)s could not be found."


class AgentNotFoundByTypeHost(NotFound):
    message = "Agent with agent_type=%(agent_type)s and host=%(host)s could not be found"


class InvalidDHCPAgent(AgentNotFound):
    message = "Agent %(id)s is not a valid DHCP Agent or has been disabled."


class InvalidL3Agent(AgentNotFound):
    message = "Agent %(id)s is not a L3 Agent or has been disabled"


class NetworkHostedByDHCPAgent(Conflict):
    message = "The network %(network_id)s has been already hosted by the DHCP Agent %(agent_id)s."


class NetworkNotHostedByDhcpAgent(Conflict):
    message = "The network %(network_id)s is not hosted by the DHCP Agent %(agent_id)s."


class RouterHostedByL3Agent(Conflict):
    message = "The router %(router_id)s has been already hosted by the L3 Agent %(agent_id)s."


# ---------------------------------------------------------------- security groups and rules


class SecurityGroupRuleNotFound(NotFound):
    message = "Security group rule %(id)s does not exist"


class SecurityGroupInUse(Conflict):
    message = "Security Group %(id)s %(reason)s."

    def __init__(self, **fields: object) -> None:
        fields.setdefault("reason", "in use")
        super().__init__(**fields)


class SecurityGroupCannotRemoveDefault(Conflict):
    message = "Insufficient rights for removing default security group."


class SecurityGroupCannotUpdateDefault(Conflict):
    message = "Updating default security group not allowed."


class SecurityGroupDefaultAlreadyExists(Conflict):
    message = "Default security group already exists."


class NetworkMTUSubnetConflict(Conflict):
    message = "%(msg)s"


class SecurityGroupConflict(Conflict):
    message = "Error %(reason)s while attempting the operation."


class SecurityGroupRuleExists(Conflict):
    message = "Security group rule already exists. Rule id is %(rule_id)s."


class DuplicateSecurityGroupRuleInPost(Conflict):
    message = "Duplicate Security Group Rule in POST."


class SecurityGroupRuleInvalidProtocol(BadRequest):
    message = ("Security group rule protocol %(protocol)s not supported. Only protocol values %(values)s "
               "and integer representations [0 to 255] are supported.")


class SecurityGroupRuleInvalidEtherType(BadRequest):
    message = "Security group rule for ethertype '%(ethertype)s' not supported. Allowed values are %(values)s."


class SecurityGroupInvalidPortValue(BadRequest):
    message = "Invalid value for port %(port)s"


class SecurityGroupInvalidPortRange(BadRequest):
    message = "For TCP/UDP protocols, port_range_min must be <= port_range_max"


class SecurityGroupInvalidIcmpValue(BadRequest):
    message = "Invalid value for ICMP %(field)s (%(attr)s) %(value)s. It must be 0 to 255."


class SecurityGroupMissingIcmpType(BadRequest):
    message = "ICMP code (port-range-max) %(value)s is provided but ICMP type (port-range-min) is missing."


class SecurityGroupInvalidProtocolForPort(BadRequest):
    message = ("Ports cannot be specified for protocol %(protocol)s. "
               "Ports are only supported for %(valid_port_protocols)s.")


class SecurityGroupProtocolRequiredWithPorts(BadRequest):
    message = "Must also specify protocol if port range is given."


class SecurityGroupEthertypeConflictWithProtocol(BadRequest):
    message = "Invalid ethertype %(ethertype)s for protocol %(protocol)s."


class SecurityGroupRuleParameterConflict(BadRequest):
    message = "Conflicting value ethertype %(ethertype)s for CIDR %(cidr)s"


class SecurityGroupRemoteGroupAndRemoteIpPrefix(BadRequest):
    message = "Only remote_ip_prefix or remote_group_id may be provided."


class SecurityGroupNotSingleGroupRules(BadRequest):
    message = "Only allowed to update rules for one security profile at a time"


class SecurityGroupRulesNotSingleTenant(BadRequest):
    message = "Multiple tenant_ids in bulk security group rule create not allowed"


class InvalidCIDR(BadRequest):
    message = "Invalid CIDR %(input)s given as IP prefix."


# ---------------------------------------------------------------- quotas


class TenantQuotaNotFound(NotFound):
    message = "Quota for tenant %(tenant_id)s could not be found."


class AdminRequired(NotAuthorized):
    message = "User does not have admin privileges: %(reason)s."


# ---------------------------------------------------------------- routers and floating IPs (neutron-lib l3, extraroute)


class RouterNotFound(NotFound):
    message = "Router %(router_id)s could not be found"


class RouterInUse(Conflict):
    message = "Router %(router_id)s %(reason)s"

    def __init__(self, **fields: object) -> None:
        fields.setdefault("reason", "still has ports")
        super().__init__(**fields)


class RouterInterfaceNotFound(NotFound):
    message = "Router %(router_id)s does not have an interface with id %(port_id)s"


class RouterInterfaceNotFoundForSubnet(NotFound):
    message = "Router %(router_id)s has no interface on subnet %(subnet_id)s"


class RouterInterfaceInUseByFloatingIP(Conflict):
    message = ("Router interface for subnet %(subnet_id)s on router %(router_id)s cannot be deleted, "
               "as it is required by one or more floating IPs.")


class RouterInterfaceInUseByRoute(Conflict):
    message = ("Router interface for subnet %(subnet_id)s on router %(router_id)s cannot be deleted, "
               "as it is required by one or more routes.")


class RouterExternalGatewayInUseByFloatingIp(Conflict):
    message = ("Gateway cannot be updated for router %(router_id)s, since a gateway to external network "
               "%(net_id)s is required by one or more floating IPs.")


class FloatingIPNotFound(NotFound):
    message = "Floating IP %(floatingip_id)s could not be found"


class ExternalGatewayForFloatingIPNotFound(NotFound):
    message = ("External network %(external_network_id)s is not reachable from subnet %(subnet_id)s.  "
               "Therefore, cannot associate Port %(port_id)s with a Floating IP.")


class FloatingIPPortAlreadyAssociated(Conflict):
    message = ("Cannot associate floating IP %(floating_ip_address)s (%(fip_id)s) with port %(port_id)s "
               "using fixed IP %(fixed_ip)s, as that fixed IP already has a floating IP on external "
               "network %(net_id)s.")


class FipAssociated(Conflict):
    message = ('Unable to complete the operation on port "%(port_id)s" because the port still has an '
               'associated floating IP.')


class ExternalIpAddressExhausted(BadRequest):
    message = "Unable to find any IP address on external network %(net_id)s."


class ExternalNetworkInUse(Conflict):
    message = ("External network %(net_id)s cannot be updated to be made non-external, since it has "
               "existing gateway ports.")


class PortInUse(Conflict):
    message = ("Unable to complete operation on port %(port_id)s for network %(net_id)s. "
               "Port already has an attached device %(device_id)s.")


class ServicePortInUse(Conflict):
    message = "Port %(port_id)s cannot be deleted directly via the port API: %(reason)s."


class SubnetMismatchForPort(BadRequest):
    message = "Subnet on port %(port_id)s does not match the requested subnet %(subnet_id)s."


class InvalidRoutes(InvalidInput):
    message = "Invalid format for routes: %(routes)s, %(reason)s"


class RoutesExhausted(BadRequest):
    message = "Unable to complete operation for %(router_id)s. The number of routes exceeds the maximum %(quota)s."


# ---------------------------------------------------------------- subnet pools and address scopes


class SubnetPoolNotFound(NotFound):
    message = "Subnet pool %(subnetpool_id)s could not be found."


class AddressScopeNotFound(NotFound):
    message = "Address scope %(address_scope_id)s could not be found."


class EmptySubnetPoolPrefixList(BadRequest):
    message = "Empty subnet pool prefix list."


class PrefixVersionMismatch(BadRequest):
    message = "Cannot mix IPv4 and IPv6 prefixes in a subnet pool."


class IllegalSubnetPoolPrefixBounds(BadRequest):
    message = "Illegal prefix bounds: %(prefix_type)s=%(prefixlen)s, %(base_prefix_type)s=%(base_prefixlen)s."


class IllegalSubnetPoolPrefixUpdate(BadRequest):
    message = "Illegal update to prefixes: %(msg)s."


class IllegalSubnetPoolUpdate(BadRequest):
    message = "Illegal subnetpool update : %(reason)s."


class IllegalSubnetPoolAssociationToAddressScope(BadRequest):
    message = ("Illegal subnetpool association: subnetpool %(subnetpool_id)s cannot be associated with address "
               "scope %(address_scope_id)s.")


class IllegalSubnetPoolIpVersionAssociationToAddressScope(BadRequest):
    message = ("Illegal subnetpool association: subnetpool %(subnetpool_id)s cannot associate with address scope "
               "%(address_scope_id)s because subnetpool ip_version is not %(ip_version)s.")


class AddressScopePrefixConflict(Conflict):
    message = "Failed to associate address scope: subnetpools within an address scope must have unique prefixes."


class NetworkAddressScopeAffinityError(BadRequest):
    message = ("Subnets of the same address family hosted on the same network must all participate in the "
               "same address scope.")


class NetworkSubnetPoolAffinityError(BadRequest):
    message = "Subnets hosted on the same network must be allocated from the same subnet pool."


class MinPrefixSubnetAllocationError(BadRequest):
    message = ("Unable to allocate subnet with prefix length %(prefixlen)s, minimum allowed prefix is "
               "%(min_prefixlen)s.")


class MaxPrefixSubnetAllocationError(BadRequest):
    message = ("Unable to allocate subnet with prefix length %(prefixlen)s, maximum allowed prefix is "
               "%(max_prefixlen)s.")


class SubnetAllocationError(Conflict):
    """NOTE: a NeutronException in Neutron (a 500); a request the pool cannot satisfy is a 409 here."""

    message = "Failed to allocate subnet: %(reason)s."


class SubnetPoolQuotaExceeded(OverQuota):
    message = "Per-tenant subnet pool prefix quota exceeded."


class SubnetPoolDeleteError(BadRequest):
    message = "Unable to delete subnet pool: %(reason)s."


class AddressScopeInUse(Conflict):
    message = ("Unable to complete operation on address scope %(address_scope_id)s. There are one or more "
               "subnet pools in use on the address scope.")


class AddressScopeUpdateError(BadRequest):
    message = "Unable to update address scope %(address_scope_id)s : %(reason)s."


class AddressGroupNotFound(NotFound):
    message = "Address group %(address_group_id)s could not be found."


class AddressGroupInUse(Conflict):
    message = "Address group %(address_group_id)s is in use on one or more security group rules."


class AddressesNotFound(NotFound):
    message = "Addresses %(addresses)s not found in the address group %(address_group_id)s."


class AddressesAlreadyExist(BadRequest):
    message = "Addresses %(addresses)s already exist in the address group %(address_group_id)s."


class SecurityGroupMultipleRemoteEntites(InvalidInput):
    """NOTE: Neutron's spelling of the class name (what clients see as the type)."""

    message = "Only one of remote_ip_prefix or remote_group_id or remote_address_group_id may be provided."


# ---------------------------------------------------------------- flavors and service types (neutron-lib flavors)


class FlavorNotFound(NotFound):
    message = "Flavor %(flavor_id)s could not be found."


class FlavorInUse(Conflict):
    message = "Flavor %(flavor_id)s is used by some service instance."


class ServiceProfileNotFound(NotFound):
    message = "Service Profile %(sp_id)s could not be found."


class ServiceProfileInUse(Conflict):
    message = "Service Profile %(sp_id)s is used by some service instance."


class FlavorServiceProfileBindingExists(Conflict):
    message = "Service Profile %(sp_id)s is already associated with flavor %(fl_id)s."


class FlavorServiceProfileBindingNotFound(NotFound):
    message = "Service Profile %(sp_id)s is not associated with flavor %(fl_id)s."


class ServiceProfileDriverNotFound(NotFound):
    message = "Service Profile driver %(driver)s could not be found."


class ServiceProfileEmpty(InvalidInput):
    message = "Service Profile needs either a driver or metainfo."


class FlavorDisabled(ServiceUnavailable):
    message = "Flavor is not enabled."


class ServiceProfileDisabled(ServiceUnavailable):
    message = "Service Profile is not enabled."


class InvalidServiceType(InvalidInput):
    message = "Invalid service type: %(service_type)s."


class DefaultSecurityGroupRuleNotFound(NotFound):
    message = "Default Security Group rule %(id)s does not exist"


class DefaultSecurityGroupRuleExists(Conflict):
    message = "Default Security group rule already exists. Rule id is %(rule_id)s."


class DuplicateDefaultSgRuleInPost(Conflict):
    message = "Duplicate Default Security Group Rule in POST."


class InvalidSubnetServiceType(InvalidInput):
    message = "Subnet service type %(service_type)s does not correspond to a valid device owner."


class InvalidInputSubnetServiceType(InvalidInput):
    message = "Subnet service type %(service_type)s is not a string."


class IpAddressGenerationFailureNoMatchingSubnet(IpAddressGenerationFailure):
    message = ("No valid service subnet for the given device owner, network %(network_id)s, service type "
               "%(service_type)s.")


class AvailabilityZoneNotFound(NotFound):
    message = "AvailabilityZone %(availability_zone)s could not be found."


class AutoAllocationFailure(Conflict):
    message = "Deployment error: %(reason)s."


class DefaultExternalNetworkExists(Conflict):
    message = "A default external network already exists: %(net_id)s."


class RbacPolicyNotFound(NotFound):
    message = "RBAC policy of type %(object_type)s with ID %(id)s not found"


class RbacPolicyInUse(Conflict):
    message = ("RBAC policy on object %(object_id)s cannot be removed because other objects depend on it.\n"
               "Details: %(details)s")


class DuplicateRbacPolicy(Conflict):
    message = "An RBAC policy already exists with those values."


class InvalidActionForType(InvalidInput):
    message = ("Invalid action '%(action)s' for object type '%(object_type)s'. Valid actions: "
               "%(valid_actions)s")


class GatewayIpInUse(Conflict):
    message = "Current gateway ip %(ip_address)s already in use by port %(port_id)s. Unable to update."
