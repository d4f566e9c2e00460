"""Every product type of MSOS, GDPS and CGI-DM (importing this module registers them)."""

from roman_schemas.products import cgi, gdps, msos

__all__ = ["cgi", "gdps", "msos"]
