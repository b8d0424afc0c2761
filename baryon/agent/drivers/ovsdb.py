"""Open vSwitch's database as the OVS agent reads and changes it: a small OVSDB client (RFC 7047).

``Ovsdb(connection)`` speaks OVSDB's JSON-RPC directly over one stream socket (``unix:PATH`` or
``tcp:IP:PORT``, Neutron's ``[ovs] ovsdb_connection``; the transport and the error types are in
``baryon.agent.drivers.jsonrpc``); it is the only code that touches the database. Every request
has a timeout; the server's echo requests are answered.

- ``observe()`` reads Bridge, Port and Interface in one transaction of "select"s and returns the
  model's ``ObservedSwitch`` (maps as sorted tuples, empty optional columns as ""/None).
- ``apply(ops)`` carries out all the given ops in ONE transaction, with may-exist/if-exists
  semantics. It first reads which bridges and ports exist (a second, read-only transaction),
  builds the writes from that, and guards every existence it relied on with a "wait" (timeout 0):
  if another client changed one in between, the transaction aborts as a whole and is rebuilt
  from a fresh read (OVSDB's optimistic "try again", as ovsdbapp's verify does). Because the
  writes are always rebuilt from what exists, re-sending after a lost connection is safe too.
  Those two retry, with a deadline; every other error raises ``OvsdbError`` and changes nothing.
  Then, like ``ovs-vsctl`` without ``--no-wait``, it waits until ovs-vswitchd has applied the
  change (``cur_cfg`` reaches the ``next_cfg`` the transaction set), so ports exist in the switch,
  with their OpenFlow numbers, before flows naming them are installed.
- ``watch(callback)`` monitors Interface (name, external_ids, ofport) on a
  connection of its own, in a background thread: ``callback()`` after each change notification
  (not for the initial contents), and once after each reconnection (the server restarted: what
  changed meanwhile is unknown). The callback only says "look again": it carries no data.

Rows this module writes: Open_vSwitch.bridges and next_cfg, Bridge (name, datapath_type,
fail_mode, ports), Port (name, interfaces, tag, other_config), Interface (name, type, options,
and the ``external_ids`` keys an ``EnsurePort`` names).
Port and Interface rows that no bridge references any more are deleted by ovsdb-server itself
(they are not root tables).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from baryon.agent.drivers.jsonrpc import OvsdbConnectionError, OvsdbError, Stream
from baryon.model.ovs import (DeletePort, EnsureBridge, EnsurePort, ObservedBridge, ObservedPort,
                              ObservedSwitch, OvsdbOp, SetPortTag)

LOG = logging.getLogger(__name__)

DB = "Open_vSwitch"
DEFAULT_TIMEOUT = 10.0
RETRY_FIRST_DELAY = 0.01
RETRY_MAX_DELAY = 0.5
WATCH_FIRST_DELAY = 0.05
WATCH_MAX_DELAY = 2.0
CUR_CFG_POLL_MS = 200  # one server-side wait for cur_cfg; re-checked with >= after each

BRIDGE_COLUMNS = ["_uuid", "name", "datapath_type", "fail_mode", "ports"]
PORT_COLUMNS = ["_uuid", "name", "interfaces", "tag", "other_config"]
INTERFACE_COLUMNS = ["_uuid", "name", "type", "options", "external_ids", "ofport"]
# NOTE: only what others change (os-vif plugging a VIF, ovs-vswitchd numbering it), not Port.tag,
# which the agent writes itself: its own writes must not wake it for one more run each.
WATCHED = {"Interface": ["name", "external_ids", "ofport"]}

T = TypeVar("T")
Ref = list  # ["uuid", "<uuid>"] or ["named-uuid", "<name>"]

__all__ = ["Ovsdb", "OvsdbConnectionError", "OvsdbError", "OvsdbWatch", "build_transaction", "switch_from_rows"]


class _TryAgain(Exception):
    """A guard "wait" failed: another client changed what the transaction was built on."""


# ---------------------------------------------------------------- OVSDB's JSON value encodings


def _atoms(value: Any) -> list:
    """A set column's atoms: ``["set", [...]]`` or a single atom (``["uuid", u]`` is one atom)."""
    if isinstance(value, list) and value and value[0] == "set":
        return list(value[1])
    return [value]


