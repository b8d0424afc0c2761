"""Security groups and their rules; each project's ``default`` group.

Like Neutron, a project's first use creates its ``default`` group. First use is its first port or
network, its first security group, or a list of its groups or rules. Every new group gets its
rules from the default security group rules template (``defaultsgrules``, read in the same
transaction) for its kind, default or not; the template starts as Neutron's defaults: all egress
over IPv4 and IPv6 for every group, and ingress from members of the group itself for the default.
``default_security_groups`` has the project as its primary key, so two workers racing to create
it cannot both succeed: the loser's transaction is retried and finds the winner's group.

Rules are checked by the pure ``sgrules`` module, then against the database with the group's row
locked (``SELECT ... FOR UPDATE``): two concurrent creates of the same rule serialise on that lock,
so one gets 201 and the other 409 ``SecurityGroupRuleExists``. A rule change bumps its group's
revision; the change log gets the rule's create/delete and the group's update.

A rule may name an address group (``remote_address_group_id``) the caller sees; its row is locked
with the rule's group, so that the address group cannot be deleted under a rule being made
(``addressgroups``).

Sharing (rbac-security-groups): an ``access_as_shared`` RBAC entry (``rbac``) shows the group to
its target project, which may then put it on its ports (and see its rules), but not change it
(403); ``shared`` says whether the group is shared with the caller.

Invariants: the default group can't be renamed, nor deleted by a non-admin; a group that a port
uses can't be deleted, nor change ``stateful``. Deleting a group also deletes the rules of other
groups that name it as their remote group (those groups are bumped and logged).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, bindparam, or_, select
from sqlalchemy.orm import Session

from baryon.db import models as m
from baryon.service import addressgroups, defaultsgrules, errors, feed, query, quotas, rbac, render, sgrules
from baryon.service import sgtemplates, tags
from baryon.service.base import Env, bump, check_revision, new_id, now, require_write, stamp_new
from baryon.service.context import Context
from baryon.service.render import ts

DEFAULT_NAME = "default"
DEFAULT_DESCRIPTION = "Default security group"

GROUP_LISTING = query.Listing(
    model=m.SecurityGroup,
    columns={
        "id": m.SecurityGroup.id, "name": m.SecurityGroup.name, "description": m.SecurityGroup.description,
        "project_id": m.SecurityGroup.project_id, "tenant_id": m.SecurityGroup.project_id,
        "stateful": m.SecurityGroup.stateful, "revision_number": m.SecurityGroup.revision_number,
        "created_at": m.SecurityGroup.created_at, "updated_at": m.SecurityGroup.updated_at,
    },
    sortable=frozenset({"id", "name", "description", "project_id", "tenant_id", "stateful", "revision_number",
                        "created_at", "updated_at"}),
)

_R = m.SecurityGroupRule
RULE_LISTING = query.Listing(
    model=_R,
    columns={
        "id": _R.id, "project_id": _R.project_id, "tenant_id": _R.project_id,
        "security_group_id": _R.security_group_id, "remote_group_id": _R.remote_group_id,
        "remote_address_group_id": _R.remote_address_group_id, "direction": _R.direction,
        "ethertype": _R.ethertype, "protocol": _R.protocol, "port_range_min": _R.port_range_min,
        "port_range_max": _R.port_range_max, "remote_ip_prefix": _R.remote_ip_prefix,
        "description": _R.description, "revision_number": _R.revision_number, "created_at": _R.created_at,
        "updated_at": _R.updated_at,
    },
    sortable=frozenset({"id", "project_id", "tenant_id", "security_group_id", "remote_group_id",
                        "remote_address_group_id", "direction",
                        "ethertype", "protocol", "port_range_min", "port_range_max", "remote_ip_prefix",
                        "description", "revision_number", "created_at", "updated_at"}),
)


def rule_dict(rule: m.SecurityGroupRule) -> dict:
    return {
        "id": rule.id, "project_id": rule.project_id, "tenant_id": rule.project_id,
        "security_group_id": rule.security_group_id, "remote_group_id": rule.remote_group_id,
        "remote_address_group_id": rule.remote_address_group_id, "direction": rule.direction,
        "ethertype": rule.ethertype, "protocol": rule.protocol, "port_range_min": rule.port_range_min,
        "port_range_max": rule.port_range_max, "remote_ip_prefix": rule.remote_ip_prefix,
        "normalized_cidr": sgrules.normalized_cidr(rule.remote_ip_prefix),
        "description": rule.description, "created_at": ts(rule.created_at), "updated_at": ts(rule.updated_at),
        "revision_number": rule.revision_number,
    }


def group_dict(group: m.SecurityGroup, tags: list[str]) -> dict:
    rules = sorted(group.rules, key=lambda r: (r.created_at, r.id))
    return {
        "id": group.id, "name": group.name, "description": group.description,
        "project_id": group.project_id, "tenant_id": group.project_id, "stateful": group.stateful,
        "security_group_rules": [rule_dict(r) for r in rules], "tags": tags,
        "created_at": ts(group.created_at), "updated_at": ts(group.updated_at),
        "revision_number": group.revision_number, "shared": False,
    }


def _new_rule(group: m.SecurityGroup, project_id: str, attrs: dict) -> m.SecurityGroupRule:
    moment = now()
    rule = m.SecurityGroupRule(
        id=new_id(), project_id=project_id, security_group_id=group.id,
        remote_group_id=attrs.get("remote_group_id"), remote_address_group_id=attrs.get("remote_address_group_id"),
        direction=attrs["direction"], ethertype=attrs["ethertype"], protocol=attrs.get("protocol"),
        port_range_min=attrs.get("port_range_min"), port_range_max=attrs.get("port_range_max"),
        remote_ip_prefix=attrs.get("remote_ip_prefix"), description=attrs.get("description", ""),
        created_at=moment, updated_at=moment, revision_number=0)
    group.rules.append(rule)
    return rule


def _new_group(session: Session, project_id: str, attrs: dict, *, default: bool,
               template: list[dict]) -> m.SecurityGroup:
    """A group with its initial rules from the template (``template``: ``defaultsgrules.template_rules``
    for this kind of group); the caller change-logs them with the group."""
    group = m.SecurityGroup()
    stamp_new(group, project_id, attrs)
    group.stateful = attrs.get("stateful", True)
    group.rules = []
    session.add(group)
    session.flush()
    named = {t["remote_group_id"] for t in template} - {None, sgtemplates.PARENT}
    existing = frozenset(session.execute(select(m.SecurityGroup.id).where(m.SecurityGroup.id.in_(named))).scalars()
                         if named else ())
    for rule in sgtemplates.rules_for(template, group.id, default=default, existing_groups=existing):
        _new_rule(group, project_id, rule)
    return group


def _record_created(session: Session, group: m.SecurityGroup, tag_list: list[str]) -> dict:
    session.flush()
    body = group_dict(group, tag_list)
    feed.record(session, "security_group", "create", body)
    for rule in body["security_group_rules"]:
        feed.record(session, "security_group_rule", "create", rule)
    return body


# The project's default group, built once and run as Core (every port create reads it).
_DEFAULT_OF = (select(m.DefaultSecurityGroup.__table__.c.security_group_id)
               .where(m.DefaultSecurityGroup.__table__.c.project_id == bindparam("project_id")))


def ensure_default(session: Session, project_id: str) -> str:
    """The id of the project's default group, created (with its rules) if it does not exist.
    NOTE: not counted against the quotas when created, so a project's first port never fails
    on its security group quota."""
    existing = session.execute(_DEFAULT_OF, {"project_id": project_id}).scalar()
    if existing is not None:
        return existing
    group = _new_group(session, project_id, {"name": DEFAULT_NAME, "description": DEFAULT_DESCRIPTION},
                       default=True, template=defaultsgrules.template_rules(session, default=True))
    session.add(m.DefaultSecurityGroup(project_id=project_id, security_group_id=group.id))
    _record_created(session, group, [])
    return group.id


def ensure_default_exists(env: Env, project_id: str) -> None:
    """``ensure_default`` for a read request: a plain read when it exists (the usual case)."""
    if not project_id:
        return
    with env.db.read() as session:
        if session.get(m.DefaultSecurityGroup, project_id) is not None:
            return
    env.write(lambda session: ensure_default(session, project_id))


def check_usable(session: Session, ctx: Context, project_id: str, group_ids: list[str]) -> None:
    """Every group must exist and belong to the port's project (admins may use any group); as in
    Neutron, a port's groups are all stateful or all stateless (409 SecurityGroupConflict)."""
    if not group_ids:
        return
    rows = session.execute(select(m.SecurityGroup.id, m.SecurityGroup.project_id, m.SecurityGroup.stateful)
                           .where(m.SecurityGroup.id.in_(group_ids))).all()
    found = {gid: project for gid, project, _ in rows}
    shared = set(session.execute(rbac.granted_ids("security_group", project_id, (rbac.SHARED,)).where(
        m.RbacPolicy.object_id.in_(group_ids))).scalars())
    missing = [gid for gid in group_ids if gid not in found
               or not (ctx.is_admin or found[gid] == project_id or gid in shared)]
    if missing:
        raise errors.SecurityGroupNotFound(id=", ".join(missing))
    if len({stateful for _, _, stateful in rows}) > 1:
        raise errors.SecurityGroupConflict(reason="Cannot apply both stateful and stateless security groups on "
                                                  "the same port at the same time")


