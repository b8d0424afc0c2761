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
