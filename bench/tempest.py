#!/usr/bin/env python3
"""Baryon against the Neutron developers' own API tests: tempest and neutron-tempest-plugin.

    .venv/bin/python bench/tempest.py [--concurrency 2] [--timeout 5400] [--workers 1] [--build-timeout 60]
                                      [--regex '^(tempest\\.api\\.network|neutron_tempest_plugin\\.api)\\.']
                                      [--no-agents | --computes N] [--unlimited-quotas] [--keep] [--json OUT]
    .venv/bin/python bench/tempest.py --from-json IN [--subunit STREAM [--json OUT]]   # report a saved run again

Run as root, on demand (not part of the test suite: a full run takes tens of minutes). Everything
it starts lives in a fresh temporary directory, listens on the loopback only, on free ports, and
is stopped by PID (its own session's process group) in ``finally``, also on Ctrl-C and SIGTERM;
the directory is then removed (``--keep`` keeps it, with every log and the subunit stream).

The stack:
- tempest and neutron-tempest-plugin from PyPI in their own virtual environment at a fixed path
  (``BARYON_TEMPEST_VENV``, default ``/var/cache/baryon/tempest-venv``), built once under a lock
  and reused while its stamp names the same requirements (a cold build takes ~45 s), as
  tests/support/keystone.py builds Keystone's. Beside it, ``baryon-site/``: python-memcached
  (pure Python), put on the Baryon server's ``PYTHONPATH`` only, for keystonemiddleware's
  ``memcached_servers`` (Baryon's own venv is left as it is).
- A private memcached (Debian's ``memcached``, installed with apt-get if missing; its service is
  never started) on a free loopback port: Keystone's ``[cache]`` (``dogpile.cache.pymemcache``;
  pymemcache is added to Keystone's venv if missing) and keystonemiddleware's token cache. Without
  it every request costs Baryon a token validation and Keystone a token decryption and database
  round, which tempest's thousands of requests make the bottleneck.
- Keystone (tests.support.keystone: ``ensure_venv``, ``Keystone(base).start()``) with the
  ``service`` project and the ``neutron`` service user Baryon validates tokens with.
- ``baryon server`` (tests.support.server.BaryonServer): ``auth_strategy = keystone`` and its
  ``[keystone_authtoken]``, Neutron's default quotas (``--unlimited-quotas``: every one -1), ML2
  with flat, vlan and vxlan (``physnet1``), port_security; its embedded SQLite database. It is the
  catalog's ``network`` service. The admin makes one external network (``public``: flat on
  physnet1, a /24 without DHCP) for the router and floating IP tests, and devstack's shared
  default subnet pools (IPv4 and IPv6, for the auto-allocated topology).
- Agents, as Neutron's tempest jobs run them (``--no-agents``: none, and what needs one shows it):
  a lab's network node (Open vSwitch, DHCP and L3 agents) and ``--computes`` compute nodes (an
  OVS agent each; none by default: without Nova no port is bound to one), built in namespaces of
  the run's own prefix as ``baryon lab up`` builds them (bench/tempest_agents.py). The server, on
  the machine's loopback for Keystone's sake, also serves a socket opened in the lab's controller
  namespace on the management address the agents use (``--listen-fd``), so nothing is added to
  the root namespace; the agents authenticate with the run's ``agent_shared_secret``. While
  tempest runs, the network node's ``qdhcp-``/``qrouter-`` namespaces and dnsmasq processes are
  counted every 10 s; after it, the run waits for them to match what is left in the server.
- tempest: a workspace (``tempest init``) whose tempest.conf points at Keystone v3 with the
  admin's credentials and dynamic credentials (tempest makes a project and user per test class),
  ``[service_available] neutron`` only, ``[network-feature-enabled] api_extensions`` = the
  aliases Baryon's ``GET /v2.0/extensions`` lists, ``[network] public_network_id``,
  ``build_timeout`` (``--build-timeout``: no agent ever makes a router interface ACTIVE); then
  ``tempest run --regex REGEX --concurrency N --subunit`` bounded by ``--timeout`` (the subunit
  stream is written as it comes: a run cut short keeps what finished).

The report: every test the regex selects (``tempest run --list-tests``) gets one outcome: its own
result, else its class's (a ``setUpClass`` skipped or failed covers all its tests), else "not
run" (the run was cut short). Counts of passed / failed / skipped, the skip reasons counted, and
the failures grouped by test class and error (the exception line of the traceback and the
``Details:`` line tempest adds): summary printed, whole record in ``--json`` (default
``bench/tempest-<date>.json``).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import labkit  # noqa: E402  (machine, revision)
import tempest_agents  # noqa: E402
from tests.support import keystone as keystone_support  # noqa: E402
from tests.support.keystone import PASSWORD, REGION, Keystone  # noqa: E402
from tests.support.server import BaryonServer, free_port  # noqa: E402
from baryon.lab.host import LabError  # noqa: E402

VENV = Path(os.environ.get("BARYON_TEMPEST_VENV", "/var/cache/baryon/tempest-venv"))
REQUIREMENTS = ("tempest", "neutron-tempest-plugin")
BARYON_SITE = ("python-memcached",)  # keystonemiddleware's memcached client, for Baryon's PYTHONPATH only
KEYSTONE_EXTRA = ("pymemcache",)  # oslo.cache's dogpile.cache.pymemcache backend, in Keystone's venv
REGEX = r"^(tempest\.api\.network|neutron_tempest_plugin\.api)\."
V2 = "/v2.0"
PUBLIC_CIDR = "172.24.4.0/24"
# devstack's default subnet pools (USE_SUBNETPOOL, its IPV4/IPV6_ADDRS_SAFE_TO_USE and SUBNETPOOL_SIZE_V4/V6):
# name, prefix, default prefix length. Shared and default, as devstack makes them for Get-Me-A-Network.
DEFAULT_POOLS = (("shared-default-subnetpool-v4", "10.0.0.0/22", 26),
                 ("shared-default-subnetpool-v6", "fd5e:a3a1:9b4c::/56", 64))
STOP_TIMEOUT = 30.0
# Issue 12's figure: real Neutron 29 with Keystone, on such a machine, with the same regex.
NEUTRON_PASSED, NEUTRON_TOTAL = 688, 1016

ML2, QUOTAS = labkit.ML2, labkit.QUOTAS

# Reads a subunit v2 stream (argv[1]) with the tempest venv's python-subunit and testtools; prints
# {test id: {"status", "traceback", "reason"}} as JSON.
SUBUNIT_READER = r"""
import json, sys
import subunit, testtools
tests = {}
def done(test):
    details = test["details"]
    text = lambda name: details[name].as_text() if name in details else ""
    tests[test["id"]] = {"status": test["status"], "traceback": text("traceback"), "reason": text("reason")}
