"""Subnet service types (subnet-service-types): which ports a subnet gives addresses to. Pure.

A subnet's ``service_types`` is a list of device owners (``network:router_gateway``,
``compute:nova``, ...). As Neutron's IPAM (``Subnet.find_candidate_subnets``):
- a port may get addresses from a subnet without service types, or from one whose service types
  hold its ``device_owner`` exactly; a DHCP port (``network:dhcp``) from any subnet with DHCP on;
- the eligible subnets with service types come first, so a port that has a subnet of its own
  takes its address there rather than from a general one;
- a network that has subnets but none eligible for the port refuses it (409
  ``IpAddressGenerationFailureNoMatchingSubnet``, raised by the caller).

``check`` is neutron-lib's ``validate_subnet_service_types``, quirk included: its list of allowed
prefixes is "network:", "neutron:" and, because it is extended with the string "compute:", each
character of "compute:" alone. So "compute:nova" passes, and so does any type that starts with one
of c, o, m, p, u, t, e or ":" (Neutron's own API tests use "test:type_1"); "foo:bar" does not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from baryon.service import errors

DHCP_OWNER = "network:dhcp"
PREFIXES = ("network:", "neutron:", *"compute:")
MAX_LENGTH = 255

T = TypeVar("T")


class NotAList(ValueError):
    """``service_types`` is not a list (the API reports it as an invalid attribute)."""


def check(value: Any) -> list[str]:
    """The service types as given, or the error Neutron raises for the first bad one. A type
    given twice is refused too (Neutron's table would refuse the second row)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise NotAList("Subnet service types must be a list")
    seen: set[str] = set()
    for service_type in value:
        if not isinstance(service_type, str):
            raise errors.InvalidInputSubnetServiceType(service_type=service_type)
        if not service_type.startswith(PREFIXES) or len(service_type) > MAX_LENGTH or "\x00" in service_type:
            raise errors.InvalidSubnetServiceType(service_type=service_type)
        if service_type in seen:
            raise errors.InvalidInput(error_message=f"Duplicate service type '{service_type}'")
        seen.add(service_type)
    return list(value)


def eligible(service_types: Sequence[str], enable_dhcp: bool, device_owner: str) -> bool:
    return not service_types or device_owner in service_types or (device_owner == DHCP_OWNER and enable_dhcp)


def candidates(subnets: Sequence[T], device_owner: str, types_of: Callable[[T], Sequence[str]],
               dhcp_of: Callable[[T], bool]) -> list[T]:
    """The subnets a port of ``device_owner`` may get addresses from, those with service types
    first, each part in the order given."""
    picked = [s for s in subnets if eligible(types_of(s), dhcp_of(s), device_owner)]
    return sorted(picked, key=lambda s: not types_of(s))
