"""``msos dia`` and ``msos photometry``: an epoch differenced against its partition's
reference, and the catalog's forced photometry on it; ``msos epoch`` does both at once
(what ``process-partition`` runs), keeping the difference image only when asked."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from msos.context import PartitionReference
from msos.epoch import process_epoch
from msos.epoch_products import difference_product, photometry_product
from msos.inputs import Epoch, read_epoch
from msos.partition import Partition
from msos.partition_step import PartitionStep
from msos.survey import detector_centre


def read_input_epoch(ctx: Any, ref: str, partition: Partition | None) -> Epoch:
    """Read one Level-2 input (key, path or URI) and check it belongs to the partition
    (when one is given)."""
    storage, key = ctx.locate(ref)
    uri = storage.uri(key)
    detector = partition.detector if partition else None
    pointing = detector_centre(partition.field, partition.detector) if partition else None
    if uri.startswith("file://"):
        from urllib.parse import urlparse

        return read_epoch(urlparse(uri).path, uri=uri, detector=detector, pointing=pointing)
    with tempfile.TemporaryDirectory(prefix="msos-l2-") as scratch:
        storage.get_file(key, Path(scratch) / Path(key).name)
        path = Path(scratch) / Path(key).name
        return read_epoch(path, uri=uri, detector=detector, pointing=pointing)


class EpochStep(PartitionStep):
    """Difference and photometer one epoch; publish its photometry (and difference image).

    Inputs: the Level-2 file, the partition's reference frame, its fiducial catalog.
    """

    name = "msos.epoch"
    publishes_difference = False

    def __init__(
        self,
        ctx: Any,
        partition: Partition,
        reference: PartitionReference | None = None,
        keep_difference: bool = False,
    ) -> None:
        super().__init__(ctx, partition)
        self.reference = reference
        self.keep_difference = keep_difference or self.publishes_difference

    def inputs(self, level2: str) -> list[str]:
        """The input list of one epoch (Level-2 file, reference frame, catalog)."""
        return [level2, self.partition.reference_key(), self.partition.catalog_key()]

    def process(self, input_keys: Sequence[str], parameters: Mapping[str, Any]) -> None:
        epoch = read_input_epoch(self.ctx, input_keys[0], self.partition)
        reference = self.reference or PartitionReference.load(self.ctx, self.partition)
        self.reference = reference
        result = process_epoch(reference, epoch)
        if self.keep_difference:
            product = difference_product(reference, epoch, result)
            self.publish(product, self.partition.difference_key(epoch.exposure_name), parameters)
        product = photometry_product(reference, epoch, result)
        self.publish(product, self.partition.photometry_key(epoch.exposure_name), parameters)


class DifferenceStep(EpochStep):
    """``msos dia``: the epoch's difference image (and its photometry, measured on it)."""

    name = "msos.dia"
    publishes_difference = True


class PhotometryStep(PartitionStep):
    """``msos photometry``: forced photometry of the catalog on a stored difference image.

    Inputs: the difference image, the partition's reference frame, its fiducial catalog.
    """

    name = "msos.photometry"

    def process(self, input_keys: Sequence[str], parameters: Mapping[str, Any]) -> None:
        import numpy as np

        from msos.dia.kernel import DifferenceImage as Difference
        from msos.dia.kernel import KernelSolution
        from msos.epoch import epoch_flags, photometer
        from roman_schemas.io import load_arrays
        from roman_schemas.products.msos import DifferenceImage, EpochPhotometry, PhotometryFlag
        from ssc_common.publish import open_stored_product

        reference = PartitionReference.load(self.ctx, self.partition)
        with open_stored_product(self.ctx, input_keys[0], DifferenceImage) as stored:
            product = load_arrays(stored, input_keys[0])
        fields = product.kernel.model_dump()
        fields["shape"] = tuple(fields["shape"])
        solution = KernelSolution(**fields)
        shift = tuple(product.meta.offset_pix)
        difference = Difference(product.data, product.variance, product.bad)
        flux, flux_err, flags, _ = photometer(reference, difference, solution, shift)
        if epoch_flags(solution, None) or int(product.epoch.flags[0]):
            flags = flags | np.uint16(PhotometryFlag.EPOCH_REJECTED)
        ujy = product.meta.ujy_per_dn_s
        meta = product.meta.model_dump(exclude={"product_type", "model_type", "file_date"})
        photometry = EpochPhotometry(
            meta=EpochPhotometry.new_meta(**meta),
            epoch=product.epoch,
            object_id=reference.object_id,
            delta_flux_ujy=(flux * ujy).astype("float32"),
            delta_flux_err_ujy=(flux_err * ujy).astype("float32"),
            flags=flags.astype("uint16"),
        )
        key = self.partition.photometry_key(str(product.meta.exposure_name))
        self.publish(photometry, key, parameters)
