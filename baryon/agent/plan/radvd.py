"""radvd's configuration and command line for one router, as Neutron's ``neutron.agent.linux.ra``
renders them (pure).

A router interface advertises when one of its IPv6 subnets has an ``ipv6_ra_mode`` (slaac,
dhcpv6-stateless, dhcpv6-stateful): one ``interface qr-...`` block per such interface, in the
router's interface order, with Neutron's template: intervals, the link MTU, the Other/Managed
flags from the RA modes, and per subnet a ``prefix`` block, autonomous for slaac and
dhcpv6-stateless, not for dhcpv6-stateful. ``config(...)`` is None when nothing advertises (no
radvd for the router).

The command line is Neutron's: ``radvd -C <conf> -p <pidfile> -m syslog [-u <user>]``; the
process is recognised by ``-p <pidfile>`` in its command line.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from baryon.model.l3 import RouterPort

SLAAC, STATELESS, STATEFUL = "slaac", "dhcpv6-stateless", "dhcpv6-stateful"
RA_MODES = (SLAAC, STATELESS, STATEFUL)
CONF, PIDFILE = "radvd.conf", "radvd.pid"
IPV6_MIN_MTU = 1280


def advertised(port: RouterPort) -> tuple[tuple[str, str], ...]:
    """(prefix, ra mode) of the port's IPv6 subnets that have an RA mode, in the port's order."""
    found = []
    for subnet_id, _address in port.fixed_ips:
        subnet = port.subnet(subnet_id)
        if subnet is None or subnet.ip_version != 6 or subnet.ipv6_ra_mode not in RA_MODES:
            continue
        prefix = str(ipaddress.ip_network(subnet.cidr, strict=False))
        if (prefix, subnet.ipv6_ra_mode) not in found:
            found.append((prefix, subnet.ipv6_ra_mode))
    return tuple(found)


def config(interfaces: Sequence[tuple[str, RouterPort]], min_interval: int = 30, max_interval: int = 100) -> str | None:
    """radvd.conf for the (device name, port) pairs of a router's interfaces; None if none advertises."""
    blocks = []
    for device, port in interfaces:
        prefixes = advertised(port)
        if not prefixes:
            continue
        modes = {mode for _, mode in prefixes}
        lines = [f"interface {device}", "{", "   AdvSendAdvert on;", f"   MinRtrAdvInterval {min_interval};",
                 f"   MaxRtrAdvInterval {max_interval};"]
        if port.mtu >= IPV6_MIN_MTU:
            lines.append(f"   AdvLinkMTU {port.mtu};")
        if STATELESS in modes:
            lines.append("   AdvOtherConfigFlag on;")
        if STATEFUL in modes:
            lines.append("   AdvManagedFlag on;")
        for prefix, mode in prefixes:
            autonomous = "off" if mode == STATEFUL else "on"
            lines += [f"   prefix {prefix}", "   {", "        AdvOnLink on;", f"        AdvAutonomous {autonomous};",
                      "   };"]
        lines.append("};")
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks) if blocks else None


def command_line(directory: str, user: str | None) -> tuple[str, ...]:
    argv = ("radvd", "-C", f"{directory}/{CONF}", "-p", f"{directory}/{PIDFILE}", "-m", "syslog")
    return (*argv, "-u", user) if user else argv
