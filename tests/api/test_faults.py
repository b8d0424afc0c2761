"""Faults with nothing lost: the server killed, and its database restarted, during a burst of writes.

Each test runs its own ``baryon server`` on a fresh database of a private database server
(PostgreSQL, then MariaDB), both started for this module only: a restart must not cut the
connections of the suite's shared servers.

- ``kill -9`` of the server (its whole process group) while 6 clients create ports with fixed
  IPs and add router interfaces (by subnet, and by a port made for it). After a restart on the
  same database: every answered request is there whole; the database holds no port without its
  IP allocation (nor the reverse), no router port without its interface port (nor the reverse);
  the change log is 1..N without a gap and logs exactly the ports, routers, networks and subnets
  that exist. An agent long-polling its host's view all along (``agent.client.ServerClient``, as
  the agents' runtime does) resumes with the etag it had: the server answers "unchanged" without
  sending the view again (the feed's relist: a full ``view`` in the answer), at a sequence no
  lower than any it heard before the kill.
- The database stopped (its clients disconnected), down for a second and started again while
  6 clients create ports and read a network: every answer is a 2xx or a 503 in Neutron's format
  (``ServiceUnavailable``, with ``Retry-After``), never a 500; the same server process answers
  again by itself, every request sent after the database is back succeeds, and every port
  answered 201 is there, whole.

The figures of each run (requests sent, committed, cut, refused with 503) are printed (``-s``).
"""

from __future__ import annotations

import ipaddress
import os
import random
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from baryon.agent.client import ServerClient, ServerError
from tests.api.helpers import fault
from tests.conftest import SHARED_DEFAULTS, UNLIMITED_QUOTAS
from tests.support.databases import MariaDBServer, PostgreSQLServer
from tests.support.server import BaryonServer

OVS = "Open vSwitch agent"
CLIENTS = 6
FIXED_IP_PORTS = 240  # port creates with a fixed IP in the kill -9 burst
ROUTERS = 5  # routers x subnets: interface adds, by subnet (router i, subnet i) or by a new port
KILL_AFTER = 100  # answers before the kill -9
RESTART_AFTER = 60  # answers before the database restart
AFTER_BACK = 10  # requests each client sends once the database is back
DOWNTIME = 1.0  # seconds the database stays down
DEADLINE = 90.0  # seconds any burst may last


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module", params=["postgresql", "mariadb"])
def database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A private database server for this module, which its tests restart."""
    kind = {"postgresql": PostgreSQLServer, "mariadb": MariaDBServer}[request.param]
    missing = kind.missing_message()
    if missing:
        pytest.fail(missing, pytrace=False)
    server = kind(tmp_path_factory.mktemp(f"faults-{request.param}"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def baryon_on(database: Any, tmp_path: Path) -> Iterator[BaryonServer]:
    """A server of the test's own, on a fresh database of the module's database server."""
    name = f"faults_{uuid.uuid4().hex[:12]}"
    server = BaryonServer(tmp_path / "server", database.create_database(name), workers=1, extra=SHARED_DEFAULTS,
                          sections=UNLIMITED_QUOTAS)
    try:
        yield server.start()
    finally:
        server.stop()
        database.drop_database(name)


# ---------------------------------------------------------------- the burst


@dataclass
class Sent:
    """One request of a burst and what became of it: a response, or the transport error that cut it."""

    what: str
    key: Any
    started: float
    ended: float = 0.0
    response: httpx.Response | None = None
    error: str = ""

    @property
    def status(self) -> int | None:
        return self.response.status_code if self.response is not None else None


@dataclass
class Burst:
    """Requests from CLIENTS threads, each with its own connection, recorded in ``sent``."""

    endpoint: str
    sent: list[Sent] = field(default_factory=list)
    answered: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def request(self, client: httpx.Client, what: str, key: Any, method: str, path: str,
                body: Any = None) -> Sent:  # noqa: ANN401
        record = Sent(what, key, time.monotonic())
        with self.lock:
            self.sent.append(record)
        try:
            record.response = client.request(method, path, json=body)
        except httpx.TransportError as exc:
            record.error = f"{type(exc).__name__}: {exc}"
        record.ended = time.monotonic()
        if record.response is not None:
            self.answered.release()
        return record

    def run(self, work: Callable[[httpx.Client, int], None]) -> list[threading.Thread]:
        def client_thread(index: int) -> None:
            with httpx.Client(base_url=self.endpoint + "/v2.0", timeout=httpx.Timeout(30.0, connect=5.0)) as client:
                work(client, index)

        threads = [threading.Thread(target=client_thread, args=(i,), daemon=True) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        return threads

    def wait_answers(self, count: int) -> None:
        deadline = time.monotonic() + DEADLINE
        for _ in range(count):
            assert self.answered.acquire(timeout=max(0.0, deadline - time.monotonic())), "the burst stalled"


def join(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(DEADLINE)
        assert not thread.is_alive(), "a client of the burst did not finish"


# ---------------------------------------------------------------- helpers


def made(response: httpx.Response, key: str) -> dict:
    assert response.status_code == 201, response.text
    return response.json()[key]


def kill_9(server: BaryonServer) -> None:
    """SIGKILL to the server's process group (the server and any API worker), as a crash."""
    assert server.process is not None and server.process.poll() is None
    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait(10)


