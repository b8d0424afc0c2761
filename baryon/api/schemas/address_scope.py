"""Address scope attributes (neutron-lib's address_scope): ``ip_version`` is fixed at creation;
``shared`` is the admin's to set, and once shared a scope cannot be unshared (the service says so)."""

from baryon.api.schemas.types import STANDARD, Attr, boolean, integer, one_of

# NOTE: not a standard-attribute resource in Neutron: no description, timestamps, revision or tags.
ATTRS: dict[str, Attr] = {
    **{key: STANDARD[key] for key in ("id", "name", "project_id", "tenant_id")},
    "shared": Attr(boolean, admin_write=True),
    "ip_version": Attr(one_of(4, 6), allow_put=False, required=True, filter_convert=integer()),
}
