"""SQLAlchemy 2.0 models: the server's single source of truth.

Invariants the schema itself enforces, so that concurrent API workers can never hand out the
same thing twice (a losing transaction fails on the constraint and is retried by
``engine.Database.write``):
- ``ip_allocations`` primary key (subnet_id, ip_address): an address once per subnet;
- ``ports`` unique (network_id, mac_address): a MAC once per network;
- ``segment_allocations`` primary key (network_type, physical_network, segmentation_id): a VNI,
  a VLAN on a physnet, or a flat physnet (segmentation_id 0) once;
- ``default_security_groups`` primary key project_id: one default group per project;
- ``floating_ips`` unique (fixed_port_id, fixed_ip_address): one floating IP per fixed address;
- ``router_ports`` unique port_id: a port serves at most one router;
- ``quota_locks``: the row a create locks before counting against a quota;
- ``changes`` primary key seq, allocated from the single ``change_counter`` row under a row lock
  taken last in the transaction, so sequence numbers commit in order and without gaps.

Every API resource row carries the standard attributes (id, project_id, name, description,
created_at, updated_at, revision_number).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint,
)
from sqlalchemy.dialects.mysql import MEDIUMTEXT
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

UUID = String(36)
PROJECT = String(255)
NAME = String(255)


class Base(DeclarativeBase):
    pass


class StandardAttrs:
    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    project_id: Mapped[str] = mapped_column(PROJECT, index=True, default="")
    name: Mapped[str] = mapped_column(NAME, default="")
    description: Mapped[str] = mapped_column(NAME, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)
    revision_number: Mapped[int] = mapped_column(BigInteger, default=0)


class Network(StandardAttrs, Base):
    __tablename__ = "networks"

    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    router_external: Mapped[bool] = mapped_column(Boolean, default=False)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    mtu: Mapped[int] = mapped_column(Integer)
    port_security_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    availability_zone_hints: Mapped[str] = mapped_column(String(255), default="")
    dns_domain: Mapped[str] = mapped_column(String(255), default="")

    segments: Mapped[list[NetworkSegment]] = relationship(
        back_populates="network", cascade="all, delete-orphan", order_by="NetworkSegment.segment_index",
        lazy="select")  # lists load it with selectinload (networks.LISTING); ports never need it
    subnets: Mapped[list[Subnet]] = relationship(
        back_populates="network", order_by="Subnet.created_at", lazy="raise_on_sql")


class NetworkSegment(Base):
    __tablename__ = "network_segments"

    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id", ondelete="CASCADE"), index=True)
    network_type: Mapped[str] = mapped_column(String(32))
    physical_network: Mapped[str | None] = mapped_column(String(64), nullable=True)
    segmentation_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    segment_index: Mapped[int] = mapped_column(Integer, default=0)

    network: Mapped[Network] = relationship(back_populates="segments")


class SegmentAllocation(Base):
    """What is taken: one row per allocated VNI, physnet VLAN, or flat physnet."""

    __tablename__ = "segment_allocations"

    network_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    physical_network: Mapped[str] = mapped_column(String(64), primary_key=True)  # '' for tunnels
    segmentation_id: Mapped[int] = mapped_column(Integer, primary_key=True)  # 0 for flat
    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id", ondelete="CASCADE"), index=True)


class Subnet(StandardAttrs, Base):
    __tablename__ = "subnets"

    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id"), index=True)
    ip_version: Mapped[int] = mapped_column(Integer)
    cidr: Mapped[str] = mapped_column(String(64))
    gateway_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    enable_dhcp: Mapped[bool] = mapped_column(Boolean, default=True)
    ipv6_ra_mode: Mapped[str | None] = mapped_column(String(32), nullable=True)
    ipv6_address_mode: Mapped[str | None] = mapped_column(String(32), nullable=True)
    subnetpool_id: Mapped[str | None] = mapped_column(UUID, nullable=True)

    network: Mapped[Network] = relationship(back_populates="subnets", lazy="raise_on_sql")
    allocation_pools: Mapped[list[AllocationPool]] = relationship(
        cascade="all, delete-orphan", order_by="AllocationPool.position", lazy="selectin")
    dns_nameservers: Mapped[list[DnsNameserver]] = relationship(
        cascade="all, delete-orphan", order_by="DnsNameserver.position", lazy="selectin")
    host_routes: Mapped[list[HostRoute]] = relationship(
        cascade="all, delete-orphan", order_by="HostRoute.position", lazy="selectin")


class AllocationPool(Base):
    __tablename__ = "allocation_pools"

    subnet_id: Mapped[str] = mapped_column(ForeignKey("subnets.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    first_ip: Mapped[str] = mapped_column(String(64))
    last_ip: Mapped[str] = mapped_column(String(64))


class DnsNameserver(Base):
    __tablename__ = "dns_nameservers"

    subnet_id: Mapped[str] = mapped_column(ForeignKey("subnets.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(128))


class HostRoute(Base):
    __tablename__ = "host_routes"

    subnet_id: Mapped[str] = mapped_column(ForeignKey("subnets.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    destination: Mapped[str] = mapped_column(String(64))
    nexthop: Mapped[str] = mapped_column(String(64))


class Port(StandardAttrs, Base):
    __tablename__ = "ports"
    __table_args__ = (
        UniqueConstraint("network_id", "mac_address", name="uniq_ports0network_id0mac_address"),
        Index("ix_ports_device_id", "device_id"),
    )

    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id"), index=True)
    mac_address: Mapped[str] = mapped_column(String(32))
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="DOWN")
    device_id: Mapped[str] = mapped_column(String(255), default="")
    device_owner: Mapped[str] = mapped_column(String(255), default="")
    port_security_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    binding_host_id: Mapped[str] = mapped_column(String(255), default="", index=True)
    binding_vif_type: Mapped[str] = mapped_column(String(64), default="unbound")
    binding_vif_details: Mapped[str] = mapped_column(Text, default="{}")
    binding_vnic_type: Mapped[str] = mapped_column(String(64), default="normal")
    binding_profile: Mapped[str] = mapped_column(Text, default="{}")
    # The segment the port is bound to (``binding:vif_type`` ovs); NULL when unbound or failed.
    binding_segment_id: Mapped[str | None] = mapped_column(
        ForeignKey("network_segments.id", ondelete="SET NULL", name="fk_ports_binding_segment_id"),
        nullable=True, index=True)
    dns_name: Mapped[str] = mapped_column(String(255), default="")

    fixed_ips: Mapped[list[IPAllocation]] = relationship(
        cascade="all, delete-orphan", order_by="IPAllocation.position", lazy="selectin")
    security_group_bindings: Mapped[list[PortSecurityGroupBinding]] = relationship(
        cascade="all, delete-orphan", lazy="selectin")
    allowed_address_pairs: Mapped[list[AllowedAddressPair]] = relationship(
        cascade="all, delete-orphan", order_by="AllowedAddressPair.position", lazy="selectin")
    extra_dhcp_opts: Mapped[list[ExtraDhcpOpt]] = relationship(
        cascade="all, delete-orphan", order_by="ExtraDhcpOpt.position", lazy="selectin")


class IPAllocation(Base):
    __tablename__ = "ip_allocations"

    subnet_id: Mapped[str] = mapped_column(ForeignKey("subnets.id"), primary_key=True)
    ip_address: Mapped[str] = mapped_column(String(64), primary_key=True)
    port_id: Mapped[str] = mapped_column(ForeignKey("ports.id", ondelete="CASCADE"), index=True)
    network_id: Mapped[str] = mapped_column(UUID, index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class PortSecurityGroupBinding(Base):
    __tablename__ = "port_security_group_bindings"

    port_id: Mapped[str] = mapped_column(ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True)
    security_group_id: Mapped[str] = mapped_column(
        ForeignKey("security_groups.id"), primary_key=True, index=True)


class AllowedAddressPair(Base):
    __tablename__ = "allowed_address_pairs"

    port_id: Mapped[str] = mapped_column(ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    mac_address: Mapped[str] = mapped_column(String(32))
    ip_address: Mapped[str] = mapped_column(String(64))


class ExtraDhcpOpt(Base):
    __tablename__ = "extra_dhcp_opts"

    port_id: Mapped[str] = mapped_column(ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    opt_name: Mapped[str] = mapped_column(String(64))
    opt_value: Mapped[str] = mapped_column(String(255))
    ip_version: Mapped[int] = mapped_column(Integer, default=4)


class SecurityGroup(StandardAttrs, Base):
    __tablename__ = "security_groups"

    stateful: Mapped[bool] = mapped_column(Boolean, default=True)

    rules: Mapped[list[SecurityGroupRule]] = relationship(
        cascade="all, delete-orphan", foreign_keys="SecurityGroupRule.security_group_id",
        order_by="SecurityGroupRule.created_at", lazy="selectin")


class SecurityGroupRule(Base):
    __tablename__ = "security_group_rules"

    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    project_id: Mapped[str] = mapped_column(PROJECT, index=True, default="")
    security_group_id: Mapped[str] = mapped_column(
        ForeignKey("security_groups.id", ondelete="CASCADE"), index=True)
    remote_group_id: Mapped[str | None] = mapped_column(
        ForeignKey("security_groups.id", ondelete="CASCADE"), nullable=True, index=True)
    remote_address_group_id: Mapped[str | None] = mapped_column(UUID, nullable=True, index=True)
    direction: Mapped[str] = mapped_column(String(16))
    ethertype: Mapped[str] = mapped_column(String(8))
    protocol: Mapped[str | None] = mapped_column(String(40), nullable=True)
    port_range_min: Mapped[int | None] = mapped_column(Integer, nullable=True)
    port_range_max: Mapped[int | None] = mapped_column(Integer, nullable=True)
    remote_ip_prefix: Mapped[str | None] = mapped_column(String(64), nullable=True)
    description: Mapped[str] = mapped_column(NAME, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)
    revision_number: Mapped[int] = mapped_column(BigInteger, default=0)


class DefaultSecurityGroup(Base):
    __tablename__ = "default_security_groups"

    project_id: Mapped[str] = mapped_column(PROJECT, primary_key=True)
    security_group_id: Mapped[str] = mapped_column(ForeignKey("security_groups.id", ondelete="CASCADE"))


class Tag(Base):
    __tablename__ = "tags"

    resource_id: Mapped[str] = mapped_column(UUID, primary_key=True)
    tag: Mapped[str] = mapped_column(String(255), primary_key=True)
    resource_type: Mapped[str] = mapped_column(String(32))

    __table_args__ = (Index("ix_tags_tag", "tag"),)


class Router(StandardAttrs, Base):
    __tablename__ = "routers"

    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    # Why the router is not ACTIVE (unscheduled, being built, or the L3 agent's error); see routers.
    status_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    enable_snat: Mapped[bool] = mapped_column(Boolean, default=True)
    gw_port_id: Mapped[str | None] = mapped_column(ForeignKey("ports.id", ondelete="SET NULL"), nullable=True)
    # l3-flavors: the flavor the router was made with (no foreign key: see service.flavors)
    flavor_id: Mapped[str | None] = mapped_column(UUID, nullable=True, index=True)
    availability_zone_hints: Mapped[str] = mapped_column(String(255), default="")  # comma-separated, as networks'

    ports: Mapped[list[RouterPort]] = relationship(cascade="all, delete-orphan", lazy="selectin")
    routes: Mapped[list[RouterRoute]] = relationship(
        cascade="all, delete-orphan", order_by="(RouterRoute.destination, RouterRoute.nexthop)", lazy="selectin")


class RouterPort(Base):
    """A router's interface or gateway port (``port_type`` is the port's device_owner)."""

    __tablename__ = "router_ports"

    router_id: Mapped[str] = mapped_column(ForeignKey("routers.id", ondelete="CASCADE"), primary_key=True)
    port_id: Mapped[str] = mapped_column(ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True, unique=True)
    port_type: Mapped[str] = mapped_column(String(255))


class RouterRoute(Base):
    __tablename__ = "router_routes"

    router_id: Mapped[str] = mapped_column(ForeignKey("routers.id", ondelete="CASCADE"), primary_key=True)
    destination: Mapped[str] = mapped_column(String(64), primary_key=True)
    nexthop: Mapped[str] = mapped_column(String(64), primary_key=True)


class FloatingIP(StandardAttrs, Base):
    """``(fixed_port_id, fixed_ip_address)`` is unique: one floating IP per fixed address (rows
    without an association hold NULLs, which never collide)."""

    __tablename__ = "floating_ips"
    __table_args__ = (UniqueConstraint("fixed_port_id", "fixed_ip_address", name="uniq_floatingips0fixed_address"),)

    floating_network_id: Mapped[str] = mapped_column(ForeignKey("networks.id"), index=True)
    floating_port_id: Mapped[str] = mapped_column(ForeignKey("ports.id", ondelete="CASCADE"), unique=True)
    floating_ip_address: Mapped[str] = mapped_column(String(64))
    fixed_port_id: Mapped[str | None] = mapped_column(ForeignKey("ports.id", ondelete="SET NULL"), nullable=True,
                                                      index=True)
    fixed_ip_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    router_id: Mapped[str | None] = mapped_column(ForeignKey("routers.id"), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(16), default="DOWN")


class Quota(Base):
    """A project's limit for one resource, when it differs from the configured default."""

    __tablename__ = "quotas"

    project_id: Mapped[str] = mapped_column(PROJECT, primary_key=True)
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)
    limit: Mapped[int] = mapped_column(Integer)


