"""Flavors and service profiles (flavors), and the flavor a router is made with (l3-flavors).

A flavor offers a service type (``serviceproviders.SERVICE_TYPES``); the service profiles bound
to it say which provider's driver serves it. Policy, as Neutron's: everybody lists and shows
flavors, the admin creates, updates and deletes them; service profiles and the bindings are the
admin's alone (a non-admin lists no profile and gets a 404 for any, a 403 for a create or a
binding change).

Rules, as Neutron's ``FlavorsDbMixin``: a profile names a driver of a provider this server has
(404 ServiceProfileDriverNotFound), or, without one, carries ``metainfo`` (400
ServiceProfileEmpty); a profile bound to a flavor can be neither updated nor deleted (409
ServiceProfileInUse); a binding exists once (409) and a missing one is a 404. A flavor's
``service_profiles`` given on create or update are bound (each must exist). A flavor a router
uses cannot be deleted (409 FlavorInUse); deleting one unbinds its profiles.

Routers (``router_flavor``): the flavor must exist, be of service type L3_ROUTER_NAT (400) and
enabled (FlavorDisabled), and have an enabled profile (ServiceProfileDisabled) whose driver is an
L3 provider's (ServiceProfileDriverNotFound); its first such profile, by id, decides the provider.
NOTE: Neutron takes its first binding whatever it is and does not look at ``enabled`` or the
service type; Baryon refuses what it could not honour instead of building something else.

Concurrency: a router create holds its flavor's row ``FOR SHARE`` and a flavor delete or binding
change ``FOR UPDATE``, so a flavor never goes while a new router takes it. The bindings' foreign
keys refuse a binding to a profile deleted meanwhile (the write is retried and answers 404/409).
Change log: ``flavor`` and ``service_profile`` create/update/delete; a binding change is an
update of its flavor.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import ColumnElement, delete, false, select
from sqlalchemy.orm import Session

from baryon.db import models as m
from baryon.service import errors, feed, query, serviceproviders as providers
from baryon.service.base import Env, new_id
from baryon.service.context import Context

FLAVOR_LISTING = query.Listing(
    model=m.Flavor,
    columns={"id": m.Flavor.id, "name": m.Flavor.name, "description": m.Flavor.description,
             "service_type": m.Flavor.service_type, "enabled": m.Flavor.enabled},
    sortable=frozenset({"id", "name", "description", "service_type", "enabled"}),
)
PROFILE_LISTING = query.Listing(
    model=m.ServiceProfile,
    columns={"id": m.ServiceProfile.id, "description": m.ServiceProfile.description,
             "driver": m.ServiceProfile.driver, "enabled": m.ServiceProfile.enabled},
    sortable=frozenset({"id", "description", "driver", "enabled"}),
)


def _admin(ctx: Context, action: str) -> None:
    if not ctx.is_admin:
        raise errors.PolicyNotAuthorized(rule=f"rule:{action}")


def load_flavor(session: Session, flavor_id: str, *, lock: str = "") -> m.Flavor:
    """``lock``: "" none, "share" (``FOR SHARE``), "update" (``FOR UPDATE``)."""
    stmt = select(m.Flavor).where(m.Flavor.id == flavor_id)
    if lock:
        stmt = stmt.with_for_update(read=lock == "share")
    row = session.execute(stmt).scalar_one_or_none()
    if row is None:
        raise errors.FlavorNotFound(flavor_id=flavor_id)
    return row


def _load_profile(session: Session, ctx: Context, sp_id: str, *, for_update: bool = False) -> m.ServiceProfile:
    """A profile, for the admin; anybody else gets a 404, as Neutron hides what its policy hides."""
    stmt = select(m.ServiceProfile).where(m.ServiceProfile.id == sp_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = session.execute(stmt).scalar_one_or_none() if ctx.is_admin else None
    if row is None:
        raise errors.ServiceProfileNotFound(sp_id=sp_id)
    return row


def _profiles_of(session: Session, flavor_ids: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    if flavor_ids:
        for fid, sid in session.execute(
                select(m.FlavorServiceProfile.flavor_id, m.FlavorServiceProfile.service_profile_id)
                .where(m.FlavorServiceProfile.flavor_id.in_(flavor_ids))
                .order_by(m.FlavorServiceProfile.flavor_id, m.FlavorServiceProfile.service_profile_id)):
            found[fid].append(sid)
    return found


def flavor_bodies(session: Session, rows: list[m.Flavor]) -> list[dict]:
    bound = _profiles_of(session, [r.id for r in rows])
    return [{"id": r.id, "name": r.name, "description": r.description, "service_type": r.service_type,
             "enabled": r.enabled, "service_profiles": bound.get(r.id, [])} for r in rows]


def profile_body(row: m.ServiceProfile) -> dict:
    return {"id": row.id, "description": row.description, "driver": row.driver, "enabled": row.enabled,
            "metainfo": row.metainfo}


def _bind(session: Session, ctx: Context, flavor: m.Flavor, sp_id: str) -> None:
    _load_profile(session, ctx, sp_id)
    if session.get(m.FlavorServiceProfile, (flavor.id, sp_id)) is not None:
        raise errors.FlavorServiceProfileBindingExists(sp_id=sp_id, fl_id=flavor.id)
    session.add(m.FlavorServiceProfile(flavor_id=flavor.id, service_profile_id=sp_id))
    session.flush()


def _record_flavor(session: Session, action: str, row: m.Flavor) -> dict:
    body = flavor_bodies(session, [row])[0]
    feed.record(session, "flavor", action, body)
    return body


def router_flavor(session: Session, flavor_id: str) -> m.Flavor:
    """The flavor a new router is made with, checked (module doc) and held ``FOR SHARE``."""
    flavor = load_flavor(session, flavor_id, lock="share")
    if flavor.service_type != providers.L3:
        raise errors.BadRequest(resource="router", msg=f"Flavor {flavor.id} is for service type "
                                                       f"{flavor.service_type}, not {providers.L3}")
    if not flavor.enabled:
        raise errors.FlavorDisabled()
    profiles = list(session.execute(
        select(m.ServiceProfile).join(m.FlavorServiceProfile,
                                      m.FlavorServiceProfile.service_profile_id == m.ServiceProfile.id)
        .where(m.FlavorServiceProfile.flavor_id == flavor.id).order_by(m.ServiceProfile.id)).scalars())
    if not profiles:
        raise errors.FlavorServiceProfileBindingNotFound(sp_id="", fl_id=flavor.id)
    enabled = [p for p in profiles if p.enabled]
    if not enabled:
        raise errors.ServiceProfileDisabled()
    if not any(providers.provider_of(providers.L3, p.driver) for p in enabled):
        raise errors.ServiceProfileDriverNotFound(driver=enabled[0].driver)
    return flavor


class Flavors:
    def __init__(self, env: Env):
        self.env = env

    def render(self, session: Session, rows: list[m.Flavor]) -> list[dict]:
        return flavor_bodies(session, rows)

    def create(self, ctx: Context, items: list[dict]) -> list[dict]:
        _admin(ctx, "create_flavor")
        for attrs in items:
            if attrs["service_type"] not in providers.SERVICE_TYPES:
                raise errors.InvalidServiceType(service_type=attrs["service_type"])

        def work(session: Session) -> list[dict]:
            rows = []
            for attrs in items:
                row = m.Flavor(id=new_id(), name=attrs.get("name", ""), description=attrs.get("description", ""),
                               service_type=attrs["service_type"], enabled=attrs.get("enabled", True))
                session.add(row)
                session.flush()
                for sp_id in attrs.get("service_profiles", []):
                    _bind(session, ctx, row, sp_id)
                rows.append(row)
            return [_record_flavor(session, "create", row) for row in rows]

        return self.env.write(work)

    def get(self, ctx: Context, flavor_id: str) -> dict:
        with self.env.db.read() as session:
            return self.render(session, [load_flavor(session, flavor_id)])[0]

    def list(self, ctx: Context, q: query.ListQuery) -> list[dict]:
        with self.env.db.read() as session:
            stmt = query.build(session, FLAVOR_LISTING, None, q,
                               lambda marker: errors.FlavorNotFound(flavor_id=marker))
            return self.render(session, list(session.execute(stmt).scalars()))

    def update(self, ctx: Context, flavor_id: str, attrs: dict, if_match: int | None = None) -> dict:
        _admin(ctx, "update_flavor")

        def work(session: Session) -> dict:
            row = load_flavor(session, flavor_id, lock="update")
            before = self.render(session, [row])[0]
            for key in ("name", "description", "enabled"):
                if key in attrs:
                    setattr(row, key, attrs[key])
            if "service_profiles" in attrs:
                wanted = attrs["service_profiles"]
                session.execute(delete(m.FlavorServiceProfile).where(
                    m.FlavorServiceProfile.flavor_id == row.id,
                    m.FlavorServiceProfile.service_profile_id.not_in(wanted)))
                for sp_id in wanted:
                    if sp_id not in before["service_profiles"]:
                        _bind(session, ctx, row, sp_id)
            session.flush()
            body = self.render(session, [row])[0]
            if body != before:
                feed.record(session, "flavor", "update", body)
            return body

        return self.env.write(work)

    def delete(self, ctx: Context, flavor_id: str, if_match: int | None = None) -> None:
        _admin(ctx, "delete_flavor")

        def work(session: Session) -> None:
            row = load_flavor(session, flavor_id, lock="update")
            if session.execute(select(m.Router.id).where(m.Router.flavor_id == row.id).limit(1)).first():
                raise errors.FlavorInUse(flavor_id=row.id)
            body = self.render(session, [row])[0]
            session.execute(delete(m.FlavorServiceProfile).where(m.FlavorServiceProfile.flavor_id == row.id))
            session.delete(row)
            feed.record(session, "flavor", "delete", body)

        self.env.write(work)

    # ---------------------------------------------------------------- bindings (flavors/{id}/service_profiles)

    def associate(self, ctx: Context, flavor_id: str, sp_id: str) -> dict:
        _admin(ctx, "create_flavor_service_profile")

        def work(session: Session) -> dict:
            row = load_flavor(session, flavor_id, lock="update")
            _bind(session, ctx, row, sp_id)
            _record_flavor(session, "update", row)
            return {"id": sp_id}

        return self.env.write(work)

    def association(self, ctx: Context, flavor_id: str, sp_id: str) -> dict:
        _admin(ctx, "get_flavor_service_profile")
        with self.env.db.read() as session:
            load_flavor(session, flavor_id)
            if session.get(m.FlavorServiceProfile, (flavor_id, sp_id)) is None:
                raise errors.FlavorServiceProfileBindingNotFound(sp_id=sp_id, fl_id=flavor_id)
        return {"service_profile_id": sp_id, "flavor_id": flavor_id}

    def disassociate(self, ctx: Context, flavor_id: str, sp_id: str) -> None:
        _admin(ctx, "delete_flavor_service_profile")

        def work(session: Session) -> None:
            row = load_flavor(session, flavor_id, lock="update")
            gone = session.execute(delete(m.FlavorServiceProfile).where(
                m.FlavorServiceProfile.flavor_id == row.id, m.FlavorServiceProfile.service_profile_id == sp_id))
            if not gone.rowcount:
                raise errors.FlavorServiceProfileBindingNotFound(sp_id=sp_id, fl_id=flavor_id)
            _record_flavor(session, "update", row)

        self.env.write(work)


def _check_driver(driver: str) -> None:
    if not providers.known_driver(driver):
        raise errors.ServiceProfileDriverNotFound(driver=driver)


def _in_use(session: Session, sp_id: str) -> bool:
    return session.execute(select(m.FlavorServiceProfile.flavor_id).where(
        m.FlavorServiceProfile.service_profile_id == sp_id).limit(1)).first() is not None


class ServiceProfiles:
    def __init__(self, env: Env):
        self.env = env

    def render(self, session: Session, rows: list[m.ServiceProfile]) -> list[dict]:
        return [profile_body(r) for r in rows]

    def create(self, ctx: Context, items: list[dict]) -> list[dict]:
        _admin(ctx, "create_service_profile")
        for attrs in items:
            if attrs.get("driver"):
                _check_driver(attrs["driver"])
            elif not attrs.get("metainfo"):
                raise errors.ServiceProfileEmpty()

        def work(session: Session) -> list[dict]:
            rows = [m.ServiceProfile(id=new_id(), description=attrs.get("description", ""),
                                     driver=attrs.get("driver", ""), enabled=attrs.get("enabled", True),
                                     metainfo=attrs.get("metainfo", "")) for attrs in items]
            session.add_all(rows)
            session.flush()
            result = self.render(session, rows)
            for body in result:
                feed.record(session, "service_profile", "create", body)
            return result

        return self.env.write(work)

    def get(self, ctx: Context, sp_id: str) -> dict:
        with self.env.db.read() as session:
            return profile_body(_load_profile(session, ctx, sp_id))

    def list(self, ctx: Context, q: query.ListQuery) -> list[dict]:
        visible: ColumnElement[bool] | None = None if ctx.is_admin else false()
        with self.env.db.read() as session:
            stmt = query.build(session, PROFILE_LISTING, visible, q,
                               lambda marker: errors.ServiceProfileNotFound(sp_id=marker))
            return self.render(session, list(session.execute(stmt).scalars()))

    def update(self, ctx: Context, sp_id: str, attrs: dict, if_match: int | None = None) -> dict:
        def work(session: Session) -> dict:
            row = _load_profile(session, ctx, sp_id, for_update=True)
            if attrs.get("driver"):
                _check_driver(attrs["driver"])
            if _in_use(session, row.id):
                raise errors.ServiceProfileInUse(sp_id=row.id)
            before = profile_body(row)
            for key in ("description", "driver", "enabled", "metainfo"):
                if key in attrs:
                    setattr(row, key, attrs[key])
            session.flush()
            body = profile_body(row)
            if body != before:
                feed.record(session, "service_profile", "update", body)
            return body

        return self.env.write(work)

    def delete(self, ctx: Context, sp_id: str, if_match: int | None = None) -> None:
        def work(session: Session) -> None:
            row = _load_profile(session, ctx, sp_id, for_update=True)
            if _in_use(session, row.id):
                raise errors.ServiceProfileInUse(sp_id=row.id)
            body = profile_body(row)
            session.delete(row)
            feed.record(session, "service_profile", "delete", body)

        self.env.write(work)
