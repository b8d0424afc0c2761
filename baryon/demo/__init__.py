"""``baryon demo``: the seed's deployment built on a lab through the API, then checked end to end.

Pure parts: ``plan`` (the deployment and its steps, the clean-up of an earlier run), ``summary``
(check results, the summary table, the exit status), ``picture`` (the topology as text and SVG
from a ``Scene``). Parts that touch the lab: ``build`` (clean-up and steps through the API),
``probes`` and ``checks`` (traffic between the lab's namespaces), ``scene`` (the ``Scene`` read from
the API, the nodes and the lab's status), ``run`` (the command).
"""
