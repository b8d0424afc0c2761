"""VMs in the lab: network namespaces plugged the way Nova and os-vif plug an instance.

``create`` does what Nova does with Neutron: creates the port through the API
(``device_owner`` ``compute:nova``, ``device_id`` the VM's id, ``binding:host_id`` its node), then
what os-vif's hybrid plug does on that node: the VM's ``eth0`` is the peer of ``tap<id>``, which
sits on a Linux bridge ``qbr<id>`` with ``qvb<id>``, whose veth peer ``qvo<id>`` is a port of br-int
carrying ``external_ids`` iface-id, attached-mac, iface-status and vm-uuid (br-int is created,
netdev, if no agent made it yet, as os-vif does). The VM gets the port's MAC and the network's
MTU, and its addresses from the port (statically: no DHCP agent exists yet).

A VM's record (``vms/<name>.json``) is written as soon as its port exists, so that ``vm delete``
and ``lab down`` can undo a half-finished create.
"""

from __future__ import annotations

import ipaddress
import json
import os
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from baryon.lab import host
from baryon.lab.api import Api, ApiError
from baryon.lab.lab import Lab
from baryon.lab.state import LabPaths, write_json
from baryon.lab.topology import TopologyError, device_names, validate_vm_name, vm_netns


# busybox udhcpc's script (called with bound/renew/deconfig): applies the lease to the VM's eth0
# and records it, as a DHCP client of a real VM would. Not dhclient: its stock script rewrites
# the machine's /etc/resolv.conf (DATAPLANE.md).
UDHCPC_SCRIPT = """#!/bin/sh
case "$1" in
  deconfig) ip -4 address flush dev "$interface" ;;
  bound|renew)
    ip -4 address flush dev "$interface"
    ip address add "$ip/${mask:-24}" dev "$interface"
    [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
    for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
    {
      echo "ip=$ip"; echo "mask=$mask"; echo "router=$router"; echo "dns=$dns"; echo "mtu=$mtu"
      echo "domain=$domain"; echo "hostname=$hostname"; echo "staticroutes=$staticroutes"; echo "lease=$lease"
    } > "$LEASE_FILE"
    ;;
esac
exit 0
"""


@dataclass
class Vm:
    name: str
    id: str
    node: str
    netns: str
    port_id: str = ""
    network_id: str = ""
    mac: str = ""
    mtu: int = 0
    addresses: list[str] = field(default_factory=list)  # "10.0.0.5/24"
    gateway: str | None = None
    own_port: bool = True  # created by the lab (deleted with the VM), or given with --port (unbound)
    dhcp: bool = False  # addresses by DHCP (a DHCP agent serves the network), else static from the port

    def as_dict(self) -> dict:
        return asdict(self)


def load_all(paths: LabPaths) -> list[Vm]:
    vms = []
    for path in sorted(paths.vms.glob("*.json")) if paths.vms.exists() else []:
        try:
            vms.append(Vm(**json.loads(path.read_text())))
        except (OSError, ValueError, TypeError):
            continue
    return vms


def load(paths: LabPaths, name: str) -> Vm:
    for vm in load_all(paths):
        if vm.name == name:
            return vm
    raise host.LabError(f"no VM named {name!r} in this lab (`baryon lab vm list`)")


def _find(api: Api, path: str, key: str, resource: str, ref: str) -> dict:
    try:
        return api.get(f"/v2.0/{path}/{ref}")[resource]
    except ApiError as exc:
        if exc.status != 404:
            raise
    found = api.get(f"/v2.0/{path}", name=ref)[key]
    if len(found) != 1:
        what = resource.replace("_", " ")
        raise host.LabError(f"no {what} named or with id {ref!r}" if not found
                            else f"{len(found)} {what}s are named {ref!r}: give its id")
    return found[0]


