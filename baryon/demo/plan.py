"""The demo's deployment, its steps as a user types them, and the clean-up of an earlier run. Pure.

``steps(deployment)`` is the ordered list of what ``build`` does through the API; each step
carries the command line a user would type for it (``openstack ...`` against the lab, or
``baryon lab vm create`` for the VMs: the lab plays Nova). ``cleanup_plan(leftovers)`` orders the
deletions of what an earlier run left so that each one is allowed when it runs: VMs (their ports),
floating IPs, router interfaces, routers (their gateway ports), other ports, security groups,
networks.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

MARKER = "baryon demo"  # the description of the objects without a demo-* name (public, the floating IP)


@dataclass(frozen=True)
class Deployment:
    external_network: str = "public"
    external_subnet: str = "public-subnet"
    physnet: str = "physnet1"
    external_cidr: str = "203.0.113.0/24"
    external_gateway: str = "203.0.113.1"
    pool: tuple[str, str] = ("203.0.113.100", "203.0.113.200")
    network: str = "demo-net"
    subnet: str = "demo-subnet"
    cidr: str = "10.0.0.0/24"
    router: str = "demo-router"
    group: str = "demo-sg"
    vms: tuple[tuple[str, str], ...] = (("demo-vm1", "compute1"), ("demo-vm2", "compute2"))
    floating_vm: str = "demo-vm1"
    prefix: str = "demo-"  # every object named by the demo starts with it


@dataclass(frozen=True)
class Step:
    """One step of the build: ``key`` says what ``build`` does, ``tool`` + ``args`` what a user types.

    ``args`` may hold ``{port:VM}`` for a VM's port id, known once the VM exists."""

    key: str
    title: str
    tool: str  # "openstack" | "baryon"
    args: tuple[str, ...]

    def command(self, endpoint: str, lab_args: tuple[str, ...] = (), values: dict[str, str] | None = None) -> str:
        """The full command line: ``openstack --os-auth-type none --os-endpoint URL ...`` or
        ``baryon lab [--state-dir D] ...``; ``values`` fill the ``{...}`` fields of ``args``."""
        args = list(self.args)
        for key, value in (values or {}).items():
            args = [a.replace("{" + key + "}", value) for a in args]
        if self.tool == "openstack":
            head = ["openstack", "--os-auth-type", "none", "--os-endpoint", endpoint]
        else:
            head = ["baryon", "lab", *lab_args]
        return shlex.join([*head, *args])


def steps(d: Deployment) -> list[Step]:
    pool = f"start={d.pool[0]},end={d.pool[1]}"
    plan = [
        Step("external-network", f"external network {d.external_network}", "openstack",
             ("network", "create", "--external", "--provider-network-type", "flat",
              "--provider-physical-network", d.physnet, "--description", MARKER, d.external_network)),
        Step("external-subnet", f"external subnet {d.external_cidr}", "openstack",
             ("subnet", "create", "--network", d.external_network, "--subnet-range", d.external_cidr,
              "--gateway", d.external_gateway, "--allocation-pool", pool, "--no-dhcp", d.external_subnet)),
        Step("network", f"tenant network {d.network}", "openstack", ("network", "create", d.network)),
        Step("subnet", f"tenant subnet {d.cidr}", "openstack",
             ("subnet", "create", "--network", d.network, "--subnet-range", d.cidr, d.subnet)),
        Step("router", f"router {d.router}", "openstack", ("router", "create", d.router)),
        Step("router-gateway", f"{d.router} gateway on {d.external_network}", "openstack",
             ("router", "set", "--external-gateway", d.external_network, d.router)),
        Step("router-interface", f"{d.router} interface on {d.subnet}", "openstack",
             ("router", "add", "subnet", d.router, d.subnet)),
        Step("group", f"security group {d.group}", "openstack", ("security", "group", "create", d.group)),
        Step("rule-icmp", f"{d.group}: ICMP in", "openstack",
             ("security", "group", "rule", "create", "--ingress", "--protocol", "icmp", d.group)),
        Step("rule-ssh", f"{d.group}: SSH (tcp 22) in", "openstack",
             ("security", "group", "rule", "create", "--ingress", "--protocol", "tcp", "--dst-port", "22", d.group)),
    ]
    for vm, node in d.vms:
        plan.append(Step(f"vm:{vm}", f"VM {vm} on {node}", "baryon",
                         ("vm", "create", vm, "--node", node, "--network", d.network, "--security-group", d.group)))
    plan.append(Step("floating-ip", f"floating IP on {d.floating_vm}", "openstack",
                     ("floating", "ip", "create", "--description", MARKER, "--port", f"{{port:{d.floating_vm}}}",
                      d.external_network)))
    return plan


