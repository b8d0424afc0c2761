"""Fixtures shared by every test directory.

``baryon``: a running ``baryon server`` per database backend (SQLite, MariaDB, PostgreSQL), each
on a fresh database, for the whole session; tests that take it run once per backend.
``project``: a fresh project id, so tests on a shared server never see each other's resources.
"""

from __future__ import annotations

import uuid

import pytest

from tests.support.server import BaryonServer

pytest_plugins = ["tests.support.databases", "tests.support.ovs"]

BACKENDS = ["sqlite", "mariadb", "postgresql"]

# The shared servers carry every test's resources, many in the default admin project: no
# quota there. Quota behaviour is tested on servers of its own and per project (PUT /quotas).
UNLIMITED_QUOTAS = "[quotas]\n" + "".join(
    f"quota_{r} = -1\n" for r in ("network", "subnet", "port", "router", "floatingip", "security_group",
                                   "security_group_rule", "rbac_policy"))
# Nor does an L3 agent registering there take every router the other tests left without one
# (router_auto_schedule); L3 scheduling is tested on servers of its own (tests/api/test_l3_scheduling.py).
SHARED_DEFAULTS = "router_auto_schedule = false"


@pytest.fixture(scope="session", params=BACKENDS)
def baryon(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> BaryonServer:
    backend = request.param
    base = tmp_path_factory.mktemp(f"baryon-{backend}")
    if backend == "sqlite":
        connection = ""
    else:
        db_server = request.getfixturevalue(f"{backend}_server")
        connection = db_server.create_database("baryon_api")
    server = BaryonServer(base, connection, workers=2, extra=SHARED_DEFAULTS, sections=UNLIMITED_QUOTAS)
    request.addfinalizer(server.stop)
    return server.start()


@pytest.fixture
def project() -> str:
    return uuid.uuid4().hex
