"""Conntrack deletes over ctnetlink for the netfilter driver (pure): the messages and their parsing.
``baryon.agent.drivers.netfilter`` owns the socket and sends them.

A batch of ``ConntrackDelete`` filters costs one dump of the table per family and one delete
message per entry that matches, sent together; ``conntrack -D`` dumps the whole table for each
filter (and ``conntrack -R``, its batch mode, as well), which made a group member's departure
from a group with 200 ports on the node 200 dumps: seconds.

- ``dump_request(family, seq)``: IPCTNL_MSG_CT_GET with NLM_F_DUMP for one family ("ipv4",
  "ipv6"); the kernel answers with that family's entries.
- ``parse_entries(data)``: the ``Entry``s of the IPCTNL_MSG_CT_NEW messages in ``data`` (a
  datagram of a dump answer), and whether it holds the dump's end (NLMSG_DONE). An error
  message raises ``OSError``.
- ``compile_deletes(deletes)`` and ``select(entries, filters)``: the entries that match at least
  one filter, each once, in dump order. A filter matches an entry of its family when each of its
  fields that is given is equal: the zone (an entry without CTA_ZONE is in zone 0), the protocol
  (a ``conntrack -p`` name or a number), the original source and destination, the reply
  destination; as ``conntrack -D`` with those options. An address or protocol that ``conntrack``
  would refuse raises ``ValueError`` (for the whole batch, before anything is deleted).
- ``delete_request(entry, seq)``: IPCTNL_MSG_CT_DELETE of exactly that entry: its original tuple
  as the dump gave it, its zone and its id, with NLM_F_ACK. ``parse_acks(data)``: the (seq, errno)
  of each acknowledgement in ``data``; ENOENT means it was already gone (expired, or deleted by
  someone else, or its id changed: the tuple was reused by a new connection, which is kept).
- ``delete_argv(delete)``: the ``conntrack -D`` command with the same meaning, for messages.

NOTE: a delete message without an original tuple would flush the whole table (the kernel's
meaning of an IPCTNL_MSG_CT_DELETE without tuple): ``delete_request`` refuses an entry without one.
"""

from __future__ import annotations

import errno
import socket
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from baryon.model.firewall import ConntrackDelete

