#!/usr/bin/env python3
"""Benchmark of the Networking API v2.0 core against a running server (Baryon or Neutron).

    bench/api.py ENDPOINT [--clients 8] [--duration 30] [--ports 1000]
                          [--server-pid PID ...] [--json OUT] [--header 'Name: value' ...]

Contract:
- Uses only the standard Networking API v2.0 (networks, subnets, ports, ``fields=`` and
  ``network_id=`` filters) with no token (``noauth``), so the same run can be pointed at real
  Neutron for a side-by-side figure. ``--header`` adds headers to every request (e.g.
  ``X-Project-Id``) for servers that want them.
- Load is bounded: fixed sample counts for the latency phases, ``--duration`` seconds for the
  throughput phase; every request has a timeout. Only ENDPOINT is contacted.
- Everything it creates is named ``bench-<run id>-...`` and deleted at the end (floating IPs,
  routers, ports, security groups, subnets, then networks), also when a phase fails or the run
  is interrupted.
- Quotas: when the server lists the ``quotas`` extension, the network, subnet, port, router,
  floating IP, security group and rule quotas of the project it acts as are set to unlimited
  (``PUT /v2.0/quotas/<project>``) for the run and put back at the end: Neutron's defaults
  (100 networks, 100 subnets, 500 ports, 50 floating IPs, 100 rules) are below what the run
  creates. A server without the extension must have them raised in its config.

Phases, in order (each latency phase: a few untimed warm-up requests, then timed samples, one
client, one keep-alive connection, one request at a time):
1. create network (``--samples`` networks);
2. create subnet (one /24 on each network of phase 1);
3. a "list" network with a /16 subnet, filled by ``--clients`` concurrent clients up to
   ``--ports`` minus the samples; then create port, timed, up to ``--ports`` ports (so these
   samples see the network at its fullest);
4. show port (random ports of that network);
5. list ports: ``GET /v2.0/ports?network_id=<net>`` returning all of them (``--list-samples``);
6. L3 and security groups, when the server lists the ``router`` / ``security-group`` extension
   (the external network needs an admin): a router with its gateway on an external network;
   add router interface and remove router interface (one subnet, added then removed, each timed);
   create floating IP; associate floating IP (each with its own port behind the router);
   create security group rule (one group, a distinct TCP port per rule);
7. throughput: ``--clients`` threads, each with its own keep-alive ``httpx.Client``, create ports
   on a second /16 network for ``--duration`` seconds; ports/s counts 201s only, every other
   outcome (status or exception) is an error.
The server's RSS (``--server-pid``: each PID and all its descendants, from /proc) is read before
phase 1, sampled during phase 7 (peak), and read after phase 7 and after the clean-up.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

V2 = "/v2.0"
TIMEOUT = httpx.Timeout(60.0, connect=10.0)
LIST_CIDR = "10.0.0.0/16"
LOAD_CIDR = "10.1.0.0/16"
LOAD_CAPACITY = 65_000  # addresses a /16 pool gives, with a margin: the load phase stops before
QUOTA_RESOURCES = ("network", "subnet", "port", "router", "floatingip", "security_group", "security_group_rule")
EXTERNAL_CIDR = "172.31.0.0/20"  # the L3 phase's external network: room for its floating IPs
BEHIND_CIDR = "10.2.0.0/16"  # the network behind the L3 phase's router
L3_LATENCIES = ("add router interface", "remove router interface", "create floating IP", "associate floating IP",
                "create security group rule")


class BenchError(RuntimeError):
    """A request that had to succeed did not: the run stops (after cleaning up)."""


# --------------------------------------------------------------------------- HTTP


def new_client(endpoint: str, headers: dict[str, str]) -> httpx.Client:
    """One keep-alive connection, as one API user (one thread) would hold it."""
    return httpx.Client(base_url=endpoint, timeout=TIMEOUT, headers={"Accept": "application/json", **headers},
                        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1))


def timed(client: httpx.Client, method: str, path: str, body: dict | None = None) -> tuple[httpx.Response, float]:
    start = time.perf_counter()
    response = client.request(method, path, json=body)
    return response, time.perf_counter() - start


def expect(response: httpx.Response, status: int, what: str) -> dict:
    if response.status_code != status:
        raise BenchError(f"{what}: HTTP {response.status_code} (expected {status}): {response.text[:500]}")
    return response.json() if response.content else {}


class ClientPool:
    """A keep-alive client per thread of one thread pool; all closed when the pool is left."""

    def __init__(self, endpoint: str, headers: dict[str, str]):
        self._endpoint, self._headers = endpoint, headers
        self._local = threading.local()
        self._all: list[httpx.Client] = []
        self._lock = threading.Lock()

    def get(self) -> httpx.Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = new_client(self._endpoint, self._headers)
            with self._lock:
                self._all.append(client)
        return client

    def __enter__(self) -> "ClientPool":
        return self

    def __exit__(self, *exc: object) -> None:
        for client in self._all:
            client.close()


def run_parallel(s: "Settings", fn: Callable[[httpx.Client, int], None], count: int) -> None:
    """``fn(client, i)`` for i in range(count) on ``s.clients`` threads; the first error is raised."""
    with ClientPool(s.endpoint, s.headers) as pool, ThreadPoolExecutor(max_workers=s.clients) as executor:
        futures = [executor.submit(lambda i=i: fn(pool.get(), i)) for i in range(count)]
        try:
            for future in futures:
                future.result()
        except BaseException:
            executor.shutdown(cancel_futures=True)
            raise


# --------------------------------------------------------------------------- statistics


def percentile(ordered: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default) on a sorted list."""
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summary(samples: Iterable[float]) -> dict:
    """Milliseconds: n, p50, p95, mean, min, max."""
    ordered = sorted(s * 1000 for s in samples)
    if not ordered:
        return {"n": 0}
    return {"n": len(ordered), "p50_ms": round(percentile(ordered, 0.50), 2),
            "p95_ms": round(percentile(ordered, 0.95), 2), "mean_ms": round(sum(ordered) / len(ordered), 2),
            "min_ms": round(ordered[0], 2), "max_ms": round(ordered[-1], 2)}


