"""Waiting in tests: poll a condition with a timeout, never sleep for synchronisation."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


def eventually(predicate: Callable[[], T], timeout: float = 5.0, what: str = "condition",
               interval: float = 0.02) -> T:
    """Poll ``predicate`` until it returns a truthy value, and return it; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
