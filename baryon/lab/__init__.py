"""The lab: a multi-node OpenStack-style deployment simulated on one machine.

``topology`` and ``configs`` are pure (what to build); ``host``, ``ovs``, ``fabric``, ``server``
and ``vms`` build it; ``lab`` orchestrates ``up``, ``down`` and ``status``.
"""