# --------------------------------------------------------------------------- server RSS


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def process_tree(pids: Iterable[int]) -> list[int]:
    seen: list[int] = []
    todo = list(pids)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.append(pid)
        todo += _children(pid)
    return sorted(seen)


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0  # gone, or a kernel thread


def tree_rss(pids: list[int]) -> dict | None:
    """Sum of VmRSS over the given PIDs and their descendants (None without PIDs)."""
    if not pids:
        return None
    tree = process_tree(pids)
    return {"bytes": sum(rss_bytes(p) for p in tree), "pids": tree}


def tree_cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds of the given PIDs and their descendants (live ones only)."""
    total = 0
    for pid in process_tree(pids):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of stat
    return total / os.sysconf("SC_CLK_TCK")


def wait_idle(groups: Callable[[], list[list[int]]], idle_pct: float, timeout: float, window: float = 2.0) -> float:
    """Wait (at most ``timeout`` s) until each group of processes (``groups()``: lists of PIDs, each
    with its descendants) uses under ``idle_pct`` of one CPU over a ``window`` s: what a phase left
    a server or a database to do in the background is then done. Returns the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        pids = groups()
        before = [tree_cpu_seconds(group) for group in pids]
        time.sleep(window)
        after = [tree_cpu_seconds(group) for group in pids]
        if all(100 * (a - b) / window < idle_pct for a, b in zip(after, before)):
            break
    return round(time.monotonic() - started, 1)


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    total = sum(values[:8])  # user nice system idle iowait irq softirq steal
    idle = values[3] + values[4]
    ticks = os.sysconf("SC_CLK_TCK")
    return (total - idle) / ticks, total / ticks


