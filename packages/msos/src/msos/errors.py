"""The exceptions of msos: one place, one line each (subject: problem), for the operator."""

from __future__ import annotations

from ssc_common.errors import InputError, SSCError


class MsosError(SSCError):
    """A microlensing pipeline step cannot go on."""


class EpochRejected(InputError):
    """One Level-2 epoch is unusable (unreadable, wrong type or partition, no WCS, no data).

    The epoch is skipped and recorded as rejected with this reason; the rest of the
    partition is processed.
    """


class PartitionError(MsosError):
    """The partition as a whole cannot be processed (e.g. too few usable epochs)."""
