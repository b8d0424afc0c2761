"""The default security group rules template through the API (security-groups-default-rules).

Admins create and delete template rules; everyone may list and show them (Neutron's policy).
Template rules cannot be updated (Neutron has no PUT for them). Rules are checked by the pure
``sgtemplates`` module; a duplicate for the same kind of group is a 409, whether it is found by
the check or, for two concurrent creates, by the database's unique ``default_key`` /
``non_default_key`` (the losing transaction is retried and then finds the winner's row).

The template reaches no agent: it only shapes the groups made afterwards (``template_rules``,
read by ``securitygroups`` in the transaction that makes a group), so nothing is change-logged.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from baryon.db import models as m
from baryon.service import errors, query, sgtemplates
from baryon.service.base import Env, new_id, now
from baryon.service.context import Context

_T = m.DefaultSecurityGroupRule
LISTING = query.Listing(
    model=_T,
    columns={
        "id": _T.id, "direction": _T.direction, "ethertype": _T.ethertype, "protocol": _T.protocol,
        "port_range_min": _T.port_range_min, "port_range_max": _T.port_range_max,
        "remote_ip_prefix": _T.remote_ip_prefix, "remote_group_id": _T.remote_group_id,
        "remote_address_group_id": _T.remote_address_group_id, "description": _T.description,
        "used_in_default_sg": _T.used_in_default_sg, "used_in_non_default_sg": _T.used_in_non_default_sg,
    },
    sortable=frozenset({"id", "direction", "ethertype", "protocol", "port_range_min", "port_range_max",
                        "remote_ip_prefix", "remote_group_id", "remote_address_group_id"}),
)


def template_dict(row: m.DefaultSecurityGroupRule) -> dict:
    return {
        "id": row.id, "direction": row.direction, "ethertype": row.ethertype, "protocol": row.protocol,
        "port_range_min": row.port_range_min, "port_range_max": row.port_range_max,
        "remote_ip_prefix": row.remote_ip_prefix, "remote_group_id": row.remote_group_id,
        "remote_address_group_id": row.remote_address_group_id, "description": row.description,
        "used_in_default_sg": row.used_in_default_sg, "used_in_non_default_sg": row.used_in_non_default_sg,
    }


def template_rules(session: Session, *, default: bool) -> list[dict]:
    """The template rules for a project's default group (``default``) or for any other group,
    in the order they were made."""
    flag = _T.used_in_default_sg if default else _T.used_in_non_default_sg
    rows = session.execute(select(_T).where(flag.is_(True)).order_by(_T.created_at, _T.id)).scalars()
    return [template_dict(r) for r in rows]


def _require_admin(ctx: Context, action: str) -> None:
    if not ctx.is_admin:
        raise errors.PolicyNotAuthorized(rule=f"rule:{action}")


class DefaultSecurityGroupRules:
    def __init__(self, env: Env):
        self.env = env

    def create(self, ctx: Context, items: list[dict]) -> list[dict]:
        _require_admin(ctx, "create_default_security_group_rule")
        rules = [sgtemplates.validate(attrs) for attrs in items]

        def work(session: Session) -> list[dict]:
            existing = [(row.id, template_dict(row)) for row in session.execute(select(_T)).scalars()]
            sgtemplates.check_duplicates(rules, existing)
            moment = now()
            rows = []
            for rule in rules:
                default_key, non_default_key = sgtemplates.keys(rule)
                row = _T(id=new_id(), remote_address_group_id=None, default_key=default_key,
                         non_default_key=non_default_key, created_at=moment, updated_at=moment,
                         **{k: rule[k] for k in (*sgtemplates.RULE_FIELDS, "description", "used_in_default_sg",
                                                 "used_in_non_default_sg")})
                session.add(row)
                rows.append(row)
            session.flush()
            return [template_dict(r) for r in rows]

        return self.env.write(work)

    def get(self, ctx: Context, rule_id: str) -> dict:
        with self.env.db.read() as session:
            row = session.get(_T, rule_id)
            if row is None:
                raise errors.DefaultSecurityGroupRuleNotFound(id=rule_id)
            return template_dict(row)

    def list(self, ctx: Context, q: query.ListQuery) -> list[dict]:
        with self.env.db.read() as session:
            stmt = query.build(session, LISTING, None, q,
                               lambda marker: errors.DefaultSecurityGroupRuleNotFound(id=marker))
            return [template_dict(r) for r in session.execute(stmt).scalars()]

    def delete(self, ctx: Context, rule_id: str, if_match: int | None = None) -> None:
        def work(session: Session) -> None:
            row = session.get(_T, rule_id)
            if row is None:
                raise errors.DefaultSecurityGroupRuleNotFound(id=rule_id)
            _require_admin(ctx, "delete_default_security_group_rule")
            session.delete(row)

        self.env.write(work)
