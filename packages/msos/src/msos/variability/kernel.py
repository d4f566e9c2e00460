"""Variability statistics of objects × epochs light curves, and the selection of variables.

One compiled pass per object over its good epochs (finite flux, error in (0, ∞), flag 0), in
the time order of the epochs:

* ``mean``, ``std`` (ddof 1), ``mad`` (median absolute deviation about the median, unscaled),
  ``skewness`` (the population moment ratio m₃ / m₂^1.5, scipy.stats.skew's default) and
  ``amplitude`` (95th minus 5th percentile, numpy's linear interpolation);
* ``chi2_dof``: Σ w (f − f̄_w)² / (n − 1) about the inverse-variance weighted mean f̄_w;
* ``eta``: the von Neumann ratio Σ (f_{i+1} − f_i)² / Σ (f_i − f̄)², 2 for white noise,
  small when consecutive epochs agree (a smooth variation);
* Stetson (1996) J and K in the single-band form that pairs each epoch with the next one:
  δ_i = √(n / (n − 1)) (f_i − f̄_w) / σ_i, P_i = δ_i δ_{i+1},
  J = Σ sgn(P_i) √|P_i| / (n − 1) (unit weights, the weighted mean rather than Stetson's
  iteratively reweighted one), K = (Σ |δ_i| / n) / √(Σ δ_i² / n). J is 0 on average for
  white noise whatever the errors, large when neighbours deviate together.

An object with fewer than :data:`MIN_EPOCHS` good epochs gets NaN statistics. The median,
MAD and percentiles come from one in-place sort per object (the MAD's deviations are merged
from the two sorted halves about the median, not sorted again).

:func:`select_variables` marks an object variable when all three cuts of
:class:`VariabilityCuts` hold: χ²/dof above ``chi2_min`` (the errors do not explain the
scatter), η more than ``eta_sigma`` white-noise standard deviations below 2 (the scatter is
correlated in time: under-estimated errors alone leave η at 2), and J above ``j_min``.
Periodic variables faster than about four epochs a cycle (≈ 1 h at Roman's 15-min cadence)
look like white noise to η and J and are not selected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

#: fewer good epochs than this: NaN statistics, never variable
MIN_EPOCHS = 3

#: columns of the compiled pass's output, in order
COLUMNS = (
    "mean", "std", "mad", "chi2_dof", "eta", "stetson_j", "stetson_k", "skewness", "amplitude",
)  # fmt: skip


@dataclass(frozen=True)
class VariabilityCuts:
    """What makes an object variable (all three must hold; NaN statistics never pass)."""

    chi2_min: float = 3.0
    eta_sigma: float = 5.0
    j_min: float = 0.1


@dataclass
class VariabilityStatistics:
    """Per-object statistics (NaN where fewer than :data:`MIN_EPOCHS` good epochs)."""

    n_epochs: np.ndarray  # int64: good epochs
    mean: np.ndarray  # float64, the flux unit (plus the offset given)
    std: np.ndarray
    mad: np.ndarray
    chi2_dof: np.ndarray
    eta: np.ndarray
    stetson_j: np.ndarray
    stetson_k: np.ndarray
    skewness: np.ndarray
    amplitude: np.ndarray

    def __len__(self) -> int:
        return int(self.n_epochs.size)


def variability_statistics(
    flux: np.ndarray,
    flux_err: np.ndarray,
    flags: np.ndarray | None = None,
    offset: np.ndarray | None = None,
) -> VariabilityStatistics:
    """Statistics of each row of ``flux`` (objects × epochs, epochs in time order); ``offset``
    (per object) is added to the mean only, e.g. the reference flux of difference light
    curves: every other statistic is unchanged by a constant."""
    flux = np.asarray(flux)
    flux_err = np.asarray(flux_err)
    if flux.ndim != 2 or flux_err.shape != flux.shape:
        raise ValueError(f"flux {flux.shape} and flux_err {flux_err.shape}: want equal 2-D")
    bad = np.zeros((1, 1), np.uint8) if flags is None else np.asarray(flags)
    if flags is not None and bad.shape != flux.shape:
        raise ValueError(f"flags {bad.shape} must match flux {flux.shape}")
    n_obj = flux.shape[0]
    out = np.empty((n_obj, len(COLUMNS)), dtype=np.float64)
    n_good = np.zeros(n_obj, dtype=np.int64)
    _statistics(flux, flux_err, bad, out, n_good)
    if offset is not None:
        out[:, 0] += np.asarray(offset, dtype=np.float64).reshape(n_obj)
    return VariabilityStatistics(n_good, *(out[:, k].copy() for k in range(len(COLUMNS))))


def eta_white_noise_sigma(n_epochs: np.ndarray) -> np.ndarray:
    """Standard deviation of η for ``n`` epochs of white noise: √(4 (n − 2) / (n² − 1))
    (von Neumann 1941; its mean is exactly 2)."""
    n = np.asarray(n_epochs, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(4.0 * (n - 2.0) / (n * n - 1.0))


def select_variables(
    stats: VariabilityStatistics, cuts: VariabilityCuts = VariabilityCuts()
) -> np.ndarray:
    """Which objects pass the variability cuts (see the module docstring)."""
    eta_max = 2.0 - cuts.eta_sigma * eta_white_noise_sigma(stats.n_epochs)
    with np.errstate(invalid="ignore"):
        return (
            (stats.n_epochs >= MIN_EPOCHS)
            & (stats.chi2_dof > cuts.chi2_min)
            & (stats.eta < eta_max)
            & (stats.stetson_j > cuts.j_min)
        )


@numba.njit(cache=True)
def _percentile(v: np.ndarray, n: int, q: float) -> float:
    """``q``-th percentile of the sorted ``v[:n]`` (numpy's linear interpolation)."""
    pos = q / 100.0 * (n - 1)
    lo = int(np.floor(pos))
    if lo >= n - 1:
        return v[n - 1]
    return v[lo] + (pos - lo) * (v[lo + 1] - v[lo])


@numba.njit(cache=True)
def _mad_sorted(v: np.ndarray, n: int, median: float) -> float:
    """Median of |v − median| for the sorted ``v[:n]``: the deviations below and above the
    median are each sorted already, so merge them up to the middle."""
    right = 0
    while right < n and v[right] < median:
        right += 1
    left = right - 1
    want = n // 2  # 0-based rank of the upper middle deviation
    previous = 0.0
    current = 0.0
    for _ in range(want + 1):
        previous = current
        if left >= 0 and (right >= n or median - v[left] <= v[right] - median):
            current = median - v[left]
            left -= 1
        else:
            current = v[right] - median
            right += 1
    if n % 2 == 1:
        return current
    return 0.5 * (previous + current)


@numba.njit(cache=True)
def _statistics(
    flux: np.ndarray, err: np.ndarray, bad: np.ndarray, out: np.ndarray, n_good: np.ndarray
) -> None:
    n_obj, n_ep = flux.shape
    flagged = bad.shape == flux.shape
    values = np.empty(n_ep, dtype=np.float64)
    sigmas = np.empty(n_ep, dtype=np.float64)
    for i in range(n_obj):
        n = 0
        for j in range(n_ep):
            f = np.float64(flux[i, j])
            e = np.float64(err[i, j])
            if (flagged and bad[i, j] != 0) or not np.isfinite(f) or not (0.0 < e < np.inf):
                continue
            values[n] = f
            sigmas[n] = e
            n += 1
        n_good[i] = n
        if n < MIN_EPOCHS:
            out[i, :] = np.nan
            continue
        total = 0.0
        weight = 0.0
        weighted = 0.0
        for k in range(n):
            w = 1.0 / (sigmas[k] * sigmas[k])
            total += values[k]
            weight += w
            weighted += w * values[k]
        mean = total / n
        mean_w = weighted / weight
        m2 = 0.0
        m3 = 0.0
        chi2 = 0.0
        successive = 0.0
        abs_delta = 0.0
        sq_delta = 0.0
        j_sum = 0.0
        scale = np.sqrt(n / (n - 1.0))
        previous_delta = 0.0
        for k in range(n):
            d = values[k] - mean
            m2 += d * d
            m3 += d * d * d
            r = (values[k] - mean_w) / sigmas[k]
            chi2 += r * r
            delta = scale * r
            abs_delta += abs(delta)
            sq_delta += delta * delta
            if k > 0:
                step = values[k] - values[k - 1]
                successive += step * step
                p = previous_delta * delta
                j_sum += np.sqrt(p) if p >= 0.0 else -np.sqrt(-p)
            previous_delta = delta
        out[i, 0] = mean
        out[i, 1] = np.sqrt(m2 / (n - 1))
        out[i, 3] = chi2 / (n - 1)
        out[i, 4] = successive / m2 if m2 > 0.0 else np.nan
        out[i, 5] = j_sum / (n - 1)
        out[i, 6] = (abs_delta / n) / np.sqrt(sq_delta / n) if sq_delta > 0.0 else np.nan
        out[i, 7] = (m3 / n) / (m2 / n) ** 1.5 if m2 > 0.0 else np.nan
        # order statistics: one sort of the good values
        values[:n].sort()
        median = values[(n - 1) // 2] if n % 2 == 1 else 0.5 * (values[n // 2 - 1] + values[n // 2])
        out[i, 2] = _mad_sorted(values, n, median)
        out[i, 8] = _percentile(values, n, 95.0) - _percentile(values, n, 5.0)
