"""Period search of variable objects: a Lomb–Scargle periodogram on one shared frequency grid,
then a multi-harmonic Fourier model that fixes the period, its error, epoch and amplitude.

Per object (good epochs only):

1. The generalised (floating-mean) Lomb–Scargle periodogram, astropy's ``fast`` method, on
   the partition's grid (:func:`frequency_grid`: from ``min_cycles`` cycles per season to
   ``max_frequency_per_d``, steps of 1 / (``oversample`` × span)). Its highest peak gives the
   power and the false-alarm probability (Baluev 2008, astropy's default); an object is kept
   only when that is below ``fap_max`` and the peak is not within one independent frequency
   of the grid's low edge (power still rising towards long periods: a trend or a single
   event such as microlensing, not a period).
2. The peak is refined off the grid (one sinusoid's profile χ², as in 3.); the fundamental is
   it or one of its sub-harmonics (f / k, k ≤ ``subharmonics``: eclipsing binaries put most
   power in harmonics), with 1…``max_harmonics`` Fourier terms; the pair with the lowest BIC
   (χ² + (2n + 1) ln N) wins.
3. The frequency is refined on the profile χ²(f) of that model (linear parameters solved at
   each f; a parabola through the samples) and its error is the curvature's:
   σ_f = √(2 χ²_ν / (d²χ²/df²)), scaled by the reduced χ²; for one sinusoid this is
   Montgomery & O'Donoghue's (1999) σ_f = √(6 / N) σ / (π T a). σ_P = σ_f / f².
   The model must repeat: each of ``segments`` parts of the season (equal epoch counts)
   must hold ``min_segment_share`` of its Δχ² over a constant, which a single event (one
   part explained, the others made worse) does not.
4. From the model: peak-to-peak amplitude, the epoch of maximum light nearest the data's
   mean time, and the class (:func:`classify`).

An eclipsing binary's period is reported as its orbital period: when the model at the chosen
frequency has one minimum per cycle (equal eclipses cannot be told apart), it is doubled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from astropy.timeseries import LombScargle


@dataclass(frozen=True)
class PeriodSettings:
    """The frequency grid, model and acceptance of the period search."""

    min_cycles: float = 2.0  # lowest frequency: this many cycles over the season
    max_frequency_per_d: float = 24.0  # 1 h; the 15-min cadence's Nyquist frequency is 48 / d
    oversample: float = 5.0  # grid steps per 1 / span
    max_harmonics: int = 8
    subharmonics: int = 3
    fap_max: float = 1e-3
    segments: int = 3  # the season's thirds (equal epoch counts) …
    min_segment_share: float = 0.1  # … must each hold this share of the model's Δχ²
    eb_dip_max: float = 0.25  # below: light near maximum most of the cycle, narrow minima


@dataclass
class PeriodFit:
    """The period search's result for one object."""

    period_d: float
    period_err_d: float
    epoch_mjd_tdb: float  # a time of maximum light
    amplitude: float  # peak to peak, the flux unit
    power: float
    false_alarm_probability: float
    n_harmonics: int
    n_epochs: int
    variable_class: str
    dip: float  # (max − median) / (max − min) of the model over a cycle


def frequency_grid(span_d: float, settings: PeriodSettings = PeriodSettings()) -> np.ndarray:
    """The shared frequency grid (1 / d) of a season ``span_d`` days long."""
    if not span_d > 0:
        raise ValueError(f"season span {span_d} d: need a positive span")
    step = 1.0 / (settings.oversample * span_d)
    low = settings.min_cycles / span_d
    if low >= settings.max_frequency_per_d:
        raise ValueError(f"{span_d} d is too short for {settings.min_cycles} cycles")
    return low + step * np.arange(int((settings.max_frequency_per_d - low) / step) + 1)


def classify(period_d: float, fractional_amplitude: float, dip: float,
             settings: PeriodSettings = PeriodSettings()) -> str:  # fmt: skip
    """A first-pass class from period, peak-to-peak amplitude over mean flux and shape (not a
    classifier: blending dilutes amplitudes in the bulge)."""
    if dip < settings.eb_dip_max:
        return "eclipsing_binary"
    a = fractional_amplitude
    if not np.isfinite(a):
        return "other"
    if period_d < 0.25 and a <= 0.3:
        return "delta_scuti"
    if 0.25 <= period_d < 1.0 and a >= 0.15:
        return "rr_lyrae"
    if period_d >= 1.0 and a >= 0.15:
        return "cepheid"
    if period_d >= 0.1 and a < 0.15:
        return "rotation"
    return "other"


