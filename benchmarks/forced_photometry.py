"""Forced PSF photometry at fixed positions: msos (numba) against photutils' PSFPhotometry.

Renders a 4088×4088 image of 1e6 stars (random positions, so crowded as the bulge is) with a
pixel-integrated Gaussian ePSF of FWHM 1.3 pix sampled 4×, adds Gaussian noise of known
variance (sky + the stars' own), then fits the flux at every star's fixed position:

- msos: ``forced_psf_photometry`` with 5×5 footprints, one core (numba already compiled),
  once with a constant ePSF and once through a 3×3 grid of (identical) stamps, which costs
  the bilinear blending of four stamps per star that a spatially varying PSF needs;
- photutils: ``PSFPhotometry`` with an ``ImagePSF`` of the same stamp, ``x_0``/``y_0``
  fixed, the same 5×5 fit shape and ``error``, no grouping, on a subset of stars (it is
  slow), started from the true fluxes (its most favourable case).

Prints both throughputs (measurements per second per core), their ratio, and how well the
two agree on the fluxes of isolated stars (no neighbour within 6 pix), where both fit the
same model to the same pixels and should differ by far less than the errors.

    ./dev run python benchmarks/forced_photometry.py [--stars 1000000] [--photutils-stars 1000]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
from astropy.table import Table
from photutils.psf import ImagePSF, PSFPhotometry
from scipy.spatial import cKDTree

from msos.photometry.kernel import forced_psf_photometry
from msos.psf.model import EPSFGrid, gaussian_epsf, render_stars

OVERSAMPLING = 4
FWHM_PIX = 1.3
SKY_VARIANCE = 25.0


def build(size: int, n_stars: int, seed: int) -> tuple:
    rng = np.random.default_rng(seed)
    stamp = gaussian_epsf(FWHM_PIX, OVERSAMPLING)
    epsf = EPSFGrid(stamp, oversampling=OVERSAMPLING)
    x = rng.uniform(-0.5, size - 0.5, n_stars)
    y = rng.uniform(-0.5, size - 0.5, n_stars)
    flux = rng.lognormal(np.log(300.0), 1.5, n_stars)
    model = render_stars((size, size), x, y, flux, epsf)
    variance = (SKY_VARIANCE + 0.5 * model).astype(np.float32)
    image = model + rng.standard_normal(model.shape, dtype=np.float32) * np.sqrt(variance)
    return stamp, epsf, image, variance, x, y, flux


def time_msos(image, variance, x, y, epsf, radius, repeat) -> tuple[float, tuple]:
    forced_psf_photometry(image, variance, None, x[:10], y[:10], epsf, radius)  # compile
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = forced_psf_photometry(image, variance, None, x, y, epsf, radius)
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def time_photutils(image, variance, x, y, flux, stamp, radius) -> tuple[float, np.ndarray, ...]:
    model = ImagePSF(stamp.astype(np.float64), oversampling=OVERSAMPLING)
    model.x_0.fixed = True
    model.y_0.fixed = True
    photometry = PSFPhotometry(model, 2 * radius + 1)
    init = Table({"x": x, "y": y, "flux": flux})
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its notes on stars near the edge
        result = photometry(image, error=np.sqrt(variance), init_params=init)
    elapsed = time.perf_counter() - start
    return elapsed, np.asarray(result["flux_fit"], dtype=np.float64), np.asarray(result["flags"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4088)
    parser.add_argument("--stars", type=int, default=1_000_000)
    parser.add_argument("--photutils-stars", type=int, default=1000)
    parser.add_argument("--radius", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    stamp, epsf, image, variance, x, y, flux = build(args.size, args.stars, args.seed)
    grid_x = np.repeat([[args.size / 6, args.size / 2, 5 * args.size / 6]], 3, axis=0)
    grid = EPSFGrid(np.repeat(stamp[None], 9, axis=0), grid_x.ravel(), grid_x.T.ravel(), 4)

    ours, (fit, err, flags) = time_msos(image, variance, x, y, epsf, args.radius, args.repeat)
    ours_grid, (fit_grid, _, _) = time_msos(image, variance, x, y, grid, args.radius, args.repeat)

    distance, _ = cKDTree(np.column_stack([x, y])).query(np.column_stack([x, y]), k=2)
    margin = args.radius + 1
    isolated = np.flatnonzero(
        (distance[:, 1] > 6)
        & (x > margin)
        & (y > margin)
        & (x < args.size - 1 - margin)
        & (y < args.size - 1 - margin)
    )
    subset = np.random.default_rng(args.seed + 1).choice(
        isolated, min(args.photutils_stars, isolated.size), replace=False
    )
    theirs, their_fit, their_flags = time_photutils(
        image, variance, x[subset], y[subset], flux[subset], stamp, args.radius
    )

    rate_ours = args.stars / ours
    rate_grid = args.stars / ours_grid
    rate_theirs = subset.size / theirs
    size = 2 * args.radius + 1
    print(
        f"image {args.size}×{args.size}, {args.stars} positions, {size}×{size} footprints, "
        f"ePSF FWHM {FWHM_PIX} pix sampled {OVERSAMPLING}×, one core"
    )
    print(
        f"msos constant ePSF     : {ours:7.3f} s  {rate_ours:12,.0f} measurements/s "
        f"({np.mean(flags != 0):.2%} flagged)"
    )
    print(f"msos 3×3 ePSF grid     : {ours_grid:7.3f} s  {rate_grid:12,.0f} measurements/s")
    print(
        f"photutils PSFPhotometry: {theirs:7.3f} s  {rate_theirs:12,.0f} measurements/s "
        f"({subset.size} isolated stars)"
    )
    print(
        f"ratio msos / photutils : {rate_ours / rate_theirs:,.0f}× (grid: "
        f"{rate_grid / rate_theirs:,.0f}×)"
    )
    same = np.max(np.abs(fit_grid - fit) / err)
    # photutils cannot return a flux <= 0 (it flags it, bit 4): compare where it did not
    good = their_flags == 0
    difference = (their_fit - fit[subset]) / err[subset]
    difference, ratio = difference[good], their_fit[good] / fit[subset][good]
    pull = (fit[isolated] - flux[isolated]) / err[isolated]
    print(f"constant vs grid of identical stamps: max |Δflux| / σ = {same:.1e}")
    print(
        f"photutils − msos on {good.sum()} isolated stars: median |Δflux| / σ = "
        f"{np.median(np.abs(difference)):.1e}, max {np.max(np.abs(difference)):.1e}; "
        f"median |Δflux| / flux = {np.median(np.abs(ratio - 1)):.1e}"
    )
    negative = np.sum((their_flags & 4) != 0)
    print(
        f"  ({negative} more where msos fits a flux <= 0, as noise makes faint stars do, and "
        f"photutils returns 0 with its 'non-positive flux' flag; "
        f"{np.sum(fit[subset] <= 0)} msos fluxes <= 0 in the subset)"
    )
    print(
        f"msos pulls on {isolated.size} isolated stars: median {np.median(pull):+.3f}, "
        f"std {np.std(pull):.3f}"
    )


if __name__ == "__main__":
    main()
