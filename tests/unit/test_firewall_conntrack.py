"""The firewall's conntrack deletes as ctnetlink messages (``baryon.agent.drivers.conntrack``, pure):
dump answers parsed into entries, ``ConntrackDelete`` filters matched as ``conntrack -D`` matches
them, delete requests that name exactly one entry, acknowledgements.

The dump answers are built here attribute by attribute, in the kernel's layout (nfnetlink header,
CTA_TUPLE_ORIG / CTA_TUPLE_REPLY nested with CTA_TUPLE_IP and CTA_TUPLE_PROTO, CTA_ZONE, CTA_ID);
the driver's functional tests run the same code against the kernel
(tests/functional/test_netfilter_drivers.py).
"""

from __future__ import annotations

import errno
import ipaddress
import itertools
import socket
import struct

import pytest

from baryon.agent.drivers import conntrack
from baryon.model.firewall import ConntrackDelete

NESTED = 0x8000


def attr(kind: int, value: bytes, nested: bool = False) -> bytes:
    raw = struct.pack("=HH", 4 + len(value), kind | (NESTED if nested else 0)) + value
    return raw + b"\0" * (-len(raw) % 4)


def tuple_attr(kind: int, family: str, src: str, dst: str, proto: int, ports: tuple[int, int] = (1000, 53)) -> bytes:
    src_kind, dst_kind = (1, 2) if family == "ipv4" else (3, 4)
    af = conntrack.AF[family]
    ip = attr(1, attr(src_kind, socket.inet_pton(af, src)) + attr(dst_kind, socket.inet_pton(af, dst)), nested=True)
    l4 = attr(1, bytes([proto])) + attr(2, struct.pack(">H", ports[0])) + attr(3, struct.pack(">H", ports[1]))
    return attr(kind, ip + attr(2, l4, nested=True), nested=True)


def entry_message(family: str, src: str, dst: str, proto: int = 17, zone: int = 0, reply_dst: str | None = None,
                  ct_id: int = 1, seq: int = 0) -> bytes:
    body = struct.pack("=BBH", conntrack.AF[family], 0, 0)
    body += tuple_attr(1, family, src, dst, proto)
    body += tuple_attr(2, family, dst, reply_dst or src, proto, (53, 1000))
    body += attr(3, struct.pack(">I", 8))  # CTA_STATUS: not read
    if zone:
        body += attr(18, struct.pack(">H", zone))
    body += attr(12, struct.pack(">I", ct_id))
    return struct.pack("=IHHII", 16 + len(body), conntrack.CT_NEW, 2, seq, 0) + body


def done(seq: int = 0) -> bytes:
    return struct.pack("=IHHII", 20, conntrack.NLMSG_DONE, 2, seq, 0) + struct.pack("=i", 0)


def error(code: int, seq: int = 0) -> bytes:
    return struct.pack("=IHHII", 36, conntrack.NLMSG_ERROR, 0, seq, 0) + struct.pack("=i", code) + bytes(16)


def entry(family: str, src: str, dst: str, proto: int = 17, zone: int = 0, reply_dst: str | None = None,
          ct_id: int = 1) -> conntrack.Entry:
    found, _ = conntrack.parse_entries(entry_message(family, src, dst, proto, zone, reply_dst, ct_id))
    assert len(found) == 1
    return found[0]


def packed(address: str) -> bytes:
    return ipaddress.ip_address(address).packed


# ---------------------------------------------------------------- parsing


def test_a_dump_answer_gives_its_entries_and_says_when_it_ends() -> None:
    data = (entry_message("ipv4", "10.0.0.5", "10.0.0.6", zone=3, ct_id=7)
            + entry_message("ipv6", "fd00::5", "fd00::6", proto=58, reply_dst="fd00::9") + done())
    entries, ended = conntrack.parse_entries(data)
    assert ended
    first, second = entries
    assert (first.family, first.zone, first.protocol, first.source, first.destination, first.reply_destination) == (
        "ipv4", 3, 17, packed("10.0.0.5"), packed("10.0.0.6"), packed("10.0.0.5"))
    assert first.id_attr == attr(12, struct.pack(">I", 7)) and first.zone_attr == attr(18, struct.pack(">H", 3))
    assert first.tuple_attr == tuple_attr(1, "ipv4", "10.0.0.5", "10.0.0.6", 17)
    assert (second.family, second.zone, second.protocol, second.reply_destination) == ("ipv6", 0, 58, packed("fd00::9"))
    assert second.zone_attr == b""  # zone 0: the kernel sends no CTA_ZONE
    assert conntrack.parse_entries(entry_message("ipv4", "10.0.0.5", "10.0.0.6")) == ([conntrack.Entry(
        "ipv4", 0, 17, packed("10.0.0.5"), packed("10.0.0.6"), packed("10.0.0.5"),
        tuple_attr(1, "ipv4", "10.0.0.5", "10.0.0.6", 17), b"", attr(12, struct.pack(">I", 1)))], False)  # no end yet


