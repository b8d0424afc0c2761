"""Address group attributes (neutron-lib's address_group).

``addresses`` is given on create only (neutron-lib's ``type:subnet_list``: CIDRs with a prefix
length, host bits allowed and cleared by the service) and changed through the
``add_addresses``/``remove_addresses`` actions, which take bare addresses too (``ADDRESSES``).
Not a taggable resource; no ``shared`` attribute shown (RBAC would share a group).
"""

import ipaddress
from typing import Any

from baryon.api.schemas.types import STANDARD, Attr, Invalid, cidr, described, list_of, nullable, schema_of

def subnet_list(data: Any) -> list[str]:
    """neutron-lib's ``type:subnet_list``: a list of CIDRs, each given once."""
    if not isinstance(data, list):
        raise Invalid(f"'{data}' is not a list")
    if len({repr(d) for d in data}) != len(data):
        raise Invalid(f"Duplicate items in the list: '{', '.join(str(d) for d in data)}'")
    return [cidr(item) for item in data]


described(subnet_list, {"type": "array", "items": schema_of(cidr), "uniqueItems": True})

ATTRS: dict[str, Attr] = {
    **{key: STANDARD[key] for key in ("id", "name", "description", "project_id", "tenant_id", "created_at",
                                      "updated_at", "revision_number")},
    # NOTE: neutron-lib's convert_none_to_empty_list: null is no address.
    "addresses": Attr(nullable(subnet_list), allow_put=False, filter=False),
}


def address(data: Any) -> str:
    """An address or a CIDR, as Neutron's actions parse them (``netaddr.IPNetwork``)."""
    if isinstance(data, str) and "%" not in data and data == data.strip():
        try:
            ipaddress.ip_network(data, strict=False)
            return data
        except ValueError:
            pass
    raise Invalid(f"'{data}' is not a valid IP address or CIDR")


described(address, {"type": "string", "pattern": r"^[0-9a-fA-F.:]+(/[0-9]{1,3})?$"})

# PUT /v2.0/address-groups/{id}/add_addresses and remove_addresses: {"addresses": [...]}
ADDRESSES = list_of(address)