def _pairs(value: Any) -> tuple[tuple[str, str], ...]:
    """A map column (``["map", [[k, v], ...]]``) as the model's sorted tuple of pairs."""
    return tuple(sorted((str(k), str(v)) for k, v in value[1]))


def _optional(value: Any) -> Any:
    """An optional (min 0, max 1) column: its atom, or None when empty."""
    atoms = _atoms(value)
    return atoms[0] if atoms else None


def _map(pairs: Iterable[tuple[str, str]]) -> list:
    return ["map", [[k, v] for k, v in sorted(pairs)]]


def _uuid(ref: Any) -> str:
    return ref[1]


def _select(table: str, columns: list[str], where: list | None = None) -> dict:
    return {"op": "select", "table": table, "where": where or [], "columns": columns}


def switch_from_rows(bridges: list[dict], ports: list[dict], interfaces: list[dict],
                     wanted: set[str] | None = None) -> ObservedSwitch:
    """The model's view of selected Bridge, Port and Interface rows (``wanted``: bridge names)."""
    port_rows = {_uuid(row["_uuid"]): row for row in ports}
    iface_rows = {_uuid(row["_uuid"]): row for row in interfaces}
    observed_bridges, observed_ports = [], []
    for bridge in bridges:
        name = bridge["name"]
        if wanted is not None and name not in wanted:
            continue
        observed_bridges.append(ObservedBridge(name, bridge["datapath_type"], _optional(bridge["fail_mode"]) or ""))
        for port_ref in _atoms(bridge["ports"]):
            port = port_rows.get(_uuid(port_ref))
            if port is None:
                continue
            ifaces = [iface_rows[_uuid(r)] for r in _atoms(port["interfaces"]) if _uuid(r) in iface_rows]
            # The model has one Interface per Port: the one named like it (a bond's first otherwise).
            iface = next((i for i in ifaces if i["name"] == port["name"]), ifaces[0] if ifaces else None)
            ofport = _optional(iface["ofport"]) if iface else None
            observed_ports.append(ObservedPort(
                name=port["name"], bridge=name, type=iface["type"] if iface else "",
                options=_pairs(iface["options"]) if iface else (),
                external_ids=_pairs(iface["external_ids"]) if iface else (),
                other_config=_pairs(port["other_config"]), tag=_optional(port["tag"]),
                ofport=ofport if ofport is not None and ofport > 0 else None))
    return ObservedSwitch(tuple(sorted(observed_bridges, key=lambda b: b.name)), tuple(sorted(observed_ports)))


# ---------------------------------------------------------------- ops -> one transaction


@dataclass(frozen=True)
class _Existing:
    """What ``apply`` builds its transaction on: the uuids of what exists, by name."""

    root: str | None  # the Open_vSwitch row
    bridges: dict[str, str]  # name -> uuid
    ports: dict[str, tuple[str, str]]  # port name -> (uuid, name of the bridge that holds it)

    @classmethod
    def from_rows(cls, roots: list[dict], bridges: list[dict], ports: list[dict]) -> _Existing:
        names = {_uuid(row["_uuid"]): row["name"] for row in ports}
        held = {}
        for bridge in bridges:
            for ref in _atoms(bridge["ports"]):
                if _uuid(ref) in names:
                    held[names[_uuid(ref)]] = (_uuid(ref), bridge["name"])
        return cls(_uuid(roots[0]["_uuid"]) if roots else None,
                   {row["name"]: _uuid(row["_uuid"]) for row in bridges}, held)


