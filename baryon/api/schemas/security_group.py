"""Security group and rule attributes (neutron's security-group, stateful-security-group,
security-groups-normalized-cidr, security-groups-remote-address-group). A rule's protocol, ports, ethertype and prefix convert with the
pure ``sgrules`` converters, which raise Neutron's typed errors (as its ``convert_to`` functions)."""

from baryon.api.schemas.types import (
    CIDR_SCHEMA, IP_SCHEMA, STANDARD, Attr, boolean, described, dict_value, list_of, nullable, one_of, string,
    uuid_filter, uuid_str, with_schema,
)
from baryon.service import errors, sgrules


def group_name(data: object) -> str:
    """Neutron's ``type:name_not_default``: only the project's own default group is ``default``."""
    value = string(255)(data)
    if value.lower() == "default":
        raise errors.SecurityGroupDefaultAlreadyExists()
    return value


described(group_name, {"type": "string", "maxLength": 255})


GROUP_ATTRS: dict[str, Attr] = {
    **STANDARD,
    "name": Attr(group_name, filter_convert=str),
    "stateful": Attr(boolean),
    "security_group_rules": Attr(list_of(dict_value), allow_post=False, allow_put=False, filter=False),
    "shared": Attr(boolean, allow_post=False, allow_put=False, filter=False),
}

_READ_ONLY = {"allow_post": False, "allow_put": False}
# What the sgrules converters accept, for the OpenAPI document.
PROTOCOL_SCHEMA = {"anyOf": [{"enum": sorted(sgrules.PROTOCOLS)}, {"type": "integer", "minimum": 0, "maximum": 255},
                             {"type": "string", "pattern": "^[0-9]{1,3}$"}, {"type": "null"}]}
PORT = with_schema(sgrules.convert_port, {"anyOf": [{"type": "integer", "minimum": 0, "maximum": sgrules.PORT_MAX},
                                                    {"type": "null"}]})
PREFIX = with_schema(sgrules.convert_prefix, {"anyOf": [IP_SCHEMA, CIDR_SCHEMA, {"type": "null"}]})

RULE_ATTRS: dict[str, Attr] = {
    "id": STANDARD["id"],
    "project_id": STANDARD["project_id"],
    "tenant_id": STANDARD["tenant_id"],
    "description": Attr(string(255), allow_put=False),
    "created_at": STANDARD["created_at"],
    "updated_at": STANDARD["updated_at"],
    "revision_number": STANDARD["revision_number"],
    "security_group_id": Attr(uuid_str, allow_put=False, required=True, filter_convert=uuid_filter),
    "direction": Attr(one_of(*sgrules.DIRECTIONS), allow_put=False, required=True),
    "ethertype": Attr(with_schema(sgrules.convert_ethertype, {"enum": list(sgrules.ETHERTYPES)}), allow_put=False),
    "protocol": Attr(with_schema(sgrules.convert_protocol, PROTOCOL_SCHEMA), allow_put=False, filter_convert=str),
    "port_range_min": Attr(PORT, allow_put=False),
    "port_range_max": Attr(PORT, allow_put=False),
    "remote_ip_prefix": Attr(PREFIX, allow_put=False, filter_convert=str),
    # NOTE: as neutron-lib, no UUID check: a group that does not exist, whatever its id, is a 404.
    "remote_group_id": Attr(nullable(string(255)), allow_put=False, filter_convert=uuid_filter),
    # security-groups-remote-address-group: the rule's remote end is an address group's CIDRs.
    "remote_address_group_id": Attr(nullable(uuid_str), allow_put=False, filter_convert=uuid_filter),
    "normalized_cidr": Attr(nullable(string(64)), **_READ_ONLY, filter=False),
}
