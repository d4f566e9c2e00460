"""``msos process-partition``: the five photometry steps of one (field, detector), in order.

reference (built once per season, reused when stored) → catalog → for every epoch:
difference image + forced photometry (an unusable epoch is rejected with its reason and the
rest go on) → daily light curves of every day the epochs cover. Every step is idempotent, so
a rerun does only what is missing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from astropy.time import Time

from msos.catalog.step import CatalogStep
from msos.context import PartitionReference
from msos.dia.step import EpochStep, read_input_epoch
from msos.errors import EpochRejected, PartitionError
from msos.inputs import separation_deg
from msos.lightcurves.step import DailyLightCurvesStep
from msos.partition import Partition
from msos.reference.step import ReferenceStep
from msos.survey import FIELDS_GALACTIC, detector_centre
from roman_schemas.products.msos import EpochPhotometry
from ssc_common.publish import open_stored_product

log = logging.getLogger(__name__)


@dataclass
class PartitionRun:
    """What a partition run did, for the operator's summary."""

    partition: Partition
    processed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    rejected: list[EpochRejected] = field(default_factory=list)
    days: list[date] = field(default_factory=list)


def infer_partition(ctx: Any, images: list[str], season: str) -> Partition:
    """The partition of the first readable image: its detector, and the field it points into."""
    for ref in images:
        try:
            epoch = read_input_epoch(ctx, ref, None)
        except EpochRejected:
            continue
        return partition_of(epoch, season)
    raise PartitionError("process-partition", "no readable Level-2 image among the inputs")


def _day_of(time_mjd_tdb: float) -> date:
    return Time(time_mjd_tdb, format="mjd", scale="tdb").utc.to_datetime().date()


def process_partition(
    ctx: Any,
    partition: Partition,
    images: list[str],
    *,
    reference_epochs: int = 48,
    keep_differences: bool = False,
    parameters: dict[str, Any] | None = None,
) -> PartitionRun:
    """Run the photometry of one partition over ``images`` (keys, paths or URIs)."""
    parameters = dict(parameters or {})
    run = PartitionRun(partition)
    if not ctx.storage.exists(partition.reference_key()):
        ReferenceStep(ctx, partition).run(
            images[:reference_epochs], parameters, partition=partition.name
        )
    CatalogStep(ctx, partition).run([partition.reference_key()], {}, partition=partition.name)
    reference = PartitionReference.load(ctx, partition)
    photometry_keys: dict[date, list[str]] = defaultdict(list)
    for image in images:
        step = EpochStep(ctx, partition, reference, keep_difference=keep_differences)
        try:
            result = step.run(step.inputs(image), {}, partition=partition.name)
        except EpochRejected as rejection:
            run.rejected.append(rejection)
            log.warning("epoch rejected: %s", rejection)
            continue
        (run.skipped if result.skipped else run.processed).append(image)
        for record in result.products:
            key = ctx.storage.key_of(record.uri)
            if "/photometry/" in key:
                with open_stored_product(ctx, key, EpochPhotometry) as product:
                    day = _day_of(float(product.epoch.time_mjd_tdb[0]))
                photometry_keys[day].append(key)
    for day, keys in sorted(photometry_keys.items()):
        DailyLightCurvesStep(ctx, partition).run(
            [partition.catalog_key(), *sorted(keys)], {"day": day.isoformat()},
            partition=partition.name,
        )  # fmt: skip
        run.days.append(day)
    return run


def partition_of(epoch: Any, season: str) -> Partition:
    """The partition an epoch belongs to: its detector, and the field it points into."""
    best = min(
        FIELDS_GALACTIC,
        key=lambda f: separation_deg(
            epoch.centre_ra_deg, epoch.centre_dec_deg, *detector_centre(f, epoch.detector)
        ),
    )
    return Partition(season, best, epoch.detector)
