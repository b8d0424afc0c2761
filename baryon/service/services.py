"""All resource services of one process, wired to one environment."""

from __future__ import annotations

from dataclasses import dataclass

from baryon.config import Settings
from baryon.db.engine import Database
from baryon.service import networks, ports, subnets
from baryon.service.base import Env
from baryon.service.tags import Tags, TagTarget


@dataclass
class Services:
    env: Env
    networks: networks.Networks
    subnets: subnets.Subnets
    ports: ports.Ports
    tags: Tags

    @classmethod
    def create(cls, settings: Settings, db: Database) -> "Services":
        env = Env.create(settings, db)
        nets, subs, prts = networks.Networks(env), subnets.Subnets(env), ports.Ports(env)
        targets = {
            "networks": TagTarget(networks.load_owned, lambda s, row: nets.render(s, [row])[0]),
            "subnets": TagTarget(subnets.load_owned, lambda s, row: subs.render(s, [row])[0]),
            "ports": TagTarget(ports.load_visible, lambda s, row: prts.render(s, [row])[0]),
        }
        return cls(env=env, networks=nets, subnets=subs, ports=prts, tags=Tags(env, targets))
