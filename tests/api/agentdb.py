"""Helpers of the agent API tests that reach around the API: an agent made silent in the database."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import create_engine, text

from tests.api.test_concurrency import database_url
from tests.support.server import BaryonServer


def silence(server: BaryonServer, agent_type: str, host: str, minutes: int = 10) -> None:
    """The agent last reported ``minutes`` ago: dead for any agent_down_time (and its double) below
    that, without waiting it out."""
    past = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0) - dt.timedelta(minutes=minutes)
    engine = create_engine(database_url(server))
    try:
        with engine.begin() as conn:
            done = conn.execute(text("UPDATE agents SET heartbeat_timestamp = :past "
                                     "WHERE agent_type = :type AND host = :host"),
                                {"past": past, "type": agent_type, "host": host})
            assert done.rowcount == 1
    finally:
        engine.dispose()


def addresses(port: dict) -> list[str]:
    return sorted(f["ip_address"] for f in port["fixed_ips"])
