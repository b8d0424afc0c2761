"""A router namespace's NAT rules as Neutron's legacy L3 agent writes them (pure).

``ruleset(router, gateway_device)`` returns the ``Ruleset`` (``baryon.model.firewall``) of one
``qrouter-`` namespace, for the netfilter driver (``baryon.agent.drivers.netfilter`` with
``SCOPE``: table nat, IPv4, chains ``neutron-l3-agent-*`` and ``neutron-postrouting-bottom``).
The names are Neutron's ``iptables_manager`` ones for the binary ``neutron-l3-agent``; every
router namespace has the same chains, filled from the router:

- hooks: ``PREROUTING -j neutron-l3-agent-PREROUTING``, ``OUTPUT -j neutron-l3-agent-OUTPUT``,
  ``POSTROUTING -j neutron-l3-agent-POSTROUTING`` then ``POSTROUTING -j neutron-postrouting-bottom``
  (Neutron appends the last one at the bottom; here both sit at the top, in that order);
- ``neutron-postrouting-bottom``: ``-j neutron-l3-agent-snat`` with Neutron's comment;
- ``neutron-l3-agent-snat``: ``-j neutron-l3-agent-float-snat`` first (a VM with a floating IP
  leaves with the floating address); with a gateway that has an IPv4 address G (the first):
  when ``enable_snat`` (none at all without it, as Neutron's), ``-o qg- -j SNAT --to-source G``
  then the hairpin rule (see NOTE);
- ``neutron-l3-agent-POSTROUTING``, with such a gateway: ``! -i qg- ! -o qg- -m conntrack !
  --ctstate DNAT -j ACCEPT`` (east-west between the router's own subnets is never NATed);
- per floating IP (by id), with such a gateway: ``-d FIP/32 -j DNAT --to-destination FIXED`` in
  ``neutron-l3-agent-PREROUTING`` and ``-OUTPUT``; ``-s FIXED/32 -j SNAT --to-source FIP`` in
  ``neutron-l3-agent-float-snat``.

SNAT rules carry ``--random-fully`` (Neutron's ``use_random_fully`` default, supported here).
Rules are written as ``iptables-save`` 1.8.9 (nf_tables) prints them (``/32`` on host
addresses, the comment in double quotes, matches in order), so that what the driver observes
equals what is desired and an unchanged router is never rewritten.

NOTE: Neutron's hairpin rule (``-m mark ! --mark 0x2/0xffff -m conntrack --ctstate DNAT -j SNAT
--to-source G``: a VM reaching another VM of the same router at its floating address gets its
replies back through the router) depends on a mangle-table mark set on packets entering by qg-.
The mangle table is not managed here; ``! -i qg-`` says the same thing without a mark (packets
that entered by qg- are exactly the marked ones; locally generated ones have no input device and
match, as unmarked ones do in Neutron).
"""

from __future__ import annotations

import ipaddress

from baryon.model.firewall import Ruleset, Scope
from baryon.model.l3 import Router

BINARY = "neutron-l3-agent"
WRAP = BINARY + "-"  # Neutron's iptables_manager wraps the binary's chains as <binary>-<chain>
BOTTOM = "neutron-postrouting-bottom"  # unwrapped, shared by Neutron's agents
PREROUTING, OUTPUT, POSTROUTING = WRAP + "PREROUTING", WRAP + "OUTPUT", WRAP + "POSTROUTING"
SNAT, FLOAT_SNAT = WRAP + "snat", WRAP + "float-snat"
KEY = ("ipv4", "nat")
SCOPE = Scope(tables=("nat",), prefixes=(WRAP, BOTTOM), families=("ipv4",), ipsets=False)
BOTTOM_COMMENT = '-m comment --comment "Perform source NAT on outgoing traffic."'
RANDOM_FULLY = " --random-fully"
HOOKS = (("PREROUTING", f"-j {PREROUTING}"), ("OUTPUT", f"-j {OUTPUT}"), ("POSTROUTING", f"-j {POSTROUTING}"),
         ("POSTROUTING", f"-j {BOTTOM}"))


def gateway_ipv4(router: Router) -> str | None:
    """The gateway port's first IPv4 address (Neutron's SNAT source), None without one."""
    if router.gateway is None:
        return None
    for _subnet, address in router.gateway.fixed_ips:
        if ipaddress.ip_address(address).version == 4:
            return str(ipaddress.ip_address(address))
    return None


def ruleset(router: Router, gateway_device: str | None) -> Ruleset:
    """The nat table of the router's namespace (see the module docstring)."""
    gateway = gateway_ipv4(router) if gateway_device else None
    prerouting: list[str] = []
    output: list[str] = []
    postrouting: list[str] = []
    float_snat: list[str] = []
    snat = [f"-j {FLOAT_SNAT}"]
    if gateway is not None:
        dev = gateway_device
        postrouting.append(f"! -i {dev} ! -o {dev} -m conntrack ! --ctstate DNAT -j ACCEPT")
        if router.enable_snat:  # both, as Neutron's external_gateway_nat_snat_rules
            snat.append(f"-o {dev} -j SNAT --to-source {gateway}{RANDOM_FULLY}")
            snat.append(f"! -i {dev} -m conntrack --ctstate DNAT -j SNAT --to-source {gateway}{RANDOM_FULLY}")
        for fip in sorted(router.floating_ips, key=lambda f: f.id):
            floating, fixed = ipaddress.ip_address(fip.floating_ip_address), ipaddress.ip_address(fip.fixed_ip_address)
            if floating.version != 4 or fixed.version != 4:
                continue
            prerouting.append(f"-d {floating}/32 -j DNAT --to-destination {fixed}")
            output.append(f"-d {floating}/32 -j DNAT --to-destination {fixed}")
            float_snat.append(f"-s {fixed}/32 -j SNAT --to-source {floating}{RANDOM_FULLY}")
    chains = {PREROUTING: tuple(prerouting), OUTPUT: tuple(output), POSTROUTING: tuple(postrouting),
              FLOAT_SNAT: tuple(float_snat), SNAT: tuple(snat), BOTTOM: (f"{BOTTOM_COMMENT} -j {SNAT}",)}
    return Ruleset(chains={KEY: chains}, hooks={KEY: HOOKS})


def wired_floating_ips(router: Router, gateway_device: str | None) -> tuple[str, ...]:
    """The ids of the router's floating IPs that ``ruleset`` wires (IPv4, behind an IPv4 gateway)."""
    if not gateway_device or gateway_ipv4(router) is None:
        return ()
    return tuple(f.id for f in sorted(router.floating_ips, key=lambda f: f.id)
                 if ipaddress.ip_address(f.floating_ip_address).version == 4
                 and ipaddress.ip_address(f.fixed_ip_address).version == 4)