def whole(url: str) -> dict[str, list]:
    """What a half-done write would leave, read straight from the database: each entry lists the
    offenders (all empty when every transaction committed whole or not at all)."""
    queries = {
        "ports without an IP allocation": "SELECT p.id FROM ports p LEFT JOIN ip_allocations a ON a.port_id = p.id "
                                          "WHERE a.port_id IS NULL",
        "IP allocations without their port": "SELECT a.ip_address FROM ip_allocations a "
                                             "LEFT JOIN ports p ON p.id = a.port_id WHERE p.id IS NULL",
        "router ports without their port": "SELECT rp.port_id FROM router_ports rp LEFT JOIN ports p "
                                           "ON p.id = rp.port_id WHERE p.id IS NULL",
        "router ports not their router's": "SELECT rp.port_id FROM router_ports rp JOIN ports p ON p.id = rp.port_id "
                                           "WHERE p.device_id <> rp.router_id OR p.device_owner <> rp.port_type",
        "router interface ports without their router port": (
            "SELECT p.id FROM ports p LEFT JOIN router_ports rp ON rp.port_id = p.id "
            "WHERE p.device_owner LIKE 'network:router%' AND rp.port_id IS NULL"),
    }
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            found = {name: [row[0] for row in conn.execute(text(sql))] for name, sql in queries.items()}
            counter = conn.execute(text("SELECT seq FROM change_counter")).scalar_one()
            log = [tuple(row) for row in conn.execute(text(
                "SELECT seq, resource_type, resource_id, action FROM changes ORDER BY seq"))]
            live = {kind: {row[0] for row in conn.execute(text(f"SELECT id FROM {table}"))}
                    for kind, table in (("port", "ports"), ("router", "routers"), ("network", "networks"),
                                        ("subnet", "subnets"))}
    finally:
        engine.dispose()
    seqs = [seq for seq, *_ in log]
    found["change log sequences out of 1..counter"] = [] if seqs == list(range(1, counter + 1)) else [counter, seqs]
    for kind, ids in live.items():
        logged: set[str] = set()
        for _seq, rtype, rid, action in log:
            if rtype == kind and action == "create":
                assert rid not in logged, f"{kind} {rid} created twice in the change log"
                logged.add(rid)
            elif rtype == kind and action == "delete":
                logged.discard(rid)
        found[f"{kind}s the change log disagrees on"] = sorted(ids ^ logged)
    return found


def nothing_half_made(url: str) -> None:
    problems = {name: rows for name, rows in whole(url).items() if rows}
    assert problems == {}


def figures(title: str, sent: list[Sent], **more: int) -> None:
    statuses: dict[str, int] = {}
    for record in sent:
        key = str(record.status) if record.response is not None else "cut"
        statuses[key] = statuses.get(key, 0) + 1
    print(f"\n{title}: {len(sent)} requests sent; by outcome {dict(sorted(statuses.items()))}; "
          + ", ".join(f"{k} {v}" for k, v in more.items()))