def search_period(
    time_mjd_tdb: np.ndarray,
    flux: np.ndarray,
    flux_err: np.ndarray,
    grid: np.ndarray,
    settings: PeriodSettings = PeriodSettings(),
    mean_flux: float | None = None,
) -> PeriodFit | None:
    """The period of one light curve (good epochs only, any order), or None when it has no
    significant one; ``mean_flux``: the total mean flux for the class's fractional amplitude
    (default: the light curve's mean)."""
    t = np.asarray(time_mjd_tdb, dtype=np.float64)
    y = np.asarray(flux, dtype=np.float64)
    e = np.asarray(flux_err, dtype=np.float64)
    n = t.size
    if n < 2 * settings.max_harmonics + 2:
        return None
    periodogram = LombScargle(t, y, e)
    power = periodogram.power(grid, method="fast", assume_regular_frequency=True)
    peak = int(np.argmax(power))
    if peak < settings.oversample:
        return None
    fap = float(periodogram.false_alarm_probability(
        power[peak], minimum_frequency=grid[0], maximum_frequency=grid[-1]))  # fmt: skip
    if not fap < settings.fap_max:
        return None
    t0 = float(np.mean(t))
    tc = t - t0
    w = 1.0 / (e * e)
    y = y - np.sum(w * y) / np.sum(w)  # χ² is computed as yᵀWy − explained: keep yᵀWy small
    ln_n = np.log(n)
    step = grid[1] - grid[0]
    first, _, _ = _refine(tc, y, w, grid[peak], step, 1)  # off the grid, before the BIC
    best = (np.inf, 1, 1)
    for k in range(1, settings.subharmonics + 1):
        frequency = first / k
        if frequency < grid[0]:
            break
        chi2 = _nested_chi2(tc, y, w, frequency, settings.max_harmonics)
        bic = chi2 + (2 * np.arange(1, settings.max_harmonics + 1) + 1) * ln_n
        m = int(np.argmin(bic))
        if bic[m] < best[0]:
            best = (bic[m], k, m + 1)
    _, k, n_harm = best
    frequency, chi2_min, curvature = _refine(tc, y, w, first / k, step / (4 * k), n_harm)
    reduced = max(chi2_min, 0.0) / max(n - (2 * n_harm + 2), 1)
    sigma_f = np.sqrt(2.0 * reduced / curvature) if curvature > 0 else np.nan
    coefficients = _coefficients(tc, y, w, frequency, n_harm)
    if not _repeats(tc, y, w, _harmonics(tc, frequency, coefficients), settings):
        return None
    phase = np.linspace(0.0, 1.0, 2000, endpoint=False)
    model = _harmonics(phase / frequency, frequency, coefficients)
    top, bottom = float(model.max()), float(model.min())
    amplitude = top - bottom
    dip = (top - float(np.median(model))) / amplitude if amplitude > 0 else np.nan
    period = 1.0 / frequency
    t_max = phase[int(np.argmax(model))] * period  # relative to t0
    t_max -= np.round(t_max / period) * period
    mean = float(np.mean(flux)) if mean_flux is None else float(mean_flux)
    kind = classify(period, amplitude / mean if mean > 0 else np.nan, dip, settings)
    period_err = sigma_f / frequency**2
    if kind == "eclipsing_binary" and k == 1 and _minima(model) == 1:
        period, period_err = 2 * period, 2 * period_err
    return PeriodFit(
        period_d=float(period), period_err_d=float(period_err), epoch_mjd_tdb=t0 + t_max,
        amplitude=amplitude, power=float(power[peak]), false_alarm_probability=fap,
        n_harmonics=n_harm, n_epochs=n, variable_class=kind, dip=dip,
    )  # fmt: skip


def search_periods(
    time_mjd_tdb: np.ndarray,
    flux: np.ndarray,
    flux_err: np.ndarray,
    flags: np.ndarray | None,
    rows: np.ndarray,
    grid: np.ndarray,
    settings: PeriodSettings = PeriodSettings(),
) -> dict[int, PeriodFit]:
    """:func:`search_period` on the given ``rows`` of objects × epochs arrays (good epochs:
    finite flux, error in (0, ∞), flag 0); row → fit of those with a significant period."""
    found = {}
    for row in np.asarray(rows, dtype=np.int64):
        f = np.asarray(flux[row], dtype=np.float64)
        e = np.asarray(flux_err[row], dtype=np.float64)
        good = np.isfinite(f) & (e > 0) & np.isfinite(e)
        if flags is not None:
            good &= np.asarray(flags[row]) == 0
        fit = search_period(time_mjd_tdb[good], f[good], e[good], grid, settings)
        if fit is not None:
            found[int(row)] = fit
    return found


def _repeats(
    tc: np.ndarray, y: np.ndarray, w: np.ndarray, model: np.ndarray, settings: PeriodSettings
) -> bool:
    """Whether every segment of the season (equal numbers of epochs, in time order) holds at
    least ``min_segment_share`` of the model's Δχ²: a single event explains one segment and
    makes the others worse."""
    order = np.argsort(tc, kind="stable")
    gain = w[order] * (y[order] ** 2 - (y[order] - model[order]) ** 2)
    shares = np.array([part.sum() for part in np.array_split(gain, settings.segments)])
    return bool(shares.sum() > 0 and np.all(shares >= settings.min_segment_share * shares.sum()))


