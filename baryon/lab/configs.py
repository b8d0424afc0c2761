"""The configuration files of the lab's nodes, in Neutron's format (pure: topology in, text out).

The server gets ``neutron.conf`` and the seed's ``ml2_conf.ini``; every OVS node gets a
``neutron.conf`` (its ``host`` and where the server is) and an ``ml2_conf.ini`` with the seed's
``[ml2*]``, ``[securitygroup]``, ``[agent]`` and ``[ovs]`` sections, filled with that node's
``local_ip``; the network node also gets ``dhcp_agent.ini`` and ``l3_agent.ini``. The values are
the seed's except where this machine needs otherwise:

- NOTE: ``datapath_type = netdev``, not the seed's ``system``: there is no openvswitch kernel
  module here (DATAPLANE.md), so every bridge runs in ovs-vswitchd's userspace datapath.
- NOTE: ``bridge_mappings = physnet1:br-ex`` on the network node only: as in the seed, br-ex (the
  way out to physnet1) exists there alone; a compute node has no provider bridge.

Every lab has its own agent secret (``[baryon] agent_shared_secret`` of the server and of every
node): random, made once by ``node_files`` and kept in the lab's state directory (``lab_secret``),
so that a second ``lab up`` writes the same files and running agents keep matching their server.
The lab's own tools that call the agent API (``baryon debug port``, bench/labkit.py) read it there.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from baryon.lab.topology import OVSDB_TCP, PHYSNET, Node, Topology

SECRET_FILE = "agent_shared_secret"  # in the lab's state directory, mode 0600

# The agents' /metrics ports on every node's management address (http://<mgmt_ip>:<port>/metrics).
METRICS_PORTS = {"ovs": 9101, "dhcp": 9102, "l3": 9103}

ML2_COMMON = f"""\
[ml2]
type_drivers = flat,vlan,vxlan
tenant_network_types = vxlan
mechanism_drivers = openvswitch,l2population
extension_drivers = port_security

[ml2_type_vlan]
network_vlan_ranges =

[ml2_type_flat]
flat_networks = {PHYSNET}

[ml2_type_vxlan]
vni_ranges = 1:1000

[securitygroup]
firewall_driver = neutron.agent.linux.iptables_firewall.OVSHybridIptablesFirewallDriver
"""


def lab_secret(lab_dir: str | Path, create: bool = False) -> str:
    """The agent secret of the lab at ``lab_dir``; "" when it has none (a lab made before secrets),
    unless ``create``: then one is made, random, and kept (0600) for every later call."""
    path = Path(lab_dir) / SECRET_FILE
    if create and not path.exists():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # made meanwhile by another `lab up`: read below
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(32) + "\n")
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


def server_conf(topology: Topology, state_dir: str, lab_dir: str = "", secret: str = "") -> str:
    """``neutron.conf`` of the controller: the API on the management network, SQLite under the lab;
    with ``lab_dir``, the lab's state directory, for the topology page's ``baryon debug port`` link;
    with ``secret``, the agents' shared secret."""
    lab = "".join([f"lab_state_dir = {lab_dir}\n" if lab_dir else "",
                   f"agent_shared_secret = {secret}\n" if secret else ""])
    lab = f"\n[baryon]\n{lab}" if lab else ""
    return f"""\
[DEFAULT]
host = controller
bind_host = {topology.server_ip}
bind_port = {topology.server_port}
api_workers = 1
agent_down_time = 15
auth_strategy = noauth
state_path = {state_dir}
core_plugin = ml2
service_plugins = router

[database]
connection = sqlite:///{state_dir}/baryon.sqlite

[quotas]
quota_network = -1
quota_subnet = -1
quota_port = -1
quota_router = -1
quota_floatingip = -1
quota_security_group = -1
quota_security_group_rule = -1

# NOTE: 16 MiB, not Neutron's 114688 bytes: the lab's users and the benchmarks (bench/agent.py,
# dhcp.py, l3.py through labkit.create_ports) bind 1,000-2,000 ports in one bulk POST, ~250 bytes each.
[oslo_middleware]
max_request_body_size = 16777216
{lab}"""


def server_ml2_conf() -> str:
    return ML2_COMMON


def node_neutron_conf(topology: Topology, node: Node, state_dir: str, secret: str = "") -> str:
    """``neutron.conf`` of an agent node: its host name, the server it reports to and (``secret``)
    the agents' shared secret."""
    auth = (f"# The lab's agent secret: the server's, sent with every request to its agent API.\n"
            f"agent_shared_secret = {secret}\n") if secret else ""
    return f"""\
[DEFAULT]
host = {node.name}
state_path = {state_dir}

[agent]
# Neutron's default is 30 s (with the server's agent_down_time 75 s): the lab reports faster so
# that a dead agent shows within seconds.
report_interval = 5

[baryon]
# Where this node's agents reach the server (over the management network): agents watch
# the server's change feed over HTTP instead of Neutron's message queue.
server_url = {topology.server_url}
{auth}# Each agent's Prometheus /metrics, on the node's management address (one port per kind).
metrics_host = {node.mgmt_ip}
ovs_metrics_port = {METRICS_PORTS["ovs"]}
dhcp_metrics_port = {METRICS_PORTS["dhcp"]}
l3_metrics_port = {METRICS_PORTS["l3"]}
"""


def node_ml2_conf(node: Node) -> str:
    """The seed's ``ml2_conf.ini`` for an OVS node, with that node's ``[ovs]`` values."""
    mappings = ",".join(f"{physnet}:{bridge}" for physnet, bridge in node.bridge_mappings)
    return ML2_COMMON + f"""
[agent]
tunnel_types = vxlan
l2_population = true
arp_responder = true

[ovs]
bridge_mappings = {mappings}
integration_bridge = br-int
tunnel_bridge = br-tun
datapath_type = netdev
ovsdb_connection = {OVSDB_TCP}
local_ip = {node.local_ip}
"""


def dhcp_agent_ini() -> str:
    return f"""\
[DEFAULT]
interface_driver = openvswitch
ovs_use_veth = true
dhcp_driver = neutron.agent.linux.dhcp.Dnsmasq
enable_isolated_metadata = false

[ovs]
ovsdb_connection = {OVSDB_TCP}
"""


def l3_agent_ini() -> str:
    return f"""\
[DEFAULT]
interface_driver = openvswitch
ovs_use_veth = true
agent_mode = legacy

[ovs]
ovsdb_connection = {OVSDB_TCP}
"""


def node_files(topology: Topology, node: Node, state_dir: str, lab_dir: str = "") -> dict[str, str]:
    """File name -> content for ``node`` (empty for nodes that run no Baryon process). With
    ``lab_dir``, the lab's agent secret (made on the first call: ``lab_secret``) is in them."""
    if node.role != "controller" and not node.runs_ovs:
        return {}
    secret = lab_secret(lab_dir, create=True) if lab_dir else ""
    if node.role == "controller":
        return {"neutron.conf": server_conf(topology, state_dir, lab_dir, secret), "ml2_conf.ini": server_ml2_conf()}
    files = {"neutron.conf": node_neutron_conf(topology, node, state_dir, secret),
             "ml2_conf.ini": node_ml2_conf(node)}
    if "dhcp" in node.agents:
        files["dhcp_agent.ini"] = dhcp_agent_ini()
    if "l3" in node.agents:
        files["l3_agent.ini"] = l3_agent_ini()
    return files
