"""A traced path's renderings (``baryon.debug.path``): the hop list a person reads and the JSON."""

from __future__ import annotations

import json

from baryon.debug.path import DELIVERED, DROPPED, FORWARDED, Hop, Path, as_json, render_text
from baryon.debug.trace import ovs_device

PORT = "45ba89f8-f96b-45c3-8625-a56d2da4226d"


def sample() -> Path:
    path = Path("icmp 10.0.0.5 -> 10.0.0.7", {"port": PORT, "vm": "vm1", "node": "compute1", "name": None},
                "10.0.0.7")
    path.add(Hop("compute1", "port 45ba89f8-f9", "sends icmp to 10.0.0.7", kind="port",
                 objects={"port": PORT, "network": "tenant (n1)"}))
    path.add(Hop("compute1", "br-tun", "local VLAN 1 -> vxlan-0a0a0a0c to compute2 VNI 7",
                 details=["table 20 priority 2 dl_vlan=1: " + "x" * 200],
                 objects={"remote_node": "compute2", "vni": 7, "network": "tenant (n1)", "zeta": "last",
                          "empty": None}))
    return path


def test_hops_are_numbered_in_order() -> None:
    path = sample()
    assert [h.index for h in path.hops] == [1, 2]
    assert not path.ended


def test_text_lists_hops_details_objects_and_the_verdict() -> None:
    path = sample()
    path.end(DELIVERED, f"to port {PORT} (VM vm2) on compute2", port=PORT)
    text = render_text(path)
    lines = text.splitlines()
    assert lines[0] == "trace: icmp 10.0.0.5 -> 10.0.0.7"
    assert lines[1] == f"from: port={PORT}, vm=vm1, node=compute1"  # empty values left out
    assert lines[3].startswith(" 1. compute1 port 45ba89f8-f9  sends icmp")
    assert " 2. compute1 br-tun" in text
    detail = next(line for line in lines if "table 20" in line)
    assert detail.endswith("...") and len(detail.split("| ", 1)[1]) == 110  # cut in text only
    # objects in Neutron's order (network, vni, remote node...), unknown keys last, None left out
    assert "[network tenant (n1), vni 7, remote_node compute2, zeta last]" in text
    assert lines[-1] == f"verdict: DELIVERED: to port {PORT} (VM vm2) on compute2"


def test_a_drop_names_its_hop_unless_there_is_none() -> None:
    path = sample()
    path.end(DROPPED, "no ingress rule of group g allows tcp/8080 from 10.0.0.5")
    assert path.verdict.hop == 2 and not path.verdict.ok
    assert render_text(path).splitlines()[-1] == (
        "verdict: DROPPED at hop 2: no ingress rule of group g allows tcp/8080 from 10.0.0.5")
    nowhere = sample()
    nowhere.end(DROPPED, "no port has 10.0.0.7", at_hop=False)
    assert nowhere.verdict.hop is None
    assert render_text(nowhere).splitlines()[-1] == "verdict: DROPPED: no port has 10.0.0.7"


def test_json_carries_every_field_and_the_full_details() -> None:
    path = sample()
    path.end(FORWARDED, "leaves by physnet1", network="ext-id")
    data = json.loads(json.dumps(as_json(path)))
    assert data["packet"] == "icmp 10.0.0.5 -> 10.0.0.7" and data["destination"] == "10.0.0.7"
    assert data["source"]["vm"] == "vm1"
    assert data["verdict"] == {"status": "forwarded", "reason": "leaves by physnet1", "hop": 2, "port": None,
                               "network": "ext-id", "ok": True}
    hop = data["hops"][1]
    assert set(hop) == {"index", "node", "place", "summary", "kind", "details", "objects"}
    assert hop["objects"]["vni"] == 7 and len(hop["details"][0]) > 200
    assert as_json(Path("p", {}, "d"))["verdict"] is None


def test_device_names_on_br_int() -> None:
    assert ovs_device({"id": PORT, "device_owner": "compute:nova"}) == "qvo45ba89f8-f9"
    assert ovs_device({"id": PORT, "device_owner": ""}) == "qvo45ba89f8-f9"
    for owner in ("network:router_interface", "network:router_gateway", "network:dhcp"):
        assert ovs_device({"id": PORT, "device_owner": owner}) == "tap45ba89f8-f9"
