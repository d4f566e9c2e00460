"""Every product type of MSOS, GDPS and CGI-DM (importing this module registers them)."""

from roman_schemas.products import msos

__all__ = ["msos"]
