"""Forced PSF photometry at fixed positions: one independent linear flux fit per position.

At each position the model of the ``(2 radius + 1)²`` pixels centred on the pixel nearest
the star is ``F * P + B`` (``B`` only with ``fit_background``), ``P`` the local ePSF at the
star's sub-pixel position (:class:`msos.psf.model.EPSFGrid`), fitted by inverse-variance
weighted least squares — the optimal (PSF-weighted) estimator. ``flux_err`` is the fit's
formal error from the given variance, so pulls are N(0, 1) when the variance is right and
does not depend on the noise realisation (use a model variance — sky, read noise, the
reference image's sources — not one computed from the noisy pixels, or bright stars are
biased low).

Footprint and flux scale: ``P`` is normalised over the whole stamp (the pixels of a star
sum to 1), so ``F`` is the star's total flux however small the footprint — no flux-fraction
(aperture) correction is needed or applied; pixels outside the footprint only cost S/N, in
proportion to the Fisher information ``Σ P² / var`` they would have added. Measured
(Gaussians: worst sub-pixel phase, Airy: mean over phases; information for a flat
background):

======================================  =================  =================  =============
ePSF                                    3×3 flux / info    5×5 flux / info    7×7 flux / info
======================================  =================  =================  =============
Gaussian FWHM 1.2 pix                   95.1 % / 99.7 %    99.99 % / 100 %    100 % / 100 %
Gaussian FWHM 1.4 pix                   90.9 % / 99.0 %    99.92 % / 100 %    100 % / 100 %
Airy, λ/D = 1.16 pix, 30 % obscured     73 % / 98.4 %      88.8 % / 99.93 %   91 % / 99.98 %
======================================  =================  =================  =============

Hence ``radius=2`` (5×5) by default: > 99.9 % of the information at ~1e6 fits per second
per core, where 7×7 halves the speed for < 0.1 % more S/N. A fitted background term costs
~8 % in flux error with 5×5 pixels (~4 % with 7×7). The "total" flux is the stamp's sum: a
stamp cut from a wider PSF and normalised to ``oversampling**2`` defines the photometric
scale, and any aperture correction for the wings beyond the stamp belongs to the PSF.

Flags (``roman_schemas.products.msos.PhotometryFlag``):

- ``EDGE``: the footprint runs off the image; the fit uses what remains.
- ``BAD_PIXEL`` / ``SATURATED``: pixels excluded because ``bad`` / ``saturated`` (or a
  non-finite value, or a non-finite or non-positive variance, counted as bad) would have
  received at least ``core_fraction`` of the star's flux — they hit the PSF core. Excluded
  pixels with less (the wings) are not flagged: the fit stays unbiased, only noisier.
- ``NO_DATA``: flux and error are NaN — the usable pixels would receive less than
  ``min_psf_fraction`` of the star's flux, or the fit is singular, or the position is
  not finite.

Nothing raises on bad data (NaN, inf, zero variance, positions far off the image); only
inconsistent arguments (shapes) raise ``ValueError``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from msos.psf.model import EPSFGrid, _footprint_epsf, _row_order
from roman_schemas.products.msos.flags import PhotometryFlag

__all__ = ["forced_psf_photometry"]

_BAD_PIXEL = np.uint16(PhotometryFlag.BAD_PIXEL)
_SATURATED = np.uint16(PhotometryFlag.SATURATED)
_EDGE = np.uint16(PhotometryFlag.EDGE)
_NO_DATA = np.uint16(PhotometryFlag.NO_DATA)


def forced_psf_photometry(
    image: np.ndarray,
    variance: np.ndarray,
    bad: np.ndarray | None,
    x: np.ndarray,
    y: np.ndarray,
    epsf_grid: EPSFGrid,
    radius: int = 2,
    *,
    fit_background: bool = False,
    saturated: np.ndarray | None = None,
    core_fraction: float = 0.05,
    min_psf_fraction: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PSF fluxes at fixed positions ``(x, y)`` (0-based, x = column) of ``image``.

    Parameters
    ----------
    image, variance
        ``[y, x]`` image (float32; other dtypes are converted) and its per-pixel variance.
    bad
        Boolean mask of pixels to exclude (dq bits, saturation, …), or ``None``.
    x, y
        Positions, any number; one independent fit each (neighbours are not modelled).
    epsf_grid
        The ePSF of the image (for a difference image: the convolved ePSF).
    radius
        Footprint: the ``(2 radius + 1)²`` pixels centred on the pixel nearest the star.
    fit_background
        Fit a constant local background with the flux (the flux error grows by ~8 % with
        5×5 pixels at FWHM 1.2–1.4 pix, ~4 % with 7×7).
    saturated
        Optional boolean mask, excluded like ``bad`` but flagged ``SATURATED``.
    core_fraction
        Excluded pixels receiving at least this fraction of the star's flux (together)
        flag ``BAD_PIXEL`` / ``SATURATED``.
    min_psf_fraction
        Fewer usable pixels than this fraction of the star's flux: NaN and ``NO_DATA``.

    Returns
    -------
    ``(flux, flux_err, flags)``: float32, float32 and uint16 arrays, one value per position.
    """
    image = np.ascontiguousarray(image, dtype=np.float32)
    variance = np.ascontiguousarray(variance, dtype=np.float32)
    if image.ndim != 2 or variance.shape != image.shape:
        raise ValueError(f"image {image.shape} and variance {variance.shape} must be equal 2-D")
    if bad is None:
        bad = np.zeros((0, 0), dtype=np.bool_)
    else:
        bad = np.ascontiguousarray(bad, dtype=np.bool_)
        if bad.shape != image.shape:
            raise ValueError(f"bad {bad.shape} does not match image {image.shape}")
    if saturated is None:
        saturated = np.zeros((0, 0), dtype=np.bool_)
    else:
        saturated = np.ascontiguousarray(saturated, dtype=np.bool_)
        if saturated.shape != image.shape:
            raise ValueError(f"saturated {saturated.shape} does not match image {image.shape}")
    x = np.ascontiguousarray(x, dtype=np.float64).ravel()
    y = np.ascontiguousarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x ({x.size}) and y ({y.size}) differ in length")
    if int(radius) != radius or radius < 0:
        raise ValueError(f"radius must be a non-negative integer, not {radius}")
    radius = int(radius)
    coef, cy, cx = epsf_grid.coefficients(radius)
    flux = np.empty(x.size, dtype=np.float32)
    flux_err = np.empty(x.size, dtype=np.float32)
    flags = np.zeros(x.size, dtype=np.uint16)
    _forced_photometry(
        image,
        variance,
        bad,
        saturated,
        x,
        y,
        coef,
        epsf_grid.grid_x,
        epsf_grid.grid_y,
        epsf_grid.oversampling,
        cy,
        cx,
        radius,
        bool(fit_background),
        float(core_fraction),
        float(min_psf_fraction),
        flux,
        flux_err,
        flags,
    )
    return flux, flux_err, flags