with open(sys.argv[1], "rb") as stream:
    source = subunit.ByteStreamToStreamResult(stream, non_subunit_name="stdout")
    result = testtools.StreamToDict(done)
    result.startTestRun()
    source.run(result)
    result.stopTestRun()
json.dump(tests, sys.stdout)
"""


def say(message: str) -> None:
    print(f"bench/tempest: {message}", file=sys.stderr, flush=True)


class TempestError(RuntimeError):
    """Something the run needs failed: it stops (everything started is stopped)."""


# --------------------------------------------------------------------------- installs


def _pip(python: Path, *args: str, timeout: float = 900) -> None:
    done = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise TempestError(f"pip install {' '.join(args)}: {done.returncode}\n{done.stderr[-3000:]}")


def ensure_venv(venv: Path = VENV) -> tuple[Path, float]:
    """tempest's virtual environment (and ``baryon-site/`` beside it), built if missing or made for
    other requirements. Returns it and the seconds the build took (0 when reused)."""
    stamp = venv / ".baryon-tempest-stamp"
    wanted = " ".join(REQUIREMENTS) + " | " + " ".join(BARYON_SITE)
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / (venv.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and stamp.read_text() == wanted:
            return venv, 0.0
        started = time.monotonic()
        say(f"installing {' '.join(REQUIREMENTS)} into {venv}")
        shutil.rmtree(venv, ignore_errors=True)
        python = shutil.which("python3") or sys.executable
        subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=120)
        _pip(venv / "bin" / "python", *REQUIREMENTS)
        _pip(venv / "bin" / "python", "--target", str(venv / "baryon-site"), *BARYON_SITE)
        stamp.write_text(wanted)
        return venv, time.monotonic() - started


def ensure_keystone_cache_client(venv: Path) -> None:
    """pymemcache in Keystone's venv (added, not part of its stamp: a rebuild drops it, the next run
    adds it again)."""
    with open(venv.parent / (venv.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if subprocess.run([str(venv / "bin" / "python"), "-c", "import pymemcache"],
                          capture_output=True, check=False).returncode != 0:
            say(f"adding {' '.join(KEYSTONE_EXTRA)} to {venv}")
            _pip(venv / "bin" / "python", *KEYSTONE_EXTRA)


def ensure_memcached() -> str:
    found = shutil.which("memcached")
    if found:
        return found
    say("installing Debian's memcached (its service is not started: policy-rc.d, and none is used)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "memcached"]
    if subprocess.run(install, env=env, capture_output=True, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=True)
        subprocess.run(install, env=env, capture_output=True, check=True)
    found = shutil.which("memcached")
    if not found:
        raise TempestError("memcached: not found after apt-get install memcached")
    return found


# --------------------------------------------------------------------------- processes


@dataclass
class Started:
    """One process this script started, in its own session; stopped by its process group."""

    name: str
    popen: subprocess.Popen
    log: Path

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            say(f"{self.name}: PID {self.popen.pid} still there after {timeout:g} s: SIGKILL")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout)


def spawn(name: str, argv: list[str], log: Path, **kwargs) -> Started:
    with open(log, "ab") as out:
        popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True, **kwargs)
    say(f"started {name} (PID {popen.pid}; log {log})")
    return Started(name, popen, log)


def start_memcached(binary: str, base: Path) -> tuple[Started, int]:
    port = free_port()
    # -U 0: no UDP; -u root: memcached refuses to run as root without it (the script runs as root).
    argv = [binary, "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "64", "-c", "1024"]
    if os.geteuid() == 0:
        argv += ["-u", "root"]
    proc = spawn("memcached", argv, base / "memcached.log")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise TempestError(f"memcached exited with {proc.popen.returncode}: {(base / 'memcached.log').read_text()}")
        with contextlib.suppress(OSError):
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, port
        time.sleep(0.1)
    proc.stop()
    raise TempestError("memcached did not listen in 20 s")


# --------------------------------------------------------------------------- the stack


@dataclass
class Stack:
    base: Path
    keystone: Keystone
    baryon: BaryonServer
    memcached_port: int
    public_network_id: str
    extensions: list[str]
    nodes: tempest_agents.AgentNodes | None = None  # the agents' nodes (None: --no-agents)


def admin_client(stack_keystone: Keystone, baryon: BaryonServer) -> httpx.Client:
    return httpx.Client(base_url=baryon.endpoint + V2, timeout=60,
                        headers={"X-Auth-Token": stack_keystone.admin_token()})


def external_network(client: httpx.Client) -> str:
    """The admin's ``public`` network: external, flat on physnet1, a subnet without DHCP."""
    response = client.post("/networks", json={"network": {
        "name": "public", "router:external": True, "provider:network_type": "flat",
        "provider:physical_network": "physnet1"}})
    if response.status_code != 201:
        raise TempestError(f"external network: {response.status_code} {response.text}")
    network = response.json()["network"]["id"]
    response = client.post("/subnets", json={"subnet": {
        "name": "public-subnet", "network_id": network, "ip_version": 4, "cidr": PUBLIC_CIDR,
        "enable_dhcp": False}})
    if response.status_code != 201:
        raise TempestError(f"external subnet: {response.status_code} {response.text}")
    return network