class RssSampler(threading.Thread):
    """Reads the tree's RSS every ``interval`` seconds until stopped; keeps the peak."""

    def __init__(self, pids: list[int], interval: float = 0.5):
        super().__init__(daemon=True)
        self.pids, self.interval = pids, interval
        self.peak = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            sample = tree_rss(self.pids)
            self.peak = max(self.peak, sample["bytes"] if sample else 0)
            self._stop_event.wait(self.interval)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak


# --------------------------------------------------------------------------- the run


@dataclass
class Settings:
    endpoint: str
    clients: int
    duration: float
    ports: int
    samples: int
    list_samples: int
    warmup: int
    server_pids: list[int]
    headers: dict[str, str]


@dataclass
class Created:
    """Networks this run made (subnets and ports are found through them at clean-up)."""

    networks: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    routers: list[str] = field(default_factory=list)
    floatingips: list[str] = field(default_factory=list)
    security_groups: list[str] = field(default_factory=list)

    def add(self, network_id: str) -> None:
        with self.lock:
            self.networks.append(network_id)


@dataclass
class Results:
    endpoint: str
    started_at: str
    settings: dict
    server: dict = field(default_factory=dict)
    latency: dict[str, dict] = field(default_factory=dict)
    throughput: dict = field(default_factory=dict)
    rss: dict = field(default_factory=dict)
    quotas: dict = field(default_factory=dict)
    cleanup: dict = field(default_factory=dict)
    error: str | None = None