def test_a_dump_error_raises_and_a_malformed_message_too() -> None:
    with pytest.raises(OSError, match="EPERM"):
        conntrack.parse_entries(error(-errno.EPERM))
    with pytest.raises(OSError, match="malformed"):
        conntrack.parse_entries(struct.pack("=IHHII", 8, conntrack.CT_NEW, 0, 0, 0))
    with pytest.raises(OSError, match="malformed"):
        conntrack.parse_entries(struct.pack("=IHHII", 400, conntrack.CT_NEW, 0, 0, 0))
    assert conntrack.parse_entries(error(0)) == ([], False)  # an acknowledgement of success: nothing


def test_acknowledgements_give_their_sequence_and_errno() -> None:
    assert conntrack.parse_acks(error(0, seq=5) + error(-errno.ENOENT, seq=6) + done(7)) == [(5, 0), (6, errno.ENOENT)]


# ---------------------------------------------------------------- matching


ENTRIES = [
    entry("ipv4", "10.0.0.5", "10.0.0.6", 17, zone=3),  # 0
    entry("ipv4", "10.0.0.5", "10.0.0.6", 6, zone=3),  # 1: another protocol
    entry("ipv4", "10.0.0.5", "10.0.0.6", 17, zone=4),  # 2: another zone
    entry("ipv4", "10.0.0.5", "10.0.0.7", 17, zone=3),  # 3: another destination
    entry("ipv4", "10.0.0.8", "10.0.0.6", 17, zone=3),  # 4: another source
    entry("ipv4", "10.0.0.5", "10.0.0.6", 1, zone=0, reply_dst="192.0.2.1"),  # 5: SNATed, zone 0
    entry("ipv6", "fd00::5", "fd00::6", 58, zone=3),  # 6: the other family
]


@pytest.mark.parametrize(("delete", "chosen"), [
    (ConntrackDelete("ipv4", 3, "udp", "10.0.0.5", "10.0.0.6"), [0]),
    (ConntrackDelete("ipv4", 3, None, "10.0.0.5", "10.0.0.6"), [0, 1]),
    (ConntrackDelete("ipv4", None, "udp", "10.0.0.5", "10.0.0.6"), [0, 2]),
    (ConntrackDelete("ipv4", 3, "udp", "10.0.0.5", None), [0, 3]),
    (ConntrackDelete("ipv4", 3, "udp", None, "10.0.0.6"), [0, 4]),
    (ConntrackDelete("ipv4", 3), [0, 1, 3, 4]),
    (ConntrackDelete("ipv4", 0), [5]),  # zone 0 is a zone like the others
    (ConntrackDelete("ipv4", None), [0, 1, 2, 3, 4, 5]),
    (ConntrackDelete("ipv4", None, reply_destination="192.0.2.1"), [5]),
    (ConntrackDelete("ipv4", None, "icmp", destination="10.0.0.6"), [5]),
    (ConntrackDelete("ipv4", None, "1"), [5]),  # a protocol by number
    (ConntrackDelete("ipv4", 3, "17", "10.0.0.5", "10.0.0.6"), [0]),
    (ConntrackDelete("ipv6", 3, "icmpv6", "fd00:0::5"), [6]),  # addresses compared as addresses
    (ConntrackDelete("ipv6", 3, "ipv6-icmp", destination="FD00::6"), [6]),
    (ConntrackDelete("ipv6", 4), []),
    (ConntrackDelete("ipv4", 3, "tcp", "10.0.0.5", "10.0.0.7"), []),
])
def test_a_filter_matches_as_conntrack_D_does(delete: ConntrackDelete, chosen: list[int]) -> None:
    assert conntrack.select(ENTRIES, conntrack.compile_deletes([delete])) == [ENTRIES[i] for i in chosen]


def test_many_filters_choose_each_entry_once_in_dump_order() -> None:
    deletes = [ConntrackDelete("ipv4", 3, "udp", "10.0.0.5", "10.0.0.6"), ConntrackDelete("ipv4", 3),
               ConntrackDelete("ipv4", None, reply_destination="192.0.2.1"),
               ConntrackDelete("ipv6", 3, None, "fd00::5")]
    assert conntrack.select(ENTRIES, conntrack.compile_deletes(deletes)) == [ENTRIES[i] for i in (0, 1, 3, 4, 5, 6)]
    assert conntrack.select(ENTRIES, []) == []
    # the pairs of a membership change: one filter per port, each matching only its own entries
    many = [entry("ipv4", "10.0.0.9", f"10.0.1.{n}", zone=3) for n in range(1, 201)]
    filters = conntrack.compile_deletes(ConntrackDelete("ipv4", 3, None, "10.0.0.9", f"10.0.1.{n}")
                                        for n in range(1, 201, 2))
    assert conntrack.select(many, filters) == many[::2]