# ---------------------------------------------------------------- an agent, watching


@dataclass
class Watcher:
    """An Open vSwitch agent's watch loop (``agent.runtime``'s, reduced): long-poll the host's view
    with the etag it has; on a failure, try again after a short pause with the same etag."""

    endpoint: str
    host: str
    etag: str
    answers: list[tuple[float, int, bool]] = field(default_factory=list)  # (when, seq, a whole view sent)
    failures: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> threading.Thread:
        thread = threading.Thread(target=self._loop, daemon=True)
        thread.start()
        return thread

    def _loop(self) -> None:
        client = ServerClient(self.endpoint, timeout=5.0)
        try:
            while not self.stop.is_set():
                try:
                    watched = client.watch(self.host, "ovs", self.etag, 1.0, lambda body: body)
                except ServerError:
                    self.failures += 1
                    time.sleep(0.1)
                    continue
                self.answers.append((time.monotonic(), watched.seq, watched.view is not None))
                self.etag = watched.etag
        finally:
            client.close()


def agent_host(server: BaryonServer, admin: httpx.Client) -> tuple[str, dict]:
    """A registered Open vSwitch agent with one port bound on its host, on a network and without a
    security group of its own: nothing of the bursts concerns its view. Returns the host and the view."""
    host = f"faults-{uuid.uuid4().hex[:8]}"
    report = {"agent_type": OVS, "host": host,
              "configurations": {"bridge_mappings": {}, "tunnel_types": ["vxlan"], "tunneling_ip": "10.10.9.1"}}
    assert admin.post("/agents/report", json={"agent": report}).status_code in (200, 201)
    net = made(admin.post("/networks", json={"network": {"name": "faults-agent"}}), "network")
    made(admin.post("/subnets", json={"subnet": {"network_id": net["id"], "cidr": "10.39.0.0/24",
                                                 "ip_version": 4}}), "subnet")
    made(admin.post("/ports", json={"port": {"network_id": net["id"], "binding:host_id": host,
                                             "security_groups": []}}), "port")
    view = httpx.get(f"{server.endpoint}/agent/v1/hosts/{host}/ovs", timeout=30).json()
    assert len(view["view"]["ports"]) == 1
    return host, {**view, "network_id": net["id"]}


# ---------------------------------------------------------------- kill -9


