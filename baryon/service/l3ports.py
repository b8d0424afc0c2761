"""The ports routers, floating IPs and DHCP agents own: created, re-addressed and deleted on their behalf.

They are ordinary ports (the same MAC and address allocation, the same change log entries) made
with an admin context inside the caller's transaction. As in Neutron, a router's gateway port and
a floating IP's port have no project (``''``: members never see them), a router interface made
from a subnet belongs to the router's project and a DHCP port to its network's; none of them is
counted against a quota when it is created (Neutron checks quotas on API requests only).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from baryon.db import models as m
from baryon.service import feed
from baryon.service.base import Env, bump
from baryon.service.context import Context
from baryon.service.ports import Ports, delete_row


def create(env: Env, session: Session, *, network_id: str, project_id: str, device_id: str, device_owner: str,
           fixed_ips: list[dict] | None = None, status: str | None = None, host: str = "") -> m.Port:
    """``host``: its ``binding:host_id`` (bound there as any port, see ``ports``)."""
    attrs: dict = {"network_id": network_id, "device_id": device_id, "device_owner": device_owner, "name": "",
                   "admin_state_up": True, "binding:host_id": host}
    if fixed_ips is not None:
        attrs["fixed_ips"] = fixed_ips
    ports = Ports(env)
    row = ports.create_row(session, Context.admin(project_id), attrs)  # project_id: '' stays ''
    if status is not None:
        row.status = status
    session.flush()
    feed.record(session, "port", "create", ports.render(session, [row])[0])
    return row


def readdress(env: Env, session: Session, row: m.Port, fixed_ips: list[dict]) -> None:
    """Give the port exactly ``fixed_ips`` (addresses it already holds are kept)."""
    ports = Ports(env)
    ports.readdress(session, Context.admin(row.project_id), row, fixed_ips)
    changed(env, session, row)


def changed(env: Env, session: Session, row: m.Port) -> None:
    """The port was changed on the L3 side (owner, addresses): new revision, logged."""
    bump(row)
    session.flush()
    feed.record(session, "port", "update", Ports(env).render(session, [row])[0])


def delete(env: Env, session: Session, row: m.Port) -> None:
    delete_row(session, row, env.port_security)
    session.flush()
