"""The ASGI application: routes, error mapping, and the services behind them.

``create_app(settings)`` builds one app over one ``Database``; ``worker_app()`` is the factory each
API worker process calls (the settings come from the config files named in ``BARYON_CONFIG_FILES``,
set by ``baryon server`` before it forks its workers).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from baryon import config
from baryon.api import faults
from baryon.api.routes import meta, resources
from baryon.api.schemas import network, port, subnet
from baryon.db.engine import Database
from baryon.service import networks as networks_service, ports as ports_service, subnets as subnets_service
from baryon.service.services import Services

COLLECTIONS = [
    resources.Collection("network", "networks", network.ATTRS, "networks", networks_service.LISTING),
    resources.Collection("subnet", "subnets", subnet.ATTRS, "subnets", subnets_service.LISTING),
    resources.Collection("port", "ports", port.ATTRS, "ports", ports_service.LISTING),
]

CONFIG_ENV = "BARYON_CONFIG_FILES"


def create_app(settings: config.Settings, db: Database | None = None) -> Starlette:
    db = db or Database(settings.database_url, pool_size=settings.database.max_pool_size,
                        max_overflow=settings.database.max_overflow, pool_timeout=settings.database.pool_timeout)
    services = Services.create(settings, db)
    port_security = services.env.port_security
    routes = meta.routes([(c.resource, c.collection) for c in COLLECTIONS], port_security)
    routes += resources.routes(services, COLLECTIONS, settings.DEFAULT.pagination_max_limit, port_security)
    handlers = {**faults.HANDLERS, HTTPException: faults.http_error, Exception: faults.unexpected}
    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        db.dispose()

    app = Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)  # type: ignore[arg-type]
    app.state.services = services
    return app


def worker_app() -> Starlette:
    files = [f for f in os.environ.get(CONFIG_ENV, "").split(os.pathsep) if f]
    return create_app(config.load(files))
