"""RBAC policy attributes (neutron-lib's rbac_policies): the object and action are fixed at
creation; only the target changes. ``target_tenant`` and ``target_project`` (the newer name) are
one attribute: either may be given or filtered on; Neutron 29 shows ``target_tenant``. Whether the
object type and action exist, and the admin-only wildcard target, are the service's to say
(``rbacpolicies``)."""

from baryon.api.schemas.types import STANDARD, Attr, string, uuid_filter, uuid_str

ATTRS: dict[str, Attr] = {
    **{key: STANDARD[key] for key in ("id", "project_id", "tenant_id")},
    "object_type": Attr(string(255), allow_put=False, required=True),
    "object_id": Attr(uuid_str, allow_put=False, required=True, filter_convert=uuid_filter),
    "action": Attr(string(255), allow_put=False, required=True),
    "target_tenant": Attr(string(255)),
    "target_project": Attr(string(255)),
}
