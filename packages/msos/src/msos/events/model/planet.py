"""Starting points for binary-lens (planetary) fits from a single-lens fit's anomaly.

A planet shows as a short deviation from the single-lens light curve when the source passes
a caustic. Where the deviation sits fixes most of the geometry (Gould & Loeb 1992): at the
anomaly time the source is ``u_a`` from the host, so a planetary caustic must lie there,
``|s − 1/s| ≈ u_a`` (``s > 1``: the major image's caustic, on the planet's side; ``s < 1``: the
minor image's pair, opposite), and the binary axis must point at the source. The grid below
walks ``s`` and ``q`` over that ridge (and every orientation when the source passes the host
so closely that the central caustic can explain it) and scores each on the anomaly's epochs
with the single-lens fluxes held fixed; the best few seed full fits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from msos.events.model.fit import Dataset, ModelFit
from msos.events.model.lens import _vbm, source_plane, trajectory

#: anomaly windows tried (days): from a terrestrial planet's hours to a giant's week
WINDOWS_D = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
LOG_Q = np.arange(-5.0, -1.49, 0.5)
LOG_S = np.linspace(-0.5, 0.5, 51)
ALPHA_HALF_WIDTH_DEG = 30.0
ALPHA_STEP_DEG = 2.0
#: below this host distance at the anomaly the central caustic can cause it: every angle
CENTRAL_U = 0.1
CENTRAL_LOG_S = 0.2
#: at most this many epochs per dataset score a grid cell
GRID_POINTS = 150


@dataclass(frozen=True)
class Anomaly:
    """The most significant run of residuals from a single-lens fit."""

    t_a: float
    width_d: float
    delta_chi2: float  # Σ(r² − 1) over the window
    n_points: int = 1

    @property
    def sigma(self) -> float:
        """How many standard deviations of pure noise's Σ(r² − 1) (√(2n)) the excess is:
        a week of dense epochs reaches Δχ² 50 by chance, a few hours do not."""
        return self.delta_chi2 / np.sqrt(2.0 * max(self.n_points, 1))


def find_anomaly(fit: ModelFit, data: Sequence[Dataset]) -> Anomaly:
    """The window (of :data:`WINDOWS_D` widths) whose residuals from ``fit`` exceed their
    expectation the most."""
    t = np.concatenate([d.time for d in data])
    r2 = np.concatenate([((d.flux - fit.model_flux(d.time, k)) / d.flux_err) ** 2
                         for k, d in enumerate(data)])  # fmt: skip
    order = np.argsort(t)
    t, excess = t[order], np.cumsum(np.concatenate([[0.0], r2[order] - 1.0]))
    best = Anomaly(float(t[0]), WINDOWS_D[0], -np.inf)
    for width in WINDOWS_D:
        stop = np.searchsorted(t, t + width)
        gain = excess[stop] - excess[np.arange(t.size)]
        k = int(np.argmax(gain))
        if gain[k] > best.delta_chi2:
            centre = 0.5 * (t[k] + t[min(stop[k], t.size) - 1])
            best = Anomaly(float(centre), width, float(gain[k]), int(stop[k] - k))
    return best


def binary_seeds(
    fit: ModelFit,
    data: Sequence[Dataset],
    n_seeds: int = 6,
    rho: float = 1e-3,
    anomaly: Anomaly | None = None,
) -> list[dict[str, float]]:
    """Starting parameters of 2L1S fits: the ``n_seeds`` best grid cells around ``fit``'s
    anomaly (distinct in ``s``, ``q`` or orientation; ``anomaly``: found already, if given)."""
    anomaly = anomaly or find_anomaly(fit, data)
    lo, hi = anomaly.t_a - 1.5 * anomaly.width_d, anomaly.t_a + 1.5 * anomaly.width_d
    window = []
    for k, d in enumerate(data):
        inside = np.flatnonzero((d.time >= lo) & (d.time <= hi))
        inside = inside[:: max(1, inside.size // GRID_POINTS)]  # a long anomaly is smooth
        if inside.size:
            window.append((d.time[inside], d.flux[inside], d.flux_err[inside], k))
    single = {n: fit.params[n] for n in ("t_0", "u_0", "t_E")}
    tau_a, beta_a = trajectory(np.array([anomaly.t_a]), single)
    u_a = float(np.hypot(tau_a[0], beta_a[0]))
    # the source's angle seen from the lens is atan2(-β, -τ) + α (MulensModel's rotation)
    phase = np.degrees(np.arctan2(-beta_a[0], -tau_a[0]))
    reference = sum(float(np.sum(((f - fit.model_flux(t, k)) / e) ** 2)) for t, f, e, k in window)
    cells = []
    vbm = _vbm()
    for log_q in LOG_Q:
        q = 10.0**log_q
        reach = max(0.1, 0.5 * u_a) + 6.0 * np.sqrt(q)  # the caustic's size grows as √q
        for log_s in LOG_S:
            s = 10.0**log_s
            if u_a < CENTRAL_U and abs(log_s) <= CENTRAL_LOG_S:
                alphas = np.arange(0.0, 360.0, 2 * ALPHA_STEP_DEG)  # central caustic: any angle
            elif abs(abs(s - 1.0 / s) - u_a) <= reach:
                toward = (-phase) % 360.0 if s > 1 else (180.0 - phase) % 360.0
                half = ALPHA_HALF_WIDTH_DEG
                alphas = (toward + np.arange(-half, half + 1e-9, ALPHA_STEP_DEG)) % 360.0
            else:
                continue
            for alpha in alphas:
                params = {**single, "rho": rho, "s": s, "q": q, "alpha": float(alpha)}
                chi2 = 0.0
                for t, f, e, k in window:
                    x, y = source_plane(*trajectory(t, params), alpha)
                    mag = np.array([vbm.BinaryMag0(s, q, float(xx), float(yy))
                                    for xx, yy in zip(x, y, strict=True)])  # fmt: skip
                    model = fit.f_source[k] * mag + fit.f_blend[k]
                    chi2 += float(np.sum(((f - model) / e) ** 2))
                cells.append((chi2 - reference, params))
    cells.sort(key=lambda cell: cell[0])
    seeds: list[dict[str, float]] = []
    for _, params in cells:
        if all(_distinct(params, other) for other in seeds):
            seeds.append(params)
        if len(seeds) == n_seeds:
            break
    return seeds


def _distinct(a: dict[str, float], b: dict[str, float]) -> bool:
    """Two grid cells far enough apart to seed separate fits."""
    d_alpha = abs((a["alpha"] - b["alpha"] + 180.0) % 360.0 - 180.0)
    return (abs(np.log10(a["s"] / b["s"])) > 0.03 or abs(np.log10(a["q"] / b["q"])) > 0.6
            or d_alpha > 8.0)  # fmt: skip
