"""Errors -> Neutron's fault body ``{"NeutronError": {"type", "message", "detail"}}``, mapped once.

Domain errors carry their status; database conflicts that outlived every retry are a 409;
anything unexpected is a 500 whose details go to the log, not to the client. Each fault counts
in ``baryon_api_errors_total{type, status}`` (``api.metrics``).
"""

from __future__ import annotations

import logging

import orjson
from starlette.requests import Request
from starlette.responses import Response

from baryon.api.metrics import ERRORS
from baryon.db.engine import DuplicateAfterRetries
from baryon.service import errors

LOG = logging.getLogger(__name__)


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
}
