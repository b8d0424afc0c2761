"""``baryon debug port PORT``: a port's intent beside what is on its host, and its timeline.

Read-only. What it reads:

- the API (admin): the port, its network (segment, MTU), the agents (alive, configurations,
  realised_seq), the DHCP agents of the network, its floating IPs and the routers involved
  (its own router for a router port; the routers with an interface on its network);
- the agent API: the views the server gives the agents of the nodes involved (``ovs`` of its host
  and of every other OVS node, ``dhcp`` of the network's DHCP agents, ``l3`` of the routers'
  agents), and the port's change-log entries (``/agent/v1/changes``);
- each node involved, as its agents do: ``ip -o link`` (and in the port's ``qdhcp-``/``qrouter-``
  namespace), OVSDB (``ovs-vsctl --format=json list``), ``ovs-ofctl dump-flows`` of every managed
  bridge, ``iptables-save``/``ip6tables-save``, the dnsmasq host file and pid, the router
  namespace's nat table; and in a lab the agents' logs (``nodes/<node>/log``).

The expected side is computed by the agents' own pure planners (``baryon.agent.plan.ovs``,
``.firewall``, ``.dnsmasq``, ``.l3_nat``) from those views and the node's observed switch, with
the settings the node's OVS agent reports in its ``configurations``: what the agent would make
the node hold now. ``baryon.debug.portstate`` compares, ``baryon.debug.porttimeline`` builds the
timeline, ``baryon.debug.portreport`` renders.

Exit status: 0 when nothing differs, 3 when something does (``portreport.EXIT_DIFFERENCES``),
1 on an error (``DebugError``, raised here, reported by ``baryon.cli.debug``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass

from baryon.agent.drivers.netfilter import parse_save
from baryon.agent.drivers.ovsdb import switch_from_rows
from baryon.agent.plan import dhcp as dhcp_plan
from baryon.agent.plan import dnsmasq, firewall, l3 as l3_plan, l3_nat, ovs
from baryon.debug import portstate as ps
from baryon.debug import porttimeline as pt
from baryon.debug.portreport import PortReport, render, to_json
from baryon.debug.reach import DebugError, LabReach
from baryon.lab.api import ApiError
from baryon.model.dhcp import DhcpView
from baryon.model.host import VXLAN, HostView
from baryon.model.l3 import L3View
from baryon.model.ovs import AGENT_COOKIE, ObservedSwitch, OvsAgentSettings, SetPortTag

OVS_AGENT, DHCP_AGENT, L3_AGENT = "Open vSwitch agent", "DHCP agent", "L3 agent"
HYBRID_FIREWALLS = ("iptables_hybrid", "neutron.agent.linux.iptables_firewall.OVSHybridIptablesFirewallDriver")


def main(reach: LabReach, args: argparse.Namespace) -> int:
    report = inspect(reach, args.port)
    print(json.dumps(to_json(report), indent=2) if args.json else render(report), end="" if not args.json else "\n")
    return report.exit_status


# ---------------------------------------------------------------- one node, as its OVS agent sees it


@dataclass(frozen=True)
class OvsNode:
    name: str
    settings: OvsAgentSettings
    view: HostView
    observed: ObservedSwitch
    plan: ovs.Plan
    firewall_driver: str


def ovs_settings(host: str, conf: Mapping) -> OvsAgentSettings:
    """The settings that shape a node's switch, from what its OVS agent reports."""
    tunnel_types = tuple(conf.get("tunnel_types") or ())
    return OvsAgentSettings(
        host=host, integration_bridge=conf.get("integration_bridge") or "br-int",
        bridge_mappings=tuple(sorted((conf.get("bridge_mappings") or {}).items())),
        local_ip=conf.get("tunneling_ip") if tunnel_types else None, tunnel_types=tunnel_types,
        datapath_type=conf.get("datapath_type") or "system", l2_population=bool(conf.get("l2_population")),
        arp_responder=bool(conf.get("arp_responder_enabled")))


def observe_switch(reach: LabReach, node: str) -> ObservedSwitch:
    """The node's bridges and ports, as the agent's OVSDB driver builds them (one ovs-vsctl)."""
    out = reach.run(node, ["ovs-vsctl", "--format=json", "--", "list", "Bridge", "--", "list", "Port", "--",
                           "list", "Interface"])
    tables = [json.loads(part) for part in _json_documents(out)]
    if len(tables) != 3:
        raise DebugError(f"on {node}: ovs-vsctl list gave {len(tables)} tables, not 3")
    rows = [[dict(zip(t["headings"], row)) for row in t["data"]] for t in tables]
    return switch_from_rows(*rows)


