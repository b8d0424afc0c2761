"""OVSDB's rows as the model's types, and a replica kept from a monitor's updates (pure: no I/O).

- The JSON encodings of OVSDB values (RFC 7047 section 5.1): set and map columns, optional
  columns, uuids; ``select`` builds a "select" operation.
- ``switch_from_rows(bridges, ports, interfaces)``: the model's ``ObservedSwitch`` of selected
  Bridge, Port and Interface rows (``OBSERVED`` names the columns it reads); ``Existing``: the
  uuids of the root row, the bridges and the ports, by name (what a transaction is built on).
- ``Replica``: those three tables (and the root row: ``REPLICATED``) as a "monitor" (RFC 7047
  section 4.1.5) reports them: ``load`` takes the monitor's initial contents (every row: they
  replace whatever was held), ``update`` applies one "update" notification's table-updates and
  says whether it touched a ``WAKE`` column (a row inserted or deleted, or one of those columns
  among a modification's "old" ones, which are the changed ones); ``switch()`` is what
  ``switch_from_rows`` gives for the rows held, ``existing()`` their ``Existing``.

NOTE: a "modify" row-update's "new" is merged into the row held: ovsdb-server lists every
monitored column there, and a row that listed fewer would still end up complete.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from baryon.model.ovs import ObservedBridge, ObservedPort, ObservedSwitch

DB = "Open_vSwitch"
OBSERVED = {
    "Bridge": ["name", "datapath_type", "fail_mode", "ports"],
    "Port": ["name", "interfaces", "tag", "other_config"],
    "Interface": ["name", "type", "options", "external_ids", "ofport"],
}
# What a replica keeps: the observed tables, and the root row (its uuid, for a transaction's writes).
REPLICATED = {**OBSERVED, DB: ["bridges"]}
# What others change when a VIF is plugged, unplugged or numbered (os-vif, ovs-vswitchd); not
# Port.tag or other_config, which the agent writes itself: its own writes must not wake it again.
WAKE = {"Interface": ("name", "external_ids", "ofport")}


def atoms(value: Any) -> list:
    """A set column's atoms: ``["set", [...]]`` or a single atom (``["uuid", u]`` is one atom)."""
    if isinstance(value, list) and value and value[0] == "set":
        return list(value[1])
    return [value]


def pairs(value: Any) -> tuple[tuple[str, str], ...]:
    """A map column (``["map", [[k, v], ...]]``) as the model's sorted tuple of pairs."""
    return tuple(sorted((str(k), str(v)) for k, v in value[1]))


def optional(value: Any) -> Any:
    """An optional (min 0, max 1) column: its atom, or None when empty."""
    found = atoms(value)
    return found[0] if found else None


def omap(items: Iterable[tuple[str, str]]) -> list:
    """A map column's value from pairs."""
    return ["map", [[k, v] for k, v in sorted(items)]]


def uuid_of(ref: Any) -> str:
    return ref[1]


def select(table: str, columns: list[str], where: list | None = None) -> dict:
    return {"op": "select", "table": table, "where": where or [], "columns": columns}


def switch_from_rows(bridges: Iterable[dict], ports: Iterable[dict], interfaces: Iterable[dict],
                     wanted: set[str] | None = None) -> ObservedSwitch:
    """The model's view of selected Bridge, Port and Interface rows (``wanted``: bridge names)."""
    port_rows = {uuid_of(row["_uuid"]): row for row in ports}
    iface_rows = {uuid_of(row["_uuid"]): row for row in interfaces}
    observed_bridges, observed_ports = [], []
    for bridge in bridges:
        name = bridge["name"]
        if wanted is not None and name not in wanted:
            continue
        observed_bridges.append(observed_bridge(bridge))
        for port_ref in atoms(bridge["ports"]):
            port = port_rows.get(uuid_of(port_ref))
            if port is not None:
                observed_ports.append(observed_port(port, iface_rows, name))
    return ObservedSwitch(tuple(sorted(observed_bridges, key=lambda b: b.name)), tuple(sorted(observed_ports)))


def observed_bridge(bridge: dict) -> ObservedBridge:
    return ObservedBridge(bridge["name"], bridge["datapath_type"], optional(bridge["fail_mode"]) or "")


def observed_port(port: dict, iface_rows: Mapping[str, dict], bridge: str) -> ObservedPort:
    """A Port row with its Interface: the model has one per Port, the one named like it (a
    bond's first otherwise)."""
    ifaces = [iface_rows[uuid_of(r)] for r in atoms(port["interfaces"]) if uuid_of(r) in iface_rows]
    iface = next((i for i in ifaces if i["name"] == port["name"]), ifaces[0] if ifaces else None)
    ofport = optional(iface["ofport"]) if iface else None
    return ObservedPort(
        name=port["name"], bridge=bridge, type=iface["type"] if iface else "",
        options=pairs(iface["options"]) if iface else (),
        external_ids=pairs(iface["external_ids"]) if iface else (),
        other_config=pairs(port["other_config"]), tag=optional(port["tag"]),
        ofport=ofport if ofport is not None and ofport > 0 else None)


