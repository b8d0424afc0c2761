"""Service types and providers (service-type): what this server runs, for ``/v2.0/service-providers``
and for the flavors that choose among them (``flavors``). Pure: no database.

``SERVICE_TYPES`` are the service plugins Baryon loads, by Neutron's plugin type names: a flavor's
``service_type`` must be one of them (Neutron's ``type:service_plugin_type``). ``PROVIDERS`` are
the drivers a service profile may name. Baryon has one: its routers, legacy (centralised, not
HA) routers on one L3 agent, which is what Neutron's ``single_node`` L3 provider makes; it keeps
Neutron's name and driver path, so an operator's profiles naming it work as they are. NOTE:
Neutron also lists its ``dvr``, ``ha`` and ``dvrha`` providers; Baryon builds neither distributed
nor HA routers, so it does not offer them, and a profile naming their drivers is refused (404
ServiceProfileDriverNotFound) rather than accepted and silently built as a legacy router.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

CORE = "CORE"
L3 = "L3_ROUTER_NAT"
FLAVORS = "FLAVORS"
SERVICE_TYPES = frozenset({CORE, L3, FLAVORS})


@dataclass(frozen=True)
class Provider:
    service_type: str
    name: str
    driver: str
    default: bool


PROVIDERS: tuple[Provider, ...] = (
    Provider(L3, "single_node", "neutron.services.l3_router.service_providers.single_node.SingleNodeDriver", True),
)

# What the API shows of a provider (neutron-lib's servicetype: the driver stays inside the server).
VISIBLE = ("service_type", "name", "default")


def providers(filters: Mapping[str, Sequence[Any]] | None = None) -> list[Provider]:
    """The providers whose every filtered attribute is one of its filter's values."""
    filters = filters or {}
    return [p for p in PROVIDERS if all(asdict(p)[key] in values for key, values in filters.items())]


def provider_of(service_type: str, driver: str) -> Provider | None:
    """The provider of ``service_type`` with this driver, if this server has one."""
    found = providers({"service_type": [service_type], "driver": [driver]})
    return found[0] if found else None


def known_driver(driver: str) -> bool:
    return bool(providers({"driver": [driver]}))


def body(provider: Provider) -> dict:
    values = asdict(provider)
    return {key: values[key] for key in VISIBLE}
