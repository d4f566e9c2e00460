"""Variability: statistics of 10⁶ light curves × 1,000 epochs and the period search of variables.

The statistics kernel (``msos.variability.kernel``, one compiled pass and one sort per
object) runs over one block of noise light curves (5 % NaN, 2 % flagged epochs) fed again and
again up to ``--objects``, so only the kernel is timed. The usual tool, side by side: the same
statistics vectorised over objects with numpy and scipy on NaN-masked arrays (``nanmean``,
``nanstd``, ``nanmedian``, ``nanpercentile``, ``scipy.stats.skew(nan_policy="omit")``…),
timed on one block and scaled per object. The period search (``msos.variability.period``:
one-term Lomb–Scargle, then the multi-harmonic model chosen by BIC) runs on simulated season
light curves (5,952 epochs) of sinusoids and eclipsing binaries, against astropy's
multi-term ``LombScargle(nterms=4)`` over the same grid, object by object.

    ./dev run python benchmarks/variability.py [--objects 1000000] [--epochs 1000]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from astropy.timeseries import LombScargle  # noqa: E402
from scipy import stats as scipy_stats  # noqa: E402

from msos.simulate.variability import periodic_factor  # noqa: E402
from msos.variability.kernel import variability_statistics  # noqa: E402
from msos.variability.period import frequency_grid, search_period  # noqa: E402

CADENCE_D = 15 / 1440


def numpy_statistics(flux: np.ndarray, err: np.ndarray) -> dict[str, np.ndarray]:
    """The same statistics vectorised over objects (bad epochs already NaN)."""
    good = np.isfinite(flux)
    n = good.sum(axis=1)
    w = np.where(good, 1 / err.astype(float) ** 2, 0.0)
    f = np.where(good, flux, 0.0).astype(float)
    mean_w = (w * f).sum(axis=1) / w.sum(axis=1)
    median = np.nanmedian(flux, axis=1)
    chi2 = (w * (f - mean_w[:, None]) ** 2).sum(axis=1) / (n - 1)
    low, high = np.nanpercentile(flux, [5, 95], axis=1)
    compact = [row[np.isfinite(row)] for row in flux]  # η and J need neighbours among good
    eta = np.array([np.sum(np.diff(r) ** 2) / np.sum((r - r.mean()) ** 2) for r in compact])
    return {
        "mean": np.nanmean(flux, axis=1), "std": np.nanstd(flux, axis=1, ddof=1),
        "mad": np.nanmedian(np.abs(flux - median[:, None]), axis=1), "chi2_dof": chi2,
        "eta": eta, "skewness": scipy_stats.skew(flux, axis=1, nan_policy="omit").data,
        "amplitude": high - low,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--block", type=int, default=20_000)
    parser.add_argument("--periodic", type=int, default=20, help="light curves searched")
    parser.add_argument("--astropy", type=int, default=4, help="of those, also with astropy")
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    block = min(args.block, args.objects)
    err = rng.uniform(1.0, 3.0, (block, 1)).astype("float32") * np.ones((1, args.epochs), "f4")
    flux = (100 + rng.normal(size=err.shape) * err).astype("float32")
    flux[rng.random(flux.shape) < 0.05] = np.nan
    flags = (rng.random(flux.shape) < 0.02).astype("uint16")

    variability_statistics(flux[:10], err[:10], flags[:10])  # compile outside the timing
    start = time.perf_counter()
    done = 0
    while done < args.objects:
        rows = min(block, args.objects - done)
        stats = variability_statistics(flux[:rows], err[:rows], flags[:rows])
        done += rows
    ours = time.perf_counter() - start
    rate = done * args.epochs / ours
    print(f"statistics: {done} light curves × {args.epochs} epochs in {ours:.1f} s on one "
          f"core ({rate / 1e6:.1f} M epochs/s, {ours / done * 1e6:.0f} µs per curve)")  # fmt: skip

    masked = np.where(flags == 0, flux, np.nan).astype(np.float64)
    start = time.perf_counter()
    theirs = numpy_statistics(masked, err)
    numpy_time = (time.perf_counter() - start) / block * done
    worst = max(  # relative, or absolute below 1e-3 (skewness of noise is near 0)
        float(np.nanmax(np.abs(theirs[name] - getattr(stats, name)[:block])
                        / np.maximum(np.abs(theirs[name]), 1e-3)))
        for name in theirs
    )  # fmt: skip
    print(f"numpy + scipy, vectorised over objects: {numpy_time:.0f} s for the same (scaled "
          f"from {block} objects); ratio {numpy_time / ours:.1f}×; largest relative "
          f"difference {worst:.1e}")  # fmt: skip

    t = 61400 + np.arange(5952) * CADENCE_D
    grid = frequency_grid(t[-1] - t[0])
    curves = []
    for k in range(args.periodic):
        period = float(np.exp(rng.uniform(np.log(0.1), np.log(10))))
        shape = "eclipsing" if k % 3 == 0 else "sine"
        model = 200 * periodic_factor(t, shape, period, t[0], 0.1, 0.05, 0.05)
        curves.append((period, shape, model + rng.normal(0, 2, t.size)))
    e = np.full(t.size, 2.0)
    search_period(t, curves[0][2], e, grid)  # compile
    start = time.perf_counter()
    fits = [search_period(t, y, e, grid) for _, _, y in curves]
    ours = (time.perf_counter() - start) / len(curves)
    right = sum(
        fit is not None and abs(fit.period_d - p) < 5 * fit.period_err_d
        for fit, (p, _, _) in zip(fits, curves, strict=True)
    )
    print(f"period search: {len(curves)} light curves × {t.size} epochs, {grid.size} "
          f"frequencies: {ours * 1e3:.0f} ms each; {right} within 5σ of the truth")  # fmt: skip
    m = min(args.astropy, len(curves))
    start = time.perf_counter()
    agree = 0
    for period, _, y in curves[:m]:
        power = LombScargle(t, y, e, nterms=4).power(grid, method="fastchi2")
        best = 1 / grid[np.argmax(power)]
        agree += abs(best - period) / period < 0.01
    theirs = (time.perf_counter() - start) / m
    print(f"astropy LombScargle(nterms=4, fastchi2), object by object: {theirs * 1e3:.0f} ms "
          f"each; ratio {theirs / ours:.1f}×; its grid peak within 1 % of the truth for "
          f"{agree}/{m}")  # fmt: skip


if __name__ == "__main__":
    main()
