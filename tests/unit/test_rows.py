"""``baryon.db.rows.insert_new`` on a throwaway SQLite database: a new object and its collections
land as the ORM's flush would have put them (foreign keys set from the parent, defaults applied
on the object too), and a duplicate key fails as a flush would."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from baryon.db import models as m
from baryon.db.engine import DuplicateAfterRetries
from baryon.db.rows import insert_new
from baryon.service.context import Context
from tests.unit.conftest import ServicesFactory

ADMIN = Context.admin("admin-project")
MOMENT = dt.datetime(2026, 11, 26, 12, 0, 0)


def new_port(network_id: str, port_id: str, mac: str) -> m.Port:
    row = m.Port(id=port_id, project_id="p", name="n", description="", created_at=MOMENT, updated_at=MOMENT,
                 revision_number=1, network_id=network_id, mac_address=mac, device_owner="compute:nova")
    row.fixed_ips = [m.IPAllocation(subnet_id=None, ip_address="10.9.0.5", network_id=network_id, position=0)]
    row.allowed_address_pairs = [m.AllowedAddressPair(position=0, mac_address=mac, ip_address="10.9.0.0/24"),
                                 m.AllowedAddressPair(position=1, mac_address=mac, ip_address="10.9.1.1")]
    row.extra_dhcp_opts = [m.ExtraDhcpOpt(position=0, opt_name="mtu", opt_value="1400")]
    row.security_group_bindings = []
    return row


def test_a_port_and_its_collections_land_as_a_flush_would_put_them(make: ServicesFactory) -> None:
    services = make()
    [net] = services.networks.create(ADMIN, [{"name": "n"}])
    [sub] = services.subnets.create(ADMIN, [{"network_id": net["id"], "ip_version": 4, "cidr": "10.9.0.0/24"}])
    row = new_port(net["id"], "0b7d7b0c-9a8e-4b53-9d1e-6f7c2a0d1e01", "fa:16:3e:00:00:01")
    row.fixed_ips[0].subnet_id = sub["id"]
    services.env.db.write(lambda s: insert_new(s, row))
    # defaults applied on the object itself, as a flush would have
    assert (row.status, row.binding_vif_type, row.binding_profile, row.dns_name) == ("DOWN", "unbound", "{}", "")
    assert row.extra_dhcp_opts[0].ip_version == 4
    assert [p.port_id for p in row.allowed_address_pairs] == [row.id, row.id]
    shown = services.ports.get(ADMIN, row.id)
    assert shown["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.9.0.5"}]
    assert shown["allowed_address_pairs"] == [{"mac_address": "fa:16:3e:00:00:01", "ip_address": "10.9.0.0/24"},
                                              {"mac_address": "fa:16:3e:00:00:01", "ip_address": "10.9.1.1"}]
    assert shown["extra_dhcp_opts"] == [{"opt_name": "mtu", "opt_value": "1400", "ip_version": 4}]
    assert (shown["status"], shown["binding:vif_type"], shown["mac_address"]) == ("DOWN", "unbound",
                                                                                 "fa:16:3e:00:00:01")
    # the same MAC on the network again: the unique key refuses it (IntegrityError, which
    # Database.write retries, then gives up on), and nothing of it is left
    again = new_port(net["id"], "0b7d7b0c-9a8e-4b53-9d1e-6f7c2a0d1e02", "fa:16:3e:00:00:01")
    again.fixed_ips[0].subnet_id, again.fixed_ips[0].ip_address = sub["id"], "10.9.0.6"
    with pytest.raises(DuplicateAfterRetries, match="UNIQUE"):
        services.env.db.write(lambda s: insert_new(s, again))
    with services.env.db.read() as s:
        assert s.execute(select(m.IPAllocation.ip_address).where(m.IPAllocation.port_id == again.id)).all() == []
        assert s.get(m.Port, again.id) is None
