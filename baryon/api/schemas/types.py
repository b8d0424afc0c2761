"""Attribute specs and their converters: what a request may carry, in neutron-lib's terms.

An ``Attr`` says whether an attribute may be given on create (``allow_post``) or update
(``allow_put``), whether it is required, who may set or see it, and how a raw JSON value is
checked and converted. A converter returns the converted value or raises ``Invalid(reason)``
(reported as ``Invalid input for <attr>. Reason: <reason>.``, as neutron-lib's validators) or
``errors.InvalidInput`` (as its ``convert_to_*`` functions). Filter values from the query string
go through the same converters (``for_filter``), so ``?admin_state_up=True`` and ``?mtu=1450``
compare as booleans and integers.

Every converter also says what it accepts as a JSON Schema (``schema_of``), which the OpenAPI
document (``api.openapi``) is generated from: the converter is the one definition of an attribute.
Strings never carry a NUL character: PostgreSQL cannot store one, so it is refused everywhere.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from baryon.service import errors, ipam

Converter = Callable[[Any], Any]

# NOTE: Neutron sets no maximum on the number of tags of a resource (only the body size bounds it);
# Baryon refuses more than this many, so a huge list is a clean 400 and not thousands of rows.
MAX_TAGS = 1000


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


# ---------------------------------------------------------------- JSON Schema of a converter


def described(convert: Converter, schema: dict) -> Converter:
    """``convert``, saying what it accepts (``schema``, JSON Schema); returned for chaining."""
    convert.json_schema = schema  # type: ignore[attr-defined]
    return convert


def with_schema(convert: Converter, schema: dict) -> Converter:
    """A converter of another module (which stays untouched) with ``schema`` attached."""
    def wrapped(data: Any) -> Any:
        return convert(data)

    return described(wrapped, schema)


def schema_of(convert: Converter) -> dict:
    """What ``convert`` accepts, as JSON Schema (``{}``: anything, checked by the converter)."""
    return dict(getattr(convert, "json_schema", {}))


UUID_SCHEMA = {"type": "string", "format": "uuid"}
IP_SCHEMA = {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]}
CIDR_SCHEMA = {"type": "string", "pattern": r"^[0-9a-fA-F.:]+/[0-9]{1,3}$"}


# ---------------------------------------------------------------- scalar converters


def string(max_len: int | None = 255) -> Converter:
    def convert(data: Any) -> str:
        if not isinstance(data, str):
            raise Invalid(f"'{data}' is not a valid string")
        if max_len is not None and len(data) > max_len:
            raise Invalid(f"'{data}' exceeds maximum length of {max_len}")
        if "\x00" in data:
            raise Invalid(f"{data!r} contains a NUL character")
        return data

    schema: dict = {"type": "string"} if max_len is None else {"type": "string", "maxLength": max_len}
    return described(convert, schema)


def nullable(inner: Converter) -> Converter:
    def convert(data: Any) -> Any:
        return None if data is None else inner(data)

    return described(convert, {"anyOf": [schema_of(inner), {"type": "null"}]})


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


described(boolean, {"type": "boolean"})


# NOTE: what a database's integers hold (SQLite's, BIGINT): no attribute reaches it, and a filter
# or a limit past it would make the database fail (a 500), so it is every integer's bound.
INT_MAX = 2**63 - 1


def integer(minimum: int | None = None, maximum: int | None = None) -> Converter:
    minimum = -INT_MAX if minimum is None else minimum
    maximum = INT_MAX if maximum is None else maximum

    def convert(data: Any) -> int:
        if isinstance(data, bool):
            raise errors.InvalidInput(error_message=f"'{data}' is not an integer")
        try:
            value = int(data)
        except (TypeError, ValueError, OverflowError):
            raise errors.InvalidInput(error_message=f"'{data}' is not an integer") from None
        if isinstance(data, float) and data != value:
            raise errors.InvalidInput(error_message=f"'{data}' is not an integer")
        if value < minimum:
            raise Invalid(f"'{value}' is too small - must be at least '{minimum}'")
        if value > maximum:
            raise Invalid(f"'{value}' is too large - must be no more than '{maximum}'")
        return value

    return described(convert, {"type": "integer", "minimum": minimum, "maximum": maximum})


def uuid_str(data: Any) -> str:
    if not isinstance(data, str):
        raise Invalid(f"'{data}' is not a valid UUID")
    try:
        uuid.UUID(data)
    except ValueError:
        raise Invalid(f"'{data}' is not a valid UUID") from None
    return data


described(uuid_str, UUID_SCHEMA)


def uuid_filter(data: Any) -> str:
    """A filter value for a UUID attribute: a UUID, or "" (empty-string filtering)."""
    return data if data == "" else uuid_str(data)


def mac_filter(data: Any) -> str:
    """A filter value for a MAC attribute: a MAC address (compared lower-case, with colons), or ""."""
    return data if data == "" else mac_address(data)


def cidr_filter(data: Any) -> str:
    """A filter value for a CIDR attribute: a CIDR as given, or ""."""
    return data if data == "" else cidr(data)


described(uuid_filter, UUID_SCHEMA)  # (and "", not said: a filter the schema's users don't need)


def one_of(*values: Any) -> Converter:
    def convert(data: Any) -> Any:
        # NOTE: the type too: True == 1 and 4.0 == 4, but neither is an ip_version.
        if data not in values or type(data) not in {type(v) for v in values}:
            raise Invalid(f"'{data}' is not in {list(values)}")
        return data

    return described(convert, {"enum": list(values)})


def int_one_of(*values: int) -> Converter:
    """neutron-lib's ``convert_to_int`` then ``type:values``: the string "4" is the ip_version 4."""
    to_int, check = integer(), one_of(*values)

    def convert(data: Any) -> int:
        return check(to_int(data))

    return described(convert, {"anyOf": [{"enum": list(values)},
                                         {"type": "string", "enum": [str(v) for v in values]}]})


