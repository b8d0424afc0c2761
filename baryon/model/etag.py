"""The etag of an agent's view: a digest of its canonical JSON without ``seq`` and ``etag``.

Equal etags mean equal content, whatever the sequence the view was computed at; every view kind
(``host``, ``dhcp``, ``l3``) takes its etag from here, so the agent API compares them alike.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from typing import Any


def digest(view: Any) -> str:  # noqa: ANN401 - any view dataclass with ``seq`` and ``etag`` fields
    content = asdict(view)
    content.pop("seq", None)
    content.pop("etag", None)
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]
