"""The demo's plan: its steps as a user types them, and the clean-up of an earlier run."""

from __future__ import annotations

import shlex

from baryon.demo.plan import MARKER, Deployment, Leftovers, Op, cleanup_plan, find_leftovers, steps

URL = "http://127.0.0.1:9696"
D = Deployment()


def test_the_steps_build_the_seed_deployment_in_an_order_the_api_accepts() -> None:
    assert [s.key for s in steps(D)] == [
        "external-network", "external-subnet", "network", "subnet", "router", "router-gateway", "router-interface",
        "group", "rule-icmp", "rule-ssh", "vm:demo-vm1", "vm:demo-vm2", "floating-ip"]


def test_each_step_prints_the_openstack_command_that_does_the_same() -> None:
    commands = {s.key: s.command(URL) for s in steps(D)}
    head = f"openstack --os-auth-type none --os-endpoint {URL} "
    assert commands["external-network"] == head + (
        "network create --external --provider-network-type flat --provider-physical-network physnet1 "
        "--description 'baryon demo' public")
    assert commands["external-subnet"] == head + (
        "subnet create --network public --subnet-range 203.0.113.0/24 --gateway 203.0.113.1 "
        "--allocation-pool start=203.0.113.100,end=203.0.113.200 --no-dhcp public-subnet")
    assert commands["network"] == head + "network create demo-net"
    assert commands["router-gateway"] == head + "router set --external-gateway public demo-router"
    assert commands["router-interface"] == head + "router add subnet demo-router demo-subnet"
    assert commands["rule-ssh"] == head + "security group rule create --ingress --protocol tcp --dst-port 22 demo-sg"
    # Every openstack command parses back into the same words (quoting).
    assert shlex.split(commands["external-network"])[-3:] == ["--description", MARKER, "public"]


def test_vms_are_made_by_the_lab_and_the_floating_ip_names_the_vms_port() -> None:
    by_key = {s.key: s for s in steps(D)}
    assert by_key["vm:demo-vm2"].command(URL, ("--state-dir", "/tmp/x y")) == (
        "baryon lab --state-dir '/tmp/x y' vm create demo-vm2 --node compute2 --network demo-net "
        "--security-group demo-sg")
    fip = by_key["floating-ip"].command(URL, values={"port:demo-vm1": "PORT-1", "port:demo-vm2": "PORT-2"})
    assert fip.endswith("floating ip create --description 'baryon demo' --port PORT-1 public")


def _net(net_id: str, name: str, description: str = "") -> dict:
    return {"id": net_id, "name": name, "description": description}


def _port(port_id: str, net: str, owner: str, device: str = "") -> dict:
    return {"id": port_id, "network_id": net, "device_owner": owner, "device_id": device}


def test_leftovers_are_the_demo_objects_only() -> None:
    networks = [_net("n-pub", "public", MARKER), _net("n-demo", "demo-net"), _net("n-other", "other"),
                _net("n-pub2", "public")]  # someone else's public: not the demo's
    routers = [{"id": "r-demo", "name": "demo-router"}, {"id": "r-other", "name": "r1"}]
    ports = [_port("p-vm1", "n-demo", "compute:nova"), _port("p-lost", "n-demo", "compute:nova"),
             _port("p-dhcp", "n-demo", "network:dhcp"), _port("p-ri", "n-demo", "network:router_interface", "r-demo"),
             _port("p-gw", "n-pub", "network:router_gateway", "r-demo"), _port("p-x", "n-other", "compute:nova"),
             _port("p-ri2", "n-other", "network:router_interface", "r-other")]
    fips = [{"id": "f-demo", "description": MARKER, "router_id": "r-demo", "floating_network_id": "n-pub"},
            {"id": "f-other", "description": "", "router_id": "r-other", "floating_network_id": "n-pub2"}]
    groups = [{"id": "g-demo", "name": "demo-sg"}, {"id": "g-default", "name": "default"}]
    left = find_leftovers(D, {"demo-vm1": "p-vm1", "v1": "p-x"}, networks, routers, ports, fips, groups)
    assert left == Leftovers(vms=("demo-vm1",), floating_ips=("f-demo",), router_interfaces=(("r-demo", "p-ri"),),
                             routers=("r-demo",), ports=("p-lost",), groups=("g-demo",),
                             networks=("n-demo", "n-pub"))


def test_cleanup_deletes_in_dependency_order() -> None:
    left = Leftovers(vms=("demo-vm1",), floating_ips=("f",), router_interfaces=(("r", "p-ri"),), routers=("r",),
                     ports=("p",), groups=("g",), networks=("n-demo", "n-pub"))
    assert cleanup_plan(left) == [Op("vm", "demo-vm1"), Op("floatingip", "f"), Op("router-interface", "p-ri", "r"),
                                  Op("router", "r"), Op("port", "p"), Op("group", "g"), Op("network", "n-demo"),
                                  Op("network", "n-pub")]
    assert cleanup_plan(Leftovers()) == []
