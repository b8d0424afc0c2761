"""Errors -> Neutron's fault body ``{"NeutronError": {"type", "message", "detail"}}``, mapped once.

Domain errors carry their status; database conflicts that outlived every retry are a 409; a
database that cannot be reached (down, restarting: ``engine.disconnected``) or whose connection
pool stays exhausted is a 503 ``ServiceUnavailable`` with ``Retry-After`` (oslo.db's
``DBConnectionError``; not a 500: nothing is wrong with the request or the server). The request may
be sent again, but a write cut off at its commit may have committed (a create sent again then makes
a second resource, as with Neutron). The server reconnects by itself: the pool drops the connections
a disconnect invalidated, and checks any connection idle for a second before lending it
(``engine._ping_when_idle``).
Anything unexpected is a 500 whose details go to the log, not to the client. Each fault counts
in ``baryon_api_errors_total{type, status}`` (``api.metrics``).
"""

from __future__ import annotations

import logging

import orjson
from sqlalchemy.exc import DBAPIError, TimeoutError as PoolTimeout
from starlette.requests import Request
from starlette.responses import Response

from baryon.api.metrics import ERRORS
from baryon.db.engine import DuplicateAfterRetries, disconnected
from baryon.service import errors

LOG = logging.getLogger(__name__)
RETRY_AFTER = 1  # seconds: a database restart takes about that long


def fault(status: int, type_: str, message: str, detail: str = "") -> Response:
    ERRORS.labels(type_, str(status)).inc()  # every error response is made here
    body = {"NeutronError": {"type": type_, "message": message, "detail": detail}}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


async def neutron_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.NeutronError)
    return fault(exc.status, exc.type, str(exc))


async def duplicate(_request: Request, exc: Exception) -> Response:
    conflict = errors.ConcurrentWriteConflict()
    return fault(conflict.status, conflict.type, str(conflict))


def unavailable(reason: str) -> Response:
    """503 ``ServiceUnavailable``: Neutron's type and message, and why."""
    error = errors.ServiceUnavailable()
    response = fault(error.status, error.type, f"{error} {reason}; retry the request.")
    response.headers["Retry-After"] = str(RETRY_AFTER)
    return response


async def database_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DBAPIError)
    if not disconnected(exc):
        return await unexpected(request, exc)
    LOG.warning("%s %s: the database cannot be reached: %s", request.method, request.url.path, exc.orig)
    return unavailable("The database cannot be reached")


async def pool_exhausted(request: Request, exc: Exception) -> Response:
    LOG.warning("%s %s: no database connection free: %s", request.method, request.url.path, exc)
    return unavailable("No database connection is free")


async def http_error(_request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 500)
    names = {404: "HTTPNotFound", 405: "HTTPMethodNotAllowed", 400: "HTTPBadRequest", 413: "HTTPRequestEntityTooLarge"}
    messages = {404: "The resource could not be found.", 405: "The method is not allowed for this resource."}
    return fault(status, names.get(status, "HTTPError"), messages.get(status, str(getattr(exc, "detail", ""))))


async def unexpected(request: Request, exc: Exception) -> Response:
    LOG.exception("%s %s failed", request.method, request.url.path)
    return fault(500, "HTTPInternalServerError", "Request Failed: internal server error while processing your request.")


HANDLERS = {
    errors.NeutronError: neutron_error,
    DuplicateAfterRetries: duplicate,
    DBAPIError: database_error,
    PoolTimeout: pool_exhausted,
}
