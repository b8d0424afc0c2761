"""The only code of the agents that touches a host: OVSDB (``ovsdb``), OpenFlow (``openflow``)."""