def _json_documents(text: str) -> list[str]:
    decoder, docs, i = json.JSONDecoder(), [], 0
    while i < len(text):
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            break
        _, end = decoder.raw_decode(text, i)
        docs.append(text[i:end])
        i = end
    return docs


def ovs_node(reach: LabReach, node: str, agent: Mapping) -> OvsNode:
    settings = ovs_settings(node, agent.get("configurations") or {})
    view = HostView.from_json(reach.api.get(f"/agent/v1/hosts/{node}/ovs")["view"])
    observed = observe_switch(reach, node)
    return OvsNode(node, settings, view, observed, ovs.plan(view, settings, observed, {}),
                   (agent.get("configurations") or {}).get("firewall_driver") or "iptables_hybrid")


def dump_flows(reach: LabReach, node: str, bridge: str) -> list[str]:
    out = reach.run(node, ["ovs-ofctl", "-O", "OpenFlow14", "--names", "--no-stats", "dump-flows", bridge,
                           f"cookie={AGENT_COOKIE:#x}/-1"])
    return [line.strip() for line in out.splitlines() if "actions=" in line]


# ---------------------------------------------------------------- the port


def inspect(reach: LabReach, ref: str) -> PortReport:
    port = reach.port(ref)
    api = reach.api
    network = api.get(f"/v2.0/networks/{port['network_id']}")["network"]
    agents = api.get("/v2.0/agents")["agents"]
    by_type_host = {(a["agent_type"], a["host"]): a for a in agents}
    host = port.get("binding:host_id") or ""
    dhcp_hosts = sorted(a["host"] for a in _list(api, f"/v2.0/networks/{port['network_id']}/dhcp-agents", "agents"))
    fips = api.get("/v2.0/floatingips", port_id=port["id"])["floatingips"]
    routers = _routers(api, port, fips)
    vm = reach.vm_of_port(port["id"])
    intent = _intent(port, network, dhcp_hosts, routers, fips, vm.name if vm else None)
    ips = [ip["ip_address"] for ip in port.get("fixed_ips", ())]

    ovs_agent = by_type_host.get((OVS_AGENT, host))
    alive = bool(ovs_agent and ovs_agent["alive"]) if host else None
    findings = ps.compare_binding(port, alive)
    notes: list[str] = []
    lab_nodes = {n.name for n in reach.nodes()}
    if host and host not in lab_nodes:
        notes.append(f"host {host} is not a node of this lab: nothing observed there")
    elif host and ovs_agent is not None:
        here = ovs_node(reach, host, ovs_agent)
        findings += _on_host(reach, here, port, network, notes)
    for node in sorted(lab_nodes - {host}):
        agent = by_type_host.get((OVS_AGENT, node))
        if agent is None:
            continue
        peer = ovs_node(reach, node, agent)
        keys = ps.flow_keys(mac=port["mac_address"], ips=ips)
        for bridge, desired in sorted(peer.plan.flows.items()):
            findings += ps.compare_flows(node, bridge, desired, dump_flows(reach, node, bridge), keys)
    for dhcp_host in dhcp_hosts:
        findings += _dhcp(reach, dhcp_host, port, notes)
    for router in routers:
        if router["host"]:
            findings += _nat(reach, router, port, ips, notes)
    changes = api.get("/agent/v1/changes", resource_id=port["id"])["changes"]
    steps = pt.timeline(changes, host, _log(reach, host, "ovs-agent.log"),
                        {h: _log(reach, h, "dhcp-agent.log") for h in dhcp_hosts})
    last_seq = changes[-1]["seq"] if changes else None
    involved = [a for a in agents if (a["agent_type"] == OVS_AGENT and a["host"] == host)
                or (a["agent_type"] == DHCP_AGENT and a["host"] in dhcp_hosts)]
    realised = tuple(pt.realised(involved, last_seq or 0))
    return PortReport(intent=intent, findings=tuple(findings), timeline=tuple(steps), realised=realised,
                      last_seq=last_seq, notes=tuple(notes))


def _list(api, path: str, key: str) -> list[dict]:  # noqa: ANN001
    try:
        return api.get(path)[key]
    except ApiError as exc:
        if exc.status == 404:
            return []
        raise


