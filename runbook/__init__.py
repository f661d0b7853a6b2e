"""Run mkdocs-material operations guides as automation, one source for docs and runs."""

__version__ = "0.1.0"
