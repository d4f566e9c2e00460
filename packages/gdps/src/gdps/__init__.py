"""GDPS: grism and prism spectra and redshifts."""

from importlib.metadata import version as _version

__version__ = _version("gdps")