def _routers(api, port: Mapping, fips: list[dict]) -> list[dict]:  # noqa: ANN001
    """The routers involved: its own (a router port), its floating IPs', those on its network."""
    ids = {f["router_id"] for f in fips if f.get("router_id")}
    if (port.get("device_owner") or "").startswith("network:router_"):
        ids.add(port["device_id"])
    for rport in api.get("/v2.0/ports", network_id=port["network_id"],
                         device_owner="network:router_interface")["ports"]:
        ids.add(rport["device_id"])
    found = []
    for rid in sorted(i for i in ids if i):
        try:
            router = api.get(f"/v2.0/routers/{rid}")["router"]
        except ApiError:
            continue
        hosts = [a["host"] for a in _list(api, f"/v2.0/routers/{rid}/l3-agents", "agents")]
        found.append({"id": rid, "name": router.get("name") or "", "status": router.get("status"),
                      "host": hosts[0] if hosts else None})
    return found


def _intent(port: Mapping, network: Mapping, dhcp_hosts: list[str], routers: list[dict], fips: list[dict],
            vm: str | None) -> dict:
    return {
        "id": port["id"], "name": port.get("name") or "", "vm": vm,
        "network": {"id": network["id"], "name": network.get("name") or "", "mtu": network.get("mtu"),
                    "segment": {"network_type": network.get("provider:network_type"),
                                "segmentation_id": network.get("provider:segmentation_id"),
                                "physical_network": network.get("provider:physical_network")}},
        "fixed_ips": port.get("fixed_ips", []), "mac_address": port["mac_address"],
        "device_owner": port.get("device_owner") or "", "device_id": port.get("device_id") or "",
        "host": port.get("binding:host_id") or "", "vif_type": port.get("binding:vif_type"),
        "vif_details": port.get("binding:vif_details") or {}, "status": port.get("status"),
        "security_groups": port.get("security_groups", []),
        "port_security_enabled": port.get("port_security_enabled"),
        "dhcp_agents": dhcp_hosts, "routers": routers,
        "floating_ips": [{"id": f["id"], "floating_ip_address": f["floating_ip_address"],
                          "router_id": f.get("router_id"), "status": f.get("status")} for f in fips],
    }


# ---------------------------------------------------------------- its host


def _devices(port: Mapping) -> tuple[list[str], str | None, list[str], str]:
    """(devices on the node, its namespace, devices in it, the VIF's name on br-int) by owner."""
    pid, owner = port["id"], port.get("device_owner") or ""
    if owner == dnsmasq.DEVICE_OWNER_DHCP:
        tap, inside = dhcp_plan.device_names(pid)
        return [tap], dhcp_plan.namespace_name(port["network_id"]), [inside], tap
    if owner in ("network:router_interface", "network:router_gateway"):
        tap, inside = l3_plan.device_names(pid, gateway=owner == "network:router_gateway")
        return [tap], l3_plan.namespace_name(port["device_id"]), [inside], tap
    if (port.get("binding:vif_details") or {}).get("ovs_hybrid_plug", True):
        names = [firewall.device_name(pid, prefix) for prefix in ("tap", "qbr", "qvb", "qvo")]
        return names, None, [], names[-1]
    tap = firewall.device_name(pid)
    return [tap], None, [], tap


def _on_host(reach: LabReach, here: OvsNode, port: Mapping, network: Mapping, notes: list[str]) -> list[ps.Finding]:
    node, plan, pid = here.name, here.plan, port["id"]
    findings = [ps.compare_status(node, port.get("status") or "", plan.port_status.get(pid),
                                  plan.down_reasons.get(pid))]
    on_node, namespace, inside, vif_name = _devices(port)
    findings += ps.compare_devices(node, "", on_node, ps.link_names(reach.run(node, ["ip", "-o", "link"])))
    if namespace:
        links = reach.in_namespace(node, namespace, ["ip", "-o", "link"], check=False)
        findings += ps.compare_devices(node, namespace, inside, ps.link_names(links))
    bridge = here.settings.integration_bridge
    vif = here.observed.port(vif_name) or next(
        (p for p in here.observed.ports_on(bridge) if p.iface_id == pid), None)
    tag_op = next((op for op in plan.ops if isinstance(op, SetPortTag) and vif is not None and op.name == vif.name),
                  None)
    vlan = plan.local_vlans.get(port["network_id"])
    findings += ps.compare_vif(node, bridge, vif.name if vif else vif_name, port, vif, vlan, tag_op)
    seg_type, seg_id = network.get("provider:network_type"), network.get("provider:segmentation_id")
    keys = ps.flow_keys(vlan=vlan, vni=seg_id if seg_type == VXLAN else None, mac=port["mac_address"],
                        ips=[ip["ip_address"] for ip in port.get("fixed_ips", ())], ports=[vif_name])
    for br, desired in sorted(plan.flows.items()):
        findings += ps.compare_flows(node, br, desired, dump_flows(reach, node, br), keys)
    if here.firewall_driver in HYBRID_FIREWALLS:
        findings += _firewall(reach, here, pid)
    else:
        notes.append(f"{node}: firewall driver {here.firewall_driver}: no filtering to check")
    return findings