def test_a_server_killed_mid_burst_leaves_every_request_whole_or_absent(baryon_on: BaryonServer) -> None:
    server = baryon_on
    with httpx.Client(base_url=server.endpoint + "/v2.0", timeout=30) as admin:
        host, before = agent_host(server, admin)
        net = made(admin.post("/networks", json={"network": {"name": "faults-ports"}}), "network")
        fixed = made(admin.post("/subnets", json={"subnet": {"network_id": net["id"], "cidr": "10.40.0.0/22",
                                                             "ip_version": 4}}), "subnet")
        subnets = []
        for i in range(ROUTERS):
            inet = made(admin.post("/networks", json={"network": {"name": f"faults-if{i}"}}), "network")
            subnets.append(made(admin.post("/subnets", json={"subnet": {
                "network_id": inet["id"], "cidr": f"10.41.{i}.0/24", "ip_version": 4}}), "subnet"))
        routers = [made(admin.post("/routers", json={"router": {"name": f"faults-r{i}"}}), "router")
                   for i in range(ROUTERS)]

    addresses = list(ipaddress.ip_network(fixed["cidr"]).hosts())[10:10 + FIXED_IP_PORTS]
    tasks: list[tuple[str, Any]] = [("port", str(ip)) for ip in addresses]
    tasks += [("iface", (r, s)) for r in range(ROUTERS) for s in range(ROUTERS)]
    random.Random(12).shuffle(tasks)
    todo = iter(tasks)
    todo_lock = threading.Lock()
    killed = threading.Event()
    burst = Burst(server.endpoint)

    def work(client: httpx.Client, _index: int) -> None:
        while not killed.is_set():
            with todo_lock:
                task = next(todo, None)
            if task is None:
                return
            kind, key = task
            if kind == "port":
                burst.request(client, "port", key, "POST", "/ports", {"port": {
                    "network_id": net["id"], "fixed_ips": [{"subnet_id": fixed["id"], "ip_address": key}]}})
                continue
            r, s = key
            router, subnet = routers[r]["id"], subnets[s]["id"]
            if r == s:
                burst.request(client, "iface", key, "PUT", f"/routers/{router}/add_router_interface",
                              {"subnet_id": subnet})
                continue
            made_port = burst.request(client, "iface-port", key, "POST", "/ports", {"port": {
                "network_id": subnets[s]["network_id"], "fixed_ips": [{"subnet_id": subnet}]}})
            if made_port.status == 201 and not killed.is_set():
                port_id = made_port.response.json()["port"]["id"]  # type: ignore[union-attr]
                burst.request(client, "iface", key, "PUT", f"/routers/{router}/add_router_interface",
                              {"port_id": port_id})

    watcher = Watcher(server.endpoint, host, before["etag"])
    watching = watcher.run()
    threads = burst.run(work)
    try:
        burst.wait_answers(KILL_AFTER)
        seq_heard = max((seq for _, seq, _ in watcher.answers), default=before["seq"])
        killed.set()
        kill_9(server)
        join(threads)  # a client stops at its first request after the kill
        server.start()  # the same configuration, port and database
        restarted_at = time.monotonic()
        deadline = restarted_at + 30
        while not any(when > restarted_at for when, _, _ in watcher.answers) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        watcher.stop.set()
        watching.join(10)

    sent = burst.sent
    # Cut: in flight at the kill (a request sent after it finds no server: ConnectError).
    cut = [s for s in sent if s.response is None and not s.error.startswith("ConnectError")]
    answered = [s for s in sent if s.response is not None]
    assert all(s.status in (200, 201) for s in answered), [(s.status, s.response.text) for s in answered
                                                           if s.status not in (200, 201)]  # type: ignore[union-attr]
    assert cut, "no request was cut by the kill: the fault missed the burst"

    # Nothing half made, and the change log as it should be.
    nothing_half_made(server.connection)

    with httpx.Client(base_url=server.endpoint + "/v2.0", timeout=30) as admin:
        ports = {p["id"]: p for p in admin.get("/ports").json()["ports"]}
        on_fixed = {p["fixed_ips"][0]["ip_address"]: p for p in ports.values() if p["network_id"] == net["id"]}
        # Every answered request is there, as answered.
        for record in answered:
            assert record.response is not None
            if record.what in ("port", "iface-port"):
                port = record.response.json()["port"]
                assert ports[port["id"]]["fixed_ips"] == port["fixed_ips"]
            else:
                info = record.response.json()
                shown = ports[info["port_id"]]
                assert (shown["device_id"], shown["device_owner"]) == (info["id"], "network:router_interface")
                assert [f["subnet_id"] for f in shown["fixed_ips"]] == [subnets[record.key[1]]["id"]]
        # A cut port create is there whole (with the address asked for) or not at all.
        cut_committed = sum(1 for s in cut if s.what == "port" and s.key in on_fixed)
        assert {ip for ip in on_fixed} <= {str(ip) for ip in addresses}

    # The agent resumes where it was: no relist (a whole view) before, across or after the kill.
    after = [(when, seq, relist) for when, seq, relist in watcher.answers if when > restarted_at]
    assert after, f"the agent got no answer after the restart ({watcher.failures} failures)"
    assert watcher.failures > 0  # it saw the server go
    assert [relist for _, _, relist in watcher.answers] == [False] * len(watcher.answers)
    assert min(seq for _, seq, _ in after) >= seq_heard
    assert watcher.etag == before["etag"]
    # ... while a change that concerns it still reaches it, with the view.
    with httpx.Client(base_url=server.endpoint + "/v2.0", timeout=30) as admin:
        made(admin.post("/ports", json={"port": {"network_id": before["network_id"], "binding:host_id": host,
                                                 "security_groups": []}}), "port")
    client = ServerClient(server.endpoint)
    try:
        changed = client.watch(host, "ovs", before["etag"], 5.0, lambda body: body)
    finally:
        client.close()
    assert changed.view is not None and len(changed.view["ports"]) == 2

    figures("kill -9 mid-burst", sent, committed=len(answered), cut=len(cut), cut_but_committed=cut_committed,
            lost=0, agent_answers=len(watcher.answers), agent_relists=0)


