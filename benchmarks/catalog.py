"""Crowded-field catalog: msos.catalog.kernel.measure_objects against photutils.

Simulates a crowded bulge-like field (1 star / 15 pix² down to S/N ≈ 2, power-law fluxes,
FWHM ≈ 1.2–1.45 pix ePSF varying over a 3×3 grid, sky + read noise + Poisson), then runs

- ours: ``measure_objects`` (matched-filter detection, grouped Gauss–Newton fits, residual
  passes), with the same ePSF grid;
- photutils: ``IterativePSFPhotometry`` (the usual tool) with ``ImagePSF`` of the central
  stamp, ``DAOStarFinder`` at 5σ, ``SourceGrouper`` (2 pix), 3 iterations, local background
  (MMM in a 4–7 pix annulus), 5×5 fit boxes.

and prints the time per 1000 objects, completeness above 10σ and the median / robust scatter
of the flux pulls of both, and the ratio of the times. Photutils is slow in crowded fields: keep
``--size`` small for it (``--photutils-size``).

    ./dev run python benchmarks/catalog.py [--size 1024] [--photutils-size 200]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from scipy.spatial import cKDTree

from msos.catalog.kernel import measure_objects
from msos.catalog.synthetic import crowded_field, true_snr


def simulate(size, seed=1):
    f = crowded_field(size, seed)
    return f["image"], f["variance"], f["x"], f["y"], f["flux"], f["psf"]


def score(name, seconds, mx, my, mflux, merr, x, y, f, snr, size):
    inside = (x > 4) & (x < size - 5) & (y > 4) & (y < size - 5)
    dist, j = cKDTree(np.column_stack([mx, my])).query(np.column_stack([x, y]))
    found = dist < 0.75
    above = inside & (snr >= 10)
    sel = above & found
    pull = (mflux[j[sel]] - f[sel]) / merr[j[sel]]
    rel = mflux[j[sel]] / f[sel] - 1
    pull = pull[np.isfinite(pull)]
    mad = 1.4826 * np.median(np.abs(pull - np.median(pull)))
    per_k = 1000 * seconds / max(len(mx), 1)
    print(
        f"{name:10s} {size:5d}² {len(mx):7d} objects {seconds:8.2f} s  {per_k:7.3f} s/1000  "
        f"completeness(>10σ) {found[above].mean():.3f}  pull median {np.median(pull):+.3f} "
        f"robust σ {mad:.2f}  |Δflux/flux| median {np.median(np.abs(rel)):.4f}"
    )
    return per_k


def run_ours(size):
    image, var, x, y, f, psf = simulate(size)
    measure_objects(image[:64, :64], psf, variance=var[:64, :64])  # numba compilation
    start = time.perf_counter()
    res = measure_objects(image, psf, variance=var)
    seconds = time.perf_counter() - start
    snr = true_snr(x, y, f, psf, 29.0)
    per_k = score("msos", seconds, res.x, res.y, res.flux, res.flux_err, x, y, f, snr, size)
    return per_k, res.stats


def run_photutils(size):
    from photutils.background import LocalBackground, MMMBackground
    from photutils.detection import DAOStarFinder
    from photutils.psf import ImagePSF, IterativePSFPhotometry, SourceGrouper

    image, var, x, y, f, psf = simulate(size)
    os = psf.oversampling
    central = psf.stamps[psf.grid_y.size // 2, psf.grid_x.size // 2].astype(float)
    model = ImagePSF(central, oversampling=os)
    # normalise so that the model's pixel sum is 1 (like our convention)
    yy, xx = np.mgrid[-6:7, -6:7]
    scale = model(xx + 0.0, yy + 0.0).sum()
    model = ImagePSF(central / scale, oversampling=os)
    sigma = float(np.sqrt(np.median(var)))
    finder = DAOStarFinder(
        threshold=5 * sigma, fwhm=1.3, roundness_range=(-2, 2), sharpness_range=(0.0, 1.0)
    )
    phot = IterativePSFPhotometry(
        model,
        (5, 5),
        finder,
        grouper=SourceGrouper(min_separation=2.0),
        maxiters=3,
        aperture_radius=1.5,
        local_bkg_estimator=LocalBackground(4, 7, bkg_estimator=MMMBackground()),
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = phot(image, error=np.sqrt(var))
    seconds = time.perf_counter() - start
    snr = true_snr(x, y, f, psf, 29.0)
    mx = np.asarray(table["x_fit"], float)
    my = np.asarray(table["y_fit"], float)
    mflux = np.asarray(table["flux_fit"], float)
    merr = np.asarray(table["flux_err"], float)
    ok = np.isfinite(mx) & np.isfinite(my)
    return score("photutils", seconds, mx[ok], my[ok], mflux[ok], merr[ok], x, y, f, snr, size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="image side for ours")
    parser.add_argument("--photutils-size", type=int, default=200, help="side for both, compared")
    args = parser.parse_args()
    print(f"crowded field, 1 star / 15 pix², sky 20, read var 9; sizes {args.photutils_size}, "
          f"{args.size}")  # fmt: skip
    ours_small, _ = run_ours(args.photutils_size)
    theirs = run_photutils(args.photutils_size)
    print(f"ratio photutils / msos time per object: {theirs / ours_small:.1f}×")
    per_k, stats = run_ours(args.size)
    full = 4088**2 / args.size**2
    print(
        f"msos {args.size}²: sweeps per fit {stats['sweeps']}, new per pass "
        f"{stats['new_per_pass']}; extrapolated to 4088²: "
        f"{per_k * stats['n_objects'] * full / 1000 / 60:.1f} min for "
        f"{stats['n_objects'] * full / 1e6:.2f} M objects (one core)"
    )


if __name__ == "__main__":
    main()
