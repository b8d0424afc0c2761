"""Default security group rule (template) attributes (security-groups-default-rules).

As a security group rule's, with ``remote_group_id`` "PARENT" or a UUID and the two flags saying
which groups get the rule. No update, no project: the template is the deployment's. NOTE:
``remote_address_group_id`` is always null: templates naming address groups are not built yet.
"""

from baryon.api.schemas.security_group import PORT, PREFIX, PROTOCOL_SCHEMA
from baryon.api.schemas.types import (
    STANDARD, UUID_SCHEMA, Attr, boolean, nullable, one_of, project_id, string, uuid_filter, uuid_str,
    with_schema,
)
from baryon.service import sgrules, sgtemplates

_READ_ONLY = {"allow_post": False, "allow_put": False}
_REMOTE_GROUP = with_schema(sgtemplates.convert_remote_group,
                            {"anyOf": [UUID_SCHEMA, {"const": sgtemplates.PARENT}, {"type": "null"}]})

ATTRS: dict[str, Attr] = {
    "id": STANDARD["id"],
    # Accepted on create (as Neutron), never shown nor used.
    "project_id": Attr(project_id, allow_put=False, filter=False),
    "tenant_id": Attr(project_id, allow_put=False, filter=False),
    "description": Attr(string(255), allow_put=False),
    "direction": Attr(one_of(*sgrules.DIRECTIONS), allow_put=False, required=True),
    "ethertype": Attr(with_schema(sgrules.convert_ethertype, {"enum": list(sgrules.ETHERTYPES)}), allow_put=False),
    "protocol": Attr(with_schema(sgrules.convert_protocol, PROTOCOL_SCHEMA), allow_put=False, filter_convert=str),
    "port_range_min": Attr(PORT, allow_put=False),
    "port_range_max": Attr(PORT, allow_put=False),
    "remote_ip_prefix": Attr(PREFIX, allow_put=False, filter_convert=str),
    "remote_group_id": Attr(_REMOTE_GROUP, allow_put=False, filter_convert=string(36)),
    "remote_address_group_id": Attr(nullable(uuid_str), **_READ_ONLY, filter_convert=uuid_filter),
    "used_in_default_sg": Attr(boolean, allow_put=False),
    "used_in_non_default_sg": Attr(boolean, allow_put=False),
}
