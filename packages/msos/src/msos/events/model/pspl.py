"""Point-source point-lens fits: ``F(t) = f_source · A(u(t)) + f_blend``.

``A(u) = (u² + 2) / (u √(u² + 4))``, ``u² = u_0² + ((t − t_0) / t_E)²`` (Paczyński 1986;
MulensModel's names). The fluxes start at their exact weighted least-squares values for the
starting ``(t_0, u_0, t_E)``; Levenberg–Marquardt then moves all five together (holding the
fluxes while moving the rest stalls in the blending degeneracy), and the errors come from
the Fisher matrix at the best fit. One compiled loop per light curve: no Python per epoch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from msos.events.model.lens import point_lens

#: the fitted parameters, in the order of :attr:`PSPLFit.covariance`
PARAMETERS = ("t_0", "u_0", "t_E", "f_source", "f_blend")


@dataclass(frozen=True)
class PSPLFit:
    """A PSPL fit: parameters (MulensModel's names), their covariance, χ² and dof."""

    t_0: float
    u_0: float
    t_E: float  # noqa: N815 - the name microlensing uses
    f_source: float
    f_blend: float
    covariance: np.ndarray  # 5 × 5, in PARAMETERS order
    chi2: float
    dof: int
    iterations: int
    converged: bool

    def error(self, name: str) -> float:
        """1-σ error of a parameter (from the Fisher matrix)."""
        k = PARAMETERS.index(name)
        return float(np.sqrt(self.covariance[k, k]))


def magnification(time: np.ndarray, t_0: float, u_0: float, t_E: float) -> np.ndarray:  # noqa: N803
    """The point-lens magnification at ``time``."""
    tau = (np.asarray(time, dtype=np.float64) - t_0) / t_E
    return point_lens(np.hypot(u_0, tau))


def fit_pspl(
    time: np.ndarray,
    flux: np.ndarray,
    flux_err: np.ndarray,
    t_0: float,
    u_0: float,
    t_E: float,  # noqa: N803
    max_iterations: int = 1000,
    tol: float = 1e-10,
) -> PSPLFit:
    """Fit a PSPL model from a starting ``(t_0, u_0, t_E)``; bad points (NaN, error ≤ 0) are
    left out. ``u_0`` is fitted as its absolute value (the light curve cannot tell its sign)."""
    t = np.asarray(time, dtype=np.float64)
    f = np.asarray(flux, dtype=np.float64)
    e = np.asarray(flux_err, dtype=np.float64)
    good = np.isfinite(t) & np.isfinite(f) & np.isfinite(e) & (e > 0)
    t, f, w = t[good], f[good], 1.0 / e[good] ** 2
    if t.size < 6:
        raise ValueError(f"{t.size} usable points: a PSPL fit needs at least 6")
    theta = np.array([t_0, abs(u_0), t_E], dtype=np.float64)
    out = np.zeros(4)
    covariance = np.full((5, 5), np.nan)
    _lm(t, f, w, theta, max_iterations, tol, out, covariance)
    return PSPLFit(
        t_0=float(theta[0]), u_0=float(theta[1]), t_E=float(theta[2]), f_source=float(out[0]),
        f_blend=float(out[1]), covariance=covariance, chi2=float(out[2]), dof=int(t.size - 5),
        iterations=int(abs(out[3])), converged=bool(out[3] > 0),
    )  # fmt: skip


@numba.njit(cache=True)
def _fluxes(
    t: np.ndarray, f: np.ndarray, w: np.ndarray, theta: np.ndarray, a: np.ndarray,
    out2: np.ndarray,
) -> float:  # fmt: skip
    """Magnifications into ``a``; the weighted least-squares (f_source, f_blend) into ``out2``
    and the χ² returned."""
    t0, u0, te = theta[0], theta[1], theta[2]
    s0 = sa = saa = sf = saf = sff = 0.0
    for i in range(t.size):
        tau = (t[i] - t0) / te
        u2 = u0 * u0 + tau * tau
        ai = (u2 + 2.0) / np.sqrt(u2 * (u2 + 4.0))
        a[i] = ai
        wi = w[i]
        s0 += wi
        sa += wi * ai
        saa += wi * ai * ai
        sf += wi * f[i]
        saf += wi * ai * f[i]
        sff += wi * f[i] * f[i]
    det = s0 * saa - sa * sa
    if det <= 0.0:
        out2[0] = 0.0
        out2[1] = sf / s0
        return sff - sf * sf / s0
    fs = (s0 * saf - sa * sf) / det
    fb = (sf - fs * sa) / s0
    out2[0] = fs
    out2[1] = fb
    return sff - fs * saf - fb * sf


@numba.njit(cache=True)
def _chi2(t: np.ndarray, f: np.ndarray, w: np.ndarray, p: np.ndarray) -> float:
    """χ² of the five parameters ``p``."""
    total = 0.0
    for i in range(t.size):
        tau = (t[i] - p[0]) / p[2]
        u2 = p[1] * p[1] + tau * tau
        r = f[i] - p[3] * (u2 + 2.0) / np.sqrt(u2 * (u2 + 4.0)) - p[4]
        total += w[i] * r * r
    return total


@numba.njit(cache=True)
def _normal(
    t: np.ndarray, f: np.ndarray, w: np.ndarray, p: np.ndarray, jtj: np.ndarray, jtr: np.ndarray
) -> None:
    """JᵀWJ and JᵀWr of the model's gradient in all five parameters."""
    jtj[:] = 0.0
    jtr[:] = 0.0
    g = np.empty(5)
    t0, u0, te, fs, fb = p[0], p[1], p[2], p[3], p[4]
    for i in range(t.size):
        tau = (t[i] - t0) / te
        u2 = u0 * u0 + tau * tau
        u = np.sqrt(u2)
        a = (u2 + 2.0) / np.sqrt(u2 * (u2 + 4.0))
        da_du = -8.0 / (u2 * (u2 + 4.0) ** 1.5)
        g[0] = fs * da_du * (-tau / (u * te))
        g[1] = fs * da_du * (u0 / u)
        g[2] = fs * da_du * (-tau * tau / (u * te))
        g[3] = a
        g[4] = 1.0
        wi = w[i]
        r = f[i] - fs * a - fb
        for j in range(5):
            wg = wi * g[j]
            jtr[j] += wg * r
            for k in range(j, 5):
                jtj[j, k] += wg * g[k]
    for j in range(5):
        for k in range(j):
            jtj[j, k] = jtj[k, j]


@numba.njit(cache=True)
def _lm(
    t: np.ndarray, f: np.ndarray, w: np.ndarray, theta: np.ndarray, max_iterations: int,
    tol: float, out: np.ndarray, covariance: np.ndarray,
) -> None:  # fmt: skip
    """Levenberg–Marquardt in all five parameters, the fluxes started at their exact
    least-squares values (Marquardt's scaling by the diagonal)."""
    a = np.empty(t.size)
    fl = np.zeros(2)
    _fluxes(t, f, w, theta, a, fl)
    p = np.array([theta[0], theta[1], theta[2], fl[0], fl[1]])
    chi2 = _chi2(t, f, w, p)
    lam = 1e-3
    jtj = np.zeros((5, 5))
    jtr = np.zeros(5)
    trial = np.empty(5)
    converged = False
    it = 0
    while it < max_iterations and not converged:
        it += 1
        _normal(t, f, w, p, jtj, jtr)
        improved = False
        for _ in range(40):
            m = jtj.copy()
            for k in range(5):
                m[k, k] += lam * jtj[k, k]
            step = np.linalg.solve(m, jtr)
            trial[:] = p + step
            trial[1] = abs(trial[1])
            if trial[2] <= 0.0 or trial[1] == 0.0:
                lam *= 10.0
                continue
            new = _chi2(t, f, w, trial)
            if new <= chi2:
                converged = chi2 - new <= tol * (1.0 + chi2)
                p[:] = trial
                chi2 = new
                lam = max(lam / 10.0, 1e-12)
                improved = True
                break
            lam *= 10.0
        if not improved:
            converged = True  # no step lowers χ²: at the minimum to rounding
    _normal(t, f, w, p, jtj, jtr)
    if np.linalg.cond(jtj) < 1e15:
        covariance[:, :] = np.linalg.inv(jtj)  # the Fisher matrix's inverse
    theta[:] = p[:3]
    out[0] = p[3]
    out[1] = p[4]
    out[2] = chi2
    out[3] = it if converged else -it


#: starting impact parameters tried from a detection (its t_eff fixes t_E = t_eff / u_0)
START_U0 = (0.01, 0.05, 0.2, 0.5, 1.0)
#: a point lens within these is physical: a longer t_E or a smaller u_0 is the fit sliding
#: along the low-magnification degeneracy (only u_0·t_E and the peak flux are measured)
MAX_T_E_D = 1000.0
MIN_U_0 = 1e-4
#: fits this close in χ² to the best are equally good (Δχ² = 1: one parameter's 1σ)
EQUALLY_GOOD_CHI2 = 1.0


def fit_detection(
    time: np.ndarray, flux: np.ndarray, flux_err: np.ndarray, t_0: float, t_eff: float
) -> PSPLFit:
    """The best PSPL fit started from a grid-search detection ``(t_0, t_eff)``: one fit per
    starting ``u_0`` in :data:`START_U0` (with ``t_E = t_eff / u_0``, the high-magnification
    reading of t_eff, capped at 3 years), the lowest χ² kept — the blending degeneracy makes
    a single start land in the wrong valley now and then. Among fits as good as the best, a
    physical one is preferred: a partly covered low-magnification event fits u_0 → 0,
    t_E → ∞ as well as its true u_0 and t_E."""
    fits = []
    for u_0 in START_U0:
        t_e = min(t_eff / u_0, 1000.0)
        fits.append(fit_pspl(time, flux, flux_err, t_0, u_0, t_e))
    best = min(fits, key=lambda fit: fit.chi2)
    physical = [f for f in fits if f.chi2 <= best.chi2 + EQUALLY_GOOD_CHI2
                and f.t_E <= MAX_T_E_D and f.u_0 >= MIN_U_0]  # fmt: skip
    # a fit with errors before one without (a flat valley can leave the Fisher matrix singular)
    physical.sort(key=lambda fit: (not np.all(np.isfinite(fit.covariance)), fit.chi2))
    return physical[0] if physical else best
