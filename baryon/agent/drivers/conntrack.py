"""conntrack text for the netfilter driver (pure): the ``conntrack -D`` command of a
``ConntrackDelete`` and the count it reports. ``baryon.agent.drivers.netfilter`` runs it.

``conntrack -D`` prints the entries it deleted on stdout and "N flow entries have been deleted."
on stderr; it exits 1 when N is 0, which for a delete means "already gone" (success).
"""

from __future__ import annotations

import re

from baryon.model.firewall import ConntrackDelete

_DELETED = re.compile(r"(\d+) flow entr(?:y|ies) ha(?:s|ve) been deleted")


def delete_argv(entry: ConntrackDelete) -> list[str]:
    """``conntrack -D`` with the entry's family, and zone, protocol, addresses when given."""
    argv = ["conntrack", "-D", "-f", entry.family]
    if entry.zone is not None:
        argv += ["--zone", str(entry.zone)]
    if entry.protocol is not None:
        argv += ["-p", str(entry.protocol)]
    if entry.source is not None:
        argv += ["-s", entry.source]
    if entry.destination is not None:
        argv += ["-d", entry.destination]
    if entry.reply_destination is not None:
        argv += ["-q", entry.reply_destination]
    return argv


def deleted_count(stderr: str) -> int | None:
    """How many entries ``conntrack -D`` says it deleted; None when it says nothing of the kind."""
    match = _DELETED.search(stderr)
    return int(match.group(1)) if match else None
