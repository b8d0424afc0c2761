"""Configuration: Neutron's INI files and option names, read into typed, frozen settings."""

from baryon.config.loader import ConfigError, Settings, load

__all__ = ["ConfigError", "Settings", "load"]
