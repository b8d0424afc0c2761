"""OVSDB's transport: JSON-RPC 1.0 over one stream socket (RFC 7047 section 4), and the errors
of the OVSDB client (``baryon.agent.drivers.ovsdb``), which is this module's only user.

- ``connect(remote, timeout)``: a connected socket for ``unix:PATH`` or ``tcp:IP:PORT`` (Neutron's
  ``[ovs] ovsdb_connection``); a unix path longer than ``sun_path`` is reached through its directory.
- ``Stream``: whole JSON messages out and in over that socket (OVSDB sends them back to back,
  without delimiters), with a deadline per receive, and the answer to the server's "echo" probe.
  Request ids, retries and what the messages mean are the client's business, not this module's.

A broken or refused connection raises ``OvsdbConnectionError`` (transient: a new connection may
succeed); an unusable ``remote`` raises ``OvsdbError``.
"""

from __future__ import annotations

import codecs
import json
import os
import socket
import time
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from baryon.model.ovs import OvsdbOp


class OvsdbError(RuntimeError):
    """An OVSDB request failed. ``error``/``details`` are the server's (RFC 7047 section 4.1.3) when
    it gave them; ``op`` is the model op whose OVSDB operation failed, if one did."""

    def __init__(self, message: str, *, error: str | None = None, details: str | None = None,
                 op: OvsdbOp | None = None) -> None:
        super().__init__(message)
        self.error = error
        self.details = details
        self.op = op


class OvsdbConnectionError(OvsdbError):
    """The connection could not be made, or broke: transient, a new connection may succeed."""

    def __init__(self, message: str) -> None:
        super().__init__(message, error="connection")


# ---------------------------------------------------------------- JSON-RPC over a stream socket


def connect(remote: str, timeout: float) -> socket.socket:
    kind, _, where = remote.partition(":")
    try:
        if kind == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                _connect_unix(sock, where)
            except BaseException:
                sock.close()
                raise
            return sock
        if kind == "tcp":
            host, _, port = where.rpartition(":")
            sock = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
    except (OSError, ValueError) as exc:
        raise OvsdbConnectionError(f"cannot connect to {remote}: {exc}") from exc
    raise OvsdbError(f"unsupported OVSDB connection {remote!r}: use unix:PATH or tcp:IP:PORT")


def _connect_unix(sock: socket.socket, path: str) -> None:
    # NOTE: sun_path holds 107 bytes; pytest's and the lab's directories can be longer. Reach the
    # socket through a descriptor of its directory instead, as OVS's own tools do.
    if len(os.fsencode(path)) < 108:
        sock.connect(path)
        return
    directory, name = os.path.split(path)
    fd = os.open(directory or ".", os.O_PATH | os.O_DIRECTORY)
    try:
        sock.connect(f"/proc/self/fd/{fd}/{name}")
    finally:
        os.close(fd)


class Stream:
    """One JSON-RPC connection: whole messages out, whole messages in (OVSDB sends them
    back to back, without delimiters; a top-level message is always a JSON object)."""

    _decoder = json.JSONDecoder()

    def __init__(self, remote: str, timeout: float) -> None:
        self.remote = remote
        self.sock = connect(remote, timeout)
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._text = ""
        self._messages: deque[dict] = deque()

    def send(self, message: dict) -> None:
        try:
            self.sock.sendall(json.dumps(message, separators=(",", ":")).encode())
        except OSError as exc:
            raise OvsdbConnectionError(f"{self.remote}: {exc}") from exc

    def receive(self, deadline: float) -> dict | None:
        """The next message, or None if ``deadline`` (monotonic) passes first."""
        while not self._messages:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(1 << 18)
            except TimeoutError:
                return None
            except OSError as exc:
                raise OvsdbConnectionError(f"{self.remote}: {exc}") from exc
            if not chunk:
                raise OvsdbConnectionError(f"{self.remote}: connection closed")
            self._text += self._utf8.decode(chunk)
            self._split()
        return self._messages.popleft()

    def _split(self) -> None:
        text = self._text.lstrip()
        while text:
            try:
                message, end = self._decoder.raw_decode(text)
            except ValueError:
                break  # incomplete: the rest is still on its way
            if not isinstance(message, dict):
                raise OvsdbConnectionError(f"{self.remote}: not a JSON-RPC message: {text[:80]!r}")
            self._messages.append(message)
            text = text[end:].lstrip()
        self._text = text

    def answer_echo(self, message: dict) -> bool:
        """Reply to the server's "echo" request (its liveness probe); True if it was one."""
        if message.get("method") != "echo" or "id" not in message:
            return False
        self.send({"id": message["id"], "result": message.get("params", []), "error": None})
        return True

    def shutdown(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()
