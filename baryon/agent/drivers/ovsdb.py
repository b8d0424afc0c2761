"""Open vSwitch's database as the OVS agent reads and changes it: a small OVSDB client (RFC 7047).

``Ovsdb(connection)`` speaks OVSDB's JSON-RPC directly over one stream socket (``unix:PATH`` or
``tcp:IP:PORT``, Neutron's ``[ovs] ovsdb_connection``; the transport and the error types are in
``baryon.agent.drivers.jsonrpc``); it is the only code that touches the database. Every request
has a timeout; the server's echo requests are answered.

- ``observe()`` reads Bridge, Port and Interface in one transaction of "select"s and returns the
  model's ``ObservedSwitch`` (maps as sorted tuples, empty optional columns as ""/None); with a
  ``watch(replicate=True)`` in sync, it takes them from that watch's replica instead.
- ``apply(ops)`` carries out all the given ops in ONE transaction, with may-exist/if-exists
  semantics. It builds the writes from which bridges and ports exist (the replica's, when in
  sync; else a read-only transaction first), and guards every existence it relied on with a
  "wait" (timeout 0): if another client changed one in between, the transaction aborts as a
  whole and is rebuilt from a fresh read (OVSDB's optimistic "try again", as ovsdbapp's verify
  does). Because the writes are always rebuilt from what exists, re-sending after a lost
  connection is safe too. Those two retry, with a deadline; every other error raises
  ``OvsdbError`` and changes nothing.
  Then, like ``ovs-vsctl`` without ``--no-wait``, it waits until ovs-vswitchd has applied the
  change (``cur_cfg`` reaches the ``next_cfg`` the transaction set), so ports exist in the switch,
  with their OpenFlow numbers, before flows naming them are installed.
- ``watch(callback, replicate=False)`` monitors the database on a connection of its own, in a
  background thread (``OvsdbWatch``): ``callback()`` after each change of an Interface's name,
  external_ids or ofport (what others change when a VIF is plugged, unplugged or numbered; not
  for the initial contents, not for Port.tag, which the agent writes itself), and once after each
  reconnection (the server restarted: what changed meanwhile is unknown). The callback only says
  "look again": it carries no data. With ``replicate``, the monitor also carries every row and
  column ``observe()`` and ``apply()`` read, and the watch keeps them (``ovsdb_rows.Replica``):
  this client's ``observe()`` and ``apply()`` then read no table (see ``OvsdbWatch._synced`` for
  why the replica is never older than this client's last transaction), and read them again
  whenever no monitor is in place (connecting, reconnecting).

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
from baryon.agent.drivers.ovsdb_rows import (DB, OBSERVED, WAKE, Existing, Replica, omap, select,
                                             switch_from_rows)
from baryon.model.ovs import DeletePort, EnsureBridge, EnsurePort, ObservedSwitch, OvsdbOp, SetPortTag

LOG = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
RETRY_FIRST_DELAY = 0.01
RETRY_MAX_DELAY = 0.5
WATCH_FIRST_DELAY = 0.05
WATCH_MAX_DELAY = 2.0
CUR_CFG_POLL_MS = 1000  # one server-side wait for cur_cfg to change; then checked again

SYNC_TIMEOUT = 2.0  # seconds a replica's observe() waits for its barrier before reading the tables instead

T = TypeVar("T")
Ref = list  # ["uuid", "<uuid>"] or ["named-uuid", "<name>"]

__all__ = ["Ovsdb", "OvsdbConnectionError", "OvsdbError", "OvsdbWatch", "build_transaction", "switch_from_rows"]


class _TryAgain(Exception):
    """A guard "wait" failed: another client changed what the transaction was built on."""


# ---------------------------------------------------------------- ops -> one transaction


@dataclass
class _Transaction:
    """The OVSDB operations for a list of model ops, built against ``Existing``.

    First the guards ("wait"s, before any write, so they see the rows as read), then the writes.
    ``bridges``/``ports`` track what exists as the writes proceed (OVSDB executes operations in
    order, each seeing the previous ones' effects), so an op may rely on an earlier one of the
    same list (a port on a bridge created just before it)."""

    existing: Existing
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
                          "row": {"type": op.type, "options": omap(op.options)}})
            if op.external_ids:
                # A map "insert" keeps existing keys' values: delete the keys first, then insert (merge).
                keys = ["set", sorted(k for k, _ in op.external_ids)]
                self.add(op, {"op": "mutate", "table": "Interface", "where": where, "mutations": [
                    ["external_ids", "delete", keys], ["external_ids", "insert", omap(op.external_ids)]]})
            return
        row = {"name": op.name, "type": op.type, "options": omap(op.options)}
        if op.external_ids:
            row["external_ids"] = omap(op.external_ids)
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
                ["other_config", "delete", keys], ["other_config", "insert", omap(op.other_config)]]})

    def delete_port(self, op: DeletePort) -> None:
        port, holder = self.ports.get(op.name, (None, None))
        if port is not None and holder == op.bridge:
            self.port_set(op, op.bridge, "delete", port)
            del self.ports[op.name]

    def bump_cfg(self) -> None:
        """Ask ovs-vswitchd to confirm it applied this transaction (``ovs-vsctl``'s wait)."""
        self.add("next_cfg", {"op": "mutate", "table": DB, "where": [], "mutations": [["next_cfg", "+=", 1]]})
        self.add("next_cfg", select(DB, ["next_cfg", "cur_cfg"]))

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


def build_transaction(ops: Sequence[OvsdbOp], existing: Existing, *, bump_cfg: bool) -> _Transaction:
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
        self._replica_watch: OvsdbWatch | None = None  # the watch(replicate=True), if one was started

    def __enter__(self) -> Ovsdb:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop every watch started from this client and close the connection."""
        for watch in self._watches:
            watch.stop()
        self._watches.clear()
        self._replica_watch = None
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
        """Bridges (all, or those named) with their ports, in one read (from the replica of a
        ``watch(replicate=True)`` when it is in sync); ``flow_count`` is None."""
        wanted = None if bridges is None else set(bridges)
        replica = self._replica_watch
        observed = replica.observe(wanted) if replica is not None else None
        if observed is not None:
            return observed

        def attempt() -> ObservedSwitch:
            results = self.transact(*(select(table, ["_uuid", *columns]) for table, columns in OBSERVED.items()))
            _raise_errors("observe", results)
            return switch_from_rows(*(result["rows"] for result in results), wanted=wanted)

        return self._retrying("observe", attempt)

    def apply(self, ops: Sequence[OvsdbOp], *, wait: bool = True) -> None:
        """All ``ops`` in one transaction (may-exist / if-exists semantics, see the module doc);
        with ``wait``, return once ovs-vswitchd has applied it."""
        ops = tuple(ops)
        if not ops:
            return
        attempts = itertools.count()

        def attempt() -> tuple[int, int] | None:
            # NOTE: the first attempt builds on the replica (in sync: no read of every Port row);
            # a failed guard means it was not current after all: the next attempts read.
            first = next(attempts) == 0
            existing = self._replica_watch.existing() if first and self._replica_watch is not None else None
            if existing is None:
                read = self.transact(select(DB, ["_uuid"]), select("Bridge", ["_uuid", "name", "ports"]),
                                     select("Port", ["_uuid", "name"]))
                _raise_errors("apply (read)", read)
                existing = Existing.from_rows(*(r["rows"] for r in read))
            txn = build_transaction(ops, existing, bump_cfg=wait)
            results = self.transact(*txn.operations)
            txn.check(results)
            row = results[-1]["rows"][0]
            return (row["next_cfg"], row["cur_cfg"]) if wait else None

        cfg = self._retrying("apply", attempt)
        if cfg is not None:
            self._retrying("apply (wait for ovs-vswitchd)", lambda: self._wait_cur_cfg(*cfg))

    def _wait_cur_cfg(self, next_cfg: int, cur_cfg: int) -> None:
        """Until Open_vSwitch.cur_cfg >= ``next_cfg``, from its value ``cur_cfg``: a server-side
        "wait" for it to change (ovsdb-server answers as soon as ovs-vswitchd writes it), checked
        again after each change.

        NOTE: "until": "!=" the last value seen, not "==" ``next_cfg``: another client's bump may
        make ovs-vswitchd skip our number, and a wait for == would then sit out its timeout."""
        deadline = time.monotonic() + self.timeout
        while cur_cfg < next_cfg:
            if time.monotonic() >= deadline:
                raise OvsdbError(f"ovs-vswitchd has not applied the change in {self.timeout:g} s (cur_cfg "
                                 f"{cur_cfg} < next_cfg {next_cfg}): is it running?", error="timeout")
            results = self.transact({
                "op": "wait", "table": DB, "where": [], "columns": ["cur_cfg"], "until": "!=",
                "rows": [{"cur_cfg": cur_cfg}], "timeout": CUR_CFG_POLL_MS}, select(DB, ["cur_cfg"]))
            read = results[1] if len(results) > 1 and isinstance(results[1], dict) else {}
            cur_cfg = (read.get("rows") or [{"cur_cfg": cur_cfg}])[0]["cur_cfg"]  # unchanged: timed out

    def watch(self, callback: Callable[[], None], *, replicate: bool = False) -> OvsdbWatch:
        """Start an ``OvsdbWatch`` calling ``callback()`` (keeping a replica with ``replicate``);
        stopped by ``close()`` (or its ``stop()``)."""
        watch = OvsdbWatch(self.connection, callback, timeout=self.timeout, replicate=replicate).start()
        self._watches.append(watch)
        if replicate:
            self._replica_watch = watch
        return watch


def _raise_errors(what: str, results: list) -> None:
    for result in results:
        if isinstance(result, dict) and "error" in result:
            raise OvsdbError(f"{what}: {result['error']}: {result.get('details', '')}", error=result["error"],
                             details=result.get("details"))


# ---------------------------------------------------------------- the monitor


class OvsdbWatch:
    """A "monitor" of the ports' identity columns (and, with ``replicate``, of every row
    ``observe`` reads), in a background thread (see the module doc).

    Reconnects with exponential backoff (``WATCH_FIRST_DELAY`` .. ``WATCH_MAX_DELAY``) when the
    server goes away, and then starts again from the monitor's initial contents (a relist);
    probes a silent server with "echo" every ``probe_interval`` seconds (a TCP peer can vanish
    without closing). ``stop()`` ends the thread and waits for it.
    """

    def __init__(self, connection: str, callback: Callable[[], None], *, timeout: float = DEFAULT_TIMEOUT,
                 probe_interval: float = 5.0, replicate: bool = False) -> None:
        self.connection = connection
        self.callback = callback
        self.timeout = timeout
        self.probe_interval = probe_interval
        self.replicate = replicate
        self.connections = 0  # monitors established so far (1 + reconnections)
        self.connected = False  # a monitor is in place now
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._lock = threading.Lock()  # _stream, _replica, _barriers
        self._send_lock = threading.Lock()  # one message at a time on the stream (two threads send)
        self._stream: Stream | None = None
        self._replica: Replica | None = None  # the rows of the monitor in place (replicate only)
        self._barriers: dict[str, threading.Event] = {}  # echo id -> set when its answer came back
        self._ids = itertools.count(1)
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

    def observe(self, bridges: Iterable[str] | None = None) -> ObservedSwitch | None:
        """What ``Ovsdb.observe(bridges)`` would return, from the replica; None when there is no
        replica in sync (not replicating, no monitor in place, no answer to the barrier in time)."""
        wanted = None if bridges is None else set(bridges)
        return self._synced(lambda replica: replica.switch(wanted))

    def existing(self) -> Existing | None:
        """What ``Ovsdb.apply`` builds its transaction on, from the replica (None: as ``observe``)."""
        return self._synced(Replica.existing)

    def _synced(self, read: Callable[[Replica], T], timeout: float = SYNC_TIMEOUT) -> T | None:
        """``read(replica)`` once the replica holds every transaction committed before this call.

        NOTE: the barrier: an "echo" on the monitor's own connection, and its answer awaited.
        ovsdb-server sends a session every update of the transactions committed so far before it
        reads that session's next request (``ovsdb_jsonrpc_session_run`` flushes the monitors
        first), and the watch thread applies messages in order: once the answer is back, the
        replica holds the client's own last transaction, and the ofports ovs-vswitchd wrote
        before the ``cur_cfg`` it waited for."""
        if not self.replicate:
            return None
        done = threading.Event()
        token = f"sync-{next(self._ids)}"
        with self._lock:
            stream = self._stream
            if stream is None or self._replica is None:
                return None
            self._barriers[token] = done
        try:
            self._send(stream, {"method": "echo", "params": [token], "id": token})
        except OvsdbError:
            with self._lock:
                self._barriers.pop(token, None)
            return None
        answered = done.wait(timeout)
        with self._lock:
            self._barriers.pop(token, None)
            if not answered or self._replica is None:
                return None
            return read(self._replica)

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
                    self._replica = None
                    for barrier in self._barriers.values():
                        barrier.set()  # their observe() finds no replica: the caller reads the tables
                    self._barriers.clear()
                if stream is not None:
                    stream.close()
            if self._stopping.wait(delay):
                break
            delay = min(delay * 2, WATCH_MAX_DELAY)

    def _tables(self) -> dict[str, dict]:
        """The monitor requests: the WAKE columns (changes only), or everything observe reads."""
        if not self.replicate:
            select_changes = {"initial": False, "insert": True, "delete": True, "modify": True}
            return {table: {"columns": list(columns), "select": select_changes} for table, columns in WAKE.items()}
        return {table: {"columns": columns} for table, columns in OBSERVED.items()}  # initial contents too

    def _monitor(self) -> Stream:
        stream = Stream(self.connection, self.timeout)
        with self._lock:
            self._stream = stream
        if self._stopping.is_set():
            raise OvsdbConnectionError("stopping")
        self._send(stream, {"method": "monitor", "id": "monitor", "params": [DB, "baryon", self._tables()]})
        deadline = time.monotonic() + self.timeout
        while True:
            message = stream.receive(deadline)
            if message is None:
                raise OvsdbConnectionError(f"{self.connection}: no answer to monitor in {self.timeout:g} s")
            if message.get("id") == "monitor" and "method" not in message:
                if message.get("error") is not None:
                    raise OvsdbError(f"monitor: {message['error']}", error=str(message["error"]))
                if self.replicate:
                    replica = Replica()
                    replica.load(message.get("result") or {})
                    with self._lock:
                        self._replica = replica
                return stream
            self._answer_echo(stream, message)

    def _listen(self, stream: Stream) -> None:
        probing = False
        while not self._stopping.is_set():
            message = stream.receive(time.monotonic() + self.probe_interval)
            if message is None:
                if probing:
                    raise OvsdbConnectionError(f"{self.connection}: no answer to echo in {self.probe_interval:g} s")
                self._send(stream, {"method": "echo", "params": [], "id": "probe"})
                probing = True
                continue
            probing = False
            if message.get("method") == "update":
                params = message.get("params") or [None, {}]
                if self._apply(params[1] if len(params) > 1 else {}):
                    self._notify()
            elif "method" not in message and str(message.get("id")).startswith("sync-"):
                with self._lock:
                    barrier = self._barriers.get(message["id"])
                if barrier is not None:
                    barrier.set()
            else:
                self._answer_echo(stream, message)

    def _apply(self, table_updates: dict) -> bool:
        """One notification into the replica; True if it should wake the agent."""
        if not self.replicate:
            return True  # the monitor carries the WAKE columns only
        with self._lock:
            return self._replica is not None and self._replica.update(table_updates)

    def _send(self, stream: Stream, message: dict) -> None:
        with self._send_lock:  # _synced sends its barriers from the caller's thread
            stream.send(message)

    def _answer_echo(self, stream: Stream, message: dict) -> None:
        if message.get("method") == "echo" and "id" in message:
            self._send(stream, {"id": message["id"], "result": message.get("params", []), "error": None})

    def _notify(self) -> None:
        try:
            self.callback()
        except Exception:  # the watch outlives a faulty callback
            LOG.exception("OVSDB watch callback failed")
