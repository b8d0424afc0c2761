"""The ``Scene`` the picture draws, read from the real state: the lab's status (nodes, processes,
VMs), each node's OVS bridges (``ovs-vsctl list-br``) and namespaces (``ip netns ls``, with the
addresses of the devices inside), and the API (networks and segments, subnets, routers and their
ports, floating IPs, security groups)."""

from __future__ import annotations

from baryon.demo.picture import Namespace, NetworkView, NodeView, RouterView, Scene, VmView
from baryon.lab import host, vms
from baryon.lab.api import Api
from baryon.lab.lab import Lab


def netns_names(listing: str) -> list[str]:
    """Names from ``ip netns ls`` output ("qrouter-... (id: 0)")."""
    return [line.split()[0] for line in listing.splitlines() if line.strip()]


def device_lines(ip_o_addr: str) -> list[str]:
    """``ip -o addr`` output as "device address address ..." lines, without lo and link-local."""
    found: dict[str, list[str]] = {}
    for line in ip_o_addr.splitlines():
        words = line.split()
        if len(words) < 4 or words[1] == "lo" or words[2] not in ("inet", "inet6") or words[3].startswith("fe80:"):
            continue
        found.setdefault(words[1].split("@")[0], []).append(words[3])
    return [f"{dev} {' '.join(addrs)}" for dev, addrs in found.items()]


def observe(lab: Lab, api: Api) -> Scene:
    def listing(path: str, key: str) -> list[dict]:
        return api.get(f"/v2.0/{path}")[key]

    networks = listing("networks", "networks")
    subnets = listing("subnets", "subnets")
    routers = listing("routers", "routers")
    fips = listing("floatingips", "floatingips")
    groups = {g["id"]: g["name"] for g in listing("security-groups", "security_groups")}
    ports = {p["id"]: p for p in listing("ports", "ports")}
    net_name = {n["id"]: n["name"] or n["id"][:8] for n in networks}
    router_name = {r["id"]: r["name"] or r["id"][:8] for r in routers}
    lab_vms = vms.load_all(lab.paths)
    vm_by_port = {vm.port_id: vm.name for vm in lab_vms}

    nodes = [_node(lab, node, net_name, router_name, lab_vms, ports, groups, fips)
             for node in lab.status()["nodes"]]
    return Scene(nodes=tuple(nodes), networks=tuple(_network(n, subnets) for n in networks),
                 routers=tuple(_router(r, ports, fips, net_name, vm_by_port) for r in routers))


def _node(lab: Lab, status: dict, net_name: dict, router_name: dict, lab_vms: list[vms.Vm], ports: dict,
          groups: dict, fips: list[dict]) -> NodeView:
    node = lab.topology.node(status["name"])
    addresses = [f"mgmt {status['mgmt_ip']}"] if status["mgmt_ip"] else []
    addresses += [f"vtep {status['local_ip']}"] if status["local_ip"] else []
    if status["role"] == "external":
        addresses += status["addresses"]
    processes = tuple(p["name"] for p in status["processes"]
                      if p["pid"] and p["name"] not in ("ovsdb-server", "ovs-vswitchd"))
    bridges: tuple[str, ...] = ()
    namespaces: list[Namespace] = []
    if node.runs_ovs and status["up"]:
        place = lab.place(node)
        bridges = tuple(lab.ovs(node).vsctl("list-br").split())
        for name in netns_names(place.run(["ip", "netns", "ls"]).stdout):
            devices = place.run(["ip", "netns", "exec", name, "ip", "-o", "addr"], check=False).stdout
            namespaces.append(Namespace(name, _label(name, net_name, router_name), tuple(device_lines(devices))))
    floating = {f["port_id"]: f["floating_ip_address"] for f in fips if f.get("port_id")}
    here = []
    for vm in (v for v in lab_vms if v.node == node.name):
        port = ports.get(vm.port_id, {})
        vm_groups = tuple(groups.get(g, g[:8]) for g in port.get("security_groups", []))
        here.append(VmView(vm.name, tuple(vm.addresses), net_name.get(vm.network_id, vm.network_id[:8]),
                           floating.get(vm.port_id), vm_groups))
    return NodeView(node.name, node.role, tuple(addresses), processes, bridges, tuple(namespaces), tuple(here))


def _label(namespace: str, net_name: dict, router_name: dict) -> str:
    kind, _, ident = namespace.partition("-")
    if kind == "qrouter":
        return f"router {router_name.get(ident, ident[:8])}"
    if kind == "qdhcp":
        return f"DHCP of {net_name.get(ident, ident[:8])}"
    return "namespace"


def _network(net: dict, subnets: list[dict]) -> NetworkView:
    kind = net.get("provider:network_type") or "?"
    if kind == "flat":
        segment = f"flat {net.get('provider:physical_network')}"
    elif kind == "vlan":
        segment = f"vlan {net.get('provider:physical_network')} {net.get('provider:segmentation_id')}"
    else:
        segment = f"{kind} VNI {net.get('provider:segmentation_id')}" if kind == "vxlan" else kind
    cidrs = tuple(s["cidr"] for s in subnets if s["network_id"] == net["id"])
    return NetworkView(net["name"] or net["id"][:8], segment, cidrs, bool(net.get("router:external")))


def _router(router: dict, ports: dict, fips: list[dict], net_name: dict, vm_by_port: dict) -> RouterView:
    gateway = ""
    info = router.get("external_gateway_info") or {}
    if info:
        addresses = ", ".join(f["ip_address"] for f in info.get("external_fixed_ips", []))
        gateway = f"{addresses} on {net_name.get(info['network_id'], info['network_id'][:8])}"
    mine = [p for p in ports.values() if p["device_id"] == router["id"]]
    interfaces = tuple(f"{ip['ip_address']} on {net_name.get(p['network_id'], '?')}" for p in mine
                       if p["device_owner"] == "network:router_interface" for ip in p["fixed_ips"])
    host_name = next((p.get("binding:host_id") for p in mine if p.get("binding:host_id")), "") or "(unscheduled)"
    floating = tuple(f"{f['floating_ip_address']} -> {f['fixed_ip_address']}"
                     + (f" ({vm_by_port[f['port_id']]})" if f.get("port_id") in vm_by_port else "")
                     for f in fips if f.get("router_id") == router["id"] and f.get("port_id"))
    return RouterView(router["name"] or router["id"][:8], host_name, router.get("status", "?"), gateway, interfaces,
                      floating)


def netns_listing(lab: Lab, node_name: str) -> str:
    """``ip netns ls`` as a user sees it on a node (``baryon lab exec NODE -- ip netns ls``)."""
    node = lab.topology.node(node_name)
    if not host.netns_path(node.netns).exists():
        return ""
    return lab.place(node).run(["ip", "netns", "ls"]).stdout