class QuotaLock(Base):
    """One row per (project, resource) that creates lock (``FOR UPDATE``) before counting, so two
    concurrent creates cannot both pass a quota check that only one of them may."""

    __tablename__ = "quota_locks"

    project_id: Mapped[str] = mapped_column(PROJECT, primary_key=True)
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)


class Agent(Base):
    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("agent_type", "host", name="uniq_agents0agent_type0host"),)

    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    agent_type: Mapped[str] = mapped_column(String(255))
    binary: Mapped[str] = mapped_column(String(255))
    topic: Mapped[str] = mapped_column(String(255))
    host: Mapped[str] = mapped_column(String(255))
    availability_zone: Mapped[str | None] = mapped_column(String(255), nullable=True)
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    description: Mapped[str] = mapped_column(NAME, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime)
    heartbeat_timestamp: Mapped[dt.datetime] = mapped_column(DateTime)
    configurations: Mapped[str] = mapped_column(Text, default="{}")
    resource_versions: Mapped[str] = mapped_column(Text, default="{}")
    load: Mapped[int] = mapped_column(Integer, default=0)
    # The highest change-log sequence the agent reported as realised on its host.
    realised_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # The etag of the view it realised at that sequence: while its view keeps that etag, the agent
    # is current however far the log moves (``HostViews.realised``).
    realised_etag: Mapped[str | None] = mapped_column(String(64), nullable=True)