@dataclass(frozen=True)
class Existing:
    """What a transaction is built on (``Ovsdb.apply``): the uuids of what exists, by name."""

    root: str | None  # the Open_vSwitch row
    bridges: dict[str, str]  # name -> uuid
    ports: dict[str, tuple[str, str]]  # port name -> (uuid, name of the bridge that holds it)

    @classmethod
    def from_rows(cls, roots: Iterable[dict], bridges: Iterable[dict], ports: Iterable[dict]) -> Existing:
        roots, bridges = list(roots), list(bridges)
        names = {uuid_of(row["_uuid"]): row["name"] for row in ports}
        held = {}
        for bridge in bridges:
            for ref in atoms(bridge["ports"]):
                if uuid_of(ref) in names:
                    held[names[uuid_of(ref)]] = (uuid_of(ref), bridge["name"])
        return cls(uuid_of(roots[0]["_uuid"]) if roots else None,
                   {row["name"]: uuid_of(row["_uuid"]) for row in bridges}, held)


class Replica:
    """The ``REPLICATED`` rows and columns as a monitor reports them.

    NOTE: ``switch()`` keeps each port's ``ObservedPort`` and builds again only those whose Port
    or Interface rows an update touched: a VIF plugged costs one port, not the node's thousand."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[str, dict]] = {table: {} for table in REPLICATED}
        self._switch: ObservedSwitch | None = None
        self._ports: dict[tuple[str, str], tuple[ObservedPort, tuple[str, ...]]] = {}  # (port, bridge) -> it, ifaces
        self._touched: set[str] = set()  # Port and Interface uuids updated since the last switch()

    def load(self, initial: Mapping[str, Mapping[str, dict]]) -> None:
        """The monitor's initial contents: they replace every row held."""
        self.tables = {table: {} for table in REPLICATED}
        self._ports.clear()
        self.update(initial)

    def update(self, table_updates: Mapping[str, Mapping[str, dict]]) -> bool:
        """Apply one notification's table-updates; True if a ``WAKE`` column changed."""
        wake = False
        for table, rows in table_updates.items():
            held = self.tables.get(table)
            if held is None:
                continue
            watched = WAKE.get(table, ())
            for uuid, change in rows.items():
                self._touched.add(uuid)
                new, old = change.get("new"), change.get("old")
                if new is None:
                    wake |= held.pop(uuid, None) is not None and bool(watched)
                    continue
                if uuid not in held or old is None:
                    wake |= bool(watched)
                else:
                    wake |= any(column in old for column in watched)
                held[uuid] = {**held.get(uuid, {}), **new, "_uuid": ["uuid", uuid]}
            self._switch = None
        return wake

    def existing(self) -> Existing:
        """The rows held as a transaction's ``Existing``."""
        return Existing.from_rows(self.tables[DB].values(), self.tables["Bridge"].values(),
                                  self.tables["Port"].values())

    def switch(self, wanted: set[str] | None = None) -> ObservedSwitch:
        """The rows held as the model's ``ObservedSwitch`` (``wanted``: only these bridges):
        what ``switch_from_rows`` gives for them."""
        if self._switch is None:
            self._switch = self._build()
        if wanted is None:
            return self._switch
        return ObservedSwitch(tuple(b for b in self._switch.bridges if b.name in wanted),
                              tuple(p for p in self._switch.ports if p.bridge in wanted))

    def _build(self) -> ObservedSwitch:
        port_rows, iface_rows = self.tables["Port"], self.tables["Interface"]
        bridges, ports, kept = [], [], {}
        for bridge in self.tables["Bridge"].values():
            bridges.append(observed_bridge(bridge))
            for ref in atoms(bridge["ports"]):
                key = (uuid_of(ref), bridge["name"])
                cached = self._ports.get(key)
                if cached is None or key[0] in self._touched or not self._touched.isdisjoint(cached[1]):
                    row = port_rows.get(key[0])
                    if row is None:
                        continue
                    cached = (observed_port(row, iface_rows, bridge["name"]),
                              tuple(uuid_of(r) for r in atoms(row["interfaces"])))
                kept[key] = cached
                ports.append(cached[0])
        self._ports, self._touched = kept, set()
        return ObservedSwitch(tuple(sorted(bridges, key=lambda b: b.name)), tuple(sorted(ports)))