def _minima(model: np.ndarray) -> int:
    """Local minima of a cyclic model deeper than a tenth of its range."""
    span = model.max() - model.min()
    lower = model < np.roll(model, 1)
    lower &= model <= np.roll(model, -1)
    deep = model < model.max() - 0.1 * span
    return int(np.count_nonzero(lower & deep))


def _refine(
    tc: np.ndarray, y: np.ndarray, w: np.ndarray, frequency: float, step: float, n_harm: int
) -> tuple[float, float, float]:
    """The profile χ²'s minimum near ``frequency``, its value and its curvature d²χ²/df²:
    a parabola through 9 samples, twice, the second time across a quarter of the first."""
    half = step
    curvature = np.nan
    chi2_min = np.nan
    for _ in range(2):
        offsets = np.linspace(-half, half, 9)
        chi2 = np.array([_nested_chi2(tc, y, w, frequency + d, n_harm)[-1] for d in offsets])
        m = int(np.clip(np.argmin(chi2), 1, 7))
        h = offsets[1] - offsets[0]
        a, b, c = chi2[m - 1], chi2[m], chi2[m + 1]
        curvature = (a - 2 * b + c) / (h * h)
        shift = 0.5 * h * (a - c) / (a - 2 * b + c) if a - 2 * b + c > 0 else 0.0
        frequency += offsets[m] + float(np.clip(shift, -h, h))
        chi2_min = b - 0.125 * (a - c) ** 2 / (a - 2 * b + c) if a - 2 * b + c > 0 else b
        half /= 4
    return frequency, float(chi2_min), float(curvature)


def _harmonics(t: np.ndarray, frequency: float, coefficients: np.ndarray) -> np.ndarray:
    """The Fourier model [c₀, a₁, b₁, …] (cos, sin of each harmonic) at times ``t``."""
    out = np.full(t.shape, coefficients[0])
    for h in range(1, (coefficients.size - 1) // 2 + 1):
        x = 2 * np.pi * h * frequency * t
        out += coefficients[2 * h - 1] * np.cos(x) + coefficients[2 * h] * np.sin(x)
    return out


def _coefficients(
    tc: np.ndarray, y: np.ndarray, w: np.ndarray, frequency: float, n_harm: int
) -> np.ndarray:
    """Weighted least-squares Fourier coefficients of ``n_harm`` harmonics."""
    a, b, _ = _normal_equations(tc, y, w, frequency, n_harm)
    return np.linalg.solve(a, b)


@numba.njit(cache=True)
def _normal_equations(
    tc: np.ndarray, y: np.ndarray, w: np.ndarray, frequency: float, n_harm: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """AᵀWA, AᵀWy and yᵀWy for the columns [1, cos x, sin x, …, cos n x, sin n x]."""
    p = 2 * n_harm + 1
    a = np.zeros((p, p))
    b = np.zeros(p)
    yy = 0.0
    row = np.empty(p)
    for i in range(tc.size):
        x = 2.0 * np.pi * frequency * tc[i]
        c1, s1 = np.cos(x), np.sin(x)
        row[0] = 1.0
        c, s = 1.0, 0.0
        for h in range(n_harm):  # cos, sin of (h + 1) x by rotation
            c, s = c * c1 - s * s1, s * c1 + c * s1
            row[2 * h + 1] = c
            row[2 * h + 2] = s
        wi = w[i]
        yi = y[i]
        yy += wi * yi * yi
        for r in range(p):
            wr = wi * row[r]
            b[r] += wr * yi
            for q in range(r + 1):
                a[r, q] += wr * row[q]
    for r in range(p):
        for q in range(r):
            a[q, r] = a[r, q]
    return a, b, yy


@numba.njit(cache=True)
def _nested_chi2(
    tc: np.ndarray, y: np.ndarray, w: np.ndarray, frequency: float, n_harm: int
) -> np.ndarray:
    """χ² of the 1…``n_harm``-harmonic models at ``frequency`` at once: with A = L Lᵀ and
    z = L⁻¹ AᵀWy, the model of the first p columns leaves χ² = yᵀWy − Σ_{i<p} z_i²."""
    a, b, yy = _normal_equations(tc, y, w, frequency, n_harm)
    p = b.size
    lower = np.zeros((p, p))
    z = np.zeros(p)
    for r in range(p):
        for q in range(r + 1):
            total = a[r, q]
            for m in range(q):
                total -= lower[r, m] * lower[q, m]
            if r == q:
                lower[r, r] = np.sqrt(total) if total > 0 else np.inf
            else:
                lower[r, q] = total / lower[q, q]
        total = b[r]
        for m in range(r):
            total -= lower[r, m] * z[m]
        z[r] = total / lower[r, r]
    out = np.empty(n_harm)
    explained = z[0] * z[0]
    for h in range(n_harm):
        explained += z[2 * h + 1] ** 2 + z[2 * h + 2] ** 2
        out[h] = yy - explained
    return out
