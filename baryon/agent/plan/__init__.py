"""Pure planners: desired state + observed state -> the ops that make a host match (no I/O, no clock)."""
