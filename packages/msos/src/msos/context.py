"""What every epoch of a partition is processed against: its reference frame, ePSF and
fiducial catalog, loaded once (and the rendered catalog scene, made on first use)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from msos.dia.kernel import Stamps, choose_stamps
from msos.dia.phase import EDGE_TOLERANCE_SIGMA, SceneModel, remainder_of
from msos.partition import Partition
from msos.psf.model import EPSFGrid
from msos.reference.superres import SuperResolvedImage
from roman_schemas.io import load_arrays
from roman_schemas.products.msos import ObjectFiducialCatalog, ReferenceFrame
from ssc_common.publish import open_stored_product

#: reference-frame mask bits that make a pixel unusable (romancal dq meanings)
REFERENCE_BAD_BITS = np.uint32(0x1 | 0x2)  # DO_NOT_USE, SATURATED


@dataclass
class PartitionReference:
    """A partition's reference frame and catalog, as the epoch kernels need them."""

    partition: Partition
    reference_key: str
    catalog_key: str
    frame: ReferenceFrame
    catalog: ObjectFiducialCatalog
    epsf: EPSFGrid
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, ctx: Any, partition: Partition) -> PartitionReference:
        """Read the partition's reference frame and fiducial catalog from storage."""
        reference_key, catalog_key = partition.reference_key(), partition.catalog_key()
        with open_stored_product(ctx, reference_key, ReferenceFrame) as frame:
            frame = load_arrays(frame, reference_key)
        with open_stored_product(ctx, catalog_key, ObjectFiducialCatalog) as catalog:
            catalog = load_arrays(catalog, catalog_key)
        epsf = EPSFGrid.from_gridded_psf(frame.psf, normalize=True)
        return cls(partition, reference_key, catalog_key, frame, catalog, epsf)

    @property
    def shape(self) -> tuple[int, int]:
        """(ny, nx) of the reference grid."""
        return tuple(self.frame.data.shape)

    @cached_property
    def image(self) -> np.ndarray:
        """The stacked frame (DN/s), NaN where bad."""
        return np.where(self.bad, np.float32(np.nan), self.frame.data).astype("float32")

    @cached_property
    def variance(self) -> np.ndarray:
        """Variance of the stacked frame."""
        err = np.asarray(self.frame.err, dtype="float32")
        return np.where(self.bad, np.float32(np.nan), err * err).astype("float32")

    @cached_property
    def bad(self) -> np.ndarray:
        """Pixels of the frame that no epoch filled or that are saturated."""
        data = np.asarray(self.frame.data)
        return ((np.asarray(self.frame.mask) & REFERENCE_BAD_BITS) != 0) | ~np.isfinite(data)

    @cached_property
    def object_id(self) -> np.ndarray:
        """Catalog object ids, in catalog order."""
        return np.asarray(self.catalog.objects.object_id)

    @cached_property
    def xy(self) -> tuple[np.ndarray, np.ndarray]:
        """Catalog positions on the reference grid."""
        objects = self.catalog.objects
        return np.asarray(objects.x_ref_pix), np.asarray(objects.y_ref_pix)

    def flux_image_unit(self) -> np.ndarray:
        """Catalog reference fluxes in the frame's image unit (DN/s)."""
        ujy = self.frame.ujy_per_image_unit
        return np.asarray(self.catalog.objects.ref_flux_ujy, dtype="float64") / ujy

    def scene(self) -> SceneModel:
        """The catalog stars rendered on the reference grid (made once)."""
        if "scene" not in self._cache:
            x, y = self.xy
            # an epoch's pixel noise: the stack's times √(epochs stacked)
            epoch_sigma = float(np.nanmedian(np.sqrt(self.variance))) * math.sqrt(
                max(int(self.frame.n_epochs_stacked), 1)
            )
            tolerance = EDGE_TOLERANCE_SIGMA * epoch_sigma
            self._cache["scene"] = SceneModel.render(
                self.shape, x, y, self.flux_image_unit(), self.epsf, tolerance
            )
        return self._cache["scene"]

    def remainder(self) -> np.ndarray:
        """The frame less its rendered stars (0 where bad): what every epoch interpolates."""
        if "remainder" not in self._cache:
            self._cache["remainder"] = remainder_of(self.image, self.bad, self.scene())
        return self._cache["remainder"]

    def superres(self) -> SuperResolvedImage | None:
        """The frame super-resolved from the dithered epochs, or None if it has none."""
        fine = self.frame.superres
        if fine is None:
            return None
        if "superres" not in self._cache:
            self._cache["superres"] = SuperResolvedImage(
                np.asarray(fine.data, dtype=np.float32), fine.factor, fine.pad, self.shape,
                iterations=0, residual=0.0,
            )  # fmt: skip
        return self._cache["superres"]

    def stamps(self) -> Stamps:
        """Where the DIA kernel is fitted: chosen once on the reference frame."""
        if "stamps" not in self._cache:
            image = np.where(self.bad, 0.0, self.image).astype("float32")
            self._cache["stamps"] = choose_stamps(image, self.bad, reference_variance=self.variance)
        return self._cache["stamps"]

    def bright_stars(self) -> np.ndarray:
        """(x, y) of bright isolated stars of the frame, found the way epochs' stars are (for
        matching them when measuring an epoch's offset)."""
        if "bright" not in self._cache:
            from msos.reference.kernel import detect_stars

            image = np.where(self.bad, 0.0, self.image).astype("float32")
            stars = detect_stars(image, self.bad, self.variance)
            self._cache["bright"] = stars.xy[stars.ok]
        return self._cache["bright"]
