"""Tags on networks, subnets and ports (Neutron's standard-attr-tag extension).

``/v2.0/{resources}/{id}/tags``: GET (list), PUT (replace all), DELETE (remove all);
``/v2.0/{resources}/{id}/tags/{tag}``: GET (204 if present, 404 if not), PUT (add), DELETE
(remove, 404 if absent). Every change bumps the resource's revision and is logged as an update
of the resource.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from baryon.db import models as m
from baryon.service import errors, feed
from baryon.service.base import Env, bump, require_write
from baryon.service.context import Context

SINGULAR = {"networks": "network", "subnets": "subnet", "ports": "port", "security_groups": "security_group",
            "routers": "router", "floatingips": "floatingip", "subnetpools": "subnetpool"}


def set_initial(session: Session, resource: str, resource_id: str, tags: list[str]) -> None:
    for tag in dict.fromkeys(tags):
        session.add(m.Tag(resource_id=resource_id, tag=tag, resource_type=resource))


def clear_all(session: Session, resource_id: str) -> None:
    session.execute(delete(m.Tag).where(m.Tag.resource_id == resource_id))


def _current(session: Session, resource_id: str) -> list[str]:
    return sorted(session.execute(select(m.Tag.tag).where(m.Tag.resource_id == resource_id)).scalars())


@dataclass(frozen=True)
class TagTarget:
    """How to find a taggable resource the caller may change, and to render it for the log."""

    load: Callable[[Session, Context, str], object]
    render: Callable[[Session, object], dict]


class Tags:
    def __init__(self, env: Env, targets: dict[str, TagTarget]):
        self.env = env
        self.targets = targets

    def _target(self, resource: str) -> TagTarget:
        if resource not in self.targets:
            raise errors.ResourceNotFound()
        return self.targets[resource]

    def list(self, ctx: Context, resource: str, resource_id: str) -> list[str]:
        target = self._target(resource)
        with self.env.db.read() as session:
            target.load(session, ctx, resource_id)
            return _current(session, resource_id)

    def check(self, ctx: Context, resource: str, resource_id: str, tag: str) -> None:
        if tag not in self.list(ctx, resource, resource_id):
            raise errors.TagNotFound(tag=tag, resource=SINGULAR[resource], resource_id=resource_id)

    def _change(self, ctx: Context, resource: str, resource_id: str,
                compute: Callable[[list[str]], list[str]]) -> list[str]:
        require_write(ctx, f"update_{SINGULAR.get(resource, resource)}")
        target = self._target(resource)

        def work(session: Session) -> list[str]:
            row = target.load(session, ctx, resource_id)
            before = _current(session, resource_id)
            after = sorted(dict.fromkeys(compute(before)))
            if after != before:
                clear_all(session, resource_id)
                set_initial(session, resource, resource_id, after)
                bump(row)
                session.flush()
                feed.record(session, SINGULAR[resource], "update", target.render(session, row))
            return after

        return self.env.write(work)

    def replace(self, ctx: Context, resource: str, resource_id: str, tags: list[str]) -> list[str]:
        return self._change(ctx, resource, resource_id, lambda _: tags)

    def add(self, ctx: Context, resource: str, resource_id: str, tag: str) -> None:
        self._change(ctx, resource, resource_id, lambda before: before + [tag])

    def remove(self, ctx: Context, resource: str, resource_id: str, tag: str) -> None:
        def compute(before: list[str]) -> list[str]:
            if tag not in before:
                raise errors.TagNotFound(tag=tag, resource=SINGULAR[resource], resource_id=resource_id)
            return [t for t in before if t != tag]

        self._change(ctx, resource, resource_id, compute)

    def clear(self, ctx: Context, resource: str, resource_id: str) -> None:
        self._change(ctx, resource, resource_id, lambda _: [])
