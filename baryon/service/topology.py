"""The topology page's reads: the change log as one caller may see it, and ``baryon debug port``.

``TopologyFeed.changes(ctx, since)`` -> ``Batch``: the change-log entries after ``since`` (at most
``limit``, in sequence order) of the resources the page draws (``RESOURCES``), keeping only those
``ctx`` may see, and ``seq``, the last sequence *examined* (entries left out still advance it, so
a reader resumes after them). Visibility is the API's, judged on the entry's body (the resource as
it was after the change, before it for a delete):

- admin: everything;
- network: its project's, or ``shared`` or ``router:external`` in the body, or granted to the
  project now by an RBAC entry (either action, for the project or for all);
- subnet: its project's, or on a network shared with the project now (``access_as_shared``, for
  it or for all: external access alone shows a network, not its subnets, as the API);
- port: its project's, or on a network of the project (now);
- router, floating IP: its project's; agent: admins only.

"Now" is the network and its RBAC entries as they are when the batch is read: a network deleted
since then shows nobody else's subnet or port. Bodies are the admin's; the caller hides admin-only
fields (the API layer presents them with the resource's schema, as a GET does).

``debug_port(ctx, port_id)`` runs ``baryon debug --state-dir <lab> port <id>`` when the server is
configured with the lab it runs in (``[baryon] lab_state_dir``): the server cannot reach nodes in
general. Admin only; ``LabNotConfigured`` (404) without a lab.
NOTE: the command needs the lab's namespaces (/run/netns) and its loopback API: a server started in
the root namespaces beside the lab. The lab's own server (in the controller's namespaces) cannot
run it, so the lab does not set the option (yet).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from baryon.db import models as m
from baryon.service import errors, feed, ports, rbac
from baryon.service.base import Env
from baryon.service.context import Context

RESOURCES = ("network", "subnet", "port", "router", "floatingip", "agent")
BATCH = 500
DEBUG_TIMEOUT = 60.0  # seconds for one `baryon debug port`


@dataclass(frozen=True)
class Batch:
    entries: list[dict]  # {seq, resource, action, id, body}
    seq: int  # the last sequence examined (>= the last entry's)


@dataclass(frozen=True)
class DebugOutput:
    port_id: str
    command: list[str]
    exit_status: int | None  # None: timed out
    output: str


@dataclass(frozen=True)
class NetworkFacts:
    """What the caller's visibility needs of the networks a batch names, read once per batch."""
    owners: dict[str, str]  # network id -> project id, for the networks that still exist
    granted: frozenset[str]  # granted to the caller by an RBAC entry of either action
    shared: frozenset[str]  # granted by an ``access_as_shared`` entry

    @staticmethod
    def read(session: Session, ctx: Context, network_ids: set[str]) -> NetworkFacts:
        if not network_ids:
            return NetworkFacts({}, frozenset(), frozenset())
        wanted = sorted(network_ids)
        owners = {r.id: r.project_id for r in session.execute(
            select(m.Network.id, m.Network.project_id).where(m.Network.id.in_(wanted)))}
        entries = session.execute(select(m.RbacPolicy.object_id, m.RbacPolicy.action).where(
            m.RbacPolicy.object_type == "network", m.RbacPolicy.object_id.in_(wanted),
            m.RbacPolicy.target_project.in_((rbac.WILDCARD, ctx.project_id)))).all()
        return NetworkFacts(owners, frozenset(e.object_id for e in entries),
                            frozenset(e.object_id for e in entries if e.action == rbac.SHARED))


def visible(ctx: Context, resource: str, body: dict, networks: NetworkFacts) -> bool:
    if ctx.is_admin:
        return True
    own = body.get("project_id") == ctx.project_id
    if resource == "network":
        return (own or bool(body.get("shared")) or bool(body.get("router:external"))
                or body.get("id") in networks.granted)
    if resource == "subnet":
        return own or body.get("network_id") in networks.shared
    if resource == "port":
        return own or networks.owners.get(body.get("network_id", "")) == ctx.project_id
    if resource in ("router", "floatingip"):
        return own
    return False  # agents, and anything else


class TopologyFeed:
    def __init__(self, env: Env):
        self.env = env

    def last_seq(self) -> int:
        with self.env.db.read() as session:
            return feed.last_seq(session)

    def changes(self, ctx: Context, since: int, limit: int = BATCH) -> Batch:
        with self.env.db.read() as session:
            raw = feed.changes_since(session, since, limit)
            wanted = [e for e in raw if e["resource"] in RESOURCES and e["body"] is not None]
            needs_network = {e["body"].get("network_id") if e["resource"] != "network" else e["id"]
                             for e in wanted if e["resource"] in ("network", "subnet", "port")} - {None, ""}
            networks = (NetworkFacts({}, frozenset(), frozenset()) if ctx.is_admin
                        else NetworkFacts.read(session, ctx, needs_network))
        entries = [{"seq": e["seq"], "resource": e["resource"], "action": e["action"], "id": e["id"],
                    "body": e["body"]} for e in wanted if visible(ctx, e["resource"], e["body"], networks)]
        return Batch(entries=entries, seq=raw[-1]["seq"] if raw else since)

    def debug_port(self, ctx: Context, port_id: str) -> DebugOutput:
        """``baryon debug port`` run on the lab at ``[baryon] lab_state_dir`` (admin only): its output."""
        if not ctx.is_admin:
            raise errors.PolicyNotAuthorized(rule="rule:debug_port")
        lab_dir = self.env.settings.baryon.lab_state_dir
        with self.env.db.read() as session:
            ports.load_visible(session, ctx, port_id)  # PortNotFound first: a typo is a typo
        if not lab_dir:
            raise errors.LabNotConfigured(port_id=port_id)
        command = [sys.executable, "-m", "baryon", "debug", "--state-dir", lab_dir, "port", port_id]
        fds = machine_namespaces()
        if fds:
            # NOTE: the lab's server runs in the controller's namespaces, where neither the other
            # nodes' namespaces (registered in the machine's /run/netns) nor the lab's loopback API
            # are: the debug tool, which only reads, runs in the machine's, whose descriptors the
            # lab handed over (``baryon.lab.server``).
            net, mnt = fds
            command = ["nsenter", f"--net=/proc/self/fd/{net}", f"--mount=/proc/self/fd/{mnt}", "--", *command]
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=DEBUG_TIMEOUT, check=False,
                                  stdin=subprocess.DEVNULL, pass_fds=fds or ())
        except subprocess.TimeoutExpired as exc:
            partial = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            return DebugOutput(port_id, command, None, partial + f"\n(timed out after {DEBUG_TIMEOUT:.0f} s)")
        return DebugOutput(port_id, command, proc.returncode, proc.stdout + proc.stderr)


def machine_namespaces() -> tuple[int, int] | None:
    """The (net, mount) namespace descriptors the lab handed its server (``BARYON_MACHINE_NS_FDS``),
    None elsewhere."""
    raw = os.environ.get("BARYON_MACHINE_NS_FDS", "")
    try:
        net, mnt = (int(fd) for fd in raw.split(","))
    except ValueError:
        return None
    return net, mnt
