"""Shared core of the Roman SSC pipelines: settings, storage, processing database, provenance."""

from importlib.metadata import version as _version

__version__ = _version("ssc-common")