def default_subnet_pools(client: httpx.Client) -> None:
    """devstack's shared default subnet pools (``DEFAULT_POOLS``): auto-allocated-topology needs one."""
    for name, prefix, length in DEFAULT_POOLS:
        response = client.post("/subnetpools", json={"subnetpool": {
            "name": name, "prefixes": [prefix], "default_prefixlen": length, "shared": True, "is_default": True}})
        if response.status_code != 201:
            raise TempestError(f"default subnet pool {name}: {response.status_code} {response.text}")


@contextlib.contextmanager
def started(args: argparse.Namespace, venv: Path) -> Iterator[Stack]:
    """memcached, Keystone, Baryon and (``args.agents``) the agents' nodes; all stopped, by PID
    (and the nodes' namespaces removed), on the way out."""
    base = Path(tempfile.mkdtemp(prefix="baryon-bench-tempest-"))
    memcached: Started | None = None
    keystone: Keystone | None = None
    baryon: BaryonServer | None = None
    nodes: tempest_agents.AgentNodes | None = None
    listener: socket.socket | None = None
    try:
        memcached, port = start_memcached(ensure_memcached(), base)
        cache = f"127.0.0.1:{port}"
        # NOTE: one thread: Keystone's SQLite database refuses concurrent writers ("database is
        # locked", a 500 to tempest's clean-ups); with its token cache, one is enough.
        keystone = Keystone(base / "keystone", threads=1, sections=(
            f"[cache]\nenabled = true\nbackend = dogpile.cache.pymemcache\nmemcache_servers = {cache}\n"))
        say("starting Keystone")
        keystone.start()
        service = keystone.project("service")
        keystone.user("neutron", service, "service")
        # NOTE: Neutron's defaults are Baryon's (config.options.QuotasSection): no [quotas] section.
        quotas = "[quotas]\n" + "\n".join(f"{name} = -1" for name in QUOTAS) if args.unlimited_quotas else ""
        extra, agent_secret = "auth_strategy = keystone\ndebug = false", ""
        if args.agents:
            nodes = tempest_agents.AgentNodes(args.computes, say)
            say("building the agents' nodes")
            agent_secret = f"[baryon]\nagent_shared_secret = {nodes.build()}\n"
            extra += f"\nagent_down_time = {tempest_agents.AGENT_DOWN_TIME}"
        baryon = BaryonServer(base / "baryon", workers=args.workers, extra=extra,
                              sections=(keystone.authtoken_section("neutron", "service")
                                        + f"memcached_servers = {cache}\n\n{quotas}\n\n{ML2}\n{agent_secret}"))
        if nodes is not None:
            listener = nodes.listener()
            baryon.start_args += ["--listen-fd", str(listener.fileno())]
            baryon.pass_fds = (listener.fileno(),)
        # NOTE: python-memcached for keystonemiddleware, from baryon-site/, for this server only.
        previous = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(venv / "baryon-site"), previous]))
        try:
            say(f"starting baryon server ({args.workers} workers)"
                + (f"; also on {nodes.topology.server_url} for the agents" if nodes else ""))
            baryon.start()
        finally:
            if listener is not None:
                listener.close()  # the server has its own
            if previous is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = previous
        keystone.register("network", "neutron", baryon.endpoint)
        with admin_client(keystone, baryon) as client:
            public = external_network(client)
            default_subnet_pools(client)
            response = client.get("/extensions")
            response.raise_for_status()
            extensions = [e["alias"] for e in response.json()["extensions"]]
            if nodes is not None:
                nodes.start_agents(client)
        yield Stack(base, keystone, baryon, port, public, extensions, nodes)
    finally:
        previous_handlers = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            say("stopping everything this run started")
            stop_nodes = (lambda: nodes.down(base / "nodes-logs" if args.keep else None)) if nodes else None
            for stop in (stop_nodes, baryon.stop if baryon else None, keystone.stop if keystone else None,
                         memcached.stop if memcached else None):
                if stop is None:
                    continue
                try:
                    stop()
                except Exception as exc:  # noqa: BLE001 - stop the others all the same
                    say(f"while stopping: {exc!r}")
            if args.keep:
                say(f"kept {base}")
            else:
                shutil.rmtree(base, ignore_errors=True)
        finally:
            for sig, handler in previous_handlers.items():
                signal.signal(sig, handler)


