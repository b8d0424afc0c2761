"""The default security group rules template (security-groups-default-rules): pure, no I/O.

A template rule says which rule every new security group gets: ``used_in_default_sg`` for each
project's ``default`` group (made on the project's first use), ``used_in_non_default_sg`` for
every other group. Its ``remote_group_id`` is "PARENT" (the new group itself), a group's id, or
None. A template is checked as a rule is (``sgrules.validate``, same errors), and two templates
are the same rule when ``sgrules.key`` says so; as Neutron, only a duplicate that would reach the
same kind of group is refused (409): the same rule may be one template for default groups and
another for the other groups.

``key`` is what the database keeps unique per kind of group (``default_key``,
``non_default_key``), so concurrent creates of one rule cannot both succeed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from baryon.service import errors, sgrules

PARENT = "PARENT"

# The fields a template rule hands on to the rules it makes.
RULE_FIELDS = ("direction", "ethertype", "protocol", "port_range_min", "port_range_max", "remote_ip_prefix",
               "remote_group_id")


def convert_remote_group(value: Any) -> str | None:
    """None, "PARENT" or a UUID. NOTE: as Neutron, whether such a group exists is not checked:
    a rule naming a group that no longer exists is left out of the groups made afterwards."""
    if value is None or value == PARENT:
        return value
    if isinstance(value, str):
        try:
            uuid.UUID(value)
            return value
        except ValueError:
            pass
    raise errors.InvalidInput(error_message=f"'{value}' is neither '{PARENT}' nor a valid UUID")


def validate(attrs: dict) -> dict:
    """A template rule with Neutron's defaults and canonical spellings (``sgrules.validate``),
    its description and the two flags (defaults: default groups only, as Neutron's API)."""
    rule = sgrules.validate({**attrs, "security_group_id": None})
    rule.pop("security_group_id")
    rule["description"] = attrs.get("description", "")
    rule["used_in_default_sg"] = attrs.get("used_in_default_sg", True)
    rule["used_in_non_default_sg"] = attrs.get("used_in_non_default_sg", False)
    return rule


def key(rule: dict) -> str:
    """``sgrules.key`` of the rule, as text (``|``-separated, None as empty)."""
    parts = sgrules.key({**rule, "security_group_id": None})[1:]
    return "|".join("" if p is None else str(p) for p in parts)


def keys(rule: dict) -> tuple[str | None, str | None]:
    """(default_key, non_default_key): the key where the rule applies, else None."""
    k = key(rule)
    return (k if rule["used_in_default_sg"] else None, k if rule["used_in_non_default_sg"] else None)


def check_duplicates(new: list[dict], existing: Iterable[tuple[str, dict]]) -> None:
    """Refuse a request whose rules repeat one another, or one of ``existing`` ((id, rule) pairs),
    for the same kind of group."""
    wanted: set[tuple[str, str]] = set()
    for rule in new:
        for kind, k in zip(("default", "non_default"), keys(rule)):
            if k is None:
                continue
            if (kind, k) in wanted:
                raise errors.DuplicateDefaultSgRuleInPost()
            wanted.add((kind, k))
    for rule_id, rule in existing:
        for kind, k in zip(("default", "non_default"), keys(rule)):
            if k is not None and (kind, k) in wanted:
                raise errors.DefaultSecurityGroupRuleExists(rule_id=rule_id)


def rules_for(templates: Iterable[dict], group_id: str, *, default: bool,
              existing_groups: frozenset[str] = frozenset()) -> list[dict]:
    """The rules a new group ``group_id`` gets (its project's default group when ``default``),
    in the templates' order. "PARENT" becomes the group; a template naming another group that is
    not in ``existing_groups`` is left out (the database could not hold its rule)."""
    flag = "used_in_default_sg" if default else "used_in_non_default_sg"
    result = []
    for template in templates:
        if not template[flag]:
            continue
        rule = {f: template[f] for f in RULE_FIELDS}
        if rule["remote_group_id"] == PARENT:
            rule["remote_group_id"] = group_id
        elif rule["remote_group_id"] is not None and rule["remote_group_id"] not in existing_groups:
            continue
        result.append(rule)
    return result
