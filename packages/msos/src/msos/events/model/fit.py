"""Levenberg–Marquardt fits of any model in :mod:`msos.events.model.lens` to one or more
datasets (each with its own source and blend flux).

The fluxes enter linearly, so they are solved exactly for every trial of the nonlinear
parameters (variable projection: the fit moves only the parameters that bend the light
curve, and the blending degeneracy cannot stall it). The Jacobian is taken by central
differences of the projected residuals; the errors of every parameter, fluxes included, come
from the Fisher matrix at the best fit. Scale parameters (t_E, rho, s, q) are fitted by
their logarithms, which keeps them positive and the problem closer to linear.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import numpy as np

from msos.events.model.lens import Sky, magnification, parameter_names

LOG_PARAMETERS = frozenset({"t_E", "rho", "s", "q"})
#: the region a fit may explore; a trial step outside is refused. Besides physics, a source
#: far smaller than 1e-5 Einstein radii on a caustic stalls VBMicrolensing's contour.
BOUNDS = {"t_E": (1e-3, 1e4), "rho": (1e-5, 1.0), "s": (0.05, 20.0), "q": (1e-7, 1.0),
          "u_0": (-10.0, 10.0), "pi_E_N": (-20.0, 20.0), "pi_E_E": (-20.0, 20.0)}  # fmt: skip


@dataclass(frozen=True)
class Dataset:
    """One telescope's (or band's) photometry of the event: fluxes and their 1-σ errors."""

    time: np.ndarray
    flux: np.ndarray
    flux_err: np.ndarray
    name: str = ""

    def usable(self) -> Dataset:
        """The epochs a fit can use: finite values and positive errors."""
        t, f, e = (np.asarray(a, np.float64) for a in (self.time, self.flux, self.flux_err))
        good = np.isfinite(t) & np.isfinite(f) & np.isfinite(e) & (e > 0)
        return Dataset(t[good], f[good], e[good], self.name)


@dataclass(frozen=True)
class ModelFit:
    """A fitted model: parameters and 1-σ errors (MulensModel's names), one source and one
    blend flux per dataset, χ², dof and how the optimiser ended."""

    model: str
    params: dict[str, float]
    errors: dict[str, float]
    f_source: tuple[float, ...]
    f_blend: tuple[float, ...]
    f_source_err: tuple[float, ...]
    f_blend_err: tuple[float, ...]
    chi2: float
    dof: int
    converged: bool
    iterations: int
    sky: Sky | None = field(default=None, compare=False)

    def model_flux(self, time: np.ndarray, dataset: int = 0) -> np.ndarray:
        """The model's flux at ``time`` on dataset ``dataset``'s flux scale."""
        a = magnification(self.model, time, self.params, self.sky)
        return self.f_source[dataset] * a + self.f_blend[dataset]


class _Problem:
    """The residuals of ``model`` as a function of its internal parameter vector."""

    def __init__(
        self, model: str, data: Sequence[Dataset], sky: Sky | None, fixed: dict[str, float]
    ) -> None:
        self.model, self.sky, self.fixed = model, sky, fixed
        self.all_names = parameter_names(model)
        self.names = [n for n in self.all_names if n not in fixed]
        self.data = [d.usable() for d in data]
        self.n = sum(d.time.size for d in self.data)
        self.logs = np.array([n in LOG_PARAMETERS for n in self.names])
        lo, hi = zip(*(BOUNDS.get(n, (-np.inf, np.inf)) for n in self.names), strict=True)
        self.lo = np.where(self.logs, np.log(np.maximum(lo, 1e-300)), lo)
        self.hi = np.where(self.logs, np.log(hi), hi)
        self.fixed_sign = model.startswith(("PSPL", "FSPL")) and "+par" not in model

    def external(self, z: np.ndarray) -> dict[str, float]:
        """Internal vector → MulensModel parameters (the held ones included)."""
        free = {name: float(np.exp(value) if name in LOG_PARAMETERS else value)
                for name, value in zip(self.names, z, strict=True)}  # fmt: skip
        out = {n: free[n] if n in free else self.fixed[n] for n in self.all_names}
        if self.fixed_sign:
            out["u_0"] = abs(out["u_0"])
        return out

    def internal(self, params: dict[str, float]) -> np.ndarray:
        """MulensModel parameters → internal vector."""
        return np.array([np.log(params[n]) if n in LOG_PARAMETERS else params[n]
                         for n in self.names], dtype=np.float64)  # fmt: skip

    def steps(self, z: np.ndarray) -> np.ndarray:
        """Finite-difference steps (wider for binary lenses, whose magnifications are
        accurate to ~1e-5 only)."""
        scale = 10.0 if self.model.startswith("2L1S") else 1.0
        p = self.external(z)
        base = {"t_0": 1e-5 * p["t_E"], "u_0": 1e-5 * max(abs(p["u_0"]), 1e-2),
                "alpha": 1e-3, "pi_E_N": 1e-4, "pi_E_E": 1e-4}  # fmt: skip
        return np.array([scale * base.get(n, 1e-5) for n in self.names])

    def magnifications(self, z: np.ndarray) -> list[np.ndarray]:
        """Magnification at every epoch of every dataset."""
        params = self.external(z)
        return [magnification(self.model, d.time, params, self.sky) for d in self.data]

    def residuals(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Normalised residuals with each dataset's fluxes at their least-squares values,
        and those fluxes (rows: datasets; columns: source, blend)."""
        out, fluxes = [], []
        if np.any(z < self.lo) or np.any(z > self.hi):
            return np.full(self.n, np.inf), np.full((len(self.data), 2), np.nan)
        for d, a in zip(self.data, self.magnifications(z), strict=True):
            if not np.all(np.isfinite(a)):
                return np.full(self.n, np.inf), np.full((len(self.data), 2), np.nan)
            w = 1.0 / d.flux_err
            design = np.column_stack([a * w, w])
            (fs, fb), *_ = np.linalg.lstsq(design, d.flux * w, rcond=None)
            out.append((d.flux - fs * a - fb) * w)
            fluxes.append((fs, fb))
        return np.concatenate(out), np.array(fluxes)

    def jacobian(self, z: np.ndarray, r: np.ndarray) -> np.ndarray:
        """∂(projected residuals)/∂z by forward differences from ``r`` (the residuals at
        ``z``): the optimiser's direction, half the cost of central ones."""
        h = self.steps(z)
        cols = []
        for k in range(z.size):
            up = z.copy()
            up[k] += h[k]
            col = (self.residuals(up)[0] - r) / h[k]
            if not np.all(np.isfinite(col)):  # at the edge of the sane region: step back
                up[k] -= 2 * h[k]
                col = (r - self.residuals(up)[0]) / h[k]
            cols.append(np.where(np.isfinite(col), col, 0.0))
        return np.column_stack(cols)

    def full_jacobian(self, z: np.ndarray, fluxes: np.ndarray) -> np.ndarray:
        """∂(residuals)/∂(z, fluxes) at fixed fluxes: the Fisher matrix of every parameter."""
        h = self.steps(z)

        def at(zz: np.ndarray) -> np.ndarray:
            mags = self.magnifications(zz)
            return np.concatenate([(d.flux - fs * a - fb) / d.flux_err for d, a, (fs, fb)
                                   in zip(self.data, mags, fluxes, strict=True)])  # fmt: skip

        cols = []
        for k in range(z.size):
            up, down = z.copy(), z.copy()
            up[k] += h[k]
            down[k] -= h[k]
            cols.append((at(up) - at(down)) / (2 * h[k]))
        mags = self.magnifications(z)
        start = 0
        flux_cols = np.zeros((self.n, 2 * len(self.data)))
        for j, (d, a) in enumerate(zip(self.data, mags, strict=True)):
            stop = start + d.time.size
            flux_cols[start:stop, 2 * j] = -a / d.flux_err
            flux_cols[start:stop, 2 * j + 1] = -1.0 / d.flux_err
            start = stop
        return np.column_stack([*cols, flux_cols])


def fit_model(
    data: Dataset | Sequence[Dataset],
    model: str,
    start: dict[str, float],
    sky: Sky | None = None,
    max_iterations: int = 200,
    tol: float = 1e-9,
    fixed: Collection[str] = (),
) -> ModelFit:
    """Fit ``model`` to ``data`` from the parameters ``start`` (MulensModel's names; every
    parameter of the model must be there), holding the ``fixed`` ones at their start values
    (their errors are then 0). Parallax models need ``sky``."""
    data = [data] if isinstance(data, Dataset) else list(data)
    missing = [n for n in parameter_names(model) if n not in start]
    if missing:
        raise ValueError(f"{model} fit: no starting value for {', '.join(missing)}")
    unknown = sorted(set(fixed) - set(parameter_names(model)))
    if unknown:
        raise ValueError(f"{model} fit: cannot hold {', '.join(unknown)}: not in the model")
    problem = _Problem(model, data, sky, {n: float(start[n]) for n in fixed})
    names = problem.names
    n_par = len(names) + 2 * len(data)
    if problem.n <= n_par:
        raise ValueError(f"{problem.n} usable points: a {model} fit needs more than {n_par}")
    z = problem.internal(start)
    r, fluxes = problem.residuals(z)
    chi2 = float(r @ r)
    lam, converged, it = 1e-3, False, 0
    while it < max_iterations and not converged:
        it += 1
        jac = problem.jacobian(z, r)
        jtj, jtr = jac.T @ jac, jac.T @ r
        improved = False
        for _ in range(30):
            m = jtj + lam * np.diag(np.maximum(np.diag(jtj), 1e-12))
            try:
                step = -np.linalg.solve(m, jtr)
            except np.linalg.LinAlgError:
                lam *= 10.0
                continue
            trial = z + step
            r_new, f_new = problem.residuals(trial)
            new = float(r_new @ r_new)
            if np.isfinite(new) and new <= chi2:
                converged = chi2 - new <= tol * (1.0 + chi2)
                z, r, fluxes, chi2 = trial, r_new, f_new, new
                lam = max(lam / 10.0, 1e-12)
                improved = True
                break
            lam *= 10.0
        if not improved:
            converged = True  # no step lowers χ²: at the minimum to the model's accuracy
    params = problem.external(z)
    errors, flux_err = _errors(problem, z, fluxes, params)
    return ModelFit(
        model=model, params=params, errors=errors,
        f_source=tuple(float(f) for f in fluxes[:, 0]),
        f_blend=tuple(float(f) for f in fluxes[:, 1]),
        f_source_err=tuple(flux_err[0::2]), f_blend_err=tuple(flux_err[1::2]),
        chi2=chi2, dof=problem.n - n_par, converged=converged, iterations=it, sky=sky,
    )  # fmt: skip


def _errors(
    problem: _Problem, z: np.ndarray, fluxes: np.ndarray, params: dict[str, float]
) -> tuple[dict[str, float], list[float]]:
    """1-σ errors from the inverse Fisher matrix (NaN where it is singular)."""
    jac = problem.full_jacobian(z, fluxes)
    fisher = jac.T @ jac
    try:
        cov = np.linalg.inv(fisher) if np.linalg.cond(fisher) < 1e15 else None
    except np.linalg.LinAlgError:
        cov = None
    sigma = np.sqrt(np.diag(cov)) if cov is not None else np.full(fisher.shape[0], np.nan)
    errors = dict.fromkeys(problem.all_names, 0.0)
    for k, name in enumerate(problem.names):
        errors[name] = float(sigma[k] * params[name] if name in LOG_PARAMETERS else sigma[k])
    return errors, [float(s) for s in sigma[len(problem.names) :]]