def ip_address(data: Any) -> str:
    # NOTE: "%" would let an IPv6 zone id through ("fe80::1%eth0"): a second spelling of an address.
    if not isinstance(data, str) or "%" in data:
        raise Invalid(f"'{data}' is not a valid IP address")
    try:
        # NOTE: like Neutron, refuse forms ipaddress would silently reinterpret ("1", "01.2.3.4").
        return str(ipaddress.ip_address(data))
    except ValueError:
        raise Invalid(f"'{data}' is not a valid IP address") from None


described(ip_address, IP_SCHEMA)


def ip_or_cidr(data: Any) -> str:
    if not isinstance(data, str) or "%" in data:
        raise Invalid(f"'{data}' is neither a valid IP address nor a valid IP subnet")
    try:
        if "/" in data:
            return str(ipaddress.ip_network(data, strict=False))
        return str(ipaddress.ip_address(data))
    except ValueError:
        raise Invalid(f"'{data}' is neither a valid IP address nor a valid IP subnet") from None


described(ip_or_cidr, {"anyOf": [IP_SCHEMA, CIDR_SCHEMA]})


def cidr(data: Any) -> str:
    problem = ipam.cidr_problem(data)
    if problem:
        raise Invalid(problem)
    return data


described(cidr, CIDR_SCHEMA)
described(cidr_filter, CIDR_SCHEMA)


_MAC_PATTERN = r"^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$"
_MAC = re.compile(_MAC_PATTERN)


def mac_address(data: Any) -> str:
    if not isinstance(data, str) or not _MAC.fullmatch(data):  # fullmatch: "$" matches before a final "\n"
        raise Invalid(f"'{data}' is not a valid MAC address")
    value = data.lower().replace("-", ":")
    if value == "00:00:00:00:00:00" or int(value[:2], 16) & 1:
        raise Invalid(f"'{data}' is not a valid MAC address")
    return value


described(mac_address, {"type": "string", "pattern": _MAC_PATTERN})
described(mac_filter, schema_of(mac_address))


def dict_value(data: Any) -> dict:
    if not isinstance(data, dict):
        raise Invalid(f"'{data}' is not a dictionary")
    return data


described(dict_value, {"type": "object"})


def list_of(inner: Converter, max_items: int | None = None) -> Converter:
    def convert(data: Any) -> list:
        if not isinstance(data, list):
            raise Invalid(f"'{data}' is not a list")
        if max_items is not None and len(data) > max_items:
            raise Invalid(f"'{data}' exceeds maximum length of {max_items}")
        return [inner(item) for item in data]

    limit = {"maxItems": max_items} if max_items is not None else {}
    return described(convert, {"type": "array", "items": schema_of(inner), **limit})


def uuid_list(data: Any) -> list[str]:
    """neutron-lib's ``type:uuid_list``: a list of UUIDs, each once."""
    if not isinstance(data, list):
        raise Invalid(f"'{data}' is not a list")
    if len({repr(d) for d in data}) != len(data):
        raise Invalid(f"Duplicate items in the list: '{', '.join(str(d) for d in data)}'")
    return [uuid_str(item) for item in data]


described(uuid_list, {"type": "array", "items": UUID_SCHEMA, "uniqueItems": True})


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

    return described(convert, {"type": "object", "properties": {k: schema_of(c) for k, c in fields.items()},
                               "required": list(required), "additionalProperties": False})


def tag(data: Any) -> str:
    value = string(255)(data)
    if not value or "," in value:
        raise Invalid(f"'{data}' is not a valid tag (non-empty, no comma, at most 255 characters)")
    return value


described(tag, {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[^,]*$"})


def tag_list(data: Any) -> list[str]:
    """neutron-lib's ``list_of_unique_strings``: a repeated tag is refused, not merged; at most
    ``MAX_TAGS`` of them."""
    if isinstance(data, list) and len(data) > MAX_TAGS:
        raise Invalid(f"{len(data)} tags exceed the maximum of {MAX_TAGS}")
    tags = list_of(tag)(data)
    repeated = sorted(t for t, n in Counter(tags).items() if n > 1)
    if repeated:
        raise Invalid(f"Duplicate items in the list: '{', '.join(repeated)}'")
    return tags


described(tag_list, {"type": "array", "items": schema_of(tag), "maxItems": MAX_TAGS, "uniqueItems": True})


def project_id(data: Any) -> str:
    return string(255)(data)


described(project_id, {"type": "string", "maxLength": 255})


# The standard attributes every resource has.
STANDARD: dict[str, Attr] = {
    "id": Attr(uuid_str, allow_post=False, allow_put=False, filter_convert=uuid_filter),
    "name": Attr(string(255)),
    "description": Attr(string(255)),
    "project_id": Attr(project_id, allow_put=False),
    "tenant_id": Attr(project_id, allow_put=False),
    "created_at": Attr(string(None), allow_post=False, allow_put=False, filter=False),
    "updated_at": Attr(string(None), allow_post=False, allow_put=False, filter=False),
    "revision_number": Attr(integer(0), allow_post=False, allow_put=False),
    "tags": Attr(tag_list, allow_put=False, filter=False),
}
