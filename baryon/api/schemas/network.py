"""Network attributes (neutron-lib's network, provider, external-net, port-security, MTU, AZ)."""

from baryon.api.schemas import availability_zone as az
from baryon.api.schemas.types import (
    STANDARD, Attr, boolean, integer, list_of, nullable, one_of, string,
)

ATTRS: dict[str, Attr] = {
    **STANDARD,
    "admin_state_up": Attr(boolean),
    "status": Attr(string(16), allow_post=False, allow_put=False),
    "shared": Attr(boolean, admin_write=True),
    "subnets": Attr(list_of(string(36)), allow_post=False, allow_put=False, filter_convert=str),
    # NOTE: as neutron-lib (``type:non_negative``): a small MTU is refused by the subnets it can't carry.
    "mtu": Attr(integer(0, 65535)),
    "router:external": Attr(boolean, admin_write=True),
    "is_default": Attr(boolean, admin_write=True),
    "port_security_enabled": Attr(boolean),
    "availability_zone_hints": Attr(az.hints, allow_put=False, filter=False),
    "availability_zones": Attr(list_of(string(255)), allow_post=False, allow_put=False, filter=False),
    "ipv4_address_scope": Attr(nullable(string(36)), allow_post=False, allow_put=False, filter=False),
    "ipv6_address_scope": Attr(nullable(string(36)), allow_post=False, allow_put=False, filter=False),
    "l2_adjacency": Attr(boolean, allow_post=False, allow_put=False, filter=False),
    "provider:network_type": Attr(one_of("flat", "vlan", "vxlan", "gre", "geneve", "local"),
                                  allow_put=False, admin_write=True, admin_read=True, filter_convert=str),
    "provider:physical_network": Attr(nullable(string(64)), allow_put=False, admin_write=True, admin_read=True),
    "provider:segmentation_id": Attr(nullable(integer(0, 2**24 - 1)), allow_put=False, admin_write=True,
                                     admin_read=True),
}