NETLINK_NETFILTER = 12
NFNL_SUBSYS_CTNETLINK = 1
IPCTNL_MSG_CT_NEW, IPCTNL_MSG_CT_GET, IPCTNL_MSG_CT_DELETE = 0, 1, 2
CT_NEW = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW
CT_GET = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET
CT_DELETE = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
NLA_TYPE_MASK = 0x3FFF
CTA_TUPLE_ORIG, CTA_TUPLE_REPLY, CTA_ID, CTA_ZONE = 1, 2, 12, 18
CTA_TUPLE_IP, CTA_TUPLE_PROTO = 1, 2
CTA_IP_V4_SRC, CTA_IP_V4_DST, CTA_IP_V6_SRC, CTA_IP_V6_DST = 1, 2, 3, 4
CTA_PROTO_NUM = 1
AF = {"ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}
FAMILY = {v: k for k, v in AF.items()}
_SRC_DST = {"ipv4": (CTA_IP_V4_SRC, CTA_IP_V4_DST), "ipv6": (CTA_IP_V6_SRC, CTA_IP_V6_DST)}
# ``conntrack -p`` names (conntrack-tools' protocol modules); any other protocol is given by number.
PROTOCOLS = {"tcp": 6, "udp": 17, "udplite": 136, "sctp": 132, "dccp": 33, "icmp": 1, "icmpv6": 58,
             "ipv6-icmp": 58, "gre": 47}

_NLMSG = struct.Struct("=IHHII")
_NFGEN = struct.Struct("=BBH")
_NLA = struct.Struct("=HH")
_ERR = struct.Struct("=i")
_BE16 = struct.Struct(">H")


@dataclass(frozen=True)
class Entry:
    """One conntrack entry as a dump gives it: what the filters compare (addresses packed, as
    ``socket.inet_pton`` gives them) and the attributes that name it in a delete."""

    family: str
    zone: int
    protocol: int
    source: bytes
    destination: bytes
    reply_destination: bytes
    tuple_attr: bytes  # CTA_TUPLE_ORIG, header included, as received (padded to 4 bytes)
    zone_attr: bytes = b""  # CTA_ZONE likewise ("" for zone 0)
    id_attr: bytes = b""  # CTA_ID likewise


# A filter, compiled: (family, zone, protocol, source, destination, reply destination); None: any.
Filter = tuple[str, int | None, int | None, bytes | None, bytes | None, bytes | None]


# ---------------------------------------------------------------- requests


def dump_request(family: str, seq: int) -> bytes:
    payload = _NFGEN.pack(AF[family], 0, 0)
    return _NLMSG.pack(_NLMSG.size + len(payload), CT_GET, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + payload


def delete_request(entry: Entry, seq: int) -> bytes:
    """The delete of exactly ``entry`` (its original tuple, zone and id), acknowledged."""
    if not entry.tuple_attr:
        raise ValueError("conntrack delete: an entry without its original tuple (it would flush the table)")
    payload = _NFGEN.pack(AF[entry.family], 0, 0) + entry.tuple_attr + entry.zone_attr + entry.id_attr
    return _NLMSG.pack(_NLMSG.size + len(payload), CT_DELETE, NLM_F_REQUEST | NLM_F_ACK, seq, 0) + payload


def _pad(attr: bytes) -> bytes:
    return attr + b"\0" * (-len(attr) % 4)


# ---------------------------------------------------------------- answers


def parse_entries(data: bytes) -> tuple[list[Entry], bool]:
    """The entries in one datagram of a dump answer, and whether it ends the dump."""
    entries: list[Entry] = []
    done = False
    for kind, start, end in _messages(data):
        if kind == NLMSG_DONE:
            done = True
        elif kind == NLMSG_ERROR:
            code = _ERR.unpack_from(data, start)[0]
            if code:
                raise OSError(-code, f"conntrack dump: {errno.errorcode.get(-code, -code)}")
        elif kind == CT_NEW and end - start >= _NFGEN.size:
            entry = _entry(data, start, end)
            if entry is not None:
                entries.append(entry)
    return entries, done


def parse_acks(data: bytes) -> list[tuple[int, int]]:
    """(sequence number, errno: 0 for success) of each acknowledgement in ``data``."""
    acks = []
    for kind, start, _end in _messages(data):
        if kind == NLMSG_ERROR:
            seq = _NLMSG.unpack_from(data, start - _NLMSG.size)[3]
            acks.append((seq, -_ERR.unpack_from(data, start)[0]))
    return acks


def _messages(data: bytes) -> Iterable[tuple[int, int, int]]:
    """(type, start of the body, end) of each netlink message in ``data``."""
    offset = 0
    while offset + _NLMSG.size <= len(data):
        length, kind = _NLMSG.unpack_from(data, offset)[:2]
        if length < _NLMSG.size or offset + length > len(data):
            raise OSError(errno.EBADMSG, f"netlink: malformed message (length {length})")
        yield kind, offset + _NLMSG.size, offset + length
        offset += (length + 3) & ~3


def _attrs(data: bytes, start: int, end: int) -> dict[int, tuple[int, int]]:
    """type -> (offset of the attribute, header included; its end) of the attributes in data[start:end]."""
    found = {}
    while start + _NLA.size <= end:
        length, kind = _NLA.unpack_from(data, start)
        if length < _NLA.size:
            break
        found[kind & NLA_TYPE_MASK] = (start, start + length)
        start += (length + 3) & ~3
    return found


def _entry(data: bytes, start: int, end: int) -> Entry | None:
    family = FAMILY.get(data[start])
    if family is None:
        return None
    top = _attrs(data, start + _NFGEN.size, end)
    if CTA_TUPLE_ORIG not in top:
        return None
    orig_start, orig_end = top[CTA_TUPLE_ORIG]
    orig = _attrs(data, orig_start + _NLA.size, orig_end)
    src_attr, dst_attr = _SRC_DST[family]
    addresses = _nested(data, orig.get(CTA_TUPLE_IP))
    proto = _nested(data, orig.get(CTA_TUPLE_PROTO))
    reply = _nested(data, _nested(data, top.get(CTA_TUPLE_REPLY)).get(CTA_TUPLE_IP))
    if src_attr not in addresses or dst_attr not in addresses or CTA_PROTO_NUM not in proto:
        return None
    zone = top.get(CTA_ZONE)
    return Entry(family,
                 _BE16.unpack_from(data, zone[0] + _NLA.size)[0] if zone else 0,
                 data[proto[CTA_PROTO_NUM][0] + _NLA.size],
                 _value(data, addresses[src_attr]), _value(data, addresses[dst_attr]),
                 _value(data, reply[dst_attr]) if dst_attr in reply else b"",
                 _pad(data[orig_start:orig_end]),
                 _pad(data[zone[0]:zone[1]]) if zone else b"",
                 _pad(data[slice(*top[CTA_ID])]) if CTA_ID in top else b"")


def _nested(data: bytes, where: tuple[int, int] | None) -> dict[int, tuple[int, int]]:
    return _attrs(data, where[0] + _NLA.size, where[1]) if where else {}


def _value(data: bytes, where: tuple[int, int]) -> bytes:
    return data[where[0] + _NLA.size:where[1]]


# ---------------------------------------------------------------- matching


def compile_deletes(deletes: Iterable[ConntrackDelete]) -> list[Filter]:
    """The filters of ``deletes``; ``ValueError`` for a family, protocol or address that
    ``conntrack -D`` would refuse."""
    filters = []
    for d in deletes:
        if d.family not in AF:
            raise ValueError(f"conntrack delete: unknown family {d.family!r}")
        filters.append((d.family, d.zone, _protocol(d), _address(d, d.source), _address(d, d.destination),
                        _address(d, d.reply_destination)))
    return filters


def select(entries: Iterable[Entry], filters: Sequence[Filter]) -> list[Entry]:
    """The entries that at least one of ``filters`` matches, each once, in their order.

    NOTE: the filters are indexed by which of their fields are given: an entry is looked up once
    per such pattern (usually one or two), not compared with each of the hundreds of filters a
    membership change can make."""
    patterns: dict[tuple[bool, ...], set[tuple]] = {}
    for f in filters:
        mask = tuple(value is not None for value in f[1:])
        patterns.setdefault(mask, set()).add((f[0], *(value for value in f[1:] if value is not None)))
    chosen = []
    for entry in entries:
        fields = (entry.zone, entry.protocol, entry.source, entry.destination, entry.reply_destination)
        for mask, keys in patterns.items():
            if (entry.family, *(value for value, given in zip(fields, mask) if given)) in keys:
                chosen.append(entry)
                break
    return chosen


def _protocol(d: ConntrackDelete) -> int | None:
    if d.protocol is None:
        return None
    text = str(d.protocol).strip().lower()
    number = int(text) if text.isdigit() else PROTOCOLS.get(text)
    if number is None or not 0 <= number <= 255:
        raise ValueError(f"{' '.join(delete_argv(d))}: unsupported protocol {d.protocol!r}")
    return number


def _address(d: ConntrackDelete, text: str | None) -> bytes | None:
    if text is None:
        return None
    try:
        return socket.inet_pton(AF[d.family], text.strip())
    except OSError:
        raise ValueError(f"{' '.join(delete_argv(d))}: invalid {d.family} address {text!r}") from None


def delete_argv(entry: ConntrackDelete) -> list[str]:
    """``conntrack -D`` with the entry's family, and zone, protocol, addresses when given."""
    argv = ["conntrack", "-D", "-f", entry.family]
    if entry.zone is not None:
        argv += ["--zone", str(entry.zone)]
    if entry.protocol is not None:
        argv += ["-p", str(entry.protocol)]
    if entry.source is not None:
        argv += ["-s", entry.source]
    if entry.destination is not None:
        argv += ["-d", entry.destination]
    if entry.reply_destination is not None:
        argv += ["-q", entry.reply_destination]
    return argv