# --------------------------------------------------------------------------- tempest


def tempest_conf(stack: Stack, workspace: Path, build_timeout: int) -> str:
    services = "\n".join(f"{name} = {'true' if name == 'neutron' else 'false'}"
                         for name in ("neutron", "nova", "glance", "cinder", "swift", "horizon"))
    return f"""[DEFAULT]
log_file = {workspace / 'tempest.log'}
use_stderr = false

[oslo_concurrency]
lock_path = {workspace / 'locks'}

[auth]
use_dynamic_credentials = true
admin_username = admin
admin_password = {PASSWORD}
admin_project_name = admin
admin_domain_name = Default
default_credentials_domain_name = Default

[identity]
uri_v3 = {stack.keystone.url}
auth_version = v3
region = {REGION}
v3_endpoint_type = public

[identity-feature-enabled]
api_v2 = false

[service_available]
{services}

[network]
# NOTE: how long tempest waits for a port or router to reach a status: without agents a router
# interface never goes ACTIVE, and tempest's default (300 s) would spend that on each.
build_timeout = {build_timeout}
catalog_type = network
endpoint_type = public
public_network_id = {stack.public_network_id}
floating_network_name = public
project_network_cidr = 10.100.0.0/16
project_network_mask_bits = 28
project_network_v6_cidr = 2001:db8::/48
project_network_v6_mask_bits = 64
project_networks_reachable = false
shared_physical_network = false

[network-feature-enabled]
api_extensions = {','.join(stack.extensions)}
ipv6 = true
ipv6_subnet_attributes = true
port_security = {'true' if 'port-security' in stack.extensions else 'false'}
floating_ips = true

[neutron_plugin_options]
provider_vlans = physnet1
available_type_drivers = flat,vlan,vxlan
# the zone every DHCP and L3 agent reports by default ([AGENT] availability_zone), as Neutron's jobs set it
agent_availability_zone = nova

[validation]
run_validation = false
"""


