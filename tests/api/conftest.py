"""Clients for the API tests: ``admin`` (no project header: noauth's admin) and ``member``
(acting as the test's fresh project). Modules that need another client type override them."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.api.helpers import http
from tests.support.server import BaryonServer


@pytest.fixture
def admin(baryon: BaryonServer) -> Iterator[httpx.Client]:
    with http(baryon.endpoint) as client:
        yield client


@pytest.fixture
def member(baryon: BaryonServer, project: str) -> Iterator[httpx.Client]:
    with http(baryon.endpoint, project) as client:
        yield client
