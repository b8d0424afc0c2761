"""Who is asking: the request context every service call takes.

``is_admin`` sees and may do everything; a member acts within ``project_id``; a reader (a project
role set with neither ``member`` nor ``admin``) may only read.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Context:
    project_id: str
    is_admin: bool = False
    roles: frozenset[str] = field(default_factory=lambda: frozenset({"member"}))
    user_id: str = ""

    @property
    def can_write(self) -> bool:
        return self.is_admin or bool(self.roles & {"member", "admin"})

    @classmethod
    def admin(cls, project_id: str = "") -> "Context":
        return cls(project_id=project_id, is_admin=True, roles=frozenset({"admin", "member", "reader"}))