@pytest.mark.parametrize(("delete", "message"), [
    (ConntrackDelete("ipv4", 3, "udp", "not-an-address"), "conntrack -D -f ipv4 --zone 3 -p udp -s not-an-address: "
                                                          "invalid ipv4 address"),
    (ConntrackDelete("ipv4", 3, None, None, "fd00::1"), "invalid ipv4 address 'fd00::1'"),
    (ConntrackDelete("ipv6", None, None, None, None, "10.0.0.1"), "-q 10.0.0.1: invalid ipv6"),
    (ConntrackDelete("ipv4", 3, "bogus"), "unsupported protocol 'bogus'"),
    (ConntrackDelete("ipv4", 3, "256"), "unsupported protocol"),
    (ConntrackDelete("ipx", 3), "unknown family 'ipx'"),
])
def test_a_filter_conntrack_would_refuse_is_refused(delete: ConntrackDelete, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        conntrack.compile_deletes([ConntrackDelete("ipv4", 1), delete])


# ---------------------------------------------------------------- requests


def test_a_delete_names_the_entry_by_its_original_tuple_zone_and_id() -> None:
    e = ENTRIES[0]
    request = conntrack.delete_request(e, 42)
    length, kind, flags, seq, _ = struct.unpack_from("=IHHII", request)
    assert (length, kind, flags, seq) == (len(request), conntrack.CT_DELETE,
                                          conntrack.NLM_F_REQUEST | conntrack.NLM_F_ACK, 42)
    assert request[16:20] == struct.pack("=BBH", socket.AF_INET, 0, 0)
    assert request[20:] == e.tuple_attr + e.zone_attr + e.id_attr
    zone0 = ENTRIES[5]
    assert conntrack.delete_request(zone0, 1)[20:] == zone0.tuple_attr + zone0.id_attr


def test_a_delete_without_a_tuple_is_refused_it_would_flush_the_table() -> None:
    with pytest.raises(ValueError, match="flush"):
        conntrack.delete_request(conntrack.Entry("ipv4", 0, 17, b"", b"", b"", b""), 1)


def test_a_dump_request_asks_for_one_family() -> None:
    request = conntrack.dump_request("ipv6", 9)
    assert struct.unpack_from("=IHHII", request)[:4] == (20, conntrack.CT_GET,
                                                         conntrack.NLM_F_REQUEST | conntrack.NLM_F_DUMP, 9)
    assert request[16:] == struct.pack("=BBH", socket.AF_INET6, 0, 0)


def test_delete_argv_says_the_same_as_a_command() -> None:
    assert conntrack.delete_argv(ConntrackDelete("ipv6", 5, "udp", None, "fd00::1")) == [
        "conntrack", "-D", "-f", "ipv6", "--zone", "5", "-p", "udp", "-d", "fd00::1"]
    assert conntrack.delete_argv(ConntrackDelete("ipv4", None, None, "10.0.0.1", None, "192.0.2.1")) == [
        "conntrack", "-D", "-f", "ipv4", "-s", "10.0.0.1", "-q", "192.0.2.1"]


def test_every_pattern_of_given_fields_matches_as_the_fields_say() -> None:
    """Exhaustive: for each of the 32 combinations of given fields, a filter made from an entry
    matches that entry, and no entry that differs in a given field."""
    base = ("ipv4", 3, 17, "10.0.0.5", "10.0.0.6", "192.0.2.1")
    other = ("ipv4", 4, 6, "10.0.0.8", "10.0.0.9", "192.0.2.2")
    fields = ("zone", "protocol", "source", "destination", "reply_destination")
    entries = {}
    for differs in itertools.product((False, True), repeat=5):
        values = [o if d else b for b, o, d in zip(base[1:], other[1:], differs)]
        entries[differs] = entry("ipv4", values[2], values[3], values[1], zone=values[0], reply_dst=values[4])
    for given in itertools.product((False, True), repeat=5):
        values = dict(zip(fields, (str(v) if f == "protocol" else v for f, v in zip(fields, base[1:]))))
        delete = ConntrackDelete("ipv4", **{f: (values[f] if g else None) for f, g in zip(fields, given)})
        chosen = conntrack.select(list(entries.values()), conntrack.compile_deletes([delete]))
        assert chosen == [e for differs, e in entries.items() if not any(d and g for d, g in zip(differs, given))]
