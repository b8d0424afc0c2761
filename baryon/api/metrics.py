"""``GET /metrics``: the server's Prometheus metrics, and the middleware that times every request.

Served on the API port without authentication, like a health check: a Prometheus scraper carries
no token, and nothing here names a project or a resource id (labels are route templates, fault
types, agent types and hosts). Put the port behind the same network policy as the API.

What is counted where (all names ``baryon_``):

- ``RequestMetrics`` (this module): ``baryon_api_request_seconds{resource, method}`` (histogram)
  and ``baryon_api_requests_total{resource, method, status}``. ``resource`` comes from the
  route's path template, never from the path itself (``resource_of``); a request no route
  matched is ``unmatched``. The agent API (``/agent/v1/...``) is ``agent-api``; its long-polls
  last up to their ``wait``.
- ``faults.fault``: ``baryon_api_errors_total{type, status}``, by Neutron fault type.
- ``db.engine``: ``baryon_db_transaction_seconds{kind="read"|"write"}`` and
  ``baryon_db_write_retries_total``.
- ``service.agents``: ``baryon_agent_heartbeats_received_total{agent_type}``.
- ``service.metrics.StateCollector``, read from the database at each scrape: the change log's
  sequence and every agent's realised sequence, lag, liveness and heartbeat age.

Several API workers (``api_workers > 1``): ``baryon server`` points ``PROMETHEUS_MULTIPROC_DIR``
at a private directory it creates before starting them and removes when it stops
(``multiprocess_dir``); every worker's counters and histograms live in files there, and any
worker's ``/metrics`` answers with the sum over all of them. With one worker the metrics stay in
memory (and the process's own ``process_*`` metrics are served too).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from baryon.api.envdir import private_dir

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METHODS = frozenset(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
# Seconds. Up to a minute: the agent API's long-polls wait up to 60 s.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

REQUEST_SECONDS = Histogram("baryon_api_request_seconds", "API request latency, by resource and method",
                            ["resource", "method"], buckets=LATENCY_BUCKETS)
REQUESTS = Counter("baryon_api_requests", "API requests answered, by resource, method and status code",
                   ["resource", "method", "status"])
ERRORS = Counter("baryon_api_errors", "API error responses, by Neutron fault type and status code",
                 ["type", "status"])


def resource_of(template: str | None) -> str:
    """The ``resource`` label of a route's path template: ``/v2.0/ports/{id}`` -> ``ports``,
    ``/v2.0/security-groups.json`` -> ``security-groups``, ``/agent/v1/hosts/{host}/ovs`` ->
    ``agent-api``, ``/`` -> ``versions``, ``/v2.0`` -> ``index``; no template (no route matched)
    -> ``unmatched``. Only templates reach it, so the label never holds an id."""
    if template is None:
        return "unmatched"
    if template == "/agent" or template.startswith("/agent/"):
        return "agent-api"
    parts = [part for part in template.split("/") if part]
    if not parts:
        return "versions"
    if parts[0] == "v2.0":
        parts = parts[1:]
        if not parts:
            return "index"
    first = parts[0].removesuffix(".json")
    return "other" if not first or first.startswith("{") else first


class RequestMetrics:
    """ASGI middleware: each HTTP request's latency and status, labelled by its route's resource
    (Starlette's router leaves the matched route in ``scope["route"]``, also for a 405)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception that escapes becomes ServerErrorMiddleware's 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            resource = resource_of(getattr(scope.get("route"), "path", None))
            method = scope["method"] if scope["method"] in METHODS else "other"
            REQUEST_SECONDS.labels(resource, method).observe(time.perf_counter() - started)
            REQUESTS.labels(resource, method, str(status)).inc()


class _Forward:
    """A collector that yields another registry's metrics (this process's, in memory)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterable:
        return self.registry.collect()


def registry(*collectors: Collector) -> CollectorRegistry:
    """What ``/metrics`` serves: every worker's metrics (multiprocess mode) or this process's, and
    ``collectors`` (read at each scrape)."""
    served = CollectorRegistry()
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        MultiProcessCollector(served, path)
    else:
        served.register(_Forward(REGISTRY))
    for collector in collectors:
        served.register(collector)
    return served


def routes(*collectors: Collector) -> list[Route]:
    served = registry(*collectors)

    async def metrics(_request: Request) -> Response:
        body = await run_in_threadpool(generate_latest, served)  # the collectors read the database
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return [Route("/metrics", metrics, methods=["GET"])]


def multiprocess_dir() -> contextlib.AbstractContextManager[str]:
    """A private, fresh ``PROMETHEUS_MULTIPROC_DIR`` for the API workers started inside the block
    (they inherit the environment); removed, and the variable restored, at the end.
    NOTE: it must be set before a worker imports prometheus_client (workers are spawned, so they
    import everything afresh); a stale directory would add a previous run's counts."""
    return private_dir(MULTIPROC_ENV, "baryon-metrics-")