@numba.njit(cache=True)
def _forced_photometry(
    image: np.ndarray,
    variance: np.ndarray,
    bad: np.ndarray,
    saturated: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    coef: np.ndarray,
    grid_x: np.ndarray,
    grid_y: np.ndarray,
    o: int,
    cy: float,
    cx: float,
    radius: int,
    fit_background: bool,
    core_fraction: float,
    min_psf_fraction: float,
    flux: np.ndarray,
    flux_err: np.ndarray,
    flags: np.ndarray,
) -> None:
    ny, nx = image.shape
    has_bad = bad.shape[0] == ny and bad.shape[1] == nx
    has_sat = saturated.shape[0] == ny and saturated.shape[1] == nx
    size = 2 * radius + 1
    psf = np.empty((size, size), dtype=np.float64)
    nan = np.float32(np.nan)
    order = _row_order(y, ny)
    for q in range(x.size):
        s = order[q]
        x0 = x[s]
        y0 = y[s]
        flux[s] = nan
        flux_err[s] = nan
        if not (math.isfinite(x0) and math.isfinite(y0)):
            flags[s] = _NO_DATA
            continue
        # nearest pixel, clamped so far-off positions stay in integer range (all off-image)
        ix = math.floor(min(max(x0, -2.0 * size), nx + 2.0 * size) + 0.5)
        iy = math.floor(min(max(y0, -2.0 * size), ny + 2.0 * size) + 0.5)
        flag = np.uint16(0)
        if ix - radius < 0 or iy - radius < 0 or ix + radius >= nx or iy + radius >= ny:
            flag |= _EDGE
            if ix + radius < 0 or iy + radius < 0 or ix - radius >= nx or iy - radius >= ny:
                flags[s] = flag | _NO_DATA
                continue
        _footprint_epsf(coef, grid_x, grid_y, o, cy, cx, x0, y0, ix, iy, radius, psf)
        spp = 0.0  # Σ w P²
        spd = 0.0  # Σ w P d
        sp = 0.0  # Σ w P
        sd = 0.0  # Σ w d
        s1 = 0.0  # Σ w
        used = 0.0  # Σ P over usable pixels
        lost_bad = 0.0
        lost_sat = 0.0
        n_used = 0
        j_lo = max(iy - radius, 0)
        j_hi = min(iy + radius, ny - 1)
        i_lo = max(ix - radius, 0)
        i_hi = min(ix + radius, nx - 1)
        for j in range(j_lo, j_hi + 1):
            jj = j - iy + radius
            for i in range(i_lo, i_hi + 1):
                p = psf[jj, i - ix + radius]
                d = image[j, i]
                var = variance[j, i]
                if has_sat and saturated[j, i]:
                    lost_sat += p
                    continue
                if (has_bad and bad[j, i]) or not (math.isfinite(d) and var > 0.0 and var < np.inf):
                    lost_bad += p
                    continue
                w = 1.0 / var
                wp = w * p
                spp += wp * p
                spd += wp * d
                used += p
                n_used += 1
                if fit_background:
                    sp += wp
                    sd += w * d
                    s1 += w
        if lost_bad >= core_fraction:
            flag |= _BAD_PIXEL
        if lost_sat >= core_fraction:
            flag |= _SATURATED
        if used < min_psf_fraction or not spp > 0.0:
            flags[s] = flag | _NO_DATA
            continue
        if fit_background:
            det = spp * s1 - sp * sp
            if n_used < 3 or not det > 1e-9 * spp * s1:
                flags[s] = flag | _NO_DATA
                continue
            flux[s] = (spd * s1 - sp * sd) / det
            flux_err[s] = math.sqrt(s1 / det)
        else:
            flux[s] = spd / spp
            flux_err[s] = 1.0 / math.sqrt(spp)
        flags[s] = flag
