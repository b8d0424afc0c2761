"""The demo's deployment on a running lab, through the API as a user would build it.

``cleanup`` deletes what an earlier run left (found by ``plan.find_leftovers``, deleted in
``plan.cleanup_plan``'s order; whatever is already gone is fine). ``build`` runs ``plan.steps``
one by one, each through the API with the request the ``openstack`` command of the step sends, and
reports each (its command line, its time, what it made) through ``say``. The VMs are made as
``baryon lab vm create`` makes them (the lab plays Nova: port, binding, plug, DHCP).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from baryon.demo import plan, summary
from baryon.lab import vms
from baryon.lab.api import Api, ApiError
from baryon.lab.lab import Lab

Say = Callable[[str], None]


@dataclass
class Built:
    """What the build made (API objects as returned), for the checks and the picture."""

    external: dict = field(default_factory=dict)
    external_subnet: dict = field(default_factory=dict)
    network: dict = field(default_factory=dict)
    subnet: dict = field(default_factory=dict)
    router: dict = field(default_factory=dict)
    group: dict = field(default_factory=dict)
    vms: dict[str, vms.Vm] = field(default_factory=dict)
    floating_ip: dict = field(default_factory=dict)


def cleanup(lab: Lab, api: Api, d: plan.Deployment, say: Say) -> int:
    """Delete what an earlier demo left; returns how many objects went."""
    def listing(path: str, key: str) -> list[dict]:
        return api.get(f"/v2.0/{path}")[key]

    lab_vms = {vm.name: vm.port_id for vm in vms.load_all(lab.paths)}
    left = plan.find_leftovers(d, lab_vms, listing("networks", "networks"),
                               listing("routers", "routers"), listing("ports", "ports"),
                               listing("floatingips", "floatingips"), listing("security-groups", "security_groups"))
    ops = plan.cleanup_plan(left)
    for op in ops:
        started = time.monotonic()
        _delete(lab, api, op)
        say(summary.step_line(f"deleted {op.kind} {op.target}", time.monotonic() - started, ""))
    return len(ops)


def _delete(lab: Lab, api: Api, op: plan.Op) -> None:
    if op.kind == "vm":
        vms.delete(lab, op.target)
        return
    if op.kind == "router-interface":
        method, path, body = "PUT", f"/v2.0/routers/{op.router}/remove_router_interface", {"port_id": op.target}
    else:
        collection = {"floatingip": "floatingips", "router": "routers", "port": "ports", "group": "security-groups",
                      "network": "networks"}[op.kind]
        method, path, body = "DELETE", f"/v2.0/{collection}/{op.target}", None
    try:
        api.request(method, path, body)
    except ApiError as exc:
        if exc.status != 404:  # gone already: what clean-up wants
            raise


def build(lab: Lab, api: Api, d: plan.Deployment, say: Say, lab_args: tuple[str, ...] = ()) -> Built:
    built = Built()
    actions = _actions(lab, api, d, built)
    for step in plan.steps(d):
        started = time.monotonic()
        outcome = actions[step.key.split(":")[0]](step)
        values = {f"port:{name}": vm.port_id for name, vm in built.vms.items()}
        say(summary.step_line(step.title, time.monotonic() - started, outcome))
        say("          $ " + step.command(api.url, lab_args, values))
    return built


def _post(api: Api, collection: str, key: str, body: dict) -> dict:
    return api.request("POST", f"/v2.0/{collection}", {key: body})[key]


def _actions(lab: Lab, api: Api, d: plan.Deployment, built: Built) -> dict[str, Callable[[plan.Step], str]]:
    """What each step key does: the request its ``openstack`` command sends; returns what it made."""

    def external_network(_step: plan.Step) -> str:
        # A flat network on physnet1 can exist once: reuse one made by someone else.
        for net in api.get("/v2.0/networks", **{"router:external": "True"})["networks"]:
            if net.get("provider:network_type") == "flat" and net.get("provider:physical_network") == d.physnet:
                built.external = net
                return f"reused network {net['name'] or net['id']} (flat on {d.physnet} already)"
        built.external = _post(api, "networks", "network", {
            "name": d.external_network, "router:external": True, "provider:network_type": "flat",
            "provider:physical_network": d.physnet, "description": plan.MARKER})
        return f"network {built.external['id'][:8]}, flat on {d.physnet}"

    def external_subnet(_step: plan.Step) -> str:
        for sub in api.get("/v2.0/subnets", network_id=built.external["id"])["subnets"]:
            if sub["cidr"] == d.external_cidr:
                built.external_subnet = sub
                return f"reused subnet {sub['id'][:8]}"
        built.external_subnet = _post(api, "subnets", "subnet", {
            "name": d.external_subnet, "network_id": built.external["id"], "ip_version": 4, "cidr": d.external_cidr,
            "gateway_ip": d.external_gateway, "enable_dhcp": False,
            "allocation_pools": [{"start": d.pool[0], "end": d.pool[1]}]})
        return f"subnet {built.external_subnet['id'][:8]}"

    def network(_step: plan.Step) -> str:
        built.network = _post(api, "networks", "network", {"name": d.network})
        net = built.network
        return f"network {net['id'][:8]}, {net.get('provider:network_type')} VNI {net.get('provider:segmentation_id')}"

    def subnet(_step: plan.Step) -> str:
        built.subnet = _post(api, "subnets", "subnet", {"name": d.subnet, "network_id": built.network["id"],
                                                        "ip_version": 4, "cidr": d.cidr})
        return f"subnet {built.subnet['id'][:8]}, gateway {built.subnet['gateway_ip']}, DHCP on"

    def router(_step: plan.Step) -> str:
        built.router = _post(api, "routers", "router", {"name": d.router})
        return f"router {built.router['id'][:8]}"

    def router_gateway(_step: plan.Step) -> str:
        built.router = api.request("PUT", f"/v2.0/routers/{built.router['id']}", {"router": {
            "external_gateway_info": {"network_id": built.external["id"]}}})["router"]
        fixed = built.router["external_gateway_info"]["external_fixed_ips"]
        return f"gateway {', '.join(f['ip_address'] for f in fixed)} (SNAT on)"

    def router_interface(_step: plan.Step) -> str:
        made = api.request("PUT", f"/v2.0/routers/{built.router['id']}/add_router_interface",
                           {"subnet_id": built.subnet["id"]})
        return f"interface port {made['port_id'][:8]}, {built.subnet['gateway_ip']}"

    def group(_step: plan.Step) -> str:
        built.group = _post(api, "security-groups", "security_group", {"name": d.group})
        return f"security group {built.group['id'][:8]} (egress allowed, ingress by its rules)"

    def rule(step: plan.Step) -> str:
        body = {"security_group_id": built.group["id"], "direction": "ingress", "ethertype": "IPv4",
                "remote_ip_prefix": "0.0.0.0/0"}  # openstack's default remote for a rule
        if step.key == "rule-icmp":
            body["protocol"] = "icmp"
        else:
            body.update(protocol="tcp", port_range_min=22, port_range_max=22)
        made = _post(api, "security-group-rules", "security_group_rule", body)
        return f"rule {made['id'][:8]}"

    def vm(step: plan.Step) -> str:
        name = step.key.split(":", 1)[1]
        node = dict(d.vms)[name]
        made = vms.create(lab, name, node, network=built.network["id"], security_groups=[built.group["id"]])
        built.vms[name] = made
        how = "by DHCP" if made.dhcp else "static"
        return f"port {made.port_id[:8]}, {', '.join(made.addresses)} ({how})"

    def floating_ip(_step: plan.Step) -> str:
        built.floating_ip = _post(api, "floatingips", "floatingip", {
            "floating_network_id": built.external["id"], "port_id": built.vms[d.floating_vm].port_id,
            "description": plan.MARKER})
        fip = built.floating_ip
        return f"{fip['floating_ip_address']} -> {fip['fixed_ip_address']} (router {fip['router_id'][:8]})"

    return {"external-network": external_network, "external-subnet": external_subnet, "network": network,
            "subnet": subnet, "router": router, "router-gateway": router_gateway,
            "router-interface": router_interface, "group": group, "rule-icmp": rule, "rule-ssh": rule, "vm": vm,
            "floating-ip": floating_ip}
