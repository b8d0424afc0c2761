"""Subnet attributes (neutron-lib's subnet definition)."""

from typing import Any

from baryon.api.schemas.types import (
    STANDARD, Attr, Invalid, boolean, cidr, cidr_filter, described, dict_items, int_one_of, integer, ip_address,
    ip_or_cidr, list_of, nullable, one_of, string, uuid_filter, uuid_str,
)
from baryon.service import servicetypes

IPV6_MODES = ("slaac", "dhcpv6-stateful", "dhcpv6-stateless")


def service_types(data: Any) -> list[str]:
    """subnet-service-types: device owners (``servicetypes.check``); null is none."""
    try:
        return servicetypes.check(data)
    except servicetypes.NotAList as exc:
        raise Invalid(str(exc)) from None


described(service_types, {"anyOf": [{"type": "array", "uniqueItems": True,
                                     "items": {"type": "string", "maxLength": servicetypes.MAX_LENGTH}},
                                    {"type": "null"}]})

ATTRS: dict[str, Attr] = {
    **STANDARD,
    "network_id": Attr(uuid_str, allow_put=False, required=True, filter_convert=uuid_filter),
    "ip_version": Attr(int_one_of(4, 6), allow_put=False, required=True, filter_convert=integer()),
    "cidr": Attr(cidr, allow_put=False, filter_convert=cidr_filter),
    "gateway_ip": Attr(nullable(ip_address), filter_convert=str),
    "allocation_pools": Attr(list_of(dict_items({"start": ip_address, "end": ip_address}, ("start", "end"),
                                                "IP pool")), filter=False),
    "dns_nameservers": Attr(list_of(ip_address), filter_convert=str),
    "host_routes": Attr(list_of(dict_items({"destination": ip_or_cidr, "nexthop": ip_address},
                                           ("destination", "nexthop"), "hostroute")), filter=False),
    "enable_dhcp": Attr(boolean),
    "ipv6_ra_mode": Attr(nullable(one_of(*IPV6_MODES)), allow_put=False),
    "ipv6_address_mode": Attr(nullable(one_of(*IPV6_MODES)), allow_put=False),
    "subnetpool_id": Attr(nullable(uuid_str), allow_put=False, filter_convert=uuid_filter),
    # Input only (never shown), as in Neutron: the prefix length to allocate from the subnet pool
    # (subnet_allocation), and whether to allocate from the default pool (default-subnetpools).
    "prefixlen": Attr(integer(0, 128), allow_put=False, filter=False),
    "use_default_subnetpool": Attr(boolean, allow_put=False, filter=False),
    # NOTE: as in Neutron, not shown (is_visible False) but a filter: the subnet's network is shared.
    "shared": Attr(boolean, allow_post=False, allow_put=False),
    "service_types": Attr(service_types, filter_convert=string(servicetypes.MAX_LENGTH)),
}
