"""Port attributes (neutron-lib's port, binding, port-security, allowed-address-pairs, extra_dhcp_opt)."""

from baryon.api.schemas.types import (
    STANDARD, Attr, boolean, dict_items, dict_value, int_one_of, ip_address, ip_or_cidr, list_of, mac_address,
    mac_filter, nullable, one_of, string, uuid_filter, uuid_list, uuid_str,
)

VNIC_TYPES = ("normal", "direct", "macvtap", "baremetal", "direct-physical", "virtio-forwarder", "smart-nic",
              "vdpa", "remote-managed")

ATTRS: dict[str, Attr] = {
    **STANDARD,
    "network_id": Attr(uuid_str, allow_put=False, required=True, filter_convert=uuid_filter),
    "admin_state_up": Attr(boolean),
    # NOTE: the network's owner may also choose a MAC on create (checked by the service).
    # port-mac-address-regenerate: null asks for a new random MAC (on update, refused while the
    # port is bound, as any MAC change; the service generates it from base_mac).
    "mac_address": Attr(nullable(mac_address), filter_convert=mac_filter),
    "fixed_ips": Attr(list_of(dict_items({"subnet_id": uuid_str, "ip_address": ip_address}, (),
                                         "fixed IP")), filter_convert=str),
    "device_id": Attr(string(255)),
    "device_owner": Attr(string(255)),
    "status": Attr(string(16), allow_post=False, allow_put=False),
    "security_groups": Attr(nullable(uuid_list), filter_convert=uuid_filter),
    "port_security_enabled": Attr(boolean),
    "allowed_address_pairs": Attr(nullable(list_of(dict_items(
        {"ip_address": ip_or_cidr, "mac_address": mac_address}, ("ip_address",), "address pair"))), filter=False),
    "extra_dhcp_opts": Attr(nullable(list_of(dict_items(
        {"opt_name": string(64), "opt_value": nullable(string(255)), "ip_version": int_one_of(4, 6)},
        ("opt_name",), "extra DHCP option"))), filter=False),
    # NOTE: null is accepted and means "no host" (Neutron: ``attrs.get(HOST_ID) or ''``), which is
    # what ``openstack port unset --host`` sends.
    "binding:host_id": Attr(nullable(string(255)), admin_write=True, admin_read=True),
    "binding:vif_type": Attr(string(64), allow_post=False, allow_put=False, admin_read=True),
    "binding:vif_details": Attr(dict_value, allow_post=False, allow_put=False, admin_read=True, filter=False),
    "binding:vnic_type": Attr(one_of(*VNIC_TYPES), filter_convert=str),
    "binding:profile": Attr(nullable(dict_value), admin_write=True, admin_read=True, filter=False),
    "ip_allocation": Attr(string(16), allow_post=False, allow_put=False, filter=False),
}
