"""Model selection: from a point lens up to a binary lens, each step kept only when the data
ask for it (Δχ² over the simpler model beyond a threshold).

Order: PSPL; FSPL when the source came close enough to the lens for its size to show; annual
parallax when the event is long enough and its sky position and time scale are known (from
the model and its mirror image: the ecliptic degeneracy); then, when a short anomaly is left
that parallax cannot explain, static binary lenses seeded from it
(:mod:`msos.events.model.planet`), with parallax weighed again on the binary that fits. When
no seed fits its anomaly well (a caustic crossing, whose spikes trap a local fit), the seeds
are fitted again with a large source held, which is then shrunk step by step. Every fit tried
is returned, so a DQA report can show what was weighed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from msos.events.model.fit import BOUNDS, Dataset, ModelFit, fit_model
from msos.events.model.lens import Sky
from msos.events.model.planet import Anomaly, binary_seeds, find_anomaly
from msos.events.model.pspl import fit_pspl

#: the source size binary seeds are fitted with, per anomaly width in Einstein times …
SMOOTH_RHO_PER_WIDTH = 0.1
#: … at most (a larger source washes out the caustic that is to be found)
MAX_SMOOTH_RHO = 0.03
#: the factor the held source size shrinks by at each step
SHRINK = 2.0
#: the last steps of the shrinking that are freed (each may fall into its own minimum)
SHRUNK_FREED = 3
#: the smallest source size the shrinking goes to before the size is fitted
MIN_SHRUNK_RHO = 1e-4


@dataclass(frozen=True)
class SelectionSettings:
    """Thresholds of :func:`select_model`, and which models beyond PSPL it may try."""

    finite_source: bool = True
    parallax: bool = True
    binary: bool = True
    finite_source_u0: float = 0.05  # try FSPL when the point lens's u_0 is below this
    finite_source_delta_chi2: float = 20.0
    parallax_min_t_e_d: float = 15.0  # shorter events cannot show Earth's acceleration
    parallax_delta_chi2: float = 30.0
    max_pi_e: float = 5.0  # beyond: no lens in the Galaxy; a fit that far explains noise
    binary_anomaly_delta_chi2: float = 50.0  # residual excess that makes a binary worth trying
    binary_anomaly_sigma: float = 5.0  # … and its significance over the window's noise
    binary_delta_chi2: float = 160.0  # Roman's planet detection threshold (Penny et al. 2019)
    binary_seeds: int = 6
    seed_iterations: int = 25  # LM iterations a seed gets before the best is polished
    seed_outside_points: int = 300  # epochs a seed fit keeps away from the anomaly and peak
    smoothed_seeds: int = 3  # best grid cells refitted with a large source when none fit
    shrunk_seeds: int = 1  # best seed fits whose source is shrunk on every epoch, then freed
    shrink_iterations: int = 50  # LM iterations of each shrinking step


@dataclass(frozen=True)
class Selection:
    """The chosen model and every fit tried on the way (chosen one included)."""

    best: ModelFit
    tried: tuple[ModelFit, ...]

    def best_of(self, model: str) -> ModelFit | None:
        """The lowest-χ² fit of ``model`` tried, if any."""
        fits = [f for f in self.tried if f.model == model]
        return min(fits, key=lambda f: f.chi2) if fits else None


def select_model(
    data: Dataset | Sequence[Dataset],
    start: dict[str, float],
    sky: Sky | None = None,
    settings: SelectionSettings | None = None,
) -> Selection:
    """The model the data support, from a point-lens start ``{t_0, u_0, t_E}``."""
    settings = settings or SelectionSettings()
    data = [d.usable() for d in ([data] if isinstance(data, Dataset) else data)]
    tried: list[ModelFit] = []

    def attempt(
        model: str,
        params: dict[str, float],
        iterations: int = 200,
        on: list | None = None,
        fixed: tuple[str, ...] = (),
    ) -> ModelFit | None:
        try:
            fit = fit_model(on or data, model, params, sky, iterations, fixed=fixed)
        except (ValueError, np.linalg.LinAlgError):
            return None
        if not np.isfinite(fit.chi2):
            return None
        if on is None and not fixed:  # a fit to part of the data is a step, not a candidate
            tried.append(fit)
        return fit

    first = data[0]  # the compiled PSPL fit finds the valley fast; the general one polishes
    pspl = fit_pspl(first.time, first.flux, first.flux_err, start["t_0"], start["u_0"],
                    start["t_E"])  # fmt: skip
    best = attempt("PSPL", {"t_0": pspl.t_0, "u_0": pspl.u_0, "t_E": pspl.t_E})
    if best is None:
        raise ValueError("no point-lens fit converged")
    single = best
    if settings.finite_source and best.params["u_0"] < settings.finite_source_u0:
        u_0 = max(best.params["u_0"], 1e-4)
        fits = [attempt("FSPL", {**best.params, "rho": rho}) for rho in (0.5 * u_0, 2.0 * u_0)]
        fits = [f for f in fits if f is not None]
        if fits:
            fs = min(fits, key=lambda f: f.chi2)
            # a source that never came within a few radii of the lens shows no finite size:
            # a fitted rho that small is the fit bending the peak for another reason
            reach = fs.params["rho"] >= fs.params["u_0"] / 3.0
            if reach and single.chi2 - fs.chi2 >= settings.finite_source_delta_chi2:
                single = fs
    static = best = single
    parallax = settings.parallax and sky is not None
    if parallax and single.params["t_E"] >= settings.parallax_min_t_e_d:
        par = _parallax(single, attempt)
        if par is not None and single.chi2 - par.chi2 >= settings.parallax_delta_chi2:
            best = par
            if par.model == "FSPL+par":  # the finite source may have stood in for parallax
                point = attempt("PSPL+par", {k: v for k, v in par.params.items() if k != "rho"})
                if point and point.chi2 - par.chi2 < settings.finite_source_delta_chi2:
                    best = point
    # a short anomaly parallax cannot explain: binary lenses, static first (parallax can
    # soak up part of an anomaly, so it is weighed again once a binary fits)
    if settings.binary and _anomalous(find_anomaly(best, data), settings):
        base = _without_anomaly(static, data, settings)
        rho = base.params.get("rho", 1e-3)
        model = "2L1S"
        anomaly = find_anomaly(base, data)
        seeds = binary_seeds(base, data, settings.binary_seeds, rho, anomaly)
        # each seed gets a short leash on the epochs that matter, the best the full polish
        focus = _focused(data, anomaly, base, settings.seed_outside_points)
        fits = []
        for seed in seeds:  # best grid cell first; stop at a statistically good fit
            fit = attempt(model, seed, settings.seed_iterations, focus)
            if fit is not None:
                fits.append(fit)
                if _good(fit):
                    break
        good = any(_good(f) for f in fits)
        # a seed that did not fit its anomaly well rarely polishes into one that does: a
        # short polish, and the smoothed search below is the real chance
        polish = 200 if good else settings.shrink_iterations
        finals = [attempt(model, min(fits, key=lambda f: f.chi2).params, polish)] if fits else []
        if not good:
            finals += _smoothed(seeds, anomaly, base, focus, attempt, settings)
        finals = [f for f in finals if f is not None]
        if finals:
            binary = min(finals, key=lambda f: f.chi2)
            if best.chi2 - binary.chi2 >= settings.binary_delta_chi2:
                best = binary
                if parallax:  # parallax may show once the anomaly is fitted
                    par = _parallax(best, attempt)
                    if par is not None and best.chi2 - par.chi2 >= settings.parallax_delta_chi2:
                        best = par
    return Selection(best=best, tried=tuple(tried))


def _good(fit: ModelFit) -> bool:
    """Whether ``fit``'s χ² is what noise alone would give (within 5σ)."""
    return fit.chi2 <= fit.dof + 5 * np.sqrt(2 * fit.dof)