@dataclass
class _Transaction:
    """The OVSDB operations for a list of model ops, built against ``_Existing``.

    First the guards ("wait"s, before any write, so they see the rows as read), then the writes.
    ``bridges``/``ports`` track what exists as the writes proceed (OVSDB executes operations in
    order, each seeing the previous ones' effects), so an op may rely on an earlier one of the
    same list (a port on a bridge created just before it)."""

    existing: _Existing
    operations: list[dict] = field(default_factory=list)
    origins: list[OvsdbOp | str] = field(default_factory=list)  # why each operation is there
    guards: int = 0  # the first ``guards`` operations are guards
    bridges: dict[str, Ref] = field(default_factory=dict)
    ports: dict[str, tuple[Ref, str]] = field(default_factory=dict)
    _names: Iterator[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.bridges = {name: ["uuid", u] for name, u in self.existing.bridges.items()}
        self.ports = {name: (["uuid", u], bridge) for name, (u, bridge) in self.existing.ports.items()}

    def add(self, origin: OvsdbOp | str, operation: dict) -> None:
        self.operations.append(operation)
        self.origins.append(origin)

    def insert(self, origin: OvsdbOp | str, table: str, row: dict) -> Ref:
        name = f"row{next(self._names)}"
        self.add(origin, {"op": "insert", "table": table, "row": row, "uuid-name": name})
        return ["named-uuid", name]

    def guard(self, ops: Sequence[OvsdbOp]) -> None:
        """Abort unless every row the ops depend on is still as read: present with the same uuid,
        or absent (and the Open_vSwitch row still missing, if it was)."""
        names: dict[tuple[str, str], None] = {}  # ordered set
        for op in ops:
            if isinstance(op, EnsureBridge):
                names[("Bridge", op.name)] = None
            elif isinstance(op, EnsurePort):
                names[("Bridge", op.bridge)] = names[("Port", op.name)] = None
            elif isinstance(op, DeletePort):
                names[("Port", op.name)] = None
        for table, name in names:
            known = self.existing.bridges.get(name) if table == "Bridge" else self.existing.ports.get(name, ("",))[0]
            self.add(f"{table} {name} changed meanwhile", {
                "op": "wait", "table": table, "where": [["name", "==", name]], "columns": ["_uuid"], "until": "==",
                "rows": [{"_uuid": ["uuid", known]}] if known else [], "timeout": 0})
        if self.existing.root is None:
            self.add("Open_vSwitch initialised meanwhile", {
                "op": "wait", "table": DB, "where": [], "columns": ["_uuid"], "until": "==", "rows": [], "timeout": 0})
            # As ``ovs-vsctl init``: the database's one Open_vSwitch row (always addressed with ``where: []``).
            self.guards = len(self.operations)
            self.insert("ovs-vsctl init", DB, {})
        else:
            self.guards = len(self.operations)

    def port_set(self, origin: OvsdbOp, bridge: str, mutator: str, port: Ref) -> None:
        self.add(origin, {"op": "mutate", "table": "Bridge", "where": [["name", "==", bridge]],
                          "mutations": [["ports", mutator, ["set", [port]]]]})

    def ensure_bridge(self, op: EnsureBridge) -> None:
        fail_mode = op.fail_mode or ["set", []]
        if op.name in self.bridges:
            self.add(op, {"op": "update", "table": "Bridge", "where": [["name", "==", op.name]],
                          "row": {"datapath_type": op.datapath_type, "fail_mode": fail_mode}})
            return
        # As ``ovs-vsctl add-br``: the bridge comes with its internal port of the same name.
        iface = self.insert(op, "Interface", {"name": op.name, "type": "internal"})
        port = self.insert(op, "Port", {"name": op.name, "interfaces": iface})
        bridge = self.insert(op, "Bridge", {"name": op.name, "datapath_type": op.datapath_type,
                                            "fail_mode": fail_mode, "ports": port})
        self.add(op, {"op": "mutate", "table": DB, "where": [], "mutations": [["bridges", "insert", ["set", [bridge]]]]})
        self.bridges[op.name] = bridge
        self.ports[op.name] = (port, op.name)

    def ensure_port(self, op: EnsurePort) -> None:
        if op.bridge not in self.bridges:
            raise OvsdbError(f"{op}: bridge {op.bridge} does not exist", op=op)
        if op.name in self.ports:
            port, holder = self.ports[op.name]
            if holder != op.bridge:  # converge: the port moves to the bridge the op names
                self.port_set(op, holder, "delete", port)
                self.port_set(op, op.bridge, "insert", port)
                self.ports[op.name] = (port, op.bridge)
            where = [["name", "==", op.name]]
            self.add(op, {"op": "update", "table": "Interface", "where": where,
                          "row": {"type": op.type, "options": _map(op.options)}})
            if op.external_ids:
                # A map "insert" keeps existing keys' values: delete the keys first, then insert (merge).
                keys = ["set", sorted(k for k, _ in op.external_ids)]
                self.add(op, {"op": "mutate", "table": "Interface", "where": where, "mutations": [
                    ["external_ids", "delete", keys], ["external_ids", "insert", _map(op.external_ids)]]})
            return
        row = {"name": op.name, "type": op.type, "options": _map(op.options)}
        if op.external_ids:
            row["external_ids"] = _map(op.external_ids)
        iface = self.insert(op, "Interface", row)
        port = self.insert(op, "Port", {"name": op.name, "interfaces": iface})
        self.port_set(op, op.bridge, "insert", port)
        self.ports[op.name] = (port, op.bridge)

    def set_port_tag(self, op: SetPortTag) -> None:
        # NOTE: no guard and no error for a missing port: VIF ports belong to os-vif and may be
        # unplugged at any moment; the update then matches no row and the next reconcile sees it.
        where = [["name", "==", op.name]]
        self.add(op, {"op": "update", "table": "Port", "where": where, "row": {"tag": op.tag}})
        if op.other_config:
            # A map "insert" keeps existing keys' values: delete the keys first, then insert (merge).
            keys = ["set", sorted(k for k, _ in op.other_config)]
            self.add(op, {"op": "mutate", "table": "Port", "where": where, "mutations": [
                ["other_config", "delete", keys], ["other_config", "insert", _map(op.other_config)]]})

    def delete_port(self, op: DeletePort) -> None:
        port, holder = self.ports.get(op.name, (None, None))
        if port is not None and holder == op.bridge:
            self.port_set(op, op.bridge, "delete", port)
            del self.ports[op.name]

    def bump_cfg(self) -> None:
        """Ask ovs-vswitchd to confirm it applied this transaction (``ovs-vsctl``'s wait)."""
        self.add("next_cfg", {"op": "mutate", "table": DB, "where": [], "mutations": [["next_cfg", "+=", 1]]})
        self.add("next_cfg", _select(DB, ["next_cfg"]))

    def check(self, results: list) -> None:
        """Raise ``_TryAgain`` if a guard failed, ``OvsdbError`` for any other error."""
        for index, result in enumerate(results):
            if not isinstance(result, dict) or "error" not in result:
                continue
            origin = self.origins[index] if index < len(self.origins) else "commit"
            if index < self.guards:
                raise _TryAgain(origin)
            raise OvsdbError(f"OVSDB transaction failed: {origin}: {result['error']}: {result.get('details', '')}",
                             error=result["error"], details=result.get("details"),
                             op=origin if not isinstance(origin, str) else None)


def build_transaction(ops: Sequence[OvsdbOp], existing: _Existing, *, bump_cfg: bool) -> _Transaction:
    """The one transaction that carries out ``ops`` given what exists (pure: no I/O)."""
    txn = _Transaction(existing)
    handlers: dict[type, Callable[[Any], None]] = {
        EnsureBridge: txn.ensure_bridge, EnsurePort: txn.ensure_port, SetPortTag: txn.set_port_tag,
        DeletePort: txn.delete_port}
    unknown = [op for op in ops if type(op) not in handlers]
    if unknown:
        raise TypeError(f"not OVSDB ops: {unknown!r}")
    txn.guard(ops)
    for op in ops:
        handlers[type(op)](op)
    if bump_cfg:
        txn.bump_cfg()
    return txn


# ---------------------------------------------------------------- the client


class Ovsdb:
    """A client of one node's ovsdb-server (thread-safe: one request at a time on one connection)."""

    def __init__(self, connection: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.connection = connection
        self.timeout = timeout
        self._stream: Stream | None = None
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._watches: list[OvsdbWatch] = []

    def __enter__(self) -> Ovsdb:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop every watch started from this client and close the connection."""
        for watch in self._watches:
            watch.stop()
        self._watches.clear()
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    # ------------------------------------------------------------ requests

    def call(self, method: str, params: list) -> Any:
        """One JSON-RPC request (connecting first if needed); its result. ``OvsdbConnectionError`` if
        the connection failed (transient), ``OvsdbError`` for an error answer or none in ``timeout``."""
        with self._lock:
            if self._stream is None:
                self._stream = Stream(self.connection, self.timeout)
            stream = self._stream
            request_id = next(self._ids)
            deadline = time.monotonic() + self.timeout
            try:
                stream.send({"method": method, "params": params, "id": request_id})
                while True:
                    message = stream.receive(deadline)
                    if message is None:
                        self._drop()  # a late answer must not be taken for the next request's
                        raise OvsdbError(f"{method}: no answer from {self.connection} in {self.timeout:g} s",
                                         error="timeout")
                    if message.get("id") == request_id and "method" not in message:
                        break
                    stream.answer_echo(message)
            except OvsdbConnectionError:
                self._drop()
                raise
        if message.get("error") is not None:
            raise OvsdbError(f"{method}: {message['error']}", error=str(message["error"]))
        return message.get("result")

    def transact(self, *operations: dict) -> list:
        """One raw transaction; its result array (per-operation errors are in it, not raised)."""
        return self.call("transact", [DB, *operations])

    def _retrying(self, what: str, attempt: Callable[[], T]) -> T:
        """``attempt()`` again after a lost connection or a failed guard, until ``timeout``."""
        deadline = time.monotonic() + self.timeout
        delay = RETRY_FIRST_DELAY
        while True:
            try:
                return attempt()
            except (OvsdbConnectionError, _TryAgain) as exc:
                if time.monotonic() + delay > deadline:
                    raise OvsdbError(f"{what}: {exc} (gave up after {self.timeout:g} s)",
                                     error="try again" if isinstance(exc, _TryAgain) else "connection") from exc
                LOG.debug("%s: %s; retrying in %.2f s", what, exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_DELAY)

    # ------------------------------------------------------------ the driver's API

    def observe(self, bridges: Iterable[str] | None = None) -> ObservedSwitch:
        """Bridges (all, or those named) with their ports, in one read; ``flow_count`` is None."""
        wanted = None if bridges is None else set(bridges)

        def attempt() -> ObservedSwitch:
            results = self.transact(_select("Bridge", BRIDGE_COLUMNS), _select("Port", PORT_COLUMNS),
                                    _select("Interface", INTERFACE_COLUMNS))
            _raise_errors("observe", results)
            return switch_from_rows(*(result["rows"] for result in results), wanted=wanted)

        return self._retrying("observe", attempt)

    def apply(self, ops: Sequence[OvsdbOp], *, wait: bool = True) -> None:
        """All ``ops`` in one transaction (may-exist / if-exists semantics, see the module doc);
        with ``wait``, return once ovs-vswitchd has applied it."""
        ops = tuple(ops)
        if not ops:
            return

        def attempt() -> int | None:
            read = self.transact(_select(DB, ["_uuid"]), _select("Bridge", ["_uuid", "name", "ports"]),
                                 _select("Port", ["_uuid", "name"]))
            _raise_errors("apply (read)", read)
            txn = build_transaction(ops, _Existing.from_rows(*(r["rows"] for r in read)), bump_cfg=wait)
            results = self.transact(*txn.operations)
            txn.check(results)
            return results[-1]["rows"][0]["next_cfg"] if wait else None

        next_cfg = self._retrying("apply", attempt)
        if next_cfg is not None:
            self._retrying("apply (wait for ovs-vswitchd)", lambda: self._wait_cur_cfg(next_cfg))

    def _wait_cur_cfg(self, next_cfg: int) -> None:
        """Until Open_vSwitch.cur_cfg >= ``next_cfg``: a server-side "wait" (woken by the change)
        for == in slices, re-checked with >= (another client's bump may skip our number)."""
        deadline = time.monotonic() + self.timeout
        while True:
            results = self.transact(_select(DB, ["cur_cfg"]), {
                "op": "wait", "table": DB, "where": [], "columns": ["cur_cfg"], "until": "==",
                "rows": [{"cur_cfg": next_cfg}], "timeout": CUR_CFG_POLL_MS})
            rows = results[0].get("rows") or [{"cur_cfg": 0}]
            if rows[0]["cur_cfg"] >= next_cfg:
                return
            if time.monotonic() >= deadline:
                raise OvsdbError(f"ovs-vswitchd has not applied the change in {self.timeout:g} s (cur_cfg "
                                 f"{rows[0]['cur_cfg']} < next_cfg {next_cfg}): is it running?", error="timeout")

    def watch(self, callback: Callable[[], None]) -> OvsdbWatch:
        """Start an ``OvsdbWatch`` calling ``callback()``; stopped by ``close()`` (or its ``stop()``)."""
        watch = OvsdbWatch(self.connection, callback, timeout=self.timeout).start()
        self._watches.append(watch)
        return watch


def _raise_errors(what: str, results: list) -> None:
    for result in results:
        if isinstance(result, dict) and "error" in result:
            raise OvsdbError(f"{what}: {result['error']}: {result.get('details', '')}", error=result["error"],
                             details=result.get("details"))


# ---------------------------------------------------------------- the monitor


class OvsdbWatch:
    """A "monitor" of the ports' identity columns, in a background thread (see the module doc).

    Reconnects with exponential backoff (``WATCH_FIRST_DELAY`` .. ``WATCH_MAX_DELAY``) when the
    server goes away; probes a silent server with "echo" every ``probe_interval`` seconds (a TCP
    peer can vanish without closing). ``stop()`` ends the thread and waits for it.
    """

    def __init__(self, connection: str, callback: Callable[[], None], *, timeout: float = DEFAULT_TIMEOUT,
                 probe_interval: float = 5.0) -> None:
        self.connection = connection
        self.callback = callback
        self.timeout = timeout
        self.probe_interval = probe_interval
        self.connections = 0  # monitors established so far (1 + reconnections)
        self.connected = False  # a monitor is in place now
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._stream: Stream | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> OvsdbWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> OvsdbWatch:
        """Start the thread; return once the first monitor is in place (``OvsdbError`` after ``timeout``)."""
        self._thread = threading.Thread(target=self._run, name=f"ovsdb-watch {self.connection}", daemon=True)
        self._thread.start()
        if not self._ready.wait(self.timeout):
            self.stop()
            raise OvsdbError(f"watch: no monitor on {self.connection} in {self.timeout:g} s", error="timeout")
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            if self._stream is not None:
                self._stream.shutdown()  # wakes the thread's recv()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(self.timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        delay = WATCH_FIRST_DELAY
        while not self._stopping.is_set():
            stream = None
            try:
                stream = self._monitor()
                self.connections += 1
                self.connected = True
                if self.connections > 1:
                    self._notify()  # reconnected: anything may have changed while we were away
                self._ready.set()
                delay = WATCH_FIRST_DELAY
                self._listen(stream)
            except OvsdbError as exc:
                if not self._stopping.is_set():
                    LOG.warning("OVSDB monitor on %s: %s; reconnecting in %.2f s", self.connection, exc, delay)
            finally:
                self.connected = False
                with self._lock:
                    self._stream = None
                if stream is not None:
                    stream.close()
            if self._stopping.wait(delay):
                break
            delay = min(delay * 2, WATCH_MAX_DELAY)

    def _monitor(self) -> Stream:
        stream = Stream(self.connection, self.timeout)
        with self._lock:
            self._stream = stream
        if self._stopping.is_set():
            raise OvsdbConnectionError("stopping")
        select = {"initial": False, "insert": True, "delete": True, "modify": True}
        stream.send({"method": "monitor", "id": "monitor", "params": [
            DB, "baryon", {table: {"columns": columns, "select": select} for table, columns in WATCHED.items()}]})
        deadline = time.monotonic() + self.timeout
        while True:
            message = stream.receive(deadline)
            if message is None:
                raise OvsdbConnectionError(f"{self.connection}: no answer to monitor in {self.timeout:g} s")
            if message.get("id") == "monitor" and "method" not in message:
                if message.get("error") is not None:
                    raise OvsdbError(f"monitor: {message['error']}", error=str(message["error"]))
                return stream
            stream.answer_echo(message)

    def _listen(self, stream: Stream) -> None:
        probing = False
        while not self._stopping.is_set():
            message = stream.receive(time.monotonic() + self.probe_interval)
            if message is None:
                if probing:
                    raise OvsdbConnectionError(f"{self.connection}: no answer to echo in {self.probe_interval:g} s")
                stream.send({"method": "echo", "params": [], "id": "probe"})
                probing = True
                continue
            probing = False
            if message.get("method") == "update":
                self._notify()
            else:
                stream.answer_echo(message)

    def _notify(self) -> None:
        try:
            self.callback()
        except Exception:  # the watch outlives a faulty callback
            LOG.exception("OVSDB watch callback failed")
