"""The demo's checks on the built deployment: each returns a ``CheckResult`` with its time and what
was seen. Traffic only between the lab's namespaces (``probes``).

Order: DHCP leases, the L3 agent's work (router and floating IP ACTIVE), VM <-> VM across the
tunnel, VM -> external host through SNAT, external host -> VM through the floating IP, and a port
the security group does not allow. A check that needs a path waits for it (with a deadline); the
last one must *not* connect, so it is tried once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from baryon.lab import probes
from baryon.demo.build import Built
from baryon.demo.plan import Deployment
from baryon.demo.summary import CheckResult, check_line
from baryon.lab import host, vms
from baryon.lab.api import Api, ApiError
from baryon.lab.lab import Lab
from baryon.lab.topology import EXTERNAL_GATEWAY

PATH_TIMEOUT = 10.0  # seconds a path may take to work after its ports went ACTIVE
SSH_PORT = 22
BLOCKED_PORT = 8080
SNAT_PORT = 7001


def run_all(lab: Lab, api: Api, d: Deployment, built: Built, say: Callable[[str], None]) -> list[CheckResult]:
    checks: list[tuple[str, Callable[[], tuple[bool, str]]]] = [
        ("DHCP leases", lambda: dhcp_leases(lab, api, built)),
        ("router and floating IP ACTIVE", lambda: l3_active(api, built)),
        ("VM <-> VM across the tunnel", lambda: vm_to_vm(lab, built)),
        ("VM -> external host through SNAT", lambda: snat(lab, d, built)),
        ("external host -> VM by floating IP", lambda: floating_in(lab, d, built)),
        (f"security group blocks tcp {BLOCKED_PORT}", lambda: blocked(lab, d, built)),
    ]
    results = []
    for name, check in checks:
        started = time.monotonic()
        try:
            ok, detail = check()
        except (host.LabError, ApiError, OSError) as exc:
            ok, detail = False, f"error: {exc}"
        result = CheckResult(name, ok, time.monotonic() - started, detail)
        say(check_line(result))
        results.append(result)
    return results


def _v4(vm: vms.Vm) -> str:
    return next(a.split("/")[0] for a in vm.addresses if ":" not in a)


def dhcp_leases(lab: Lab, api: Api, built: Built) -> tuple[bool, str]:
    """Each VM's DHCP client got its port's address (the lease its udhcpc recorded at boot)."""
    seen, ok = [], True
    for name, vm in built.vms.items():
        port = api.get(f"/v2.0/ports/{vm.port_id}")["port"]
        want = next(ip["ip_address"] for ip in port["fixed_ips"] if ":" not in ip["ip_address"])
        lease = vms.read_lease(lab, name)
        got = lease.get("ip", "")
        ok = ok and vm.dhcp and got == want
        seen.append(f"{name} {got or 'no lease'}" + ("" if got == want else f" (port has {want})")
                    + (f" gw {lease['router']}" if lease.get("router") else ""))
    return ok, "; ".join(seen)


def l3_active(api: Api, built: Built) -> tuple[bool, str]:
    """The L3 agent built the router's namespace and the floating IP's rules (both report ACTIVE)."""
    router_id, fip_id = built.router["id"], built.floating_ip["id"]
    deadline = time.monotonic() + PATH_TIMEOUT * 2
    while True:
        router = api.get(f"/v2.0/routers/{router_id}")["router"]["status"]
        fip = api.get(f"/v2.0/floatingips/{fip_id}")["floatingip"]["status"]
        if (router, fip) == ("ACTIVE", "ACTIVE") or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    return (router, fip) == ("ACTIVE", "ACTIVE"), f"router {router}, floating IP {fip}"


def vm_to_vm(lab: Lab, built: Built) -> tuple[bool, str]:
    (a, vm_a), (b, vm_b) = list(built.vms.items())[:2]
    there = probes.ping_within(lab, f"vm:{a}", _v4(vm_b), PATH_TIMEOUT)
    back = probes.ping_within(lab, f"vm:{b}", _v4(vm_a), PATH_TIMEOUT)
    return there and back, (f"{a} ({vm_a.node}) -> {b} {_v4(vm_b)}: {'reply' if there else 'no reply'}; "
                            f"{b} ({vm_b.node}) -> {a} {_v4(vm_a)}: {'reply' if back else 'no reply'}")


def _gateway_address(built: Built) -> str:
    return built.router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]


def snat(lab: Lab, d: Deployment, built: Built) -> tuple[bool, str]:
    """A VM without a floating IP connects to the external host, which sees the router's address."""
    name = next((n for n in built.vms if n != d.floating_vm), d.floating_vm)
    probes.ping_within(lab, f"vm:{name}", EXTERNAL_GATEWAY, PATH_TIMEOUT)  # the path is up (ARP, flows)
    seen = probes.tcp_peer(lab, f"vm:{name}", "external", EXTERNAL_GATEWAY, SNAT_PORT)
    want = _gateway_address(built)
    if seen is None:
        return False, f"{name} -> {EXTERNAL_GATEWAY}:{SNAT_PORT}: no connection"
    return seen == want, (f"{name} {_v4(built.vms[name])} -> {EXTERNAL_GATEWAY}:{SNAT_PORT}: the external host "
                          f"saw {seen}" + (" (the router's gateway)" if seen == want else f", not {want}"))


def floating_in(lab: Lab, d: Deployment, built: Built) -> tuple[bool, str]:
    """The external host pings the floating IP and reaches a listener on the VM's port 22."""
    floating = built.floating_ip["floating_ip_address"]
    pinged = probes.ping_within(lab, "external", floating, PATH_TIMEOUT)
    seen = probes.tcp_peer(lab, "external", f"vm:{d.floating_vm}", floating, SSH_PORT)
    ok = pinged and seen == EXTERNAL_GATEWAY
    return ok, (f"ping {floating}: {'reply' if pinged else 'no reply'}; tcp {floating}:{SSH_PORT} -> "
                f"{d.floating_vm}: " + (f"connected, from {seen}" if seen else "no connection"))


def blocked(lab: Lab, d: Deployment, built: Built) -> tuple[bool, str]:
    """A listener on the VM's port 8080, which the group does not allow: no connection may arrive."""
    floating = built.floating_ip["floating_ip_address"]
    seen = probes.tcp_peer(lab, "external", f"vm:{d.floating_vm}", floating, BLOCKED_PORT, connect_timeout=2)
    if seen is None:
        return True, f"tcp {floating}:{BLOCKED_PORT} -> {d.floating_vm} (listening): dropped, as {d.group} says"
    return False, f"tcp {floating}:{BLOCKED_PORT} -> {d.floating_vm}: connected from {seen}, {d.group} lets it in"
