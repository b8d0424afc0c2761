"""A throwaway network namespace for tests that touch netfilter (iptables, ipset, conntrack, sysctl).

``Netns()`` is named ``bnf-<hex>`` (a run that crashed is recognisable in ``ip netns ls``),
created with its loopback up by ``create()`` and deleted by ``remove()`` (safe to call twice).
``run(argv)`` runs a command inside it (``nsenter --net``, as the driver does with ``netns=``):
tests read back what the driver wrote with the same tools, never in the root namespace.
Netfilter state (tables, sets, conntrack entries, the net.bridge sysctls) belongs to the
namespace and disappears with it.

Use it as a fixture that removes it in its finalizer whatever the test did, e.g.::

    @pytest.fixture
    def netns() -> Iterator[Netns]:
        ns = Netns().create()
        try:
            yield ns
        finally:
            ns.remove()
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Sequence

from baryon.lab import host

__all__ = ["NETNS_PREFIX", "Netns"]

NETNS_PREFIX = "bnf-"


class Netns:
    def __init__(self, name: str | None = None) -> None:
        self.name = name or NETNS_PREFIX + secrets.token_hex(4)

    def create(self) -> Netns:
        host.ensure_netns(self.name)
        return self

    def remove(self) -> None:
        host.remove_netns(self.name)

    def run(self, argv: Sequence[str], *, check: bool = True, input: str | None = None,
            timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the namespace; raise ``LabError`` with its stderr if it fails."""
        return host.run(["nsenter", f"--net={host.netns_path(self.name)}", "--", *argv], check=check, input=input,
                        timeout=timeout)
