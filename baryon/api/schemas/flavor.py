"""Flavor and service profile attributes (neutron-lib's flavors), and the body of a flavor's
association with a profile (``POST /v2.0/flavors/{id}/service_profiles``).

Neither is a standard-attribute resource: no project, timestamps, revision or tags. NOTE: an
``id`` filter takes any string, as Neutron's (whose filter values are not validated): ``?id=33``
lists nothing rather than refusing.
"""

from typing import Any

from baryon.api.schemas.types import Attr, Invalid, boolean, nullable, string, uuid_list, uuid_str

# neutron-lib's db constants: NAME_FIELD_SIZE, LONG_DESCRIPTION_FIELD_SIZE; metainfo as Neutron's column
NAME_LEN, LONG_LEN, METAINFO_LEN = 255, 1024, 4096

_ID = Attr(uuid_str, allow_post=False, allow_put=False, filter_convert=string(LONG_LEN))


def service_type(data: Any) -> str:
    """A service plugin type (``L3_ROUTER_NAT``...); whether this server loads it is the service's check."""
    return string(36)(data)


FLAVOR_ATTRS: dict[str, Attr] = {
    "id": _ID,
    "name": Attr(string(NAME_LEN)),
    "description": Attr(nullable(string(LONG_LEN))),
    "service_type": Attr(service_type, allow_put=False, required=True),
    "service_profiles": Attr(uuid_list, filter=False),
    "enabled": Attr(boolean),
}

SERVICE_PROFILE_ATTRS: dict[str, Attr] = {
    "id": _ID,
    "description": Attr(nullable(string(LONG_LEN))),
    "driver": Attr(string(LONG_LEN)),
    "metainfo": Attr(nullable(string(METAINFO_LEN)), filter=False),
    "enabled": Attr(boolean),
}


def association(body: Any) -> str:
    """The profile id of ``{"service_profile": {"id": ...}}``."""
    if not isinstance(body, dict) or set(body) != {"service_profile"}:
        raise Invalid("Expected a body of the form {'service_profile': {'id': ...}}")
    item = body["service_profile"]
    if not isinstance(item, dict) or set(item) != {"id"}:
        raise Invalid("Expected a body of the form {'service_profile': {'id': ...}}")
    return uuid_str(item["id"])
