"""``baryon lab ...``: the simulated multi-node deployment (see ``baryon.lab``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from baryon.lab import host, vms
from baryon.lab.api import ApiError
from baryon.lab.lab import Lab
from baryon.lab.state import default_state_dir
from baryon.lab.topology import TopologyError


def _lab(args: argparse.Namespace, **given) -> Lab:  # noqa: ANN003
    return Lab.open(Path(args.state_dir) if args.state_dir else default_state_dir(), **given)


def _say(message: str) -> None:
    print(message, flush=True)


def cmd_up(args: argparse.Namespace) -> int:
    lab = _lab(args, prefix=args.prefix, computes=args.computes, api_port=args.api_port,
               agents=False if args.no_agents else None)
    topo = lab.topology
    _say(f"lab up: {topo.computes} compute node{'s' if topo.computes != 1 else ''}, state in {lab.paths.root}")
    lab.up(_say)
    _say(f"\nThe lab is up. API: {topo.api_url}\n"
         f"  openstack --os-auth-type none --os-endpoint {topo.api_url} network list\n"
         f"  baryon lab status | baryon lab exec network -- ovs-vsctl show | baryon lab down")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    lab = _lab(args, prefix=args.prefix)
    _say(f"lab down: {lab.paths.root} (namespaces {lab.params.prefix}*)")
    lab.down(_say)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    status = _lab(args).status()
    if args.json:
        print(json.dumps(status, indent=2))
        return 0 if status["up"] else 3
    print(f"lab {'UP' if status['up'] else 'DOWN'}  state {status['state_dir']}  API {status['api_url']}  "
          f"agents reach the server at {status['server_url']}")
    rows = [("NODE", "NAMESPACE", "MGMT", "LOCAL_IP", "PROCESSES")]
    for node in status["nodes"]:
        procs = ", ".join(f"{p['name']}[{p['pid']}]" if p["pid"] else f"{p['name']}[DOWN]" for p in node["processes"])
        extra = ", ".join(a for a in node["addresses"] if node["role"] == "external")
        rows.append((node["name"], node["netns"] if node["up"] else f"{node['netns']} (missing)",
                     node["mgmt_ip"] or "-", node["local_ip"] or "-", procs or extra or "-"))
    _table(rows)
    if status["vms"]:
        print()
        _table([("VM", "NODE", "PORT", "MAC", "ADDRESSES")]
               + [(v["name"], v["node"], v["port_id"], v["mac"], ", ".join(v["addresses"])) for v in status["vms"]])
    return 0 if status["up"] else 3


def _table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip())


def cmd_exec(args: argparse.Namespace) -> int:
    lab = _lab(args)
    try:
        node = lab.topology.node(args.node)
    except TopologyError as exc:
        sys.exit(f"baryon lab exec: {exc}")
    if not host.netns_path(node.netns).exists():
        sys.exit(f"baryon lab exec: node {node.name} is not up (no namespace {node.netns}): `baryon lab up`")
    command = _command(args.cmd) or [os.environ.get("SHELL", "/bin/sh")]
    argv = lab.place(node).argv(command)
    os.execvp(argv[0], argv)
    return 0  # not reached


def _command(cmd: list[str]) -> list[str]:
    return cmd[1:] if cmd and cmd[0] == "--" else cmd


def cmd_vm_create(args: argparse.Namespace) -> int:
    vm = vms.create(_lab(args), args.name, args.node, args.network, subnet=args.subnet, ip=args.ip,
                    security_groups=args.security_group, port_security=not args.no_port_security, port=args.port)
    _say(f"VM {vm.name} on {vm.node}: port {vm.port_id}, MAC {vm.mac}, {', '.join(vm.addresses) or 'no address'}"
         f" (namespace {vm.netns})")
    return 0


def cmd_vm_delete(args: argparse.Namespace) -> int:
    vms.delete(_lab(args), args.name)
    _say(f"VM {args.name} deleted (unplugged, port deleted)")
    return 0


def cmd_vm_list(args: argparse.Namespace) -> int:
    found = [vm.as_dict() for vm in vms.load_all(_lab(args).paths)]
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    _table([("NAME", "NODE", "PORT", "MAC", "ADDRESSES")]
           + [(v["name"], v["node"], v["port_id"], v["mac"], ", ".join(v["addresses"])) for v in found])
    return 0


def cmd_vm_dhcp(args: argparse.Namespace) -> int:
    lab = _lab(args)
    lease = vms.dhcp_request(lab, vms.load(lab.paths, args.name))
    if args.json:
        print(json.dumps(lease, indent=2))
    else:
        _say(" ".join(f"{key}={value}" for key, value in lease.items() if value))
    return 0


def cmd_vm_exec(args: argparse.Namespace) -> int:
    command = _command(args.cmd) or [os.environ.get("SHELL", "/bin/sh")]
    vms.exec_in(_lab(args), args.name, command)
    return 0  # not reached


def add_parser(sub: argparse._SubParsersAction) -> None:
    lab = sub.add_parser("lab", help="a simulated multi-node deployment on this machine")
    lab.add_argument("--state-dir", default=None,
                     help=f"the lab's state directory (default ${'BARYON_LAB_DIR'} or {default_state_dir()})")
    cmds = lab.add_subparsers(dest="lab_command", required=True)

    up = cmds.add_parser("up", help="build the lab (idempotent: repairs what is missing)")
    up.add_argument("--computes", type=int, default=None, help="compute nodes (default 2)")
    up.add_argument("--api-port", type=int, default=None, help="the API's port on 127.0.0.1 (default 9696)")
    up.add_argument("--prefix", default=None, help="namespace name prefix (default blab-)")
    up.add_argument("--no-agents", action="store_true",
                    help="build the hosts only: no agent (nothing joins the nodes' switches)")
    up.set_defaults(func=cmd_up)

    down = cmds.add_parser("down", help="remove everything the lab made")
    down.add_argument("--prefix", default=None, help="namespace name prefix (default: the lab's, else blab-)")
    down.set_defaults(func=cmd_down)

    status = cmds.add_parser("status", help="nodes, processes and VMs")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)

    ex = cmds.add_parser("exec", help="run a command on a node (its namespaces and its OVS)")
    ex.add_argument("node")
    ex.add_argument("cmd", nargs=argparse.REMAINDER)
    ex.set_defaults(func=cmd_exec)

    vm = cmds.add_parser("vm", help="VMs plugged as Nova and os-vif plug them")
    vm_cmds = vm.add_subparsers(dest="vm_command", required=True)
    create = vm_cmds.add_parser("create", help="create a port and plug a VM on a node")
    create.add_argument("name")
    create.add_argument("--node", required=True)
    create.add_argument("--network", default=None, help="network name or id")
    create.add_argument("--port", default=None, help="an existing port (name or id) instead of a new one")
    create.add_argument("--subnet", default=None, help="subnet name or id")
    create.add_argument("--ip", default=None, help="fixed IP address")
    create.add_argument("--security-group", action="append", default=None, help="name or id; repeatable")
    create.add_argument("--no-port-security", action="store_true")
    create.set_defaults(func=cmd_vm_create)
    delete = vm_cmds.add_parser("delete", help="unplug a VM and delete its port")
    delete.add_argument("name")
    delete.set_defaults(func=cmd_vm_delete)
    listing = vm_cmds.add_parser("list", help="VMs: node, port, MAC, addresses")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_vm_list)
    dhcp = vm_cmds.add_parser("dhcp", help="run the VM's DHCP client once (renew) and show the lease")
    dhcp.add_argument("name")
    dhcp.add_argument("--json", action="store_true")
    dhcp.set_defaults(func=cmd_vm_dhcp)
    vexec = vm_cmds.add_parser("exec", help="run a command inside a VM")
    vexec.add_argument("name")
    vexec.add_argument("cmd", nargs=argparse.REMAINDER)
    vexec.set_defaults(func=cmd_vm_exec)


def run(args: argparse.Namespace) -> int:
    """Call the subcommand; lab and API errors become one clear line and exit status 1."""
    if os.geteuid() != 0:
        print("baryon lab: error: the lab builds namespaces and Open vSwitch bridges: run it as root",
              file=sys.stderr)
        return 1
    try:
        return args.func(args)
    except (host.LabError, ApiError, TopologyError) as exc:
        print(f"baryon lab: error: {exc}", file=sys.stderr)
        return 1