def _smoothed(
    seeds: list[dict[str, float]],
    anomaly: Anomaly,
    base: ModelFit,
    focus: list[Dataset],
    attempt: Callable,
    settings: SelectionSettings,
) -> list[ModelFit | None]:
    """Binary fits for an anomaly the seeds did not explain: a caustic crossing seen by a
    point-like source is a comb of spikes no local fit walks through, so the seeds are
    fitted with a large source held (the anomaly's width over 10, in Einstein times), and
    the best are shrunk (:func:`_shrunk`) on every epoch, then freed."""
    if not seeds:
        return []
    smooth = float(np.clip(SMOOTH_RHO_PER_WIDTH * anomaly.width_d / base.params["t_E"],
                           seeds[0]["rho"], MAX_SMOOTH_RHO))  # fmt: skip
    held = [attempt("2L1S", {**s, "rho": smooth},
                    settings.seed_iterations, focus, ("rho",))
            for s in seeds[: settings.smoothed_seeds]]  # fmt: skip
    held = sorted((f for f in held if f is not None), key=lambda f: f.chi2)
    finals = []
    for fit in held[: settings.shrunk_seeds]:
        whole = attempt(fit.model, fit.params, fixed=("rho",))  # on every epoch from here
        if whole is not None:  # the path's neighbouring minima differ: free the last few
            path = _shrunk(whole, attempt, settings.shrink_iterations)
            finals += [attempt(fit.model, step.params) for step in path[-SHRUNK_FREED:]]
    return finals


