"""Configuration: Neutron's INI files and option names, read into typed, frozen settings."""

from baryon.config.loader import ConfigError, Settings, load

# The server's configuration files, for API workers started afresh (``os.pathsep``-separated).
FILES_ENV = "BARYON_CONFIG_FILES"

__all__ = ["FILES_ENV", "ConfigError", "Settings", "load"]
