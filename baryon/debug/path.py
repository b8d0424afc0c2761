"""A traced path: hops annotated with Neutron objects, a verdict, and their renderings (pure).

``baryon.debug.trace`` builds a ``Path`` hop by hop from what the real system answered; this
module only holds and renders it.

- ``Hop``: where (``node``, ``place``: a bridge, a namespace, a port's firewall), what happened
  (``summary``), the evidence (``details``: flows crossed, rules, routes) and the Neutron objects
  behind it (``objects``: ``port``, ``network``, ``segment``, ``local_vlan``, ``vni``,
  ``security_group``, ``rule``, ``router``, ``floating_ip``, ``remote_node``...).
- ``Verdict``: ``delivered`` (to a port), ``forwarded`` (leaves to an external network) or
  ``dropped`` (at a hop, with the reason); ``ok`` is true for the first two.
- ``render_text(path)``: the hop list a person reads; ``as_json(path)``: the same as plain data
  (``{"packet", "source", "destination", "hops": [...], "verdict": {...}}``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

DELIVERED, FORWARDED, DROPPED = "delivered", "forwarded", "dropped"
DETAIL_WIDTH = 110  # evidence lines are cut to this in text (never in JSON)


@dataclass
class Hop:
    node: str
    place: str
    summary: str
    kind: str = "bridge"  # port | firewall | bridge | router | external
    details: list[str] = field(default_factory=list)
    objects: dict[str, object] = field(default_factory=dict)
    index: int = 0  # set by Path.add


@dataclass(frozen=True)
class Verdict:
    status: str  # delivered | forwarded | dropped
    reason: str
    hop: int | None = None  # the hop where it ended
    port: str | None = None  # delivered: the port's id
    network: str | None = None  # forwarded: the external network / physnet

    @property
    def ok(self) -> bool:
        return self.status in (DELIVERED, FORWARDED)


@dataclass
class Path:
    packet: str  # "icmp 10.0.0.5 -> 10.0.0.7"
    source: dict[str, object]
    destination: str
    hops: list[Hop] = field(default_factory=list)
    verdict: Verdict | None = None

    def add(self, hop: Hop) -> Hop:
        hop.index = len(self.hops) + 1
        self.hops.append(hop)
        return hop

    def end(self, status: str, reason: str, *, at_hop: bool = True, **kwargs: str | None) -> Verdict:
        """The verdict, at the last hop (``at_hop=False``: at none, e.g. no next hop exists)."""
        hop = self.hops[-1].index if self.hops and at_hop else None
        self.verdict = Verdict(status, reason, hop=hop, **kwargs)
        return self.verdict

    @property
    def ended(self) -> bool:
        return self.verdict is not None


def as_json(path: Path) -> dict:
    return {
        "packet": path.packet,
        "source": path.source,
        "destination": path.destination,
        "hops": [asdict(hop) for hop in path.hops],
        "verdict": asdict(path.verdict) | {"ok": path.verdict.ok} if path.verdict else None,
    }


_OBJECT_ORDER = ("port", "device", "network", "segment", "local_vlan", "vni", "remote_node", "security_group",
                 "rule", "router", "floating_ip", "nat", "physnet")


def render_text(path: Path) -> str:
    lines = [f"trace: {path.packet}", _source_line(path.source), ""]
    width = max((len(f"{h.node} {h.place}") for h in path.hops), default=0)
    for hop in path.hops:
        where = f"{hop.node} {hop.place}".ljust(width)
        lines.append(f"{hop.index:>2}. {where}  {hop.summary}")
        for detail in hop.details:
            lines.append(f"      {'':{width}}  | {_cut(detail)}")
        objects = _objects_line(hop.objects)
        if objects:
            lines.append(f"      {'':{width}}  [{objects}]")
    lines.append("")
    if path.verdict is not None:
        verdict = path.verdict
        at = f" at hop {verdict.hop}" if verdict.status == DROPPED and verdict.hop else ""
        lines.append(f"verdict: {verdict.status.upper()}{at}: {verdict.reason}")
    return "\n".join(lines) + "\n"


def _cut(text: str, limit: int = DETAIL_WIDTH) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _source_line(source: dict[str, object]) -> str:
    parts = [f"{k}={v}" for k, v in source.items() if v not in (None, "")]
    return "from: " + ", ".join(parts)


def _objects_line(objects: dict[str, object]) -> str:
    keys = [k for k in _OBJECT_ORDER if k in objects] + sorted(k for k in objects if k not in _OBJECT_ORDER)
    return ", ".join(f"{k} {objects[k]}" for k in keys if objects[k] not in (None, ""))
