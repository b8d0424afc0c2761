"""Agent attributes (neutron-lib's agent and availability_zone), and Baryon's registration body.

``ATTRS``: what ``/v2.0/agents`` shows (Neutron's fields, and Baryon's ``realised_seq``: the
change-log sequence the agent last reported as realised on its host); only ``admin_state_up`` and ``description`` may be
updated, and nothing created (agents register themselves). ``REPORT``: the body of
``POST /v2.0/agents/report`` (Baryon's own, not Neutron's: Neutron agents report over RPC), with
the keys of Neutron's ``agent_state``.
"""

from typing import Any

from baryon.api.schemas.types import (
    Attr, Invalid, boolean, dict_value, integer, nullable, string, uuid_filter, uuid_str,
)


def _required_name(data: Any) -> str:
    value = string(255)(data)
    if not value.strip():
        raise Invalid(f"'{data}' must not be empty")
    return value


def _read_only(convert: Any, **kw: Any) -> Attr:
    return Attr(convert, allow_post=False, allow_put=False, **kw)


ATTRS: dict[str, Attr] = {
    "id": _read_only(uuid_str, filter_convert=uuid_filter),
    "agent_type": _read_only(string(255)),
    "binary": _read_only(string(255)),
    "topic": _read_only(string(255)),
    "host": _read_only(string(255)),
    "admin_state_up": Attr(boolean, allow_post=False),
    "description": Attr(nullable(string(255)), allow_post=False),
    "alive": _read_only(boolean),
    "availability_zone": _read_only(nullable(string(255))),
    "created_at": _read_only(string(None), filter=False),
    "started_at": _read_only(string(None), filter=False),
    "heartbeat_timestamp": _read_only(string(None), filter=False),
    "configurations": _read_only(dict_value, filter=False),
    "resource_versions": _read_only(dict_value, filter=False),
    "resources_synced": _read_only(nullable(boolean), filter=False),
    "realised_seq": _read_only(integer(0)),
}

REPORT: dict[str, Attr] = {
    "agent_type": Attr(_required_name, required=True),
    "host": Attr(_required_name, required=True),
    "binary": Attr(_required_name),  # default: Neutron's binary for the agent type
    "topic": Attr(_required_name),  # default: Neutron's topic for the agent type
    "configurations": Attr(dict_value),
    "resource_versions": Attr(dict_value),
    "availability_zone": Attr(nullable(string(255))),
    "start_flag": Attr(boolean),  # the agent (re)started: started_at becomes now
}
