"""The base of every msos step: a step of the shared core bound to one partition."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from msos.partition import Partition
from ssc_common.step import Step


class PartitionStep(Step):
    """A :class:`ssc_common.step.Step` on one partition's products; ``scratch``: where large
    temporary files go (None: the system's temporary folder)."""

    distributions = ("msos",)

    def __init__(self, ctx: Any, partition: Partition, scratch: Path | None = None) -> None:
        super().__init__(ctx)
        self.partition = partition
        self.scratch = scratch