def _firewall(reach: LabReach, here: OvsNode, pid: str) -> list[ps.Finding]:
    desired = firewall.render(here.view, here.plan.local_vlans)
    own = [firewall.port_chain(pid, kind) for kind in ("i", "o", "s")]
    devices = [firewall.device_name(pid), firewall.device_name(pid, "qvb")]
    findings = []
    for family, command in (("ipv4", "iptables-save"), ("ipv6", "ip6tables-save")):
        saved = parse_save(reach.run(here.name, [command]))
        for table in ("filter", "raw"):
            have = saved.get(table, ({}, ()))[0]
            want = desired.chains.get((family, table), {})
            findings += ps.compare_firewall(here.name, family, table, want, have, own, devices)
    return findings


# ---------------------------------------------------------------- DHCP, NAT


def _dhcp(reach: LabReach, node: str, port: Mapping, notes: list[str]) -> list[ps.Finding]:
    view = DhcpView.from_json(reach.api.get(f"/agent/v1/hosts/{node}/dhcp")["view"])
    net = next((n for n in view.networks if n.id == port["network_id"]), None)
    if net is None:
        notes.append(f"{node}: its DHCP view has no network {port['network_id']} (no DHCP subnet, or down)")
        return []
    expected = ps.dhcp_host_lines(dnsmasq.hosts_file(net), port["mac_address"])
    directory = reach.lab.paths.lib(node) / "dhcp" / net.id
    host_file = reach.run(node, ["cat", str(directory / "host")], check=False)
    findings = ps.compare_lines("dhcp", node, f"dhcp/{net.id}/host", expected,
                                ps.dhcp_host_lines(host_file, port["mac_address"]))
    if not expected and not findings:
        notes.append(f"{node}: the port needs no DHCP host entry (owner or subnets)")
    pid = reach.run(node, ["cat", str(directory / dnsmasq.PIDFILE)], check=False).strip()
    cmdline = reach.run(node, ["cat", f"/proc/{pid}/cmdline"], check=False) if pid.isdigit() else ""
    running = net.id in cmdline and "dnsmasq" in cmdline
    findings.append(ps.Finding("dhcp", node, f"dnsmasq of network {net.id}", ps.OK if running else ps.MISSING,
                               "running", f"pid {pid}" if running else None))
    return findings


def _nat(reach: LabReach, router: Mapping, port: Mapping, ips: list[str], notes: list[str]) -> list[ps.Finding]:
    node = router["host"]
    view = L3View.from_json(reach.api.get(f"/agent/v1/hosts/{node}/l3")["view"])
    found = view.router(router["id"])
    if found is None:
        notes.append(f"{node}: its L3 view has no router {router['id']}")
        return []
    gateway = l3_plan.device_names(found.gateway.id, gateway=True)[1] if found.gateway else None
    desired = l3_nat.ruleset(found, gateway).chains.get(l3_nat.KEY, {})
    namespace = l3_plan.namespace_name(found.id)
    text = reach.in_namespace(node, namespace, ["iptables-save", "-t", "nat"], check=False)
    have = parse_save(text, l3_nat.SCOPE.prefixes).get("nat", ({}, ()))[0]
    findings = []
    for chain in sorted(set(desired) | set(have)):
        want = [r for r in desired.get(chain, ()) if ps.mentions_address(r, ips)]
        seen = [r for r in have.get(chain, ()) if ps.mentions_address(r, ips)]
        if want or seen:
            findings += ps.compare_lines("nat", node, f"{namespace[:16]} {chain}", want, seen)
    return findings


# ---------------------------------------------------------------- logs


def _log(reach: LabReach, node: str, name: str) -> list[pt.LogLine]:
    if not node:
        return []
    path = reach.lab.paths.log(node) / name
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    return pt.parse_log(text, dt.datetime.now().astimezone().tzinfo or dt.UTC)
