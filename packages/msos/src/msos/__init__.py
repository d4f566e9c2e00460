"""MSOS: microlensing photometry and events of the Galactic Bulge Time Domain Survey."""

from importlib.metadata import version as _version

__version__ = _version("msos")