def _shrunk(fit: ModelFit, attempt: Callable, iterations: int) -> list[ModelFit]:
    """``fit`` refitted with its held source size shrunk by :data:`SHRINK` while χ² falls
    (down to :data:`MIN_SHRUNK_RHO`), every step of the way: the caustics sharpen step by
    step and the trajectory follows them, where a point-like start stalls between spikes.
    OGLE-2003-BLG-235, freed from its published geometry with rho 0.001: rho runs to 0.012,
    stalled at χ² 1971; held at 0.011 and shrunk: 1641, the published minimum."""
    path = [fit]
    while fit.params["rho"] / SHRINK >= MIN_SHRUNK_RHO:
        smaller = attempt(fit.model, {**fit.params, "rho": fit.params["rho"] / SHRINK},
                          iterations, fixed=("rho",))  # fmt: skip
        if smaller is None or smaller.chi2 > fit.chi2 - 1.0:  # the size no longer shows
            break
        path.append(fit := smaller)
    return path


def _focused(data: list[Dataset], anomaly: Anomaly, fit: ModelFit, outside: int) -> list[Dataset]:
    """The epochs a binary seed is fitted to: every one in the anomaly (±1.5 widths) and the
    single lens's peak (±2 t_eff), ``outside`` spread over the rest (the baseline and wings
    fix the fluxes and t_E, and vary slowly; a planetary fit spends its time on caustics)."""
    t_eff = max(abs(fit.params["u_0"]), 0.1) * fit.params["t_E"]
    out = []
    total = sum(d.time.size for d in data)
    for d in data:
        near = (np.abs(d.time - anomaly.t_a) <= 1.5 * anomaly.width_d) | (
            np.abs(d.time - fit.params["t_0"]) <= 2 * t_eff
        )
        rest = np.flatnonzero(~near)
        share = max(1, round(outside * d.time.size / total))
        keep = np.sort(np.concatenate([np.flatnonzero(near), rest[:: max(1, rest.size // share)]]))
        out.append(Dataset(d.time[keep], d.flux[keep], d.flux_err[keep], d.name))
    return out


def _anomalous(anomaly: Anomaly, settings: SelectionSettings) -> bool:
    """Whether a single-lens fit's worst residual window is worth a binary-lens search."""
    return (anomaly.delta_chi2 >= settings.binary_anomaly_delta_chi2
            and anomaly.sigma >= settings.binary_anomaly_sigma)  # fmt: skip


def _without_anomaly(fit: ModelFit, data: list[Dataset], settings: SelectionSettings) -> ModelFit:
    """``fit``'s model refitted with its worst anomaly left out (twice, the anomaly found
    again each time): a strong planetary or binary deviation drags a single-lens fit off the
    rest of the light curve, and the binary grid needs that rest right."""
    for _ in range(2):
        anomaly = find_anomaly(fit, data)
        if not _anomalous(anomaly, settings):
            break
        lo, hi = anomaly.t_a - anomaly.width_d, anomaly.t_a + anomaly.width_d
        kept = []
        for d in data:
            out = (d.time < lo) | (d.time > hi)
            kept.append(Dataset(d.time[out], d.flux[out], d.flux_err[out], d.name))
        try:
            fit = fit_model(kept, fit.model, fit.params, fit.sky)
        except (ValueError, np.linalg.LinAlgError):
            break
    return fit


def _mirrored(params: dict[str, float]) -> dict[str, float]:
    """The static model's mirror image (u_0 → −u_0, alpha → −alpha): the same light curve
    without parallax, a different one with it (the ecliptic degeneracy)."""
    out = {**params, "u_0": -params["u_0"]}
    if "alpha" in params:
        out["alpha"] = (-params["alpha"]) % 360.0
    return out


def _parallax(fit: ModelFit, attempt: Callable) -> ModelFit | None:
    """The better of ``fit``'s model with parallax, started from it and from its mirror,
    among the fits that are sound (:func:`sound`)."""
    fits = [attempt(f"{fit.model}+par", {**start, "pi_E_N": 0.05, "pi_E_E": 0.05})
            for start in (fit.params, _mirrored(fit.params))]  # fmt: skip
    fits = [f for f in fits if f is not None and sound(f)]
    return min(fits, key=lambda f: f.chi2) if fits else None


def sound(fit: ModelFit, max_pi_e: float = SelectionSettings.max_pi_e) -> bool:
    """Whether a fit is one to believe: every error finite (the data pin every parameter
    down), no parameter on the edge of the fitted region, a physical parallax. Ground data
    of a short event leave parallax free, and the fit then runs to the edge (OB140939's OGLE
    light curve: u_0 = ±10, |π_E| ≈ 12, 30 below the point lens's χ²)."""
    if not all(np.isfinite(v) and v > 0 for v in fit.errors.values()):
        return False
    for name, value in fit.params.items():
        if any(np.isclose(value, edge, rtol=1e-5, atol=0) for edge in BOUNDS.get(name, ())):
            return False
    return np.hypot(fit.params.get("pi_E_N", 0.0), fit.params.get("pi_E_E", 0.0)) <= max_pi_e
