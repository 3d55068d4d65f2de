"""smartpraxx-provision: the provisioning orchestrator for smartpraxx practice platforms."""

__version__ = "0.1.0"