# ---------------------------------------------------------------- the database restarted


def test_a_database_restarted_mid_burst_costs_503s_and_loses_nothing(database: Any,
                                                                      baryon_on: BaryonServer) -> None:
    server = baryon_on
    pid = server.process.pid if server.process else None
    with httpx.Client(base_url=server.endpoint + "/v2.0", timeout=30) as admin:
        net = made(admin.post("/networks", json={"network": {"name": "faults-db"}}), "network")
        subnet = made(admin.post("/subnets", json={"subnet": {"network_id": net["id"], "cidr": "10.42.0.0/21",
                                                              "ip_version": 4}}), "subnet")
    addresses = iter(str(ip) for ip in list(ipaddress.ip_network(subnet["cidr"]).hosts())[10:])
    addresses_lock = threading.Lock()
    back = threading.Event()
    back_at = [0.0]
    burst = Burst(server.endpoint)

    def work(client: httpx.Client, index: int) -> None:
        count, after_back, end = 0, 0, time.monotonic() + DEADLINE
        while after_back < AFTER_BACK and time.monotonic() < end:
            count += 1
            if back.is_set():
                after_back += 1
            if index % 3 == 0 and count % 2 == 0:  # reads among the writes
                record = burst.request(client, "read", None, "GET", f"/networks/{net['id']}")
            else:
                with addresses_lock:
                    address = next(addresses)
                record = burst.request(client, "port", address, "POST", "/ports", {"port": {
                    "network_id": net["id"], "fixed_ips": [{"subnet_id": subnet["id"], "ip_address": address}]}})
            if record.status == 503:
                time.sleep(0.1)  # as a client backs off (Retry-After), shortened

    threads = burst.run(work)
    try:
        burst.wait_answers(RESTART_AFTER)
        down_at = time.monotonic()
        database.restart(downtime=DOWNTIME)
        back_at[0] = time.monotonic()
        back.set()
    finally:
        join(threads)

    sent = burst.sent
    assert all(s.response is not None for s in sent), [s.error for s in sent if s.response is None]
    unexpected = [(s.status, s.response.text) for s in sent  # type: ignore[union-attr]
                  if s.status not in (200, 201, 503)]
    assert unexpected == []
    refused = [s for s in sent if s.status == 503]
    assert refused, "no request was refused: the restart missed the burst"
    for record in refused:
        assert record.response is not None
        error = fault(record.response, 503, "ServiceUnavailable")
        assert "database" in error["message"]
        assert record.response.headers["Retry-After"] == "1"
    in_flight = [s for s in refused if s.started < down_at]
    assert in_flight, "no request in flight when the database stopped was refused"
    after = [s for s in sent if s.started >= back_at[0]]
    assert len(after) >= CLIENTS * (AFTER_BACK - 1)
    assert [s.status for s in after if s.status not in (200, 201)] == []
    assert server.process is not None and server.process.pid == pid and server.process.poll() is None

    # Everything answered 201 is there, as answered; a refused create is there whole or not at all.
    created = [s.response.json()["port"] for s in sent if s.status == 201]  # type: ignore[union-attr]
    with httpx.Client(base_url=server.endpoint + "/v2.0", timeout=30) as admin:
        listed = {p["id"]: p for p in admin.get("/ports", params={"network_id": net["id"]}).json()["ports"]}
    assert all(listed[p["id"]]["fixed_ips"] == p["fixed_ips"] for p in created)
    refused_committed = len(listed) - len(created)
    assert 0 <= refused_committed <= sum(1 for s in refused if s.what == "port")
    nothing_half_made(server.connection)

    figures(f"{type(database).__name__} restarted mid-burst", sent, committed=len(created),
            refused_503=len(refused), refused_in_flight=len(in_flight),
            refused_but_committed=refused_committed, sent_after_back=len(after), lost=0)
