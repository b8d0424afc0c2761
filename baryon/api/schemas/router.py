"""Router attributes (neutron-lib's router, ext-gw-mode, extraroute; ``ha`` and ``distributed`` as
the l3-ha and dvr definitions give them, admin-only), and the bodies of the router actions."""

import ipaddress
from typing import Any

from baryon.api.schemas import availability_zone as az
from baryon.api.schemas.types import (
    STANDARD, Attr, Invalid, boolean, cidr, described, dict_items, ip_address, list_of, nullable, schema_of, string,
    uuid_str,
)
from baryon.service import errors

FIXED_IPS = list_of(dict_items({"subnet_id": uuid_str, "ip_address": ip_address}, (), "fixed IP"))
GATEWAY_KEYS = {"network_id": uuid_str, "enable_snat": boolean, "external_fixed_ips": nullable(FIXED_IPS)}


def gateway_info(data: Any) -> dict:
    """neutron-lib's ``type:dict_or_nodata``: ``{}`` (or null) clears the gateway."""
    if data == {}:
        return {}
    if not isinstance(data, dict):
        raise Invalid(f"'{data}' is not a dictionary")
    if "network_id" not in data:
        raise Invalid(f"Validation of dictionary's keys failed. Expected keys: {{'network_id'}} "
                      f"Provided keys: {set(data)}")
    unexpected = [k for k in data if k not in GATEWAY_KEYS]
    if unexpected:
        raise Invalid(f"Unexpected keys supplied: {', '.join(unexpected)}")
    return {key: GATEWAY_KEYS[key](data[key]) for key in GATEWAY_KEYS if key in data}


described(gateway_info, {"type": "object", "properties": {k: schema_of(c) for k, c in GATEWAY_KEYS.items()},
                         "additionalProperties": False})


def _destination(data: Any) -> str:
    value = cidr(data)
    return str(ipaddress.ip_interface(value))  # the same prefix spelled one way ("2001:DB8::/64")


ROUTE = dict_items({"destination": _destination, "nexthop": ip_address}, ("destination", "nexthop"), "hostroute")


def routes(data: Any) -> list[dict]:
    """neutron-lib's ``type:hostroutes`` (null is an empty list)."""
    if data is None:
        return []
    result: list[dict] = []
    for route in list_of(ROUTE)(data):
        if route in result:
            raise Invalid(f"Duplicate hostroute '{route}'")
        result.append(route)
    return result


described(routes, {"anyOf": [{"type": "array", "items": schema_of(ROUTE)}, {"type": "null"}]})


ATTRS: dict[str, Attr] = {
    **STANDARD,
    "admin_state_up": Attr(boolean),
    "status": Attr(string(16), allow_post=False, allow_put=False, filter=False),
    # Baryon's own: why ``status`` is not ACTIVE (null when it is; see service.routers)
    "status_reason": Attr(nullable(string(None)), allow_post=False, allow_put=False, filter=False),
    "external_gateway_info": Attr(nullable(gateway_info), filter=False),
    "routes": Attr(routes, allow_post=False, filter=False),
    "ha": Attr(boolean, admin_write=True, admin_read=True, filter=False),
    "distributed": Attr(boolean, admin_write=True, admin_read=True, filter=False),
    # l3-flavors: set on create only; null when the router was made without a flavor
    "flavor_id": Attr(nullable(uuid_str), allow_put=False, filter=False),
    "availability_zone_hints": Attr(az.hints, allow_put=False, filter=False),
    "availability_zones": Attr(list_of(string(255)), allow_post=False, allow_put=False, filter=False),
}


# The keys of an interface action's body (``port_id`` first: both are allowed only for a removal).
INTERFACE_KEYS = {"port_id": uuid_str, "subnet_id": uuid_str}


def interface_info(body: Any, *, removal: bool) -> dict:
    """The body of ``add_router_interface``/``remove_router_interface``: ``subnet_id`` or
    ``port_id`` (both only for a removal), as Neutron's ``_validate_interface_info``."""
    info = body if isinstance(body, dict) else {}
    given = [key for key in INTERFACE_KEYS if key in info]
    if not given:
        raise errors.BadRequest(resource="router", msg="Either subnet_id or port_id must be specified")
    for key in given:
        try:
            INTERFACE_KEYS[key](info[key])
        except Invalid as exc:
            raise errors.BadRequest(resource="router", msg=exc.reason) from None
    if len(given) == 2 and not removal:
        raise errors.BadRequest(resource="router", msg="Cannot specify both subnet-id and port-id")
    return {key: info[key] for key in given}
