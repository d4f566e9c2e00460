"""``msos catalog``: the partition's object fiducial catalog, measured on its reference frame.

Every object is detected and fitted with the frame's ePSF (blends fitted together), gets a
stable id from its position, field and detector, and its sky position from the frame's WCS.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from astropy.wcs import WCS

from msos.catalog.kernel import measure_objects, object_ids
from msos.partition_step import PartitionStep
from msos.psf.model import EPSFGrid
from roman_schemas.io import load_arrays
from roman_schemas.products.msos import (
    FiducialObjects,
    MsosPartitionMeta,
    ObjectFiducialCatalog,
    PhotometryFlag,
    ReferenceFrame,
)
from ssc_common.publish import open_stored_product

SATURATED_BIT = np.uint32(0x2)  # romancal dq SATURATED in the frame's mask
DO_NOT_USE_BIT = np.uint32(0x1)


def ab_magnitude(flux_ujy: np.ndarray) -> np.ndarray:
    """AB magnitude of fluxes in µJy (NaN where not positive)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(flux_ujy > 0, 23.9 - 2.5 * np.log10(flux_ujy), np.nan).astype("float32")


def measure_frame(frame: ReferenceFrame) -> FiducialObjects:
    """Every object of a reference frame, measured with its ePSF, with ids and sky positions."""
    mask = np.asarray(frame.mask)
    data = np.asarray(frame.data, dtype="float32")
    err = np.asarray(frame.err, dtype="float32")
    saturated = (mask & SATURATED_BIT) != 0
    bad = ((mask & DO_NOT_USE_BIT) != 0) | saturated | ~np.isfinite(data) | ~(err > 0)
    epsf = EPSFGrid.from_gridded_psf(frame.psf, normalize=True)
    result = measure_objects(
        np.where(bad, 0.0, data).astype("float32"), epsf, bad=bad,
        variance=np.where(bad, np.inf, err * err).astype("float32"), saturated=saturated,
    )  # fmt: skip
    keep = (
        ((np.asarray(result.flags) & PhotometryFlag.NO_DATA) == 0)
        & np.isfinite(result.flux)
        & np.isfinite(result.flux_err)
        & np.isfinite(result.x)
        & np.isfinite(result.y)
    )
    x, y = result.x[keep], result.y[keep]
    ra, dec = WCS(frame.wcs_fits).all_pix2world(x, y, 0)
    field, detector = frame.meta.field, frame.meta.detector
    ujy = frame.ujy_per_image_unit
    flux = (result.flux[keep] * ujy).astype("float32")
    return FiducialObjects(
        object_id=object_ids(x, y, field=field, detector=detector, flux=result.flux[keep]),
        ra_deg=np.asarray(ra, dtype="float64"),
        dec_deg=np.asarray(dec, dtype="float64"),
        x_ref_pix=x,
        y_ref_pix=y,
        ref_flux_ujy=flux,
        ref_flux_err_ujy=(result.flux_err[keep] * ujy).astype("float32"),
        mag_ab=ab_magnitude(flux),
        psf_qfit=np.asarray(result.qfit[keep], dtype="float32"),
        crowding=np.asarray(result.crowding[keep], dtype="float32"),
        flags=np.asarray(result.flags[keep], dtype="uint32"),
    )


class CatalogStep(PartitionStep):
    """Measures the object fiducial catalog of a partition on its reference frame (input)."""

    name = "msos.catalog"

    def process(self, input_keys: Sequence[str], parameters: Mapping[str, Any]) -> None:
        key = input_keys[0]
        with open_stored_product(self.ctx, key, ReferenceFrame) as opened:
            frame = load_arrays(opened, key)
        objects = measure_frame(frame)
        fields = frame.meta.model_dump(exclude={"product_type", "model_type", "file_date"})
        catalog = ObjectFiducialCatalog(
            meta=MsosPartitionMeta(**ObjectFiducialCatalog.new_meta(**fields)), objects=objects
        )
        self.publish(catalog, self.partition.catalog_key(), parameters)
