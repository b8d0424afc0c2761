"""The pure rule of RBAC entry removal (``rbac.losing``): which projects would lose their access
to an object if one of its entries went (or changed target)."""

from __future__ import annotations

import pytest

from baryon.service.rbac import losing


@pytest.mark.parametrize("users, remaining, target, lost", [
    ({"a", "b"}, set(), "a", {"a"}),  # the target uses it and nothing else grants it
    ({"a", "b"}, set(), "c", set()),  # the target does not use it
    ({"a"}, {"a"}, "a", set()),  # (retargeted to itself: the new target stays)
    ({"a", "b"}, {"*"}, "a", set()),  # the wildcard still grants everybody
    ({"a", "b"}, {"a"}, "*", {"b"}),  # the wildcard goes: the users without their own entry
    ({"owner", "b"}, {"b"}, "*", set()),  # the owner needs no entry
    (set(), set(), "*", set()),
])
def test_losing(users: set[str], remaining: set[str], target: str, lost: set[str]):
    assert losing(users, "owner", remaining, target) == lost