def tempest_env(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONPATH", None)
    return env


def workspace(stack: Stack, venv: Path, build_timeout: int) -> Path:
    path = stack.base / "tempest"
    subprocess.run([str(venv / "bin" / "tempest"), "init", "--workspace-path", str(stack.base / "workspaces.yaml"),
                    "--name", "baryon", str(path)], check=True, capture_output=True, timeout=120,
                   env=tempest_env(venv))
    (path / "locks").mkdir(exist_ok=True)
    (path / "etc" / "tempest.conf").write_text(tempest_conf(stack, path, build_timeout))
    return path


def list_tests(path: Path, venv: Path, regex: str) -> list[str]:
    done = subprocess.run([str(venv / "bin" / "tempest"), "run", "--list-tests", "--regex", regex], cwd=path,
                          capture_output=True, text=True, timeout=600, env=tempest_env(venv))
    if done.returncode != 0:
        raise TempestError(f"tempest run --list-tests: {done.returncode}\n{done.stderr[-3000:]}")
    return [line.strip() for line in done.stdout.splitlines()
            if re.match(r"^(tempest|neutron_tempest_plugin)\.", line.strip())]


def run_tempest(path: Path, venv: Path, regex: str, concurrency: int, timeout: float) -> tuple[Path, float, bool]:
    """``tempest run``, its subunit stream to a file as it comes. Returns the file, the seconds
    taken, and whether the run was cut short by ``timeout``."""
    stream = path / "results.subunit"
    log = path / "tempest-run.log"
    argv = [str(venv / "bin" / "tempest"), "run", "--regex", regex, "--concurrency", str(concurrency), "--subunit"]
    started = time.monotonic()
    with open(stream, "wb") as out, open(log, "ab") as err:
        popen = subprocess.Popen(argv, cwd=path, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                 env=tempest_env(venv), start_new_session=True)
    proc = Started("tempest run", popen, log)
    say(f"started tempest run (PID {popen.pid}; concurrency {concurrency}; at most {timeout:g} s)")
    cut = False
    try:
        popen.wait(timeout)
    except subprocess.TimeoutExpired:
        say(f"tempest run: not done after {timeout:g} s: stopped")
        cut = True
    finally:
        proc.stop()
    return stream, time.monotonic() - started, cut


def read_subunit(stream: Path, venv: Path) -> dict[str, dict]:
    done = subprocess.run([str(venv / "bin" / "python"), "-c", SUBUNIT_READER, str(stream)],
                          capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise TempestError(f"reading {stream}: {done.stderr[-3000:]}")
    return json.loads(done.stdout)


# --------------------------------------------------------------------------- results

ATTRIBUTES = re.compile(r"\[.*\]$")
CLASS_FIXTURE = re.compile(r"^(setUpClass|tearDownClass) \((?P<cls>[\w.]+)\)$")
EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|NotFound|Conflict|BadRequest|Forbidden|Unauthorized|"
                       r"ServerFault|Failure|Timeout|Mismatch|Expired|Unexpected\w*|InvalidConfiguration)\b.*")


STATUS_OF = {"success": "passed", "fail": "failed", "skip": "skipped", "xfail": "passed", "uxsuccess": "failed"}


def bare(test_id: str) -> str:
    return ATTRIBUTES.sub("", test_id)


def error_line(traceback: str) -> str:
    """The exception line of a traceback (the last one), with tempest's ``Details:`` line after it."""
    lines = [line.rstrip() for line in traceback.splitlines()]
    found = ""
    for index, line in enumerate(lines):
        if line and not line[0].isspace() and (EXCEPTION.match(line) or line.startswith(("testtools.", "tempest."))):
            found = line
            following = lines[index + 1].strip() if index + 1 < len(lines) else ""
            if following.startswith("Details:"):
                found += " " + following
    if not found:
        found = next((line for line in reversed(lines) if line.strip()), "(no traceback)")
    # ids that differ from one test to another make no two errors alike: blanked for grouping
    found = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<uuid>", found)
    found = re.sub(r"\b[0-9a-f]{32}\b", "<id>", found)
    return found[:400]


def outcomes(listed: list[str], results: dict[str, dict]) -> dict[str, dict]:
    """One outcome per listed test: its own result, else its class's fixture's, else not run."""
    # NOTE: "exists" (the listing stestr streams first) and "inprogress" are no outcome: a test of
    # a class whose setUpClass was skipped or failed keeps them.
    own = {bare(test_id): result for test_id, result in results.items()
           if not CLASS_FIXTURE.match(test_id) and result["status"] in STATUS_OF}
    fixtures: dict[str, dict] = {}
    for test_id, result in results.items():
        match = CLASS_FIXTURE.match(test_id)
        if match and match["cls"] and result["status"] in ("fail", "skip"):
            fixtures.setdefault(match["cls"], result)
    per_test: dict[str, dict] = {}
    for test_id in listed:
        name = bare(test_id)
        cls = name.rsplit(".", 1)[0]
        result, via = own.get(name), "test"
        if result is None and cls in fixtures:
            result, via = fixtures[cls], "setUpClass"
        if result is None:
            per_test[name] = {"outcome": "not run"}
            continue
        outcome = STATUS_OF[result["status"]]
        entry = {"outcome": outcome, "via": via}
        if outcome == "failed":
            entry["error"] = error_line(result["traceback"])
        elif outcome == "skipped":
            entry["reason"] = (result["reason"] or "").strip()[:300]
        per_test[name] = entry
    # a tearDownClass failure after passing tests: recorded apart, the tests keep their outcome
    return per_test


def summarize(per_test: dict[str, dict], results: dict[str, dict]) -> dict:
    counts = Counter(entry["outcome"] for entry in per_test.values())
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for name, entry in per_test.items():
        if entry["outcome"] == "failed":
            cls, test = name.rsplit(".", 1)
            groups[(cls, entry["error"])].append(test)
    failures = [{"class": cls, "error": error, "count": len(tests), "tests": sorted(tests)}
                for (cls, error), tests in sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))]
    by_error = Counter()
    for group in failures:
        by_error[group["error"]] += group["count"]
    skips = Counter(entry.get("reason", "") for entry in per_test.values() if entry["outcome"] == "skipped")
    teardown = [{"fixture": test_id, "error": error_line(result["traceback"])} for test_id, result in results.items()
                if test_id.startswith("tearDownClass") and result["status"] == "fail"]
    return {"total": len(per_test), "passed": counts["passed"], "failed": counts["failed"],
            "skipped": counts["skipped"], "not_run": counts["not run"],
            "failures_by_class": failures,
            "failures_by_error": [{"error": e, "count": n} for e, n in by_error.most_common()],
            "skip_reasons": [{"reason": r, "count": n} for r, n in skips.most_common()],
            "teardown_failures": teardown}


