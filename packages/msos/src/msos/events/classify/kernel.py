"""Classification of a detected brightening: microlensing, a variable star, or an artefact.

Three questions, each a number, decide it:

* Does a periodic model explain the light curve as well as a point lens? The best
  Lomb–Scargle period (two harmonics) is fitted by linear least squares and its χ² compared
  with the PSPL fit's, each penalised by its number of parameters (BIC). Periodic variables,
  the commonest impostors in the bulge, lose the point lens this way.
* Is there more than one brightening? Two episodes of significant brightening more than
  ``episode_gap_d`` apart, or, after the PSPL model, a run of significant positive residuals
  more than ``bump_distance`` peak widths from ``t_0`` (outbursts, flares and CVs repeat; a
  single lens brightens once; a planet's anomaly sits within the peak).
* Is the point lens itself plausible? ``u_0`` beyond ``max_u_0`` (a few per cent of
  brightening), a cusp with ``t_E`` of years, or a reduced χ² beyond ``max_reduced_chi2``
  (then "candidate": an anomaly for the binary models) are not single lenses.
* Is it an outburst? A dwarf nova (or a flare) rises faster than it fades; a lens
  brightens and fades alike. A fast-rise, exponential-decline profile (decline at least
  ``outburst_asymmetry`` times slower than the rise) that beats the point lens by BIC makes it
  a variable star.
* Do a handful of epochs carry the signal? If the ``max_artefact_points`` most significant
  epochs hold more than half the PSPL model's Δχ², it is a cosmic ray, a bad subtraction or a
  satellite, not a microlensing event days long.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.timeseries import LombScargle

from msos.events.model.pspl import MAX_T_E_D, MIN_U_0, PSPLFit, magnification


@dataclass(frozen=True)
class ClassifierSettings:
    """Thresholds of :func:`classify`."""

    min_period_d: float = 0.05
    max_period_d: float = 30.0
    harmonics: int = 2
    second_bump_sigma: float = 5.0  # a run of residuals this far above the model
    second_bump_run: int = 4  # epochs in a row
    bump_distance: float = 2.0  # … at least this many peak widths (u_0 t_E, ≥ 0.1 t_E) away
    max_artefact_points: int = 3
    episode_gap_d: float = 2.0  # brightenings further apart than this are separate episodes
    max_u_0: float = 2.0  # beyond: a 5 % brightening or less, no point lens worth the name
    min_u_0: float = MIN_U_0  # below, with t_E in years: the fit made a cusp of a flare
    max_t_e_d: float = MAX_T_E_D
    max_reduced_chi2: float = 3.0  # a worse point-lens fit: an anomaly to model (candidate)
    magnified_t_e: float = 2.0  # |t − t_0| below this many t_E: the source is magnified (u ≲ 2)
    outburst_asymmetry: float = 2.0  # an outburst's decline time over its rise time, at least


@dataclass(frozen=True)
class Classification:
    """The class, its score (0–1) and the numbers it was decided on."""

    classification: str  # single_lens, variable_star, artifact (roman-schemas CLASSIFICATIONS)
    score: float
    bic_periodic_minus_pspl: float  # > 0: the point lens is preferred
    period_d: float
    second_bump: bool
    top_points_fraction: float  # share of the PSPL Δχ² in the few best epochs
    outbursts_bic: float = np.inf  # BIC of the best outburst profiles: the models must beat it


def periodic_chi2(
    time: np.ndarray, flux: np.ndarray, flux_err: np.ndarray, settings: ClassifierSettings
) -> tuple[float, float, int]:
    """(χ², period, parameters) of the best-period multi-harmonic fit."""
    periodogram = LombScargle(time, flux, flux_err, nterms=1)
    frequency, power = periodogram.autopower(
        minimum_frequency=1 / settings.max_period_d, maximum_frequency=1 / settings.min_period_d,
        samples_per_peak=5,
    )  # fmt: skip
    best = frequency[np.argmax(power)]
    phase = 2 * np.pi * best * (time - time[0])
    columns = [np.ones_like(time)]
    for k in range(1, settings.harmonics + 1):
        columns += [np.sin(k * phase), np.cos(k * phase)]
    design = np.column_stack(columns) / flux_err[:, None]
    coefficients, *_ = np.linalg.lstsq(design, flux / flux_err, rcond=None)
    chi2 = float(np.sum((design @ coefficients - flux / flux_err) ** 2))
    return chi2, float(1 / best), len(columns) + 1  # + the period


def classify(
    time: np.ndarray, flux: np.ndarray, flux_err: np.ndarray, fit: PSPLFit,
    settings: ClassifierSettings | None = None,
) -> Classification:  # fmt: skip
    """Classify a light curve with a PSPL fit; its points must be clean (finite, err > 0)."""
    settings = settings or ClassifierSettings()
    t = np.asarray(time, dtype=np.float64)
    f = np.asarray(flux, dtype=np.float64)
    e = np.asarray(flux_err, dtype=np.float64)
    model = fit.f_source * magnification(t, fit.t_0, fit.u_0, fit.t_E) + fit.f_blend
    resid = (f - model) / e
    log_n = np.log(t.size)
    chi2_periodic, period, k_periodic = periodic_chi2(t, f, e, settings)
    bic = (chi2_periodic + k_periodic * log_n) - (fit.chi2 + 5 * log_n)
    # the PSPL's Δχ² against a constant, epoch by epoch
    flat = np.sum(f / e**2) / np.sum(1 / e**2)
    gain = ((f - flat) / e) ** 2 - resid**2
    total = float(np.sum(gain))
    top = (
        float(np.sum(np.sort(gain)[-settings.max_artefact_points :])) / total if total > 0 else 1.0
    )
    width = max(fit.u_0, 0.1) * fit.t_E  # the peak's half width (t_eff)
    far = np.abs(t - fit.t_0) > settings.bump_distance * width
    # while the source is magnified a bump may be a planet's caustic: the models decide;
    # outside, it is another brightening, which no lens makes
    magnified = np.abs(t - fit.t_0) < settings.magnified_t_e * fit.t_E
    bright = resid > settings.second_bump_sigma
    second = _has_run(bright, far & ~magnified, settings.second_bump_run)
    anomaly = _has_run(bright, far & magnified, settings.second_bump_run)
    z = (f - np.median(f)) / e
    second = (
        second or _episodes(t, z, settings) - _episodes(t[magnified], z[magnified], settings) >= 1
    )
    if top > 0.5:
        return Classification("artifact", min(1.0, top), bic, period, second, top)
    unphysical = not (settings.min_u_0 <= fit.u_0 <= settings.max_u_0) or (
        fit.t_E > settings.max_t_e_d
    )
    if unphysical:  # the brightening is no point lens's shape
        return Classification("variable_star", 0.9, bic, period, second, top)
    if bic <= 0 or second:
        score = 1.0 - np.exp(-max(-bic, 10.0 if second else 0.0) / 20.0)
        return Classification("variable_star", float(score), bic, period, second, top)
    # overlapping outbursts leave a point lens far off: only then try more than one profile
    several = fit.chi2 / max(fit.dof, 1) > settings.max_reduced_chi2
    chi2_outbursts, k_outbursts = outbursts(t, f, e, fit.t_0, width, settings,
                                            max_outbursts=3 if several else 1)  # fmt: skip
    outbursts_bic = chi2_outbursts + k_outbursts * log_n
    if several and chi2_outbursts > settings.max_reduced_chi2 * (t.size - k_outbursts):
        # outbursts that do not describe the light curve either are no alternative: a
        # planet's anomaly can be bent into a few profiles a little better than a point lens
        outbursts_bic = np.inf
    outburst = outbursts_bic - (fit.chi2 + 5 * log_n)
    if outburst < 0:  # fast rise, slow decline: dwarf-nova outbursts, not a lens
        return Classification("variable_star", float(1.0 - np.exp(outburst / 20.0)), bic, period,
                              second, top, outbursts_bic)  # fmt: skip
    if anomaly or fit.chi2 / max(fit.dof, 1) > settings.max_reduced_chi2:
        # a point lens describes the event but not its details: binary, planet or a
        # variable source; for the model step to decide
        return Classification("candidate", 0.5, bic, period, second, top, outbursts_bic)
    score = float(1.0 - np.exp(-bic / 20.0))
    return Classification("single_lens", score, bic, period, second, top, outbursts_bic)


#: rise and decline e-folding times (days) the outburst profile is tried with
RISE_D = np.geomspace(0.02, 3.0, 8)
DECLINE_D = np.geomspace(0.1, 20.0, 12)


def outbursts(
    time: np.ndarray, flux: np.ndarray, flux_err: np.ndarray, t_peak: float, width: float,
    settings: ClassifierSettings, max_outbursts: int = 3,
) -> tuple[float, int]:  # fmt: skip
    """(χ², parameters) of the best sum of up to ``max_outbursts`` fast-rise, exponential-
    decline profiles by BIC: overlapping dwarf-nova outbursts look like one brightening.
    Greedy: each profile is fitted to what the previous ones leave, then all amplitudes
    and the baseline are solved together."""
    w = 1.0 / flux_err
    y = flux * w
    found: list[np.ndarray] = []
    best, best_bic = (np.inf, 0), np.inf
    target, centre, span = y, t_peak, max(width, 0.5)
    for _ in range(max_outbursts):
        profile = _one_outburst(time, target, w, centre, span, settings.outburst_asymmetry)
        if profile is None:
            break
        found.append(profile)
        if len(found) > 1:  # overlapping profiles share flux: polish them together
            joint = _polished(time, y, w, np.concatenate(found), settings.outburst_asymmetry)
            found = list(joint.reshape(-1, 3))
        design = np.column_stack([*(_outburst_profile(time, t_p, np.exp(r), np.exp(d)) * w
                                    for t_p, r, d in found), w])  # fmt: skip
        coefficients, *_ = np.linalg.lstsq(design, y, rcond=None)
        model = design @ coefficients
        chi2, k = float(np.sum((y - model) ** 2)), 4 * len(found) + 1
        bic = chi2 + k * np.log(time.size)
        if bic >= best_bic:  # another profile does not pay for itself
            break
        best, best_bic = (chi2, k), bic
        target = y - model  # the next outburst: where the residuals, smoothed, peak
        smooth = np.convolve(target, np.ones(9) / 9, mode="same")
        centre, span = float(time[int(np.argmax(smooth))]), 1.0
    return best


def _one_outburst(
    time: np.ndarray, y: np.ndarray, w: np.ndarray, t_peak: float, width: float,
    asymmetry: float,
) -> np.ndarray | None:  # fmt: skip
    """(t_p, log τ_r, log τ_d) of the profile ``exp(±(t − t_p)/τ)`` (rise τ_r before t_p,
    decline τ_d ≥ asymmetry·τ_r after) that best fits ``y ≈ a·profile + b·w`` (a > 0):
    a grid of peak times within ``width`` of ``t_peak`` and of both times, then polished;
    None if none fits."""
    sww, swy, syy = w @ w, w @ y, y @ y
    near = np.flatnonzero(np.abs(time - t_peak) <= width)
    peaks = time[near[:: max(1, near.size // 60)]] if near.size else np.array([t_peak])
    allowed_times = DECLINE_D[None, :] >= asymmetry * RISE_D[:, None]
    best, choice = np.inf, None
    for t_p in peaks:
        dt = time - t_p
        # the rise (before t_p) and decline (after) parts have disjoint supports: the sums of
        # the normal equations split into one term of each
        rise = np.exp(np.minimum(dt, 0.0)[None, :] / RISE_D[:, None]) * (dt < 0) * w
        fall = np.exp(-np.maximum(dt, 0.0)[None, :] / DECLINE_D[:, None]) * (dt >= 0) * w
        r_w, r_s, r_y = rise @ w, np.einsum("ij,ij->i", rise, rise), rise @ y
        f_w, f_s, f_y = fall @ w, np.einsum("ij,ij->i", fall, fall), fall @ y
        sws = r_w[:, None] + f_w[None, :]
        sss = r_s[:, None] + f_s[None, :]
        ssy = r_y[:, None] + f_y[None, :]
        det = sww * sss - sws**2
        with np.errstate(divide="ignore", invalid="ignore"):
            a = (sww * ssy - sws * swy) / det
            b = (sss * swy - sws * ssy) / det
        chi2 = np.where(allowed_times & (det > 0) & (a > 0), syy - a * ssy - b * swy, np.inf)
        i, j = np.unravel_index(int(np.argmin(chi2)), chi2.shape)
        if chi2[i, j] < best:
            best, choice = float(chi2[i, j]), (t_p, i, j)
    if choice is None:
        return None
    t_p, i, j = choice
    # a grid step in the decline time is worth thousands in χ² at S/N 50: polish the cell
    return _polished(time, y, w, np.array([t_p, np.log(RISE_D[i]), np.log(DECLINE_D[j])]),
                     asymmetry)  # fmt: skip


def _outburst_profile(time: np.ndarray, t_p: float, rise: float, decline: float) -> np.ndarray:
    """Unit fast-rise, exponential-decline profile peaking at ``t_p``."""
    dt = time - t_p
    return np.where(dt < 0, np.exp(np.minimum(dt, 0.0) / rise),
                    np.exp(-np.maximum(dt, 0.0) / decline))  # fmt: skip


def _polished(
    time: np.ndarray, y: np.ndarray, w: np.ndarray, z0: np.ndarray, asymmetry: float
) -> np.ndarray:
    """Profiles (rows of (t_p, log τ_r, log τ_d), flattened in ``z0``) polished together by
    Nelder–Mead; their amplitudes (each > 0) and the baseline are solved linearly."""
    from scipy.optimize import minimize

    def chi2(z: np.ndarray) -> float:
        rows = z.reshape(-1, 3)
        if np.any(rows[:, 2] - rows[:, 1] < np.log(asymmetry)):
            return np.inf
        design = np.column_stack([*(_outburst_profile(time, t_p, np.exp(r), np.exp(d)) * w
                                    for t_p, r, d in rows), w])  # fmt: skip
        coefficients, *_ = np.linalg.lstsq(design, y, rcond=None)
        if np.any(coefficients[:-1] <= 0):
            return np.inf
        return float(np.sum((y - design @ coefficients) ** 2))

    steps = np.tile([0.05, 0.3, 0.2], z0.size // 3)
    simplex = np.vstack([z0, z0 + np.diag(steps)])
    z = minimize(
        chi2,
        z0,
        method="Nelder-Mead",
        options={"initial_simplex": simplex, "xatol": 1e-4, "fatol": 0.1, "maxfev": 200 * z0.size},
    ).x
    return z if np.isfinite(chi2(z)) else z0


def _episodes(t: np.ndarray, z: np.ndarray, settings: ClassifierSettings) -> int:
    """Separate brightenings: runs of ``second_bump_run`` epochs ≥ ``second_bump_sigma``
    above the median, at least ``episode_gap_d`` apart (a lens brightens once, however its
    caustics shape the peak; outbursts and flares repeat)."""
    bright = z > settings.second_bump_sigma
    count, run, last_end = 0, 0, -np.inf
    for i in range(t.size):
        run = run + 1 if bright[i] else 0
        starts_new = run == settings.second_bump_run
        if starts_new and t[i - run + 1] - last_end > settings.episode_gap_d:
            count += 1
        if bright[i] and run >= settings.second_bump_run:
            last_end = t[i]
    return count


def _has_run(significant: np.ndarray, allowed: np.ndarray, length: int) -> bool:
    """Whether ``length`` consecutive epochs are both ``significant`` and ``allowed``."""
    run = 0
    for hit in significant & allowed:
        run = run + 1 if hit else 0
        if run >= length:
            return True
    return False
