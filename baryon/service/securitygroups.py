"""Security groups, as far as ports need them now: each project's ``default`` group.

Like Neutron, the first port (or, later, the first security group call) of a project creates the
project's ``default`` group with Neutron's default rules: all egress over IPv4 and IPv6, and
ingress from members of the group itself. ``default_security_groups`` has the project as its
primary key, so two workers racing to create it cannot both succeed: the loser's transaction is
retried and finds the winner's group.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from baryon.db import models as m
from baryon.service import errors, feed
from baryon.service.base import new_id, now
from baryon.service.context import Context
from baryon.service.render import ts


def rule_dict(rule: m.SecurityGroupRule) -> dict:
    return {
        "id": rule.id, "project_id": rule.project_id, "tenant_id": rule.project_id,
        "security_group_id": rule.security_group_id, "remote_group_id": rule.remote_group_id,
        "remote_address_group_id": rule.remote_address_group_id, "direction": rule.direction,
        "ethertype": rule.ethertype, "protocol": rule.protocol, "port_range_min": rule.port_range_min,
        "port_range_max": rule.port_range_max, "remote_ip_prefix": rule.remote_ip_prefix,
        "description": rule.description, "normalized_cidr": rule.remote_ip_prefix,
        "created_at": ts(rule.created_at), "updated_at": ts(rule.updated_at),
        "revision_number": rule.revision_number,
    }


def group_dict(group: m.SecurityGroup, tags: list[str]) -> dict:
    return {
        "id": group.id, "name": group.name, "description": group.description,
        "project_id": group.project_id, "tenant_id": group.project_id, "stateful": group.stateful,
        "security_group_rules": [rule_dict(r) for r in group.rules], "tags": tags,
        "created_at": ts(group.created_at), "updated_at": ts(group.updated_at),
        "revision_number": group.revision_number, "shared": False,
    }


def ensure_default(session: Session, project_id: str) -> str:
    """The id of the project's default group, created (with its rules) if it does not exist."""
    existing = session.get(m.DefaultSecurityGroup, project_id)
    if existing is not None:
        return existing.security_group_id
    moment = now()
    group = m.SecurityGroup(id=new_id(), project_id=project_id, name="default",
                            description="Default security group", created_at=moment, updated_at=moment,
                            revision_number=1, stateful=True)
    session.add(group)
    session.flush()
    for ethertype in ("IPv4", "IPv6"):
        for direction, remote in (("ingress", group.id), ("egress", None)):
            group.rules.append(m.SecurityGroupRule(
                id=new_id(), project_id=project_id, security_group_id=group.id, remote_group_id=remote,
                direction=direction, ethertype=ethertype, created_at=moment, updated_at=moment,
                revision_number=0))
    session.add(m.DefaultSecurityGroup(project_id=project_id, security_group_id=group.id))
    session.flush()
    feed.record(session, "security_group", "create", group_dict(group, []))
    return group.id


def check_usable(session: Session, ctx: Context, project_id: str, group_ids: list[str]) -> None:
    """Every group must exist and belong to the port's project (admins may use any group)."""
    if not group_ids:
        return
    found = dict(session.execute(
        select(m.SecurityGroup.id, m.SecurityGroup.project_id).where(m.SecurityGroup.id.in_(group_ids))).all())
    for gid in group_ids:
        if gid not in found or (not ctx.is_admin and found[gid] != project_id):
            raise errors.SecurityGroupNotFound(id=gid)
