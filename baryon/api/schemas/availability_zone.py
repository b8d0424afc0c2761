"""Availability zone attributes (neutron-lib's availability_zone: ``availability_zone_hints``)."""

from typing import Any

from baryon.api.schemas.types import Invalid, described, string

HINTS_LEN = 255  # the stored hints, joined (neutron-lib's AZ_HINTS_DB_LEN)
_NAME = string(HINTS_LEN)


def hints(data: Any) -> list[str]:
    """neutron-lib's ``type:availability_zone_hint_list``: unique strings that fit the column once
    joined. Whether the zones exist is checked by the service. NOTE: a name with a comma is refused
    (Baryon stores the hints comma-separated); no agent reports such a zone by default."""
    if not isinstance(data, list):
        raise Invalid(f"'{data}' is not a list")
    names = [_NAME(item) for item in data]
    if len(set(names)) != len(names):
        raise Invalid(f"Duplicate items in the list: '{', '.join(names)}'")
    if any("," in n for n in names):
        raise Invalid(f"'{data}' has a name with a comma")
    if len(",".join(names)) > HINTS_LEN:
        raise Invalid("Too many availability_zone_hints specified")
    return names


described(hints, {"type": "array", "items": {"type": "string", "maxLength": HINTS_LEN}, "uniqueItems": True})