def agents_line(record: dict) -> str:
    """Which agents ran and whether they kept up (older records have no such entry)."""
    quotas = f"quotas: {record.get('quotas', 'unlimited')}"
    nodes, agents = record.get("agent_nodes"), record.get("agents")
    if not nodes or not agents:
        return f"agents: none; {quotas}"
    after = agents.get("after_run", {})
    left, built = after.get("left_in_server", {}), after.get("on_nodes", {})
    return (f"agents on {', '.join(nodes)}; {quotas}; peak on the network node: {agents['peak']['qdhcp']} qdhcp-, "
            f"{agents['peak']['qrouter']} qrouter- namespaces, {agents['peak']['dnsmasq']} dnsmasq; after the run: "
            f"{built.get('qdhcp')} qdhcp-/{built.get('dnsmasq')} dnsmasq for {left.get('dhcp_networks')} DHCP "
            f"networks, {built.get('qrouter')} qrouter- for {left.get('routers')} routers "
            f"({'matched' if after.get('converged') else 'NOT matched'} in {after.get('seconds')} s)"
            + (f"; agents died: {', '.join(agents['agents_died'])}" if agents.get("agents_died") else ""))


def report(record: dict) -> str:
    s = record["summary"]
    lines = [
        f"tempest against Baryon ({record.get('baryon', '?')}): tempest {record['versions'].get('tempest')}, "
        f"neutron-tempest-plugin {record['versions'].get('neutron-tempest-plugin')}",
        f"regex {record['regex']}, concurrency {record['concurrency']}",
        (f"install {record['install_seconds']:.0f} s" if record["install_seconds"] else "install: venv reused")
        + f", stack start {record['startup_seconds']:.0f} s, "
        f"tempest run {record['run_seconds']:.0f} s{' (CUT SHORT by the timeout)' if record['cut_short'] else ''}",
        f"tests {s['total']}: passed {s['passed']}, failed {s['failed']}, skipped {s['skipped']}, "
        f"not run {s['not_run']}   (real Neutron 29 + Keystone: {NEUTRON_PASSED} of {NEUTRON_TOTAL} pass; "
        f"target met: {'yes' if s['passed'] >= NEUTRON_PASSED else 'no'})",
        agents_line(record),
        "", "failures by error (tests):"]
    lines += [f"  {g['count']:4d}  {g['error']}" for g in s["failures_by_error"][:40]]
    lines += ["", "failures by class and error (tests):"]
    lines += [f"  {g['count']:4d}  {g['class']}: {g['error'][:200]}" for g in s["failures_by_class"][:60]]
    lines += ["", "skip reasons (tests):"]
    lines += [f"  {g['count']:4d}  {g['reason'][:200]}" for g in s["skip_reasons"][:30]]
    if s["teardown_failures"]:
        lines += ["", "tearDownClass failures:"] + [f"  {t['fixture']}: {t['error'][:200]}"
                                                     for t in s["teardown_failures"]]
    return "\n".join(lines)