def create(lab: Lab, name: str, node_name: str, network: str | None = None, subnet: str | None = None,
           ip: str | None = None, security_groups: list[str] | None = None, port_security: bool = True,
           port: str | None = None) -> Vm:
    """Create the port (or take ``port``, created beforehand, as ``openstack server create --port``
    does), bind it to the node, plug the VM. A port whose binding failed is not plugged (Nova
    fails the boot), unless the node runs no agent at all (a lab made with ``--no-agents``)."""
    validate_vm_name(name)
    topology = lab.topology
    try:
        node = topology.node(node_name)
    except TopologyError as exc:
        raise host.LabError(str(exc)) from None
    if not node.runs_ovs:
        raise host.LabError(f"node {node_name!r} hosts no VMs (it runs no Open vSwitch): use network or a compute")
    if lab.paths.vm(name).exists():
        raise host.LabError(f"a VM named {name!r} exists already")
    if (network is None) == (port is None):
        raise host.LabError("give either --network or --port")
    api = Api(topology.api_url)
    vm = Vm(name=name, id=str(uuid.uuid4()), node=node.name, netns=vm_netns(topology.prefix, name))
    binding = {"device_owner": "compute:nova", "device_id": vm.id, "binding:host_id": node.name}
    try:
        if port is not None:
            existing = _find(api, "ports", "ports", "port", port)
            if existing["device_id"]:
                raise host.LabError(f"port {existing['id']} is in use by device {existing['device_id']}")
            created = api.request("PUT", f"/v2.0/ports/{existing['id']}", {"port": binding})["port"]
            vm.own_port = False
        else:
            request = _port_request(api, network or "", subnet, ip, security_groups, port_security)
            created = api.request("POST", "/v2.0/ports", {"port": {**request, **binding, "name": ""}})["port"]
    except ApiError as exc:
        raise host.LabError(str(exc)) from None
    net = api.get(f"/v2.0/networks/{created['network_id']}")["network"]
    vm.port_id, vm.network_id, vm.mac, vm.mtu = created["id"], net["id"], created["mac_address"], net["mtu"]
    _set_addresses(api, vm, created)
    vm.dhcp = _served_by_dhcp(api, created)
    write_json(lab.paths.vm(name), vm.as_dict())
    try:
        _check_binding(lab, node.name, created)
        plug(lab, vm)
    except Exception:
        delete(lab, name)
        raise
    return vm


def _port_request(api: Api, network: str, subnet: str | None, ip: str | None,
                  security_groups: list[str] | None, port_security: bool) -> dict:
    net = _find(api, "networks", "networks", "network", network)
    request: dict = {"network_id": net["id"]}
    fixed: dict = {}
    if subnet:
        fixed["subnet_id"] = _find(api, "subnets", "subnets", "subnet", subnet)["id"]
    if ip:
        fixed["ip_address"] = ip
    if fixed:
        request["fixed_ips"] = [fixed]
    if security_groups:
        request["security_groups"] = [_find(api, "security-groups", "security_groups", "security_group", sg)["id"]
                                      for sg in security_groups]
    if not port_security:
        request["port_security_enabled"] = False
        request["security_groups"] = []
    return request


def _set_addresses(api: Api, vm: Vm, port: dict) -> None:
    subnets = {s["id"]: s for s in api.get("/v2.0/subnets", network_id=vm.network_id)["subnets"]}
    for fixed_ip in port["fixed_ips"]:
        sub = subnets[fixed_ip["subnet_id"]]
        vm.addresses.append(f"{fixed_ip['ip_address']}/{ipaddress.ip_network(sub['cidr']).prefixlen}")
        if vm.gateway is None and sub["ip_version"] == 4 and sub.get("gateway_ip"):
            vm.gateway = sub["gateway_ip"]