def group_visible_clause(ctx: Context) -> ColumnElement[bool] | None:
    """The caller's groups and those shared with it."""
    if ctx.is_admin:
        return None
    return or_(m.SecurityGroup.project_id == ctx.project_id,
               m.SecurityGroup.id.in_(rbac.granted_ids("security_group", ctx.project_id, (rbac.SHARED,))))


def rule_visible_clause(ctx: Context) -> ColumnElement[bool] | None:
    if ctx.is_admin:
        return None
    return or_(_R.project_id == ctx.project_id, _R.security_group_id.in_(
        select(m.SecurityGroup.id).where(m.SecurityGroup.project_id == ctx.project_id)),
        _R.security_group_id.in_(rbac.granted_ids("security_group", ctx.project_id, (rbac.SHARED,))))


def load_visible(session: Session, ctx: Context, group_id: str, *, for_update: bool = False) -> m.SecurityGroup:
    stmt = select(m.SecurityGroup).where(m.SecurityGroup.id == group_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = session.execute(stmt).scalar_one_or_none()
    if row is None or not (ctx.is_admin or row.project_id == ctx.project_id
                           or rbac.granted(session, "security_group", row.id, ctx.project_id, (rbac.SHARED,))):
        raise errors.SecurityGroupNotFound(id=group_id)
    return row


def load_owned(session: Session, ctx: Context, group_id: str, action: str) -> m.SecurityGroup:
    """A group the caller may change (locked): 404 when it cannot see it, 403 when it is only
    shared with it."""
    row = load_visible(session, ctx, group_id, for_update=True)
    if not (ctx.is_admin or row.project_id == ctx.project_id):
        raise errors.PolicyNotAuthorized(rule=f"rule:{action}")
    return row


# ---------------------------------------------------------------- RBAC (the registry's security_group entry)


def rbac_users(session: Session, row: m.SecurityGroup, action: str) -> set[str]:
    """The projects other than the owner whose ports use the group."""
    found = set(session.execute(select(m.Port.project_id).join(
        m.PortSecurityGroupBinding, m.PortSecurityGroupBinding.port_id == m.Port.id).where(
        m.PortSecurityGroupBinding.security_group_id == row.id)).scalars())
    return found - {row.project_id}


def _is_default(session: Session, group: m.SecurityGroup) -> bool:
    return session.execute(select(m.DefaultSecurityGroup.project_id).where(
        m.DefaultSecurityGroup.security_group_id == group.id)).first() is not None


def _in_use(session: Session, group_id: str) -> bool:
    return session.execute(select(m.PortSecurityGroupBinding.port_id).where(
        m.PortSecurityGroupBinding.security_group_id == group_id).limit(1)).first() is not None


def _listed_project(ctx: Context, q: query.ListQuery) -> str:
    """Whose default group a list ensures: the filtered project's, else the caller's (Neutron)."""
    for key in ("project_id", "tenant_id"):
        values = q.filters.get(key)
        if values and (ctx.is_admin or values[0] == ctx.project_id):
            return str(values[0])
    return ctx.project_id


class SecurityGroups:
    def __init__(self, env: Env):
        self.env = env

    def render(self, session: Session, rows: list[m.SecurityGroup]) -> list[dict]:
        tag_map = render.tags_of(session, [r.id for r in rows])
        return [group_dict(r, tag_map.get(r.id, [])) for r in rows]

    def _render_one(self, session: Session, row: m.SecurityGroup) -> dict:
        return self.render(session, [row])[0]

    @staticmethod
    def shown(session: Session, ctx: Context, bodies: list[dict]) -> list[dict]:
        """Rendered groups as the caller sees them (``shared``: shared with the caller)."""
        return rbac.per_caller(session, ctx, "security_group", bodies)

    # ---------------------------------------------------------------- create

    def create(self, ctx: Context, items: list[dict]) -> list[dict]:
        require_write(ctx, "create_security_group")

        def work(session: Session) -> list[dict]:
            for project in sorted({a.get("project_id") or ctx.project_id for a in items}):
                ensure_default(session, project)
            quotas.check_items(session, self.env, ctx.project_id, items, "security_group")
            # Each new group comes with the template's rules for groups other than the default.
            template = defaultsgrules.template_rules(session, default=False)
            quotas.check_items(session, self.env, ctx.project_id, items * len(template), "security_group_rule")
            result = []
            for attrs in items:
                group = _new_group(session, attrs.get("project_id") or ctx.project_id, attrs, default=False,
                                   template=template)
                tag_list = sorted(dict.fromkeys(attrs.get("tags", [])))
                tags.set_initial(session, "security_groups", group.id, tag_list)
                result.append(_record_created(session, group, tag_list))
            return result

        return self.env.write(work)

    # ---------------------------------------------------------------- read

    def get(self, ctx: Context, group_id: str) -> dict:
        with self.env.db.read() as session:
            return self.shown(session, ctx, self.render(session, [load_visible(session, ctx, group_id)]))[0]

    def list(self, ctx: Context, q: query.ListQuery) -> list[dict]:
        ensure_default_exists(self.env, _listed_project(ctx, q))
        with self.env.db.read() as session:
            stmt = query.build(session, GROUP_LISTING, group_visible_clause(ctx), q,
                               lambda marker: errors.SecurityGroupNotFound(id=marker))
            return self.shown(session, ctx, self.render(session, list(session.execute(stmt).scalars())))

    # ---------------------------------------------------------------- update

    def update(self, ctx: Context, group_id: str, attrs: dict, if_match: int | None = None) -> dict:
        require_write(ctx, "update_security_group")

        def work(session: Session) -> dict:
            row = load_owned(session, ctx, group_id, "update_security_group")
            check_revision(row, if_match)
            if "name" in attrs and _is_default(session, row):
                raise errors.SecurityGroupCannotUpdateDefault()
            if "stateful" in attrs and attrs["stateful"] != row.stateful and _in_use(session, row.id):
                raise errors.SecurityGroupInUse(id=row.id)
            changed = False
            for key in ("name", "description", "stateful"):
                if key in attrs and getattr(row, key) != attrs[key]:
                    setattr(row, key, attrs[key])
                    changed = True
            if changed:
                bump(row)
            session.flush()
            body = self._render_one(session, row)
            if changed:
                feed.record(session, "security_group", "update", body)
            return self.shown(session, ctx, [body])[0]

        return self.env.write(work)

    # ---------------------------------------------------------------- delete

    def delete(self, ctx: Context, group_id: str, if_match: int | None = None) -> None:
        require_write(ctx, "delete_security_group")

        def work(session: Session) -> None:
            row = load_owned(session, ctx, group_id, "delete_security_group")
            check_revision(row, if_match)
            if _in_use(session, row.id):
                raise errors.SecurityGroupInUse(id=row.id)
            if not ctx.is_admin and _is_default(session, row):
                raise errors.SecurityGroupCannotRemoveDefault()
            self._drop_remote_references(session, row.id)
            body = self._render_one(session, row)
            for rule in body["security_group_rules"]:
                feed.record(session, "security_group_rule", "delete", rule)
            tags.clear_all(session, row.id)
            rbac.remove(session, "security_group", row.id)
            session.delete(row)
            feed.record(session, "security_group", "delete", body)

        self.env.write(work)

    def _drop_remote_references(self, session: Session, group_id: str) -> None:
        """Rules of other groups whose remote group this is go with it (as the database's
        cascade would), each logged, and their groups bumped."""
        referring = session.execute(select(_R).where(_R.remote_group_id == group_id,
                                                     _R.security_group_id != group_id)).scalars().all()
        touched: dict[str, m.SecurityGroup] = {}
        for rule in referring:
            group = touched.get(rule.security_group_id) or session.execute(
                select(m.SecurityGroup).where(m.SecurityGroup.id == rule.security_group_id).with_for_update()
            ).scalar_one()
            touched[group.id] = group
            feed.record(session, "security_group_rule", "delete", rule_dict(rule))
            group.rules.remove(rule)
        for group in touched.values():
            bump(group)
            session.flush()
            feed.record(session, "security_group", "update", self._render_one(session, group))


class SecurityGroupRules:
    def __init__(self, env: Env, groups: SecurityGroups):
        self.env = env
        self.groups = groups

    # ---------------------------------------------------------------- create

    def create(self, ctx: Context, items: list[dict]) -> list[dict]:
        require_write(ctx, "create_security_group_rule")
        if len({a["security_group_id"] for a in items}) > 1:
            raise errors.SecurityGroupNotSingleGroupRules()
        projects = {a["project_id"] for a in items if a.get("project_id")}
        if len(projects) > 1:
            raise errors.SecurityGroupRulesNotSingleTenant()
        specs = [(sgrules.validate(attrs), attrs) for attrs in items]

        def work(session: Session) -> list[dict]:
            # NOTE: the group's row lock serialises every rule change of the group.
            group = load_owned(session, ctx, items[0]["security_group_id"], "create_security_group_rule")
            # NOTE: a rule belongs to its group's project unless an admin says otherwise.
            project = next(iter(projects), group.project_id)
            for spec, _ in specs:
                if spec["remote_group_id"] is not None:
                    load_visible(session, ctx, spec["remote_group_id"])
                if spec["remote_address_group_id"] is not None:
                    addressgroups.check_usable(session, ctx, spec["remote_address_group_id"])
            quotas.check(session, self.env, project, "security_group_rule", len(items))
            self._check_duplicates(group, [spec for spec, _ in specs])
            rows = [_new_rule(group, project, {**spec, "description": attrs.get("description", "")})
                    for spec, attrs in specs]
            bump(group)
            session.flush()
            result = [rule_dict(r) for r in rows]
            for body in result:
                feed.record(session, "security_group_rule", "create", body)
            feed.record(session, "security_group", "update", self.groups._render_one(session, group))
            return result

        return self.env.write(work)

    @staticmethod
    def _check_duplicates(group: m.SecurityGroup, specs: list[dict]) -> None:
        wanted: set[tuple] = set()
        for spec in specs:
            key = sgrules.key(spec)
            if key in wanted:
                raise errors.DuplicateSecurityGroupRuleInPost()
            wanted.add(key)
        for rule in group.rules:
            if sgrules.key(rule_dict(rule)) in wanted:
                raise errors.SecurityGroupRuleExists(rule_id=rule.id)

    # ---------------------------------------------------------------- read

    @staticmethod
    def _load(session: Session, ctx: Context, rule_id: str) -> m.SecurityGroupRule:
        clause = rule_visible_clause(ctx)
        stmt = select(_R).where(_R.id == rule_id)
        if clause is not None:
            stmt = stmt.where(clause)
        row = session.execute(stmt).scalar_one_or_none()
        if row is None:
            raise errors.SecurityGroupRuleNotFound(id=rule_id)
        return row

    def get(self, ctx: Context, rule_id: str) -> dict:
        with self.env.db.read() as session:
            return rule_dict(self._load(session, ctx, rule_id))

    def list(self, ctx: Context, q: query.ListQuery) -> list[dict]:
        ensure_default_exists(self.env, _listed_project(ctx, q))
        with self.env.db.read() as session:
            stmt = query.build(session, RULE_LISTING, rule_visible_clause(ctx), q,
                               lambda marker: errors.SecurityGroupRuleNotFound(id=marker))
            return [rule_dict(r) for r in session.execute(stmt).scalars()]

    # ---------------------------------------------------------------- delete

    def delete(self, ctx: Context, rule_id: str, if_match: int | None = None) -> None:
        require_write(ctx, "delete_security_group_rule")

        def work(session: Session) -> None:
            rule = self._load(session, ctx, rule_id)
            check_revision(rule, if_match)
            group = session.execute(select(m.SecurityGroup).where(
                m.SecurityGroup.id == rule.security_group_id).with_for_update()).scalar_one()
            if not (ctx.is_admin or ctx.project_id in (rule.project_id, group.project_id)):
                raise errors.PolicyNotAuthorized(rule="rule:delete_security_group_rule")  # a shared group's
            body = rule_dict(rule)
            group.rules.remove(rule)
            bump(group)
            session.flush()
            feed.record(session, "security_group_rule", "delete", body)
            feed.record(session, "security_group", "update", self.groups._render_one(session, group))

        self.env.write(work)
