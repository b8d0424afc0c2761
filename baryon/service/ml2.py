"""ML2 type drivers: flat, VLAN and VXLAN segments, their validation, allocation and MTU.

Pure part: ``TypeDrivers`` (built from settings) validates a provider request, says which ids a
project network may take, and computes MTUs. DB part: ``allocate`` reserves a segment in
``segment_allocations`` (its primary key makes a double allocation impossible; a racing
transaction fails on it and is retried by the caller's unit of work, then finds the id taken).

Allocation of a project network takes the lowest free id of the first type in
``tenant_network_types`` that has one, as the issue and Neutron's ordered type list require;
when none is free: ``NoNetworkAvailable`` (503).

Port binding (pure: ``bind_port``), as ML2's openvswitch mechanism driver does it: a port on
host H binds to the first segment of its network that H's live Open vSwitch agent can reach —
a tunnel segment when its type is in the agent's ``tunnel_types``, a flat or VLAN segment when
its physnet is a key of the agent's ``bridge_mappings``. Otherwise the binding fails, and
``binding:vif_details`` says why (Neutron only logs it; Baryon shows it to the admin).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from baryon.config import Settings
from baryon.db.models import SegmentAllocation
from baryon.service import errors

VXLAN_OVERHEAD = {4: 50, 6: 70}  # outer IP + UDP + VXLAN + inner Ethernet
MIN_VLAN, MAX_VLAN = 1, 4094
MIN_VNI, MAX_VNI = 1, 2**24 - 1


@dataclass(frozen=True)
class Segment:
    network_type: str
    physical_network: str | None
    segmentation_id: int | None

    @property
    def key(self) -> tuple[str, str, int]:
        return self.network_type, self.physical_network or "", self.segmentation_id or 0


def _invalid(msg: str) -> errors.InvalidInput:
    return errors.InvalidInput(error_message=msg)


@dataclass(frozen=True)
class TypeDrivers:
    type_drivers: tuple[str, ...]
    tenant_network_types: tuple[str, ...]
    flat_networks: tuple[str, ...]
    vlan_ranges: dict[str, tuple[tuple[int, int], ...]]
    vni_ranges: tuple[tuple[int, int], ...]
    global_physnet_mtu: int
    path_mtu: int
    physnet_mtus: dict[str, int]
    overlay_ip_version: int

    @classmethod
    def from_settings(cls, settings: Settings) -> "TypeDrivers":
        vlan: dict[str, list[tuple[int, int]]] = {}
        for entry in settings.ml2_type_vlan.network_vlan_ranges:
            ranges = vlan.setdefault(entry.physical_network, [])
            if entry.minimum is not None and entry.maximum is not None:
                ranges.append((entry.minimum, entry.maximum))
        mtus = {}
        for item in settings.ml2.physical_network_mtus:
            physnet, _, mtu = item.partition(":")
            mtus[physnet] = int(mtu)
        return cls(
            type_drivers=settings.ml2.type_drivers, tenant_network_types=settings.ml2.tenant_network_types,
            flat_networks=settings.ml2_type_flat.flat_networks,
            vlan_ranges={k: tuple(sorted(v)) for k, v in vlan.items()},
            vni_ranges=tuple(sorted(settings.ml2_type_vxlan.vni_ranges)),
            global_physnet_mtu=settings.DEFAULT.global_physnet_mtu, path_mtu=settings.ml2.path_mtu,
            physnet_mtus=mtus, overlay_ip_version=settings.ml2.overlay_ip_version,
        )

    # ------------------------------------------------------------ pure rules

    def validate_provider(self, network_type: str | None, physical_network: str | None,
                          segmentation_id: int | None) -> Segment:
        """A provider request as Neutron's type drivers validate it; ids may still be missing
        (a VLAN or VXLAN request without an id is completed by ``allocate``)."""
        if network_type is None:
            raise _invalid("provider:network_type required")
        if network_type not in self.type_drivers or network_type not in ("flat", "vlan", "vxlan"):
            raise _invalid(f"network_type value '{network_type}' not supported")
        if network_type == "flat":
            if segmentation_id is not None:
                raise _invalid("provider:segmentation_id prohibited for flat provider network")
            if not physical_network:
                raise _invalid("provider:physical_network required for flat provider network")
            if "*" not in self.flat_networks and physical_network not in self.flat_networks:
                raise _invalid(f"physical_network '{physical_network}' unknown for flat provider network")
        elif network_type == "vlan":
            if physical_network and physical_network not in self.vlan_ranges:
                raise _invalid(f"physical_network '{physical_network}' unknown for VLAN provider network")
            if segmentation_id is not None and not MIN_VLAN <= segmentation_id <= MAX_VLAN:
                raise _invalid(f"provider:segmentation_id out of range ({MIN_VLAN} through {MAX_VLAN})")
            if segmentation_id is not None and not physical_network:
                raise _invalid("provider:physical_network required for VLAN provider network "
                               "with a provider:segmentation_id")
        else:
            if physical_network:
                raise _invalid(f"provider:physical_network specified for {network_type.upper()} network")
            if segmentation_id is not None and not MIN_VNI <= segmentation_id <= MAX_VNI:
                raise _invalid(f"provider:segmentation_id out of range ({MIN_VNI} through {MAX_VNI})")
        return Segment(network_type, physical_network or None, segmentation_id)

    def pools(self, network_type: str, physical_network: str | None) -> list[tuple[str, tuple[tuple[int, int], ...]]]:
        """(physnet, ranges) a network of this type may take ids from, in preference order."""
        if network_type == "vxlan":
            return [("", self.vni_ranges)]
        if network_type == "vlan":
            if physical_network:
                return [(physical_network, self.vlan_ranges.get(physical_network, ()))]
            return sorted(self.vlan_ranges.items())
        return []

    def mtu(self, segment: Segment) -> int:
        candidates = [m for m in (self.global_physnet_mtu,) if m > 0]
        if segment.network_type == "vxlan":
            if self.path_mtu > 0:
                candidates.append(self.path_mtu)
            return min(candidates) - VXLAN_OVERHEAD[self.overlay_ip_version] if candidates else 0
        if segment.physical_network in self.physnet_mtus:
            candidates.append(self.physnet_mtus[segment.physical_network])
        return min(candidates) if candidates else 0


VIF_TYPE_OVS, VIF_TYPE_BINDING_FAILED, VIF_TYPE_UNBOUND = "ovs", "binding_failed", "unbound"
TUNNEL_TYPES = ("vxlan",)


@dataclass(frozen=True)
class OvsAgent:
    """What binding needs of the host's Open vSwitch agent (``alive`` computed by the caller)."""

    host: str
    alive: bool
    configurations: dict[str, Any]
    heartbeat: dt.datetime | None = None
    down_time: int = 0