# ---------------------------------------------------------------- clean-up of an earlier run


@dataclass(frozen=True)
class Leftovers:
    """What an earlier run left, by id (VMs by name): see ``find_leftovers``."""

    vms: tuple[str, ...] = ()
    floating_ips: tuple[str, ...] = ()
    router_interfaces: tuple[tuple[str, str], ...] = ()  # (router id, port id)
    routers: tuple[str, ...] = ()
    ports: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    networks: tuple[str, ...] = ()


@dataclass(frozen=True)
class Op:
    kind: str  # vm | floatingip | router-interface | router | port | group | network
    target: str
    router: str = ""


def find_leftovers(d: Deployment, lab_vms: dict[str, str], networks: list[dict], routers: list[dict],
                   ports: list[dict], floating_ips: list[dict], groups: list[dict]) -> Leftovers:
    """The demo's objects among the API's listings and the lab's VMs (name -> port id): named
    ``demo-*``, or (the external network, floating IPs) described as the demo's. Ports: those on the
    demo's networks that neither a VM's deletion, the network's (DHCP) nor a router's removes."""
    mine = [n for n in networks if n["name"].startswith(d.prefix)
            or (n["name"] == d.external_network and n.get("description") == MARKER)]
    net_ids = {n["id"] for n in mine}
    router_ids = [r["id"] for r in routers if r["name"].startswith(d.prefix)]
    interfaces = tuple((p["device_id"], p["id"]) for p in ports
                       if p["device_owner"] == "network:router_interface" and p["device_id"] in router_ids)
    owned_elsewhere = ("network:dhcp", "network:router_interface", "network:router_gateway", "network:floatingip")
    vms = sorted(name for name in lab_vms if name.startswith(d.prefix))
    vm_ports = {lab_vms[name] for name in vms}
    stray = tuple(p["id"] for p in ports if p["network_id"] in net_ids and p["device_owner"] not in owned_elsewhere
                  and p["id"] not in vm_ports)
    fips = tuple(f["id"] for f in floating_ips if f.get("description") == MARKER or f.get("router_id") in router_ids
                 or f.get("floating_network_id") in net_ids)
    return Leftovers(vms=tuple(vms), floating_ips=fips,
                     router_interfaces=interfaces, routers=tuple(router_ids), ports=stray,
                     groups=tuple(g["id"] for g in groups if g["name"].startswith(d.prefix)),
                     # The tenant networks before the external one: nothing depends on them by then.
                     networks=tuple(n["id"] for n in sorted(mine, key=lambda n: n["name"] == d.external_network)))


def cleanup_plan(left: Leftovers) -> list[Op]:
    """Deletions in an order the API allows: a port in use by a router or a VM, a network with
    ports, a group in use, are refused."""
    ops = [Op("vm", name) for name in left.vms]
    ops += [Op("floatingip", fip) for fip in left.floating_ips]
    ops += [Op("router-interface", port, router) for router, port in left.router_interfaces]
    ops += [Op("router", router) for router in left.routers]
    ops += [Op("port", port) for port in left.ports]
    ops += [Op("group", group) for group in left.groups]
    ops += [Op("network", net) for net in left.networks]
    return ops