def _served_by_dhcp(api: Api, port: dict) -> bool:
    """Nova's VM asks DHCP for its IPv4 address when its subnet has DHCP and an agent serves the network."""
    subnets = {s["id"]: s for s in api.get("/v2.0/subnets", network_id=port["network_id"])["subnets"]}
    if not any(subnets[ip["subnet_id"]]["enable_dhcp"] and subnets[ip["subnet_id"]]["ip_version"] == 4
               for ip in port["fixed_ips"]):
        return False
    try:
        agents = api.get(f"/v2.0/networks/{port['network_id']}/dhcp-agents")["agents"]
    except ApiError:
        return False
    return any(agent["alive"] for agent in agents)


def _check_binding(lab: Lab, node: str, port: dict) -> None:
    if port.get("binding:vif_type") != "binding_failed":
        return
    from baryon.lab import agents

    if any(agents.pid(lab.paths, node, kind) for kind in agents.AGENT_TYPES):
        reason = (port.get("binding:vif_details") or {}).get("reason", "no reason given")
        raise host.LabError(f"port {port['id']}: binding to {node} failed ({reason}); not plugged")


def plug(lab: Lab, vm: Vm) -> None:
    """os-vif's hybrid plug on the VM's node, then the VM's own eth0 (MAC, MTU, addresses)."""
    node = lab.topology.node(vm.node)
    dev = device_names(vm.port_id)
    host.ensure_netns(vm.netns)
    node_place = host.Place(node.netns)
    node_place.batch_ip([
        f"link add {dev['tap']} mtu {vm.mtu} type veth peer name eth0 netns {vm.netns}",
        f"link add {dev['qbr']} mtu {vm.mtu} type bridge forward_delay 0 stp_state 0",
        f"link add {dev['qvb']} mtu {vm.mtu} type veth peer name {dev['qvo']} mtu {vm.mtu}",
    ])
    # os-vif turns IPv6 off on the host-side devices, before they come up: they must not speak
    # (router solicitations, MLD) on the tenant network, nor add routes that ovs-vswitchd re-reads.
    node_place.run(["sysctl", "-q", *(arg for kind in ("tap", "qbr", "qvb", "qvo")
                                      for arg in ("-w", f"net.ipv6.conf.{dev[kind]}.disable_ipv6=1"))])
    node_place.batch_ip([
        f"link set {dev['tap']} master {dev['qbr']} up",
        f"link set {dev['qvb']} master {dev['qbr']} up",
        f"link set {dev['qvo']} up",
        f"link set {dev['qbr']} up",
    ])
    lab.ovs(node).vsctl(
        "--", "--may-exist", "add-br", "br-int", "--", "set", "Bridge", "br-int", "datapath_type=netdev",
        "--", "--if-exists", "del-port", "br-int", dev["qvo"],
        "--", "add-port", "br-int", dev["qvo"],
        "--", "set", "Interface", dev["qvo"], f"external_ids:iface-id={vm.port_id}",
        "external_ids:iface-status=active", f"external_ids:attached-mac={vm.mac}", f"external_ids:vm-uuid={vm.id}")
    lines = [f"link set eth0 address {vm.mac} mtu {vm.mtu} up"]
    for address in vm.addresses:
        if vm.dhcp and ":" not in address:
            continue  # IPv4 comes by DHCP
        nodad = " nodad" if ":" in address else ""
        lines.append(f"address add {address} dev eth0{nodad}")
    if vm.gateway and not vm.dhcp:
        lines.append(f"route replace default via {vm.gateway} dev eth0")
    host.Place(vm.netns).batch_ip(lines)
    # The VM sends into OVS's userspace datapath: without this its TCP/UDP checksums stay partial.
    host.Place(vm.netns).run(["ethtool", "-K", "eth0", "tx", "off"])
    if vm.dhcp:
        # As Nova waits for network-vif-plugged before it boots the guest: the port is wired
        # (tagged, filtered) once ACTIVE; a DHCP request before that would be dropped.
        _wait_active(lab, vm)
        dhcp_request(lab, vm)


