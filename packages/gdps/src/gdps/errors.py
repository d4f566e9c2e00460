"""The exceptions of gdps: one place, one line each (subject: problem), for the operator."""

from __future__ import annotations

from ssc_common.errors import InputError, SSCError


class GdpsError(SSCError):
    """A grism/prism pipeline step cannot go on."""


class InstrumentModelError(InputError):
    """The instrument model file is missing, corrupt or fails validation (subject: the file)."""