class NetworkDhcpAgentBinding(Base):
    __tablename__ = "network_dhcp_agent_bindings"

    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id", ondelete="CASCADE"), primary_key=True)
    dhcp_agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True,
                                               index=True)


class RouterL3AgentBinding(Base):
    __tablename__ = "router_l3_agent_bindings"

    router_id: Mapped[str] = mapped_column(ForeignKey("routers.id", ondelete="CASCADE"), primary_key=True)
    l3_agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True,
                                             index=True)


class ChangeCounter(Base):
    __tablename__ = "change_counter"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)


class Change(Base):
    """The change log: one row per committed change of a resource, in commit order."""

    __tablename__ = "changes"
    # NOTE: a resource's entries, in order: its previous state for the long-polls' relevance
    # (service.digest) and its timeline (feed.changes_of).
    __table_args__ = (Index("ix_changes_resource_id_seq", "resource_id", "seq"),)

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    resource_type: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[str] = mapped_column(UUID)
    action: Mapped[str] = mapped_column(String(16))
    revision_number: Mapped[int] = mapped_column(BigInteger)
    project_id: Mapped[str] = mapped_column(PROJECT, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    body: Mapped[str | None] = mapped_column(Text().with_variant(MEDIUMTEXT(), "mysql"), nullable=True)


class AddressScope(StandardAttrs, Base):
    """An address scope (address-scope): subnet pools in one scope never overlap."""

    __tablename__ = "address_scopes"

    ip_version: Mapped[int] = mapped_column(Integer)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)


