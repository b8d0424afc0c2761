"""Subnet pool attributes (neutron-lib's subnetpool, with address-scope's ``address_scope_id``).

``name`` and ``prefixes`` are required; the prefix lengths are given as integers or numeric strings
and shown as strings, as Neutron shows them; ``shared`` is set at creation only; ``shared`` and
``is_default`` are the admin's to set.
"""

from typing import Any

from baryon.api.schemas.types import (
    STANDARD, Attr, Invalid, boolean, cidr, described, integer, list_of, nullable, one_of, string, uuid_filter,
    uuid_str,
)


def not_empty(data: Any) -> str:
    value = string(255)(data)
    if not value.strip():
        raise Invalid(f"'{data}' Blank strings are not permitted")
    return value


described(not_empty, {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"\S"})

PREFIXLEN = integer(0, 128)

ATTRS: dict[str, Attr] = {
    **STANDARD,
    "name": Attr(not_empty, required=True, filter_convert=string(255)),
    "prefixes": Attr(list_of(cidr), required=True, filter=False),
    "default_prefixlen": Attr(PREFIXLEN, filter_convert=integer()),
    "min_prefixlen": Attr(PREFIXLEN, filter_convert=integer()),
    "max_prefixlen": Attr(PREFIXLEN, filter_convert=integer()),
    "default_quota": Attr(integer(0, 2**31 - 1), filter_convert=integer()),  # an INTEGER column
    "ip_version": Attr(one_of(4, 6), allow_post=False, allow_put=False, filter_convert=integer()),
    "shared": Attr(boolean, allow_put=False, admin_write=True),
    "is_default": Attr(boolean, admin_write=True),
    "address_scope_id": Attr(nullable(uuid_str), filter_convert=uuid_filter),
}

# PUT /v2.0/subnetpools/{id}/add_prefixes and remove_prefixes: {"prefixes": [...]}
PREFIXES = list_of(cidr)
