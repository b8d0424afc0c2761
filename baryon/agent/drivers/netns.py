"""Network namespaces and the DHCP ports' veth pairs of one node (the only code of the DHCP agent
that runs ``ip``, ``ethtool`` and ``sysctl``; links are read over netlink, ``drivers.netlink``).

``Namespaces(node_netns=None)``: the DHCP agent runs inside its node's network and mount
namespaces (on a real host, the root ones), so node-side commands run as they are and
``ip netns add`` registers ``qdhcp-`` namespaces in the node's own ``/run/netns``. Tests pass the
name of a throwaway namespace acting as the node: node-side commands are then prefixed with
``nsenter --net=/run/netns/<node_netns> --`` (never falling back to the caller's namespace), while
the ``qdhcp-`` namespaces are registered in the caller's ``/run/netns``. Commands inside a
``qdhcp-`` namespace use ``ip -n`` or ``nsenter --net`` (~1.5 ms cheaper than ``ip netns exec``).

Every method is idempotent: ``ensure_*`` converges, ``delete_*`` succeeds when the thing is gone.

- ``existing(prefix)``: names registered in /run/netns; ``path(name)``; ``inode(name)``.
- ``ensure_namespace(name)``: ``ip netns add``, loopback up, and
  ``net.ipv6.conf.default.accept_ra=0`` in it before any device exists (as Neutron: the DHCP port's
  IPv6 addresses are configured, never learnt from router advertisements).
- ``delete_namespace(name)``: ``ip netns delete`` (its devices go with it; a veth's peer too).
- ``links(namespaces)``: each namespace's links (``None``: the node's), one netlink socket each.
- ``ensure_device(op)``: ``EnsureDevice``, see its docstring. Creating the pair: one ``ip link add``
  in the node whose peer is created directly in the ``qdhcp-`` namespace with its MAC and MTU
  (nothing ever appears in the node under the peer's name); IPv6 off on the tap before it comes up
  (as os-vif does for host-side devices: it must not speak on the tenant network); ``ethtool -K
  <device> tx off`` (the userspace datapath leaves checksums partial otherwise: DATAPLANE.md); then
  one ``ip -b`` batch in the namespace: MAC and MTU, addresses removed and added, the device up,
  default routes removed and replaced (after "up": a gateway is only reachable over a link that
  is up). A failure leaves the device down or without a route, which the next observation sees.
- ``delete_link(namespace, name)``.
- For the L3 agent's router namespaces: ``set_sysctls(namespace, values)`` (one ``sysctl -w``),
  ``ensure_addresses(op)`` (one ``ip -b``), ``ensure_routes(op)`` (one ``ip -b -force`` deleting,
  where a route already gone is fine, then one ``ip -b`` replacing).

Errors raise ``NetnsError`` naming the command and its stderr.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from baryon.agent.drivers import netlink
from baryon.agent.plan.dhcp import EnsureDevice, ObservedLink
from baryon.agent.plan.l3 import EnsureAddresses, EnsureRoutes

NETNS_DIR = Path("/run/netns")
DEFAULT_TIMEOUT = 30.0
_GONE = ("Cannot find device", "No such file or directory", "does not exist")
_ROUTE_GONE = ("No such process", "Cannot find device")


class NetnsError(RuntimeError):
    def __init__(self, message: str, *, command: str, stderr: str = "") -> None:
        super().__init__(message)
        self.command = command
        self.stderr = stderr


class Namespaces:
    def __init__(self, node_netns: str | None = None, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.node_netns = node_netns
        self.timeout = timeout
        self._node_prefix = ["nsenter", f"--net={NETNS_DIR / node_netns}", "--"] if node_netns else []

    # ------------------------------------------------------------ observe

    @staticmethod
    def path(name: str) -> str:
        return str(NETNS_DIR / name)

    def existing(self, prefix: str) -> set[str]:
        try:
            return {name for name in os.listdir(NETNS_DIR) if name.startswith(prefix)}
        except FileNotFoundError:
            return set()

    def inode(self, name: str) -> int | None:
        try:
            return os.stat(NETNS_DIR / name).st_ino
        except OSError:
            return None

    def links(self, namespaces: Sequence[str | None]) -> dict[str | None, tuple[ObservedLink, ...]]:
        """The links of each namespace (None: the node); a namespace that is gone is left out."""
        node = self.path(self.node_netns) if self.node_netns else None
        paths = [self.path(name) if name is not None else node for name in namespaces]
        sockets = netlink.route_sockets(paths)
        found = {}
        try:
            for name, sock in zip(namespaces, sockets):
                if sock is not None:
                    found[name] = netlink.read_links(sock)
        finally:
            for sock in sockets:
                if sock is not None:
                    sock.close()
        return found

    # ------------------------------------------------------------ change

    def ensure_namespace(self, name: str) -> bool:
        """Create the namespace unless it exists; True if created now."""
        if (NETNS_DIR / name).exists():
            return False
        self._run(["ip", "netns", "add", name])
        self._run(["ip", "-n", name, "link", "set", "lo", "up"])
        self._run(["nsenter", f"--net={self.path(name)}", "--", "sysctl", "-q", "-w",
                   "net.ipv6.conf.default.accept_ra=0"])
        return True

    def delete_namespace(self, name: str) -> None:
        if (NETNS_DIR / name).exists():
            self._run(["ip", "netns", "delete", name], gone_ok=True)

    def delete_link(self, namespace: str | None, name: str) -> None:
        if namespace is None:
            self._run([*self._node_prefix, "ip", "link", "delete", name], gone_ok=True)
        elif (NETNS_DIR / namespace).exists():
            self._run(["ip", "-n", namespace, "link", "delete", name], gone_ok=True)

    def ensure_device(self, op: EnsureDevice) -> None:
        node = self._node_prefix
        if op.create:
            self._run([*node, "ip", "link", "add", op.tap, "mtu", str(op.mtu), "type", "veth", "peer", "name",
                       op.device, "address", op.mac, "mtu", str(op.mtu), "netns", op.namespace])
            self._run([*node, "sysctl", "-q", "-w", f"net.ipv6.conf.{op.tap}.disable_ipv6=1"])
        self._run([*node, "ip", "link", "set", op.tap, "mtu", str(op.mtu), "up"])
        self._run(["nsenter", f"--net={self.path(op.namespace)}", "--", "ethtool", "-K", op.device, "tx", "off"])
        lines = [f"link set {op.device} address {op.mac} mtu {op.mtu}"]
        lines += [f"address del {address} dev {op.device}" for address in op.remove_addresses]
        lines += [f"address add {address} dev {op.device}" for address in op.add_addresses]
        lines.append(f"link set {op.device} up")
        # The family of "default" follows the next hop's.
        lines += [f"route del default via {gw} dev {op.device}" for gw in op.remove_gateways]
        lines += [f"route replace default via {gw} dev {op.device}{' onlink' if onlink else ''}"
                  for gw, onlink in op.gateways]
        self._run(["ip", "-n", op.namespace, "-b", "-"], stdin="".join(line + "\n" for line in lines))

    def set_sysctls(self, namespace: str, values: Sequence[tuple[str, str]]) -> None:
        self._run(["nsenter", f"--net={self.path(namespace)}", "--", "sysctl", "-q", "-w",
                   *(f"{name}={value}" for name, value in values)])

    def ensure_addresses(self, op: EnsureAddresses) -> None:
        lines = [f"address del {address} dev {op.device}" for address in op.remove]
        lines += [f"address add {address} dev {op.device}" for address in op.add]
        self._run(["ip", "-n", op.namespace, "-b", "-"], stdin="".join(line + "\n" for line in lines))

    def ensure_routes(self, op: EnsureRoutes) -> None:
        if op.remove:
            lines = "".join(f"route del {destination} via {nexthop}\n" for destination, nexthop in op.remove)
            try:
                self._run(["ip", "-n", op.namespace, "-force", "-b", "-"], stdin=lines)
            except NetnsError as exc:
                failed = [line for line in exc.stderr.splitlines()
                          if line.strip() and not line.startswith("Command failed")]
                if not all(any(marker in line for marker in _ROUTE_GONE) for line in failed):
                    raise
        if op.add:
            lines = "".join(f"route replace {r.destination} via {r.nexthop}{f' dev {r.device}' if r.device else ''}"
                            f"{' onlink' if r.onlink else ''}\n" for r in op.add)
            self._run(["ip", "-n", op.namespace, "-b", "-"], stdin=lines)

    # ------------------------------------------------------------ commands

    def _run(self, argv: Sequence[str], *, stdin: str | None = None, gone_ok: bool = False) -> str:
        command = " ".join(argv)
        try:
            proc = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, timeout=self.timeout,
                                  check=False)
        except FileNotFoundError:
            raise NetnsError(f"{argv[0]}: command not found", command=command) from None
        except subprocess.TimeoutExpired:
            raise NetnsError(f"{command}: no answer in {self.timeout:g} s", command=command) from None
        if proc.returncode != 0:
            stderr = proc.stderr.strip()
            if gone_ok and any(marker in stderr for marker in _GONE):
                return ""
            detail = f"{stderr}\n(input:\n{stdin})" if stdin else stderr
            raise NetnsError(f"{command}: exit {proc.returncode}: {detail}", command=command, stderr=stderr)
        return proc.stdout