class Bench:
    def __init__(self, settings: Settings):
        self.s = settings
        self.run_id = uuid.uuid4().hex[:8]
        self.created = Created()
        self.client = new_client(settings.endpoint, settings.headers)
        self.rng = random.Random()
        self.quota_restore: tuple[str, dict[str, int]] | None = None
        self.last_subnet = ""  # the id of the subnet create_subnet made last

    def name(self, what: str) -> str:
        return f"bench-{self.run_id}-{what}"

    # ---------------------------------------------------------------- building blocks

    def create_network(self, client: httpx.Client, what: str, **extra: object) -> tuple[str, float]:
        response, seconds = timed(client, "POST", f"{V2}/networks", {"network": {"name": self.name(what), **extra}})
        network = expect(response, 201, "create network")["network"]
        self.created.add(network["id"])
        return network["id"], seconds

    def create_subnet(self, client: httpx.Client, network_id: str, cidr: str, what: str, **extra: object) -> float:
        body = {"subnet": {"network_id": network_id, "ip_version": 4, "cidr": cidr, "name": self.name(what), **extra}}
        response, seconds = timed(client, "POST", f"{V2}/subnets", body)
        self.last_subnet = expect(response, 201, f"create subnet {cidr}")["subnet"]["id"]
        return seconds

    def aliases(self) -> set[str]:
        response = self.client.get(f"{V2}/extensions")
        return {e.get("alias") for e in expect(response, 200, "list extensions")["extensions"]}

    def create_port(self, client: httpx.Client, network_id: str) -> tuple[str, float]:
        body = {"port": {"network_id": network_id, "name": self.name("port")}}
        response, seconds = timed(client, "POST", f"{V2}/ports", body)
        return expect(response, 201, "create port")["port"]["id"], seconds

    def warmup_for(self, count: int) -> int:
        """Untimed calls before ``count`` timed ones: ``--warmup``, at most a tenth of them."""
        return min(self.s.warmup, max(1, count // 10))

    def sample(self, label: str, fn: Callable[[int], float], count: int | None = None) -> list[float]:
        """``fn(i)`` returns one request's seconds; the first ``warmup_for(count)`` calls are not kept."""
        count = self.s.samples if count is None else count
        warmup = self.warmup_for(count)
        print(f"  {label}: {warmup} warm-up + {count} samples", file=sys.stderr, flush=True)
        timings = [fn(i) for i in range(warmup + count)]
        return timings[warmup:]

    # ---------------------------------------------------------------- quotas

    def raise_quotas(self, results: Results) -> None:
        """Unlimited networks, subnets and ports for the project the run acts as, through the
        standard quotas extension when the server has it (Neutron's defaults, 100/100/500, are
        below what the run creates); the previous limits are put back by ``cleanup``."""
        response = self.client.get(f"{V2}/extensions")
        if response.status_code != 200 or "quotas" not in {e.get("alias") for e in response.json()["extensions"]}:
            return
        response = self.client.post(f"{V2}/networks", json={"network": {"name": self.name("probe")}})
        probe = expect(response, 201, "create network")["network"]
        self.created.add(probe["id"])
        project = probe["project_id"]
        response = self.client.get(f"{V2}/quotas/{project}")
        if response.status_code != 200:
            print(f"bench: quotas of {project} not readable ({response.status_code}); left as they are", file=sys.stderr)
            return
        current = response.json()["quota"]
        wanted = {r: -1 for r in QUOTA_RESOURCES if current.get(r, -1) != -1}
        results.quotas = {"project": project, "before": {r: current.get(r) for r in QUOTA_RESOURCES}}
        if wanted:
            expect(self.client.put(f"{V2}/quotas/{project}", json={"quota": wanted}), 200, "update quota")
            self.quota_restore = (project, {r: current[r] for r in wanted})
            results.quotas["raised"] = sorted(wanted)

    def restore_quotas(self) -> str | None:
        if self.quota_restore is None:
            return None
        project, limits = self.quota_restore
        try:
            response = self.client.put(f"{V2}/quotas/{project}", json={"quota": limits})
        except httpx.HTTPError as exc:
            return f"restore quotas of {project}: {exc!r}"
        return None if response.status_code == 200 else f"restore quotas of {project}: {response.status_code}"

    # ---------------------------------------------------------------- phases

    def phase_networks_subnets(self, results: Results) -> None:
        networks: list[str] = []

        def one_network(i: int) -> float:
            network_id, seconds = self.create_network(self.client, f"net{i}")
            networks.append(network_id)
            return seconds

        results.latency["create network"] = summary(self.sample("create network", one_network))

        def one_subnet(i: int) -> float:
            return self.create_subnet(self.client, networks[i], f"10.{100 + i // 256}.{i % 256}.0/24", f"sub{i}")

        results.latency["create subnet"] = summary(self.sample("create subnet", one_subnet))  # one per network

    def phase_ports(self, results: Results) -> tuple[str, list[str]]:
        network_id, _ = self.create_network(self.client, "list")
        self.create_subnet(self.client, network_id, LIST_CIDR, "list")
        fill = max(0, self.s.ports - self.s.samples - self.warmup_for(self.s.samples))
        port_ids: list[str] = []
        print(f"  fill: {fill} ports with {self.s.clients} clients", file=sys.stderr, flush=True)
        started = time.perf_counter()
        run_parallel(self.s, lambda c, _i: port_ids.append(self.create_port(c, network_id)[0]), fill)
        results.latency["fill"] = {"ports": fill, "seconds": round(time.perf_counter() - started, 2)}

        def one_port(_i: int) -> float:
            port_id, seconds = self.create_port(self.client, network_id)
            port_ids.append(port_id)
            return seconds

        results.latency["create port"] = summary(self.sample("create port", one_port))
        results.latency["create port"]["ports_present"] = [fill, len(port_ids)]

        def one_show(_i: int) -> float:
            response, seconds = timed(self.client, "GET", f"{V2}/ports/{self.rng.choice(port_ids)}")
            expect(response, 200, "show port")
            return seconds

        results.latency["show port"] = summary(self.sample("show port", one_show))
        return network_id, port_ids

    def phase_list(self, results: Results, network_id: str, expected: int) -> None:
        returned: list[int] = []

        def one_list(_i: int) -> float:
            response, seconds = timed(self.client, "GET", f"{V2}/ports?network_id={network_id}")
            count = len(expect(response, 200, "list ports")["ports"])
            if count < expected:
                raise BenchError(f"list ports returned {count} ports, expected at least {expected}")
            returned.append(count)
            return seconds

        results.latency["list ports"] = summary(self.sample("list ports", one_list, self.s.list_samples))
        results.latency["list ports"]["ports_returned"] = max(returned)

    def phase_l3(self, results: Results) -> None:
        aliases = self.aliases()
        if "router" in aliases:
            self.phase_routers(results)
        else:
            print("  no router extension: router and floating IP phases skipped", file=sys.stderr)
        if "security-group" in aliases:
            self.phase_security_group_rules(results)
        else:
            print("  no security-group extension: rule phase skipped", file=sys.stderr)

    def phase_routers(self, results: Results) -> None:
        body = {"network": {"name": self.name("external"), "router:external": True}}
        response = self.client.post(f"{V2}/networks", json=body)
        if response.status_code == 403:
            print("  an external network needs an admin: router and floating IP phases skipped", file=sys.stderr)
            return
        external_id = expect(response, 201, "create external network")["network"]["id"]
        self.created.add(external_id)
        self.create_subnet(self.client, external_id, EXTERNAL_CIDR, "external", enable_dhcp=False)
        body = {"router": {"name": self.name("router"), "external_gateway_info": {"network_id": external_id}}}
        router = expect(self.client.post(f"{V2}/routers", json=body), 201, "create router")["router"]
        self.created.routers.append(router["id"])
        path = f"{V2}/routers/{router['id']}"
        behind_id, _ = self.create_network(self.client, "behind")
        self.create_subnet(self.client, behind_id, BEHIND_CIDR, "behind")
        behind_subnet = self.last_subnet
        toggled_id, _ = self.create_network(self.client, "toggled")
        self.create_subnet(self.client, toggled_id, "10.3.0.0/24", "toggled")
        toggled = {"subnet_id": self.last_subnet}
        removals: list[float] = []

        def one_add(_i: int) -> float:
            response, seconds = timed(self.client, "PUT", f"{path}/add_router_interface", toggled)
            expect(response, 200, "add router interface")
            response, removed = timed(self.client, "PUT", f"{path}/remove_router_interface", toggled)
            expect(response, 200, "remove router interface")
            removals.append(removed)
            return seconds

        adds = self.sample("add + remove router interface", one_add)
        results.latency["add router interface"] = summary(adds)
        results.latency["remove router interface"] = summary(removals[len(removals) - len(adds):])

        expect(self.client.put(f"{path}/add_router_interface", json={"subnet_id": behind_subnet}), 200,
               "add router interface")
        count = self.warmup_for(self.s.samples) + self.s.samples
        ports: list[str] = []
        run_parallel(self.s, lambda c, _i: ports.append(self.create_port(c, behind_id)[0]), count)
        fips: list[str] = []

        def one_fip(_i: int) -> float:
            body = {"floatingip": {"floating_network_id": external_id}}
            response, seconds = timed(self.client, "POST", f"{V2}/floatingips", body)
            fips.append(expect(response, 201, "create floating IP")["floatingip"]["id"])
            self.created.floatingips.append(fips[-1])
            return seconds

        results.latency["create floating IP"] = summary(self.sample("create floating IP", one_fip))

        def one_associate(i: int) -> float:
            body = {"floatingip": {"port_id": ports[i]}}
            response, seconds = timed(self.client, "PUT", f"{V2}/floatingips/{fips[i]}", body)
            expect(response, 200, "associate floating IP")
            return seconds

        results.latency["associate floating IP"] = summary(self.sample("associate floating IP", one_associate))

    def phase_security_group_rules(self, results: Results) -> None:
        body = {"security_group": {"name": self.name("sg")}}
        group = expect(self.client.post(f"{V2}/security-groups", json=body), 201,
                       "create security group")["security_group"]["id"]
        self.created.security_groups.append(group)

        def one_rule(i: int) -> float:
            rule = {"security_group_rule": {"security_group_id": group, "direction": "ingress", "ethertype": "IPv4",
                                            "protocol": "tcp", "port_range_min": 1000 + i, "port_range_max": 1000 + i}}
            response, seconds = timed(self.client, "POST", f"{V2}/security-group-rules", rule)
            expect(response, 201, "create security group rule")
            return seconds

        results.latency["create security group rule"] = summary(self.sample("create security group rule", one_rule))

    def phase_throughput(self, results: Results) -> None:
        network_id, _ = self.create_network(self.client, "load")
        self.create_subnet(self.client, network_id, LOAD_CIDR, "load")
        print(f"  throughput: {self.s.clients} clients for {self.s.duration:g} s", file=sys.stderr, flush=True)
        sampler = RssSampler(self.s.server_pids)
        if self.s.server_pids:
            sampler.start()
        load = Load(self.s, network_id, self.name("load-port"))
        results.throughput = load.run()
        if self.s.server_pids:
            results.rss["peak_during_load"] = sampler.stop()

    def run(self) -> Results:
        results = Results(self.s.endpoint, dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                          {k: v for k, v in asdict(self.s).items() if k != "headers"})
        try:
            results.server = expect(self.client.get("/"), 200, "GET /")
            results.rss["before"] = tree_rss(self.s.server_pids)
            self.raise_quotas(results)
            print("phases:", file=sys.stderr, flush=True)
            self.phase_networks_subnets(results)
            network_id, port_ids = self.phase_ports(results)
            self.phase_list(results, network_id, len(port_ids))
            self.phase_l3(results)
            self.phase_throughput(results)
            results.rss["after_load"] = tree_rss(self.s.server_pids)
        except (BenchError, httpx.HTTPError) as exc:
            results.error = f"{type(exc).__name__}: {exc}"
            print(f"bench: {results.error}", file=sys.stderr)
        finally:
            results.cleanup = self.cleanup()
            results.rss["after_cleanup"] = tree_rss(self.s.server_pids)
            self.client.close()
        return results

    # ---------------------------------------------------------------- clean-up

    def _ids(self, client: httpx.Client, collection: str, network_id: str) -> list[str]:
        response = client.get(f"{V2}/{collection}", params={"network_id": network_id, "fields": "id"})
        return [item["id"] for item in expect(response, 200, f"list {collection}")[collection]]

    def cleanup(self) -> dict:
        """Delete ports, then subnets, then networks this run created; 404 counts as done."""
        started = time.perf_counter()
        counts: Counter[str] = Counter()
        failures: list[str] = []

        def delete(client: httpx.Client, path: str) -> None:
            try:
                response = client.delete(path)
                counts[path.split("/")[2]] += 1
                if response.status_code not in (204, 404):
                    failures.append(f"DELETE {path}: {response.status_code} {response.text[:200]}")
            except httpx.HTTPError as exc:
                failures.append(f"DELETE {path}: {exc!r}")

        networks = list(self.created.networks)
        print(f"clean-up: {len(networks)} networks and what they hold", file=sys.stderr, flush=True)
        fips = [f"{V2}/floatingips/{f}" for f in self.created.floatingips]
        run_parallel(self.s, lambda c, i: delete(c, fips[i]), len(fips))
        for router in self.created.routers:
            failures.extend(self.dismantle_router(router))
            delete(self.client, f"{V2}/routers/{router}")
        for collection in ("ports", "subnets"):
            try:
                paths = [f"{V2}/{collection}/{i}" for n in networks for i in self._ids(self.client, collection, n)]
            except (BenchError, httpx.HTTPError) as exc:
                failures.append(f"list {collection}: {exc}")
                continue
            run_parallel(self.s, lambda c, i, p=paths: delete(c, p[i]), len(paths))
        for group in self.created.security_groups:
            delete(self.client, f"{V2}/security-groups/{group}")
        paths = [f"{V2}/networks/{n}" for n in networks]
        run_parallel(self.s, lambda c, i: delete(c, paths[i]), len(paths))
        quota_failure = self.restore_quotas()
        if quota_failure:
            failures.append(quota_failure)
        for failure in failures[:10]:
            print(f"clean-up: {failure}", file=sys.stderr)
        return {"deleted": dict(counts), "failures": len(failures), "seconds": round(time.perf_counter() - started, 2)}


    def dismantle_router(self, router_id: str) -> list[str]:
        """Its interfaces removed and its gateway cleared, so that it and its networks can go."""
        failures = []
        try:
            response = self.client.get(f"{V2}/ports", params={"device_id": router_id})
            for port in expect(response, 200, "list router ports")["ports"]:
                if port["device_owner"] == "network:router_interface":
                    response = self.client.put(f"{V2}/routers/{router_id}/remove_router_interface",
                                               json={"port_id": port["id"]})
                    if response.status_code not in (200, 404):
                        failures.append(f"remove interface {port['id']}: {response.status_code}")
            response = self.client.put(f"{V2}/routers/{router_id}",
                                       json={"router": {"external_gateway_info": {}}})
            if response.status_code not in (200, 404):
                failures.append(f"clear gateway of {router_id}: {response.status_code}")
        except (BenchError, httpx.HTTPError) as exc:
            failures.append(f"dismantle router {router_id}: {exc}")
        return failures


class Load:
    """The throughput phase: ``clients`` threads creating ports until the deadline."""

    def __init__(self, s: Settings, network_id: str, port_name: str):
        self.s, self.network_id, self.port_name = s, network_id, port_name
        self.latencies: list[list[float]] = [[] for _ in range(s.clients)]
        self.outcomes: list[Counter[str]] = [Counter() for _ in range(s.clients)]
        self.start = self.deadline = 0.0
        # NOTE: the clock starts in the barrier's action, which runs before any thread is released.
        self.ready = threading.Barrier(s.clients + 1, action=self._start_clock)
        self.finished: list[float] = [0.0] * s.clients
        self.created = 0
        self.lock = threading.Lock()

    def _start_clock(self) -> None:
        self.start = time.perf_counter()
        self.deadline = self.start + self.s.duration

    def worker(self, index: int) -> None:
        body = {"port": {"network_id": self.network_id, "name": self.port_name}}
        with new_client(self.s.endpoint, self.s.headers) as client:
            try:
                client.get("/")  # open the keep-alive connection before the clock starts
            finally:
                self.ready.wait()
            latencies, outcomes = self.latencies[index], self.outcomes[index]
            while time.perf_counter() < self.deadline:
                with self.lock:
                    if self.created >= LOAD_CAPACITY:
                        break
                    self.created += 1
                started = time.perf_counter()
                try:
                    status = str(client.post(f"{V2}/ports", json=body).status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                latencies.append(time.perf_counter() - started)
                outcomes[status] += 1
            self.finished[index] = time.perf_counter()

    def run(self) -> dict:
        threads = [threading.Thread(target=self.worker, args=(i,), daemon=True) for i in range(self.s.clients)]
        for thread in threads:
            thread.start()
        self.ready.wait(timeout=60)
        for thread in threads:
            thread.join()
        elapsed = max(self.finished) - self.start
        outcomes: Counter[str] = sum(self.outcomes, Counter())
        ok = outcomes.pop("201", 0)
        return {"clients": self.s.clients, "duration_s": self.s.duration, "elapsed_s": round(elapsed, 2),
                "created": ok, "ports_per_s": round(ok / elapsed, 1) if elapsed > 0 else 0.0,
                "errors": sum(outcomes.values()), "error_kinds": dict(outcomes),
                "latency": summary(x for worker in self.latencies for x in worker)}


# --------------------------------------------------------------------------- output


def mib(value: int | None) -> str:
    return "-" if not value else f"{value / 2**20:,.0f} MiB"


def table(r: Results) -> str:
    lines = [f"Networking API v2.0 benchmark: {r.endpoint} at {r.started_at}", ""]
    lines.append(f"{'operation':<38}{'n':>5}{'p50 ms':>10}{'p95 ms':>10}{'mean ms':>10}{'max ms':>10}")
    labels = {"create port": "create port ({}-{} ports present)", "list ports": "list ports ({} returned)"}
    for name in ("create network", "create subnet", "create port", "show port", "list ports", *L3_LATENCIES):
        stat = r.latency.get(name)
        if not stat or not stat.get("n"):
            continue
        label = name
        if name == "create port":
            label = labels[name].format(*stat["ports_present"])
        elif name == "list ports":
            label = labels[name].format(stat["ports_returned"])
        lines.append(f"{label:<38}{stat['n']:>5}{stat['p50_ms']:>10.1f}{stat['p95_ms']:>10.1f}"
                     f"{stat['mean_ms']:>10.1f}{stat['max_ms']:>10.1f}")
    t = r.throughput
    if t:
        lat = t["latency"]
        lines += ["", f"port creates, {t['clients']} concurrent clients, {t['elapsed_s']:g} s: "
                      f"{t['ports_per_s']:.1f} ports/s ({t['created']} created), {t['errors']} errors"
                      + (f" {t['error_kinds']}" if t["errors"] else ""),
                  f"  latency under load: p50 {lat.get('p50_ms', 0):.1f} ms, p95 {lat.get('p95_ms', 0):.1f} ms, "
                  f"max {lat.get('max_ms', 0):.1f} ms"]
    fill = r.latency.get("fill")
    if fill and fill["seconds"]:
        lines.append(f"  (fill of the list network: {fill['ports']} ports in {fill['seconds']:g} s, "
                     f"{fill['ports'] / fill['seconds']:.1f} ports/s)")
    if r.rss.get("before"):
        def get(key: str) -> int | None:
            value = r.rss.get(key)
            return value["bytes"] if isinstance(value, dict) else value
        lines += ["", f"server RSS ({len(r.rss['before']['pids'])} processes): before {mib(get('before'))}, "
                      f"after load {mib(get('after_load'))}, peak during load {mib(get('peak_during_load'))}, "
                      f"after clean-up {mib(get('after_cleanup'))}"]
    if r.quotas.get("raised"):
        lines += ["", f"quotas of project {r.quotas['project']}: {', '.join(r.quotas['raised'])} raised to unlimited "
                      f"for the run (were {r.quotas['before']}), restored at clean-up"]
    c = r.cleanup
    if c:
        lines += ["", f"clean-up: {c['deleted']} in {c['seconds']:g} s, {c['failures']} failures"]
    if r.error:
        lines += ["", f"RUN FAILED: {r.error}"]
    return "\n".join(lines)


# --------------------------------------------------------------------------- command line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("endpoint", help="e.g. http://127.0.0.1:9696")
    p.add_argument("--clients", type=int, default=8, help="concurrent clients of the throughput phase")
    p.add_argument("--duration", type=float, default=30.0, help="seconds of the throughput phase")
    p.add_argument("--ports", type=int, default=1000, help="ports on the network that is listed")
    p.add_argument("--samples", type=int, default=200, help="timed requests per latency phase")
    p.add_argument("--list-samples", type=int, default=20, help="timed requests of the list phase")
    p.add_argument("--warmup", type=int, default=10, help="untimed requests before each latency phase")
    p.add_argument("--server-pid", type=int, nargs="+", action="extend", default=[], metavar="PID",
                   help="server process(es) whose RSS (with their descendants') is reported")
    p.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'",
                   help="an extra header on every request (repeatable)")
    p.add_argument("--json", type=Path, metavar="OUT", help="also write the results as JSON here")
    args = p.parse_args(argv)
    if args.clients < 1 or args.duration <= 0 or args.samples < 1 or args.list_samples < 1:
        p.error("--clients, --duration, --samples and --list-samples must be positive")
    if not args.endpoint.startswith(("http://", "https://")):
        p.error("ENDPOINT is a URL, e.g. http://127.0.0.1:9696")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    headers = dict(h.split(":", 1) for h in args.header)
    settings = Settings(args.endpoint.rstrip("/"), args.clients, args.duration, args.ports, args.samples,
                        args.list_samples, args.warmup, args.server_pid,
                        {k.strip(): v.strip() for k, v in headers.items()})
    results = Bench(settings).run()
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(asdict(results), indent=2) + "\n")
    return 1 if results.error or results.cleanup.get("failures") else 0


if __name__ == "__main__":
    sys.exit(main())
