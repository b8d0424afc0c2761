"""The OVSDB replica (pure): a monitor's initial contents and updates in, the model's switch out,
and which updates wake the agent (another client's VIF plugged or numbered; not the agent's own
Port.tag)."""

from __future__ import annotations

from baryon.agent.drivers.ovsdb_rows import Replica, switch_from_rows
from baryon.model.ovs import ObservedBridge, ObservedPort, ObservedSwitch

EMPTY_SET = ["set", []]
EMPTY_MAP = ["map", []]


def bridge(name: str, *ports: str) -> dict:
    return {"name": name, "datapath_type": "netdev", "fail_mode": "secure",
            "ports": ["set", [["uuid", p] for p in ports]]}


def port(name: str, iface: str, tag: int | None = None) -> dict:
    return {"name": name, "interfaces": ["uuid", iface], "tag": tag if tag is not None else EMPTY_SET,
            "other_config": EMPTY_MAP}


def iface(name: str, ofport: int | None = None, **external_ids: str) -> dict:
    return {"name": name, "type": "", "options": EMPTY_MAP, "ofport": EMPTY_SET if ofport is None else ofport,
            "external_ids": ["map", sorted(external_ids.items())]}


INITIAL = {
    "Bridge": {"b-int": {"new": bridge("br-int", "p-int", "p-vif")}, "b-tun": {"new": bridge("br-tun", "p-tun")}},
    "Port": {"p-int": {"new": port("br-int", "i-int")}, "p-vif": {"new": port("qvo1", "i-vif")},
             "p-tun": {"new": port("br-tun", "i-tun")}},
    "Interface": {"i-int": {"new": iface("br-int", 65534)}, "i-vif": {"new": iface("qvo1", 1, **{"iface-id": "a"})},
                  "i-tun": {"new": iface("br-tun", 65534)}},
}


def rows(table: dict) -> list[dict]:
    return [{**change["new"], "_uuid": ["uuid", uuid]} for uuid, change in table.items()]


def loaded() -> Replica:
    replica = Replica()
    replica.load(INITIAL)
    return replica


def test_the_initial_contents_give_what_a_read_of_the_same_rows_gives() -> None:
    switch = loaded().switch()
    assert switch == switch_from_rows(rows(INITIAL["Bridge"]), rows(INITIAL["Port"]), rows(INITIAL["Interface"]))
    assert switch.bridges == (ObservedBridge("br-int", "netdev", "secure"),
                              ObservedBridge("br-tun", "netdev", "secure"))
    assert switch.port("qvo1") == ObservedPort("qvo1", "br-int", external_ids=(("iface-id", "a"),), ofport=1)


def test_only_the_bridges_asked_for() -> None:
    switch = loaded().switch({"br-tun"})
    assert [b.name for b in switch.bridges] == ["br-tun"]
    assert [p.name for p in switch.ports] == ["br-tun"]


def test_a_vif_plugged_wakes_and_appears_with_its_ofport_once_numbered() -> None:
    replica = loaded()
    plugged = {
        "Bridge": {"b-int": {"old": {"ports": ["set", [["uuid", "p-int"], ["uuid", "p-vif"]]]},
                             "new": bridge("br-int", "p-int", "p-vif", "p-new")}},
        "Port": {"p-new": {"new": port("qvo2", "i-new")}},
        "Interface": {"i-new": {"new": iface("qvo2", **{"iface-id": "b"})}},
    }
    assert replica.update(plugged) is True
    assert replica.switch().port("qvo2") == ObservedPort("qvo2", "br-int", external_ids=(("iface-id", "b"),))

    numbered = {"Interface": {"i-new": {"old": {"ofport": EMPTY_SET}, "new": iface("qvo2", 7, **{"iface-id": "b"})}}}
    assert replica.update(numbered) is True
    assert replica.switch().port("qvo2").ofport == 7


def test_the_agents_own_tag_is_replicated_without_waking() -> None:
    replica = loaded()
    tagged = {"Port": {"p-vif": {"old": {"tag": EMPTY_SET}, "new": port("qvo1", "i-vif", tag=3)}}}
    assert replica.update(tagged) is False
    assert replica.switch().port("qvo1").tag == 3


def test_a_modify_that_lists_only_the_changed_columns_keeps_the_others() -> None:
    replica = loaded()
    assert replica.update({"Port": {"p-vif": {"old": {"tag": EMPTY_SET}, "new": {"tag": 5}}}}) is False
    assert replica.switch().port("qvo1") == ObservedPort("qvo1", "br-int", external_ids=(("iface-id", "a"),),
                                                         tag=5, ofport=1)


def test_a_vif_unplugged_wakes_and_leaves_the_switch() -> None:
    replica = loaded()
    unplugged = {
        "Bridge": {"b-int": {"old": {"ports": ["set", [["uuid", "p-int"], ["uuid", "p-vif"]]]},
                             "new": bridge("br-int", "p-int")}},
        "Port": {"p-vif": {"old": port("qvo1", "i-vif")}},
        "Interface": {"i-vif": {"old": iface("qvo1", 1, **{"iface-id": "a"})}},
    }
    assert replica.update(unplugged) is True
    assert replica.switch().port("qvo1") is None
    assert replica.switch() == switch_from_rows(rows({"b-int": {"new": bridge("br-int", "p-int")},
                                                      "b-tun": INITIAL["Bridge"]["b-tun"]}),
                                                rows({k: v for k, v in INITIAL["Port"].items() if k != "p-vif"}),
                                                rows({k: v for k, v in INITIAL["Interface"].items() if k != "i-vif"}))


def test_loading_again_replaces_every_row_held() -> None:
    replica = loaded()
    replica.load({"Bridge": {"b-x": {"new": bridge("br-x")}}})
    assert replica.switch() == ObservedSwitch((ObservedBridge("br-x", "netdev", "secure"),), ())


def test_tables_it_does_not_keep_are_ignored() -> None:
    replica = loaded()
    before = replica.switch()
    assert replica.update({"Open_vSwitch": {"root": {"new": {"cur_cfg": 9}}}}) is False
    assert replica.switch() == before


def test_after_any_sequence_of_updates_the_switch_is_what_the_rows_held_give() -> None:
    replica = loaded()
    replica.switch()  # built once: what follows must rebuild exactly the ports the updates touched
    updates = [
        {"Interface": {"i-vif": {"old": {"ofport": 1}, "new": iface("qvo1", 9, **{"iface-id": "a"})}}},
        {"Port": {"p-tun": {"old": {"tag": EMPTY_SET}, "new": {"tag": 4}}}},
        {"Port": {"p-vif": {"old": {"interfaces": ["uuid", "i-vif"]}, "new": port("qvo1", "i-two")}},
         "Interface": {"i-two": {"new": iface("qvo1", 12, **{"iface-id": "a2"})}}},
        {"Bridge": {"b-tun": {"old": {"ports": ["uuid", "p-tun"]}, "new": bridge("br-tun", "p-tun", "p-vif")},
                    "b-int": {"old": {"ports": ["set", []]}, "new": bridge("br-int", "p-int")}}},
    ]
    for update in updates:
        replica.update(update)
        tables = replica.tables
        assert replica.switch() == switch_from_rows(tables["Bridge"].values(), tables["Port"].values(),
                                                    tables["Interface"].values())
    assert replica.switch().port("qvo1") == ObservedPort("qvo1", "br-tun", external_ids=(("iface-id", "a2"),),
                                                         ofport=12)