def _wait_active(lab: Lab, vm: Vm, timeout: float = 30) -> None:
    api = Api(lab.topology.api_url)

    def active() -> bool:
        return api.get(f"/v2.0/ports/{vm.port_id}")["port"]["status"] == "ACTIVE"

    host.wait_for(active, timeout, f"port {vm.port_id} of VM {vm.name} to be ACTIVE (wired by its node's agent)",
                  interval=0.01)


def dhcp_request(lab: Lab, vm: Vm, timeout: int = 20) -> dict[str, str]:
    """Run the VM's DHCP client once (``busybox udhcpc``): it applies the lease to eth0; returns
    the lease's fields (ip, mask, router, dns, mtu, domain ...)."""
    script = lab.paths.vms / "udhcpc.sh"
    if not script.exists() or script.read_text() != UDHCPC_SCRIPT:
        script.write_text(UDHCPC_SCRIPT)
        script.chmod(0o755)
    lease = lease_file(lab, vm.name)
    lease.unlink(missing_ok=True)
    tries = max(1, timeout)
    proc = host.Place(vm.netns).run(
        ["env", f"LEASE_FILE={lease}", "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", str(tries),
         "-T", "1", "-O", "mtu", "-O", "staticroutes", "-O", "domain", "-s", str(script)],
        check=False, timeout=timeout + 10)
    if proc.returncode != 0 or not lease.exists():
        raise host.LabError(f"VM {vm.name}: no DHCP lease ({(proc.stderr or proc.stdout).strip()[-300:]})")
    return read_lease(lab, vm.name)


def lease_file(lab: Lab, name: str) -> Path:
    return lab.paths.vms / f"{name}.lease"


def read_lease(lab: Lab, name: str) -> dict[str, str]:
    try:
        text = lease_file(lab, name).read_text()
    except OSError:
        return {}
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def unplug(lab: Lab, vm: Vm) -> None:
    """Undo ``plug``; every step tolerates what is already gone."""
    try:
        node = lab.topology.node(vm.node)
    except TopologyError:
        node = None
    if vm.port_id and node is not None and host.netns_path(node.netns).exists():
        dev = device_names(vm.port_id)
        ovs = lab.ovs(node)
        if ovs.pid("ovsdb-server") is not None:
            ovs.vsctl("--if-exists", "del-port", "br-int", dev["qvo"])
        for name in (dev["qbr"], dev["qvb"], dev["tap"]):
            host.run(["ip", "-n", node.netns, "link", "delete", name], check=False)
    inodes = {i for i in [host.netns_inode(host.netns_path(vm.netns))] if i is not None}
    host.kill_pids(host.pids_in_namespaces(inodes))
    host.remove_netns(vm.netns)


def delete(lab: Lab, name: str) -> None:
    vm = load(lab.paths, name)
    unplug(lab, vm)
    if vm.port_id:
        api = Api(lab.topology.api_url)
        try:
            if vm.own_port:
                api.request("DELETE", f"/v2.0/ports/{vm.port_id}")
            else:  # as Nova leaves a port it was given: unbound, for another server
                api.request("PUT", f"/v2.0/ports/{vm.port_id}",
                            {"port": {"device_id": "", "device_owner": "", "binding:host_id": ""}})
        except ApiError as exc:
            if exc.status != 404:
                raise host.LabError(f"VM {name!r} is unplugged but its port was not released: {exc}") from None
    lab.paths.vm(name).unlink(missing_ok=True)
    lease_file(lab, name).unlink(missing_ok=True)


def exec_argv(lab: Lab, name: str, command: list[str]) -> list[str]:
    """The command line that runs ``command`` inside the VM (``ip netns exec``: its own /sys too)."""
    vm = load(lab.paths, name)
    if not host.netns_path(vm.netns).exists():
        raise host.LabError(f"VM {name!r} has no namespace {vm.netns} (is the lab up?)")
    return ["ip", "netns", "exec", vm.netns, *command]


def exec_in(lab: Lab, name: str, command: list[str]) -> None:
    argv = exec_argv(lab, name, command)
    os.execvp(argv[0], argv)