class SubnetPool(StandardAttrs, Base):
    """A subnet pool (subnet_allocation). Subnets allocated from it carry its id
    (``subnets.subnetpool_id``, no foreign key, as in Neutron); allocations lock this row
    (``FOR UPDATE``) so that two concurrent ones never take overlapping prefixes."""

    __tablename__ = "subnetpools"

    ip_version: Mapped[int] = mapped_column(Integer)
    default_prefixlen: Mapped[int] = mapped_column(Integer)
    min_prefixlen: Mapped[int] = mapped_column(Integer)
    max_prefixlen: Mapped[int] = mapped_column(Integer)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    default_quota: Mapped[int | None] = mapped_column(Integer, nullable=True)
    address_scope_id: Mapped[str | None] = mapped_column(UUID, nullable=True, index=True)

    prefixes: Mapped[list[SubnetPoolPrefix]] = relationship(
        cascade="all, delete-orphan", order_by="SubnetPoolPrefix.position", lazy="selectin")


class SubnetPoolPrefix(Base):
    __tablename__ = "subnetpool_prefixes"

    subnetpool_id: Mapped[str] = mapped_column(ForeignKey("subnetpools.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    cidr: Mapped[str] = mapped_column(String(64))


class AddressGroup(StandardAttrs, Base):
    """An address group (address-group): a named set of CIDRs that security group rules name as
    their remote end (``security_group_rules.remote_address_group_id``, no foreign key: a group a
    rule uses cannot be deleted, which the service checks under this row's lock)."""

    __tablename__ = "address_groups"

    addresses: Mapped[list[AddressAssociation]] = relationship(
        cascade="all, delete-orphan", order_by="AddressAssociation.address", lazy="selectin")


class AddressAssociation(Base):
    """One CIDR of an address group, normalised (host bits cleared): each once per group."""

    __tablename__ = "address_associations"

    address_group_id: Mapped[str] = mapped_column(ForeignKey("address_groups.id", ondelete="CASCADE"),
                                                  primary_key=True)
    address: Mapped[str] = mapped_column(String(64), primary_key=True)


class Flavor(Base):
    """A service flavor (flavors): what an operator offers for a service type, served by the
    service profiles bound to it. No project and no standard attributes, as in Neutron. Routers
    made with it hold its id (``routers.flavor_id``); a router create locks this row ``FOR SHARE``
    and a flavor delete ``FOR UPDATE``, so a flavor in use is never deleted."""

    __tablename__ = "flavors"

    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    name: Mapped[str] = mapped_column(NAME, default="")
    description: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    service_type: Mapped[str] = mapped_column(String(36))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class ServiceProfile(Base):
    """A service profile (flavors): a provider's ``driver`` and/or free-form ``metainfo``."""

    __tablename__ = "service_profiles"

    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    description: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    driver: Mapped[str] = mapped_column(String(1024), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    metainfo: Mapped[str | None] = mapped_column(String(4096), nullable=True)


class FlavorServiceProfile(Base):
    """A flavor's binding to a service profile: gone with the flavor; a bound profile cannot
    be deleted (the foreign key refuses it; the service says 409 first)."""

    __tablename__ = "flavor_service_profiles"

    flavor_id: Mapped[str] = mapped_column(ForeignKey("flavors.id", ondelete="CASCADE"), primary_key=True)
    service_profile_id: Mapped[str] = mapped_column(ForeignKey("service_profiles.id"), primary_key=True, index=True)


class DefaultSecurityGroupRule(Base):
    """A rule of the template new security groups get their rules from (security-groups-default-rules).

    ``remote_group_id`` is free text: "PARENT" (the new group itself) or a group's id. The database
    refuses two templates that would give the same rule to the same kind of group:
    ``default_key`` (set when ``used_in_default_sg``) and ``non_default_key`` (set when
    ``used_in_non_default_sg``) are unique, both ``sgtemplates.key`` of the rule."""

    __tablename__ = "default_security_group_rules"

    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    direction: Mapped[str] = mapped_column(String(16))
    ethertype: Mapped[str] = mapped_column(String(8))
    protocol: Mapped[str | None] = mapped_column(String(40), nullable=True)
    port_range_min: Mapped[int | None] = mapped_column(Integer, nullable=True)
    port_range_max: Mapped[int | None] = mapped_column(Integer, nullable=True)
    remote_ip_prefix: Mapped[str | None] = mapped_column(String(64), nullable=True)
    remote_group_id: Mapped[str | None] = mapped_column(UUID, nullable=True)
    remote_address_group_id: Mapped[str | None] = mapped_column(UUID, nullable=True)
    description: Mapped[str] = mapped_column(NAME, default="")
    used_in_default_sg: Mapped[bool] = mapped_column(Boolean)
    used_in_non_default_sg: Mapped[bool] = mapped_column(Boolean)
    default_key: Mapped[str | None] = mapped_column(String(255), nullable=True, unique=True)
    non_default_key: Mapped[str | None] = mapped_column(String(255), nullable=True, unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)


class SubnetServiceType(Base):
    """A device owner a subnet's addresses are reserved for (subnet-service-types)."""

    __tablename__ = "subnet_service_types"

    subnet_id: Mapped[str] = mapped_column(ForeignKey("subnets.id", ondelete="CASCADE"), primary_key=True)
    service_type: Mapped[str] = mapped_column(String(255), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer)


# NOTE: declared here rather than in ``Subnet`` so this extension's schema stays in one place.
Subnet.service_type_rows = relationship(  # type: ignore[attr-defined]
    SubnetServiceType, cascade="all, delete-orphan", order_by=SubnetServiceType.position, lazy="selectin")


class AutoAllocatedTopology(Base):
    """The network (and router) ``GET /v2.0/auto-allocated-topology/{project_id}`` made for a project:
    one per project (the key), gone with its network; a router deleted by hand leaves NULL."""

    __tablename__ = "auto_allocated_topologies"

    project_id: Mapped[str] = mapped_column(PROJECT, primary_key=True)
    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id", ondelete="CASCADE"))
    router_id: Mapped[str | None] = mapped_column(ForeignKey("routers.id", ondelete="SET NULL"), nullable=True)


class RbacPolicy(Base):
    """An RBAC policy (rbac-policies): ``action`` on the object ``(object_type, object_id)`` granted
    to ``target_project`` ('*': every project). One per (object, action, target). No foreign key:
    the objects are of several tables; each object's service deletes its policies with it. The
    objects' ``shared`` / ``router_external`` columns mirror their policies (``service.rbac``)."""

    __tablename__ = "rbac_policies"
    __table_args__ = (UniqueConstraint("object_type", "object_id", "action", "target_project",
                                       name="uniq_rbac_policies0object0action0target"),)

    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    project_id: Mapped[str] = mapped_column(PROJECT, index=True, default="")
    object_type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str] = mapped_column(UUID, index=True)
    action: Mapped[str] = mapped_column(String(255))
    target_project: Mapped[str] = mapped_column(PROJECT, index=True)
