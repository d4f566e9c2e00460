"""``msos reference``: a partition's Level-2 epochs become its L3 reference frame.

Good epochs are selected and their offsets measured (WCS, refined on stars); the stack uses
epochs whose offset from the anchor is a whole number of pixels to within
``max_fractional_shift``, shifted by whole pixels — Roman's undersampled PSF does not survive
sub-pixel interpolation, and a stack sharper than the epochs is what difference imaging needs.
The spatially varying ePSF is then built from the stack itself, and a first catalog of the
frame (the one the ePSF stars come from) is its object list. With ``psf_from_epochs`` (the
default) that ePSF is then refined on the dithered epochs themselves (up to ``psf_max_epochs``
selected ones, read again at every iteration), each PSF star's position and flux shared among
them (:func:`msos.psf.build.build_epsf_from_epochs`): on one undersampled frame a
phase-dependent ePSF error cannot be told from phase-dependent position and flux errors.
Last, with ``superres`` (the default), the field is super-resolved from the same dithered
epochs onto a 2× grid (:mod:`msos.reference.superres`): the epoch step predicts the
reference at each epoch's sub-pixel offset from it, which no stack of undersampled frames
and no ePSF built from them does to the noise.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from roman_datamodels import dqflags

from msos.catalog.kernel import object_ids
from msos.dia.step import read_input_epoch
from msos.errors import EpochRejected, PartitionError
from msos.inputs import Epoch
from msos.partition import Partition
from msos.partition_step import PartitionStep
from msos.products import partition_meta, s_region
from msos.psf.build import build_reference_psf
from msos.psf.model import to_gridded_psf
from msos.reference.kernel import (
    EpochQuality,
    Offset,
    StarList,
    detect_stars,
    epoch_quality,
    fit_offset,
    select_epochs,
    stack_epochs,
)
from msos.reference.superres import (
    PREDICT_HALF_TAPS,
    Tiling,
    TooFewExposures,
    super_resolve,
)
from roman_schemas.products.msos import (
    MsosPartitionMeta,
    PhotometryFlag,
    ReferenceFrame,
    ReferenceObjects,
    SuperResolvedFrame,
)

log = logging.getLogger(__name__)

DO_NOT_USE = np.uint32(dqflags.pixel.DO_NOT_USE)
SATURATED = np.uint32(dqflags.pixel.SATURATED)


@dataclass
class EpochSummary:
    """What the reference step keeps of an epoch between its passes (no pixels)."""

    ref: str
    epoch: Epoch
    stars: StarList
    quality: EpochQuality


def wcs_guess(anchor: Epoch, epoch: Epoch) -> tuple[float, float]:
    """``anchor − epoch`` pixel offset predicted by the two WCSs at the detector centre."""
    ny, nx = anchor.shape
    x, y = np.array([(nx - 1) / 2]), np.array([(ny - 1) / 2])
    ax, ay = anchor.pixel_of(*epoch.sky_of(x, y))
    return float(ax[0] - x[0]), float(ay[0] - y[0])


def fits_wcs(epoch: Epoch) -> dict[str, float | int | str]:
    """The anchor epoch's gwcs as FITS keywords (TAN-SIP fitted over the detector)."""
    ny, nx = epoch.shape
    header = epoch.wcs.to_fits_sip(bounding_box=((0, nx - 1), (0, ny - 1)), degree=3)
    keep = {}
    for key in header:
        value = header[key]
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            continue
        keep[key] = value
    return keep


def whole_pixel_shift(mask: np.ndarray, offset: Offset) -> np.ndarray:
    """An epoch's boolean mask moved onto the anchor grid by the whole-pixel part of its
    offset (``anchor = epoch + (ix, iy)``), False where nothing maps."""
    out = np.zeros_like(mask)
    ny, nx = mask.shape
    ix, iy = int(offset.ix), int(offset.iy)
    src = mask[max(0, -iy) : ny - max(0, iy), max(0, -ix) : nx - max(0, ix)]
    out[max(0, iy) : max(0, iy) + src.shape[0], max(0, ix) : max(0, ix) + src.shape[1]] = src
    return out


def stack_subset(
    offsets: list[Offset], selected: np.ndarray, max_fraction: float, minimum: int
) -> list[int]:
    """Selected epochs whose offset is within ``max_fraction`` of whole pixels; at least
    ``minimum`` (the closest), or every selected epoch if there are fewer."""
    candidates = [k for k in np.flatnonzero(selected)]
    distance = {k: max(abs(offsets[k].fx), abs(offsets[k].fy)) for k in candidates}
    chosen = [k for k in candidates if distance[k] <= max_fraction]
    if len(chosen) < minimum:
        chosen = sorted(candidates, key=lambda k: distance[k])[:minimum]
    return sorted(chosen)


