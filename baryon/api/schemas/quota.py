"""Quota update attributes (neutron's quotas extension): one limit per counted resource, -1
(unlimited) or 0 to 2**31-1, and ``force``/``check_limit`` (quota-check-limit)."""

from baryon.api.schemas.types import Attr, boolean, integer
from baryon.service import quotas

ATTRS: dict[str, Attr] = {
    **{resource: Attr(integer(-1, quotas.MAX_LIMIT)) for resource in quotas.COUNTED},
    "force": Attr(boolean),
    "check_limit": Attr(boolean),
}
