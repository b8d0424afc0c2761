"""The agents that run on every node: runtime, desired state, pure planners (``plan/``) and drivers."""