@dataclass(frozen=True)
class Binding:
    vif_type: str
    vif_details: dict[str, Any] = field(default_factory=dict)
    segment_id: str | None = None


def _names(values: Any) -> str:
    return ", ".join(sorted(str(v) for v in values)) or "none"


def ovs_vif_details(configurations: dict[str, Any]) -> dict[str, Any]:
    """Neutron's OVS ``binding:vif_details``, from what the agent reports."""
    return {
        "port_filter": True,
        "ovs_hybrid_plug": configurations.get("ovs_hybrid_plug", True),
        "datapath_type": configurations.get("datapath_type", "system"),
        "bridge_name": configurations.get("integration_bridge", "br-int"),
        "connectivity": "l2",
        "bound_drivers": {"0": "openvswitch"},
    }


def unreachable(agent: OvsAgent, segment: Segment) -> str | None:
    """Why ``agent`` cannot reach ``segment``, or None when it can."""
    config = agent.configurations
    tunnel_types = config.get("tunnel_types")
    tunnel_types = tunnel_types if isinstance(tunnel_types, list) else []
    mappings = config.get("bridge_mappings")
    mappings = mappings if isinstance(mappings, dict) else {}
    prefix = f"the Open vSwitch agent on {agent.host} cannot reach a {segment.network_type} segment"
    if segment.network_type in TUNNEL_TYPES:
        if segment.network_type in tunnel_types:
            return None
        return f"{prefix} (tunnel_types: {_names(tunnel_types)})"
    if segment.network_type in ("flat", "vlan"):
        if segment.physical_network in mappings:
            return None
        return f"{prefix} on {segment.physical_network} (bridge_mappings: {_names(mappings)})"
    return f"{prefix} (not supported by the openvswitch mechanism driver)"