def versions(venv: Path) -> dict[str, str]:
    done = subprocess.run([str(venv / "bin" / "python"), "-c", (
        "import json, importlib.metadata as m; print(json.dumps({n: m.version(n) for n in "
        "('tempest', 'neutron-tempest-plugin', 'neutron-lib', 'stestr')}))")],
        capture_output=True, text=True, check=False, timeout=60)
    return json.loads(done.stdout) if done.returncode == 0 else {}


def run(args: argparse.Namespace) -> dict:
    record: dict = {"machine": labkit.machine(), "baryon": labkit.revision(), "regex": args.regex,
                    "concurrency": args.concurrency, "timeout": args.timeout, "build_timeout": args.build_timeout,
                    "quotas": "unlimited" if args.unlimited_quotas else "neutron defaults",
                    "agent_nodes": (["network"] + [f"compute{i}" for i in range(1, args.computes + 1)]
                                    if args.agents else [])}
    venv, record["install_seconds"] = ensure_venv()
    keystone_venv = keystone_support.ensure_venv()
    ensure_keystone_cache_client(keystone_venv)
    record["versions"] = versions(venv)
    started_at = time.monotonic()
    with started(args, venv) as stack:
        path = workspace(stack, venv, args.build_timeout)
        record["startup_seconds"] = time.monotonic() - started_at
        record["extensions"] = stack.extensions
        listed = list_tests(path, venv, args.regex)
        say(f"{len(listed)} tests selected")
        watch = tempest_agents.Watch(stack.nodes) if stack.nodes else None
        try:
            stream, record["run_seconds"], record["cut_short"] = run_tempest(
                path, venv, args.regex, args.concurrency, args.timeout)
        finally:
            record["agents"] = watch.stop() if watch else None
        if stack.nodes:
            with admin_client(stack.keystone, stack.baryon) as client:
                record["agents"]["after_run"] = tempest_agents.settle(stack.nodes, client)
        results = read_subunit(stream, venv)
        per_test = outcomes(listed, results)
        record["summary"] = summarize(per_test, results)
        record["tests"] = per_test
    return record


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--regex", default=REGEX, help="tempest run --regex")
    p.add_argument("--concurrency", type=int, default=2, help="tempest run --concurrency")
    p.add_argument("--timeout", type=float, default=5400.0, help="seconds the tempest run may take")
    p.add_argument("--workers", type=int, default=1, help="Baryon's API workers")
    p.add_argument("--build-timeout", type=int, default=60,
                   help="tempest's [network] build_timeout: seconds it waits for a status (default 300 in tempest)")
    p.add_argument("--agents", action=argparse.BooleanOptionalAction, default=True,
                   help="run real agents beside the server: a lab network node (OVS, DHCP, L3 agents) in "
                        "namespaces of the run's own, removed at the end (default: yes; needs --workers 1)")
    p.add_argument("--computes", type=int, default=0, metavar="N",
                   help="with --agents: N compute nodes too, an OVS agent each (default 0)")
    p.add_argument("--unlimited-quotas", action="store_true",
                   help="every quota -1 (default: Neutron's defaults, as a default Neutron has)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (configs, logs, subunit)")
    p.add_argument("--json", type=Path, metavar="OUT", help="the record (default bench/tempest-DATE.json)")
    p.add_argument("--from-json", type=Path, metavar="IN", help="report a saved record again")
    p.add_argument("--subunit", type=Path, metavar="STREAM",
                   help="with --from-json: read the outcomes again from this subunit stream (and rewrite the record)")
    args = p.parse_args(argv)
    if args.from_json:
        record = json.loads(args.from_json.read_text())
        if args.subunit:  # the outcomes read again from the run's stream (kept with --keep)
            results = read_subunit(args.subunit, VENV)
            record["tests"] = outcomes(list(record["tests"]), results)
            record["summary"] = summarize(record["tests"], results)
            (args.json or args.from_json).write_text(json.dumps(record, indent=1, default=str) + "\n")
        print(report(record))
        return 0
    if os.geteuid() != 0:
        p.error("run as root (apt-get install memcached; memcached, Keystone and Baryon run privately)")
    if args.concurrency < 1 or args.timeout <= 0 or args.workers < 1:
        p.error("--concurrency, --timeout and --workers must be positive")
    if args.agents and args.workers != 1:
        p.error("--agents needs --workers 1 (the server serves the agents' socket with --listen-fd); or --no-agents")
    if not 0 <= args.computes <= 8:
        p.error("--computes must be between 0 and 8")
    args.json = args.json or ROOT / "bench" / time.strftime("tempest-%Y-%m-%d-%H%M.json")
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.default_int_handler)
    try:
        record = run(args)
    except KeyboardInterrupt:
        say("interrupted: everything started was stopped")
        return 130
    except (TempestError, tempest_agents.AgentNodesError, LabError, subprocess.CalledProcessError) as exc:
        say(f"FAILED: {exc}")
        return 1
    args.json.write_text(json.dumps(record, indent=1, default=str) + "\n")
    say(f"record written to {args.json} (report it again with --from-json)")
    print(report(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
