"""One epoch against its partition's reference: offset, difference image, forced photometry.

The chain every epoch goes through (``msos dia`` + ``msos photometry``, or both at once in
``msos process-partition``): measure the epoch's offset from the reference grid (WCS
prediction refined on stars), predict the reference at the epoch's phase from its
super-resolved frame (or, for a frame without one, re-render its stars there with the
ePSF), fit and apply the DIA kernel, and fit every catalog object's flux change with the
reference ePSF convolved by the local kernel. Fluxes come out in µJy, on the reference's
photometric scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.wcs import WCS

from msos.context import PartitionReference
from msos.dia.kernel import (
    DIAError,
    DifferenceImage,
    KernelSolution,
    Stamps,
    apply_kernel,
    kernel_at,
    solve_kernel,
)
from msos.dia.phase import phase_matched_reference, superres_reference
from msos.errors import EpochRejected
from msos.inputs import Epoch
from msos.photometry.kernel import forced_psf_photometry
from msos.psf.model import EPSFGrid
from msos.reference.kernel import Offset, centroids, detect_stars, fit_offset
from roman_schemas.products.msos.flags import EpochFlag, PhotometryFlag

MAX_KERNEL_CHI2 = 3.0  # a kernel fit worse than this marks the epoch POOR_KERNEL
MAX_OFFSET_RMS_PIX = 0.1  # star residuals worse than this mark it POOR_ALIGNMENT
MIN_MATCHED_STARS = 10


@dataclass
class EpochResult:
    """What one epoch yields: its offset, difference image, kernel and photometry."""

    shift: tuple[float, float]  # (dx, dy): epoch grid minus reference grid
    offset: Offset
    difference: DifferenceImage
    solution: KernelSolution
    flux_ujy: np.ndarray
    flux_err_ujy: np.ndarray
    flags: np.ndarray
    epoch_flags: int
    psf_fwhm_pix: float
    background_mjy_sr: float


def predicted_shift(wcs_fits: dict, epoch: Epoch) -> tuple[float, float]:
    """(dx, dy) of the epoch's grid from the reference's, predicted by the two WCSs."""
    wcs = WCS(wcs_fits)
    ny, nx = epoch.shape
    # interior points: gwcs answers NaN outside its bounding box
    gx, gy = np.meshgrid(np.linspace(0.1, 0.9, 5) * (nx - 1), np.linspace(0.1, 0.9, 5) * (ny - 1))
    ra, dec = wcs.all_pix2world(gx.ravel(), gy.ravel(), 0)
    ex, ey = epoch.pixel_of(ra, dec)
    dx, dy = np.nanmedian(ex - gx.ravel()), np.nanmedian(ey - gy.ravel())
    if not (np.isfinite(dx) and np.isfinite(dy)):
        raise EpochRejected(epoch.uri, "its WCS does not overlap the reference frame's")
    return float(dx), float(dy)


def measure_shift(reference: PartitionReference, epoch: Epoch) -> Offset:
    """The epoch's offset: the WCS prediction refined on the reference's bright stars, whose
    centroids are fitted where the prediction puts them (a fresh star search of the epoch
    only when that fails, e.g. a WCS off by more than a pixel)."""
    guess = predicted_shift(reference.frame.wcs_fits, epoch)
    ref_xy = reference.bright_stars()
    sky = float(np.nanmedian(epoch.data))
    ex, ey, _, _, ok = centroids(
        epoch.data, ref_xy[:, 0] + guess[0], ref_xy[:, 1] + guess[1], bad=epoch.bad,
        background=sky,
    )  # fmt: skip
    ok &= np.hypot(ex - ref_xy[:, 0] - guess[0], ey - ref_xy[:, 1] - guess[1]) < 1.0
    # fit_offset's convention is anchor = epoch + d, so its d is minus our shift
    offset = fit_offset(ref_xy[ok], np.column_stack([ex, ey])[ok], guess=(-guess[0], -guess[1]),
                        search_radius=1.0)  # fmt: skip
    if offset.n_matched >= MIN_MATCHED_STARS:
        return offset
    stars = detect_stars(epoch.data, epoch.bad, epoch.variance, max_stars=3000)
    return fit_offset(ref_xy, stars.xy[stars.ok], guess=(-guess[0], -guess[1]))


def fwhm(stamp: np.ndarray, oversampling: int) -> float:
    """FWHM in pixels of a stamp from its second moments (Gaussian-equivalent)."""
    weights = np.clip(stamp, 0, None)
    sy, sx = stamp.shape
    yy, xx = np.mgrid[0:sy, 0:sx]
    total = weights.sum()
    if total <= 0:
        return float("nan")
    cy, cx = (weights * yy).sum() / total, (weights * xx).sum() / total
    variance = (weights * ((yy - cy) ** 2 + (xx - cx) ** 2)).sum() / total / 2
    return float(2.3548 * np.sqrt(variance) / oversampling)


def difference_epoch(
    reference: PartitionReference, epoch: Epoch
) -> tuple[tuple[float, float], Offset, DifferenceImage, KernelSolution]:
    """(shift, offset, difference image, kernel) of one epoch; EpochRejected when it cannot
    be differenced at all."""
    offset = measure_shift(reference, epoch)
    if offset.n_matched < 3:
        raise EpochRejected(epoch.uri, f"only {offset.n_matched} stars match the reference")
    shift = (-offset.dx, -offset.dy)
    superres = reference.superres()
    if superres is not None:
        image_r, variance_r, bad_r = superres_reference(
            superres, reference.variance, reference.bad, shift, reference.frame.superres.half_taps
        )
    else:
        image_r, variance_r, bad_r = phase_matched_reference(
            reference.image, reference.variance, reference.bad,
            reference.scene(), shift, reference.remainder(),
        )  # fmt: skip
    stamps = reference.stamps()
    moved = Stamps(stamps.x + round(shift[0]), stamps.y + round(shift[1]), stamps.size)
    try:
        solution = solve_kernel(
            image_r, epoch.data, epoch.variance, moved, reference_bad=bad_r,
            epoch_bad=epoch.bad, reference_variance=variance_r,
        )  # fmt: skip
        difference = apply_kernel(
            solution, image_r, epoch.data, epoch.variance, reference_bad=bad_r,
            epoch_bad=epoch.bad, reference_variance=variance_r,
        )  # fmt: skip
    except DIAError as exc:
        raise EpochRejected(epoch.uri, f"cannot be differenced ({exc})") from None
    return shift, offset, difference, solution


def difference_psf(
    reference: PartitionReference, solution: KernelSolution, shift: tuple[float, float]
) -> EPSFGrid:
    """The ePSF of the difference image: the reference's convolved by the local kernel, on a
    grid in the epoch's pixels (fluxes fitted with it come out in the reference's unit)."""
    epsf = reference.epsf
    gx, gy = np.meshgrid(epsf.grid_x + shift[0], epsf.grid_y + shift[1])
    local = epsf.convolved(kernel_at(solution, gx, gy))
    sy, sx = local.stamp_shape
    return EPSFGrid(local.stamps.reshape(-1, sy, sx), gx.ravel(), gy.ravel(), epsf.oversampling)


def photometer(
    reference: PartitionReference,
    difference: DifferenceImage,
    solution: KernelSolution,
    shift: tuple[float, float],
    saturated: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, EPSFGrid]:
    """Forced PSF photometry of every catalog object on a difference image:
    (flux change, its error — both in the reference's image unit — flags, the PSF used)."""
    local = difference_psf(reference, solution, shift)
    x, y = reference.xy
    flux, flux_err, flags = forced_psf_photometry(
        difference.data, difference.variance, difference.bad, x + shift[0], y + shift[1],
        local, saturated=saturated,
    )  # fmt: skip
    return flux, flux_err, flags, local


def epoch_flags(solution: KernelSolution, offset: Offset | None) -> int:
    """EpochFlag bits of an epoch from its kernel fit and its alignment."""
    flags = EpochFlag.NONE
    if solution.chi2_per_dof > MAX_KERNEL_CHI2:
        flags |= EpochFlag.POOR_KERNEL
    if offset is not None and (
        offset.n_matched < MIN_MATCHED_STARS or offset.rms > MAX_OFFSET_RMS_PIX
    ):
        flags |= EpochFlag.POOR_ALIGNMENT
    return int(flags)


def process_epoch(reference: PartitionReference, epoch: Epoch) -> EpochResult:
    """Offset, difference and forced photometry of one epoch (raises EpochRejected when the
    epoch cannot be differenced at all)."""
    shift, offset, difference, solution = difference_epoch(reference, epoch)
    flux, flux_err, flags, local = photometer(
        reference, difference, solution, shift, saturated=epoch.saturated
    )
    bits = epoch_flags(solution, offset)
    if bits:
        flags = flags | np.uint16(PhotometryFlag.EPOCH_REJECTED)
    centre = local.stamp_at((epoch.shape[1] - 1) / 2, (epoch.shape[0] - 1) / 2)
    ujy = epoch.ujy_per_dn_s
    return EpochResult(
        shift=shift,
        offset=offset,
        difference=difference,
        solution=solution,
        flux_ujy=(flux * ujy).astype("float32"),
        flux_err_ujy=(flux_err * ujy).astype("float32"),
        flags=flags.astype("uint16"),
        epoch_flags=bits,
        psf_fwhm_pix=fwhm(centre, local.oversampling),
        background_mjy_sr=float(np.nanmedian(epoch.data) * epoch.mjy_sr_per_dn_s),
    )