def bind_port(host: str, agent: OvsAgent | None, segments: Sequence[tuple[str, Segment]]) -> Binding:
    """The binding of a port on ``host`` to one of its network's ``segments`` ((id, segment), in
    order), given the host's Open vSwitch agent (None: none registered)."""
    if not host:
        return Binding(VIF_TYPE_UNBOUND)
    if agent is None:
        return _failed(f"no live Open vSwitch agent on host {host}")
    if not agent.alive:
        seen = agent.heartbeat.strftime("%Y-%m-%d %H:%M:%S") if agent.heartbeat else "never"
        return _failed(f"no live Open vSwitch agent on host {host}: its last heartbeat was at {seen}, "
                       f"more than agent_down_time ({agent.down_time} s) ago")
    reasons = []
    for segment_id, segment in segments:
        reason = unreachable(agent, segment)
        if reason is None:
            return Binding(VIF_TYPE_OVS, ovs_vif_details(agent.configurations), segment_id)
        reasons.append(reason)
    return _failed("; ".join(reasons) or "the network has no segment")


def _failed(reason: str) -> Binding:
    return Binding(VIF_TYPE_BINDING_FAILED, {"reason": reason})


def lowest_free(ranges: tuple[tuple[int, int], ...], taken: list[int]) -> int | None:
    """Lowest id inside ``ranges`` (sorted, inclusive) not in ``taken`` (sorted ascending)."""
    taken_set = set(taken)
    for low, high in ranges:
        candidate = low
        while candidate <= high:
            if candidate not in taken_set:
                return candidate
            candidate += 1
    return None


# ---------------------------------------------------------------- database


def _taken(session: Session, network_type: str, physnet: str) -> list[int]:
    return list(session.execute(
        select(SegmentAllocation.segmentation_id)
        .where(SegmentAllocation.network_type == network_type, SegmentAllocation.physical_network == physnet)
        .order_by(SegmentAllocation.segmentation_id)).scalars())


def _reserve(session: Session, segment: Segment, network_id: str, *, chosen: bool = False) -> Segment:
    """``chosen``: the id was picked here as the lowest free one. A concurrent transaction that
    committed it since is then not the client's error: the insert fails on the primary key and
    the unit of work is retried, picking again (under READ COMMITTED the check below would see
    the winner's row and refuse with ``*InUse``)."""
    network_type, physnet, seg_id = segment.key
    existing = None if chosen else session.get(SegmentAllocation, (network_type, physnet, seg_id))
    if existing is not None:
        if network_type == "flat":
            raise errors.FlatNetworkInUse(physical_network=physnet)
        if network_type == "vlan":
            raise errors.VlanIdInUse(vlan_id=seg_id, physical_network=physnet)
        raise errors.TunnelIdInUse(tunnel_id=seg_id)
    session.add(SegmentAllocation(network_type=network_type, physical_network=physnet,
                                  segmentation_id=seg_id, network_id=network_id))
    return segment


def allocate(session: Session, drivers: TypeDrivers, network_id: str, requested: Segment | None) -> Segment:
    """Reserve the requested provider segment, or a project segment when ``requested`` is None."""
    if requested is not None:
        if requested.network_type == "flat" or requested.segmentation_id is not None:
            return _reserve(session, requested, network_id)
        for physnet, ranges in drivers.pools(requested.network_type, requested.physical_network):
            seg_id = lowest_free(ranges, _taken(session, requested.network_type, physnet))
            if seg_id is not None:
                return _reserve(session, Segment(requested.network_type, physnet or None, seg_id), network_id,
                                chosen=True)
        raise errors.NoNetworkAvailable()
    for network_type in drivers.tenant_network_types:
        for physnet, ranges in drivers.pools(network_type, None):
            seg_id = lowest_free(ranges, _taken(session, network_type, physnet))
            if seg_id is not None:
                return _reserve(session, Segment(network_type, physnet or None, seg_id), network_id, chosen=True)
    raise errors.NoNetworkAvailable()