class ReferenceStep(PartitionStep):
    """Builds a partition's L3 reference frame from its Level-2 epochs (the inputs)."""

    name = "msos.reference"

    def __init__(self, ctx: Any, partition: Partition) -> None:
        super().__init__(ctx, partition)
        self.rejected: list[EpochRejected] = []

    def _summaries(self, refs: Sequence[str]) -> list[EpochSummary]:
        summaries = []
        for ref in refs:
            try:
                epoch = read_input_epoch(self.ctx, ref, self.partition)
            except EpochRejected as rejection:
                self.rejected.append(rejection)
                log.warning("epoch skipped: %s", rejection, extra={"step": self.name})
                continue
            stars = detect_stars(epoch.data, epoch.bad, epoch.variance)
            quality = epoch_quality(epoch.data, epoch.bad, stars=stars)
            summaries.append(EpochSummary(ref, epoch, stars, quality))
            # keep only what later passes need: the pixels are read again when stacking
            epoch.data = epoch.variance = epoch.bad = epoch.saturated = None
        return summaries

    def process(self, input_keys: Sequence[str], parameters: Mapping[str, Any]) -> None:
        summaries = self._summaries(input_keys)
        if len(summaries) < int(parameters.get("min_epochs", 3)):
            raise PartitionError(
                self.partition.name, f"only {len(summaries)} usable epochs for a reference"
            )
        selection = select_epochs([s.quality for s in summaries])
        if selection.anchor < 0:
            raise PartitionError(self.partition.name, "no epoch passes the quality cuts")
        anchor = summaries[selection.anchor]
        offsets = []
        for summary in summaries:
            guess = wcs_guess(anchor.epoch, summary.epoch)
            ok = summary.stars.ok
            offsets.append(
                fit_offset(anchor.stars.xy[anchor.stars.ok], summary.stars.xy[ok], guess)
            )
        rms = np.array([o.rms for o in offsets])
        selection = select_epochs([s.quality for s in summaries], offset_rms=rms)
        subset = stack_subset(
            offsets,
            selection.selected,
            float(parameters.get("max_fractional_shift", 0.08)),
            int(parameters.get("min_stack_epochs", 8)),
        )
        if not subset:
            raise PartitionError(self.partition.name, "no epoch left to stack")
        saturated = np.zeros(anchor.epoch.shape, dtype=bool)

        def load(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            summary = summaries[subset[k]]
            epoch = read_input_epoch(self.ctx, summary.ref, self.partition)
            saturated[...] |= whole_pixel_shift(epoch.saturated, offsets[subset[k]])
            return epoch.data, epoch.bad, epoch.variance

        shifts = [(float(offsets[k].dx), float(offsets[k].dy)) for k in subset]
        stack = stack_epochs(load, shifts, anchor.epoch.shape, kernel="nearest")
        fwhm = float(np.nanmedian([summaries[k].quality.fwhm_pix for k in subset]))
        stacked = [summaries[k].epoch for k in subset]
        epochs = None
        if bool(parameters.get("psf_from_epochs", True)):
            # the ePSF from the dithered epochs (positions and fluxes shared): every selected
            # epoch, its sub-pixel offset is what breaks the degeneracy of one frame
            chosen = [int(k) for k in np.flatnonzero(selection.selected)]
            chosen = chosen[: int(parameters.get("psf_max_epochs", 32))]

            def epochs() -> Iterable[tuple[np.ndarray, np.ndarray, np.ndarray, float, float]]:
                for k in chosen:
                    epoch = read_input_epoch(self.ctx, summaries[k].ref, self.partition)
                    yield (
                        epoch.data, epoch.variance, epoch.bad | epoch.saturated,
                        float(offsets[k].dx), float(offsets[k].dy),
                    )  # fmt: skip

        frame = self._frame(stack, saturated, anchor.epoch, stacked, fwhm, parameters, epochs)
        if bool(parameters.get("superres", True)):
            chosen = [int(k) for k in np.flatnonzero(selection.selected)]
            chosen = chosen[: int(parameters.get("superres_max_epochs", 48))]
            frame.superres = self._superres(frame, summaries, chosen, parameters)
        self.publish(frame, self.partition.reference_key(), parameters)

    def _superres(
        self,
        frame: ReferenceFrame,
        summaries: list[EpochSummary],
        chosen: list[int],
        parameters: Mapping[str, Any],
    ) -> SuperResolvedFrame | None:
        """The field super-resolved from the selected epochs (each read once more), or None
        with fewer than ``superres_min_epochs`` of them (epochs are then phase-matched with
        the ePSF instead). Each epoch's offset is measured against the finished frame the way
        the epoch step will measure it (:func:`msos.epoch.measure_shift`): the stack's grid is
        the anchor's moved by its epochs' mean sub-pixel offset, and the two must agree."""
        from msos.context import PartitionReference
        from msos.epoch import measure_shift

        minimum = int(parameters.get("superres_min_epochs", 12))
        if len(chosen) < minimum:
            log.warning("%d epochs: too few to super-resolve the reference", len(chosen),
                        extra={"step": self.name})  # fmt: skip
            return None

        # the frame's bright stars and WCS are all measure_shift reads of it
        reference = PartitionReference(self.partition, "", "", frame, None, None)  # type: ignore[arg-type]

        def frames() -> Iterable[tuple]:
            for k in chosen:
                try:
                    epoch = read_input_epoch(self.ctx, summaries[k].ref, self.partition)
                    offset = measure_shift(reference, epoch)  # reference = epoch + d
                except EpochRejected as rejection:
                    log.warning("epoch left out of the super-resolved frame: %s", rejection,
                                extra={"step": self.name})  # fmt: skip
                    continue
                if offset.n_matched < 3:
                    log.warning("epoch left out of the super-resolved frame: %s matches only "
                                "%d reference stars", summaries[k].ref, offset.n_matched,
                                extra={"step": self.name})  # fmt: skip
                    continue
                shift = (-float(offset.dx), -float(offset.dy))
                yield epoch.data, epoch.variance, epoch.bad | epoch.saturated, shift

        tiling = Tiling(tile=int(parameters.get("superres_tile", 256)))
        try:
            with tempfile.TemporaryDirectory(prefix="msos-superres-", dir=self.scratch) as scratch:
                image, blurs = super_resolve(
                    frames(), frame.data.shape, scratch, tiling=tiling,
                    smooth=float(parameters.get("superres_smooth", 0.1)), minimum=minimum,
                )  # fmt: skip
        except TooFewExposures as exc:
            log.warning("no super-resolved reference: %s", exc, extra={"step": self.name})
            return None
        log.info("super-resolved reference from %d epochs (blur rms %.4f pix²)", len(blurs),
                 float(np.std(blurs)), extra={"step": self.name})  # fmt: skip
        return SuperResolvedFrame(
            data=image.fine.astype("float32"), factor=image.factor, pad=image.pad,
            n_epochs=len(blurs), half_taps=PREDICT_HALF_TAPS,
        )  # fmt: skip

    def _frame(
        self,
        stack: Any,
        saturated: np.ndarray,
        anchor: Epoch,
        stacked: list[Epoch],
        fwhm: float,
        parameters: Mapping[str, Any],
        epochs: Callable[[], Iterable[tuple]] | None = None,
    ) -> ReferenceFrame:
        image = np.where(stack.bad, np.float32(np.nan), stack.image).astype("float32")
        variance = np.where(stack.bad, np.float32(np.nan), stack.variance).astype("float32")
        bad = stack.bad | saturated
        epsf, catalog = build_reference_psf(
            image, variance, bad, saturated, fwhm, epochs=epochs,
            epoch_stamp_radius=int(parameters.get("psf_epoch_stamp_radius", 5)),
            grid_shape=_grid_shape(parameters.get("psf_grid")),
        )  # fmt: skip
        ujy = anchor.ujy_per_dn_s
        keep = ((catalog["flags"] & PhotometryFlag.NO_DATA) == 0) & np.isfinite(catalog["flux"])
        keep &= np.isfinite(catalog["flux_err"])
        ny, nx = image.shape
        ra, dec = anchor.sky_of(catalog["x"][keep], catalog["y"][keep])
        corners_x = np.array([0, nx - 1, nx - 1, 0], dtype=float)
        corners_y = np.array([0, 0, ny - 1, ny - 1], dtype=float)
        region = s_region(*anchor.sky_of(corners_x, corners_y))
        ids = object_ids(
            catalog["x"][keep], catalog["y"][keep], field=self.partition.field,
            detector=self.partition.detector, flux=catalog["flux"][keep],
        )  # fmt: skip
        mask = np.where(stack.bad, DO_NOT_USE, 0) | np.where(saturated, SATURATED, 0)
        meta = partition_meta(
            ReferenceFrame, self.partition,
            program=int(parameters.get("program", 1)),
            sequence=str(parameters.get("sequence", "e01")),
            start=min(e.start for e in stacked), end=max(e.end for e in stacked),
            exposure_time_s=float(sum(e.exposure_time_s for e in stacked)),
            s_region=region, optical_element=anchor.optical_element,
        )  # fmt: skip
        return ReferenceFrame(
            meta=MsosPartitionMeta(**meta),
            image_unit="DN / s",
            ujy_per_image_unit=ujy,
            n_epochs_stacked=len(stacked),
            data=np.nan_to_num(image, nan=0.0),
            err=np.sqrt(np.nan_to_num(variance, nan=0.0, posinf=0.0)).astype("float32"),
            mask=mask.astype("uint32"),
            coverage=stack.coverage.astype("uint16"),
            wcs_fits=fits_wcs(anchor),
            psf=to_gridded_psf(epsf),
            objects=ReferenceObjects(
                object_id=ids,
                x_pix=catalog["x"][keep],
                y_pix=catalog["y"][keep],
                ra_deg=ra,
                dec_deg=dec,
                flux_ujy=(catalog["flux"][keep] * ujy).astype("float32"),
                flux_err_ujy=(catalog["flux_err"][keep] * ujy).astype("float32"),
                psf_qfit=catalog["qfit"][keep].astype("float32"),
                flags=catalog["flags"][keep].astype("uint32"),
            ),
        )


def _grid_shape(nodes: int | None) -> tuple[int, int] | None:
    """``psf_grid`` (nodes per side of the ePSF grid), or None for the size-based default."""
    return None if nodes is None else (int(nodes), int(nodes))
