"""The event search: a KMTNet-EventFinder-style grid search of one light curve.

Kim et al. (2018, AJ 155, 76): a point-lens light curve near its peak is, to a good
approximation, ``F(t) = f_0 + f_1 · A_j(Q)`` with ``Q = 1 + ((t − t_0) / t_eff)²`` and two
shapes, ``A_1 = Q^(−1/2)`` (high magnification) and ``A_2 = (1 − (1 + Q/2)^(−2))^(−1/2)``
(low magnification). Over a grid of ``(t_0, t_eff)`` the two fluxes are a weighted linear fit
to the data within ``window × t_eff`` of ``t_0``; the detection statistic is how much better
that fits than a constant, ``Δχ² = χ²_flat − χ²_model`` over the same data, with ``f_1 > 0``
(a brightening). ``t_eff`` steps geometrically, ``t_0`` by a fraction of ``t_eff``, so the
grid is as fine as each time scale needs and the work per light curve is ∝ its epochs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np


@dataclass(frozen=True)
class SearchGrid:
    """The (t_0, t_eff) grid: ``t_eff`` from ``t_eff_min`` to ``t_eff_max`` days by factors of
    ``t_eff_factor``, ``t_0`` by ``t_0_step`` × t_eff, fits over ± ``window`` × t_eff."""

    t_eff_min: float = 0.1
    t_eff_max: float = 100.0
    t_eff_factor: float = 4 / 3
    t_0_step: float = 1 / 3
    window: float = 5.0
    min_points: int = 10  # in a window, for a fit to count

    def t_effs(self) -> np.ndarray:
        """The grid's effective time scales (days)."""
        n = int(np.floor(np.log(self.t_eff_max / self.t_eff_min) / np.log(self.t_eff_factor)))
        return self.t_eff_min * self.t_eff_factor ** np.arange(n + 1)


@dataclass(frozen=True)
class Detection:
    """The best grid point of a light curve (``delta_chi2`` 0 and NaN times: none found)."""

    delta_chi2: float
    t_0: float
    t_eff: float
    shape: int  # 1: high-magnification form, 2: low-magnification form
    f_0: float
    f_1: float
    n_points: int  # epochs within the best window


def search(
    time: np.ndarray, flux: np.ndarray, flux_err: np.ndarray, grid: SearchGrid | None = None
) -> Detection:
    """The best ``(t_0, t_eff, shape)`` of one light curve; bad points (NaN, error ≤ 0) are
    left out and the times sorted first."""
    grid = grid or SearchGrid()
    t = np.asarray(time, dtype=np.float64)
    f = np.asarray(flux, dtype=np.float64)
    e = np.asarray(flux_err, dtype=np.float64)
    good = np.isfinite(t) & np.isfinite(f) & np.isfinite(e) & (e > 0)
    order = np.argsort(t[good], kind="stable")
    t, f, w = t[good][order], f[good][order], 1.0 / e[good][order] ** 2
    out = np.zeros(7)
    out[1:3] = np.nan
    if t.size >= grid.min_points:
        _search(t, f, w, grid.t_effs(), grid.t_0_step, grid.window, grid.min_points, out)
    return Detection(float(out[0]), float(out[1]), float(out[2]), int(out[3]), float(out[4]),
                     float(out[5]), int(out[6]))  # fmt: skip


@numba.njit(cache=True)
def _shape(q: float, kind: int) -> float:
    if kind == 1:
        return 1.0 / np.sqrt(q)
    x = 1.0 + 0.5 * q
    return 1.0 / np.sqrt(1.0 - 1.0 / (x * x))


@numba.njit(cache=True)
def _search(
    t: np.ndarray, f: np.ndarray, w: np.ndarray, t_effs: np.ndarray, step: float,
    window: float, min_points: int, out: np.ndarray,
) -> None:  # fmt: skip
    n = t.size
    # prefix sums of the flat model's sums: any window's constant fit in O(1)
    sw = np.zeros(n + 1)
    swf = np.zeros(n + 1)
    swff = np.zeros(n + 1)
    for i in range(n):
        sw[i + 1] = sw[i] + w[i]
        swf[i + 1] = swf[i] + w[i] * f[i]
        swff[i + 1] = swff[i] + w[i] * f[i] * f[i]
    best = 0.0
    for t_eff in t_effs:
        half = window * t_eff
        t0 = t[0]
        lo = 0
        hi = 0
        while t0 <= t[n - 1]:
            while lo < n and t[lo] < t0 - half:
                lo += 1
            while hi < n and t[hi] <= t0 + half:
                hi += 1
            if hi - lo >= min_points:
                s0 = sw[hi] - sw[lo]
                s_f = swf[hi] - swf[lo]
                s_ff = swff[hi] - swff[lo]
                chi2_flat = s_ff - s_f * s_f / s0
                for kind in (1, 2):
                    sa = 0.0
                    saa = 0.0
                    saf = 0.0
                    for i in range(lo, hi):
                        u = (t[i] - t0) / t_eff
                        a = _shape(1.0 + u * u, kind)
                        wa = w[i] * a
                        sa += wa
                        saa += wa * a
                        saf += wa * f[i]
                    det = s0 * saa - sa * sa
                    if det <= 0.0:
                        continue
                    f1 = (s0 * saf - sa * s_f) / det
                    if f1 <= 0.0:
                        continue
                    f0 = (s_f - f1 * sa) / s0
                    # χ² of the linear fit: Σw f² − (its projection onto the two shapes)
                    chi2 = s_ff - f0 * s_f - f1 * saf
                    delta = chi2_flat - chi2
                    if delta > best:
                        best = delta
                        out[0] = delta
                        out[1] = t0
                        out[2] = t_eff
                        out[3] = kind
                        out[4] = f0
                        out[5] = f1
                        out[6] = hi - lo
            t0 += step * t_eff
