"""CGI-DM: coronagraph data management around corgidrp."""

from importlib.metadata import version as _version

__version__ = _version("cgi-dm")
