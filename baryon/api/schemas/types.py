"""Attribute specs and their converters: what a request may carry, in neutron-lib's terms.

An ``Attr`` says whether an attribute may be given on create (``allow_post``) or update
(``allow_put``), whether it is required, who may set or see it, and how a raw JSON value is
checked and converted. A converter returns the converted value or raises ``Invalid(reason)``
(reported as ``Invalid input for <attr>. Reason: <reason>.``, as neutron-lib's validators) or
``errors.InvalidInput`` (as its ``convert_to_*`` functions). Filter values from the query string
go through the same converters (``for_filter``), so ``?admin_state_up=True`` and ``?mtu=1450``
compare as booleans and integers.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from baryon.service import errors, ipam

Converter = Callable[[Any], Any]


class Invalid(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Attr:
    convert: Converter
    allow_post: bool = True
    allow_put: bool = True
    required: bool = False
    admin_write: bool = False  # setting it needs the admin role (policy)
    admin_read: bool = False  # hidden from non-admins
    filter_convert: Converter | None = None  # how a query-string value converts (default: convert)
    filter: bool = True

    def for_filter(self, raw: str) -> Any:
        return (self.filter_convert or self.convert)(raw)


# ---------------------------------------------------------------- scalar converters


def string(max_len: int | None = 255) -> Converter:
    def convert(data: Any) -> str:
        if not isinstance(data, str):
            raise Invalid(f"'{data}' is not a valid string")
        if max_len is not None and len(data) > max_len:
            raise Invalid(f"'{data}' exceeds maximum length of {max_len}")
        return data

    return convert


def nullable(inner: Converter) -> Converter:
    def convert(data: Any) -> Any:
        return None if data is None else inner(data)

    return convert


def boolean(data: Any) -> bool:
    if isinstance(data, bool):
        return data
    if isinstance(data, str):
        lowered = data.strip().lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
    if isinstance(data, int) and data in (0, 1):
        return bool(data)
    raise errors.InvalidInput(error_message=f"'{data}' cannot be converted to boolean")


def integer(minimum: int | None = None, maximum: int | None = None) -> Converter:
    def convert(data: Any) -> int:
        if isinstance(data, bool):
            raise errors.InvalidInput(error_message=f"'{data}' is not an integer")
        try:
            value = int(data)
        except (TypeError, ValueError):
            raise errors.InvalidInput(error_message=f"'{data}' is not an integer") from None
        if isinstance(data, float) and data != value:
            raise errors.InvalidInput(error_message=f"'{data}' is not an integer")
        if minimum is not None and value < minimum:
            raise Invalid(f"'{value}' is too small - must be at least '{minimum}'")
        if maximum is not None and value > maximum:
            raise Invalid(f"'{value}' is too large - must be no more than '{maximum}'")
        return value

    return convert


def uuid_str(data: Any) -> str:
    if not isinstance(data, str):
        raise Invalid(f"'{data}' is not a valid UUID")
    try:
        uuid.UUID(data)
    except ValueError:
        raise Invalid(f"'{data}' is not a valid UUID") from None
    return data


def one_of(*values: Any) -> Converter:
    def convert(data: Any) -> Any:
        if data not in values:
            raise Invalid(f"'{data}' is not in {list(values)}")
        return data

    return convert


def ip_address(data: Any) -> str:
    # NOTE: "%" would let an IPv6 zone id through ("fe80::1%eth0"): a second spelling of an address.
    if not isinstance(data, str) or "%" in data:
        raise Invalid(f"'{data}' is not a valid IP address")
    try:
        # NOTE: like Neutron, refuse forms ipaddress would silently reinterpret ("1", "01.2.3.4").
        return str(ipaddress.ip_address(data))
    except ValueError:
        raise Invalid(f"'{data}' is not a valid IP address") from None


def ip_or_cidr(data: Any) -> str:
    if not isinstance(data, str) or "%" in data:
        raise Invalid(f"'{data}' is neither a valid IP address nor a valid IP subnet")
    try:
        if "/" in data:
            return str(ipaddress.ip_network(data, strict=False))
        return str(ipaddress.ip_address(data))
    except ValueError:
        raise Invalid(f"'{data}' is neither a valid IP address nor a valid IP subnet") from None


def cidr(data: Any) -> str:
    problem = ipam.cidr_problem(data)
    if problem:
        raise Invalid(problem)
    return data


_MAC = re.compile(r"^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$")


def mac_address(data: Any) -> str:
    if not isinstance(data, str) or not _MAC.fullmatch(data):  # fullmatch: "$" matches before a final "\n"
        raise Invalid(f"'{data}' is not a valid MAC address")
    value = data.lower().replace("-", ":")
    if value == "00:00:00:00:00:00" or int(value[:2], 16) & 1:
        raise Invalid(f"'{data}' is not a valid MAC address")
    return value


def dict_value(data: Any) -> dict:
    if not isinstance(data, dict):
        raise Invalid(f"'{data}' is not a dictionary")
    return data


def list_of(inner: Converter, max_items: int | None = None) -> Converter:
    def convert(data: Any) -> list:
        if not isinstance(data, list):
            raise Invalid(f"'{data}' is not a list")
        if max_items is not None and len(data) > max_items:
            raise Invalid(f"'{data}' exceeds maximum length of {max_items}")
        return [inner(item) for item in data]

    return convert


def dict_items(fields: dict[str, Converter], required: tuple[str, ...], what: str) -> Converter:
    """A dict with only ``fields``, each converted; ``required`` must be present."""

    def convert(data: Any) -> dict:
        if not isinstance(data, dict):
            raise Invalid(f"Invalid data format for {what}: '{data}'")
        extra = set(data) - set(fields)
        if extra:
            raise Invalid(f"Unrecognized attribute(s) '{', '.join(sorted(extra))}'")
        for key in required:
            if key not in data:
                raise Invalid(f"Invalid data format for {what}: '{data}'")
        return {k: fields[k](v) for k, v in data.items()}

    return convert


def tag(data: Any) -> str:
    value = string(255)(data)
    if not value or "," in value:
        raise Invalid(f"'{data}' is not a valid tag (non-empty, no comma, at most 255 characters)")
    return value


def tag_list(data: Any) -> list[str]:
    """neutron-lib's ``list_of_unique_strings``: a repeated tag is refused, not merged."""
    tags = list_of(tag)(data)
    repeated = sorted({t for t in tags if tags.count(t) > 1})
    if repeated:
        raise Invalid(f"Duplicate items in the list: '{', '.join(repeated)}'")
    return tags


def project_id(data: Any) -> str:
    return string(255)(data)


# The standard attributes every resource has.
STANDARD: dict[str, Attr] = {
    "id": Attr(uuid_str, allow_post=False, allow_put=False, filter_convert=str),
    "name": Attr(string(255)),
    "description": Attr(string(255)),
    "project_id": Attr(project_id, allow_put=False),
    "tenant_id": Attr(project_id, allow_put=False),
    "created_at": Attr(string(None), allow_post=False, allow_put=False, filter=False),
    "updated_at": Attr(string(None), allow_post=False, allow_put=False, filter=False),
    "revision_number": Attr(integer(0), allow_post=False, allow_put=False),
    "tags": Attr(tag_list, allow_put=False, filter=False),
}
