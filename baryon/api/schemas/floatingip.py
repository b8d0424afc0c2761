"""Floating IP attributes (neutron-lib's floatingip, fip-port-details). A floating IP has no
``name``; ``subnet_id`` is input only (never shown); ``floating_ip_address`` is the admin's to ask."""

from baryon.api.schemas.types import (
    STANDARD, Attr, dict_value, ip_address, nullable, string, uuid_filter, uuid_str,
)

ATTRS: dict[str, Attr] = {
    **{key: attr for key, attr in STANDARD.items() if key != "name"},
    "floating_ip_address": Attr(nullable(ip_address), allow_put=False, admin_write=True, filter_convert=str),
    "subnet_id": Attr(nullable(uuid_str), allow_put=False, filter=False),
    "floating_network_id": Attr(uuid_str, allow_put=False, required=True, filter_convert=uuid_filter),
    "router_id": Attr(nullable(uuid_str), allow_post=False, allow_put=False, filter_convert=uuid_filter),
    "port_id": Attr(nullable(uuid_str), filter_convert=uuid_filter),
    "fixed_ip_address": Attr(nullable(ip_address), filter_convert=str),
    "status": Attr(string(16), allow_post=False, allow_put=False),
    "port_details": Attr(nullable(dict_value), allow_post=False, allow_put=False, filter=False),
}
